"""The deployment commands' errors that need no engine: the real console script."""

from __future__ import annotations

from pathlib import Path

from dockyard.exit_codes import ExitCode
from tests.support.cli import run_cli, write_files


def test_an_invalid_project_is_refused_before_any_server_is_contacted(tmp_path: Path) -> None:
    project = write_files(tmp_path / "p", {"compose.yaml": "services:\n  web: {}\n"})
    home = tmp_path / "home"
    result = run_cli("compose", "up", cwd=project, home=home)
    assert result.code == ExitCode.INVALID_PROJECT
    assert "no-image-or-build" in result.err and "Traceback" not in result.err
    assert not (home / "data" / "server").exists(), "a server was started for a bad project"


def test_an_unreachable_server_is_a_clear_error_with_its_own_code(tmp_path: Path) -> None:
    result = run_cli("compose", "ps", "-p", "shop", "--server", "http://127.0.0.1:9",
                     cwd=tmp_path, home=tmp_path / "home")
    assert result.code == ExitCode.SERVER_UNAVAILABLE
    assert "cannot reach the Dockyard server at http://127.0.0.1:9" in result.err
    assert "hint:" in result.err and "Traceback" not in result.err


def test_an_engine_that_is_not_there_is_exit_code_4(tmp_path: Path) -> None:
    result = run_cli("compose", "ps", "-p", "shop", cwd=tmp_path, home=tmp_path / "home",
                     DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock")
    assert result.code == ExitCode.ENGINE_UNAVAILABLE, result.err
    assert "Docker Engine" in result.err and "dockerd" in result.err
    assert "Traceback" not in result.err


def test_bad_log_times_are_usage_errors(tmp_path: Path) -> None:
    result = run_cli("logs", "-p", "shop", "--since", "yesterday", "--server",
                     "http://127.0.0.1:9", cwd=tmp_path, home=tmp_path / "home")
    assert result.code == ExitCode.USAGE
    assert "--since 'yesterday'" in result.err


def test_help_lists_the_deployment_commands(tmp_path: Path) -> None:
    top = run_cli("--help", cwd=tmp_path, home=tmp_path / "home").out
    for command in ("compose", "logs", "tail", "deployments", "server"):
        assert command in top
    compose = run_cli("compose", "--help", cwd=tmp_path, home=tmp_path / "home").out
    for command in ("config", "up", "ps", "down", "logs"):
        assert command in compose
