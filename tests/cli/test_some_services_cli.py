"""Acting on some services from the command line, where no engine is needed: an unknown name
is refused before any server is contacted, and the help says what the names do."""

from __future__ import annotations

from pathlib import Path

from dockyard.exit_codes import ExitCode
from tests.support.cli import run_cli, write_files

COMPOSE = """\
services:
  db: {image: dockyard/busybox:1}
  api: {image: dockyard/busybox:1, depends_on: [db]}
"""


def test_up_with_an_unknown_service_is_refused_before_any_server_is_contacted(
        tmp_path: Path) -> None:
    project = write_files(tmp_path / "p", {"compose.yaml": COMPOSE})
    home = tmp_path / "home"
    for extra in ((), ("--dry-run",)):
        result = run_cli("compose", "up", "-p", "shop", "apii", *extra, cwd=project,
                         home=home)
        assert result.code == ExitCode.USAGE, result.err
        assert "no service 'apii' in project 'shop'" in result.err
        assert "its services: api, db" in result.err and "Traceback" not in result.err
    assert not (home / "data" / "server").exists(), "a server was started for a bad name"


def test_help_says_what_service_names_do(tmp_path: Path) -> None:
    home = tmp_path / "home"
    compose = run_cli("compose", "--help", cwd=tmp_path, home=home).out
    assert "restart" in compose
    up = run_cli("compose", "up", "--help", cwd=tmp_path, home=home).out
    assert "SERVICE" in up and "depend" in up
    down = run_cli("compose", "down", "--help", cwd=tmp_path, home=home).out
    assert "SERVICE" in down and "--force" in down
    restart = run_cli("compose", "restart", "--help", cwd=tmp_path, home=home).out
    assert "one at a time" in restart and "start-first" in restart
