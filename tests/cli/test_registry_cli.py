"""`dockyard registry login|logout|ls`: the CLI in-process against an in-process server (a fake
engine that accepts scripted logins), and the console script for errors needing no server."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.cli.main import main
from dockyard.client import api
from dockyard.exit_codes import ExitCode
from tests.files import file_contents
from tests.support.cli import REGISTRY_HOST as HOST
from tests.support.cli import REGISTRY_PASSWORD as PASSWORD
from tests.support.cli import run_cli
from tests.support.server import Server, running_server

OTHER_PASSWORD = "other-registry-pw-77aa31"  # another host's, in the same Docker config
HUB = "https://index.docker.io/v1/"


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A server the CLI reaches (as alice) through `connect`, whatever --server says."""
    with running_server(tmp_path) as running:
        running.driver.registry_users.update({HOST: ("alice", PASSWORD),
                                              HUB: ("hubuser", PASSWORD),
                                              "ghcr.io": ("ghuser", PASSWORD)})

        def connect(*_args: object, **_kwargs: object) -> api.Client:
            return running.client_of("alice")

        monkeypatch.setattr(api, "connect", connect)
        monkeypatch.delenv("DOCKER_CONFIG", raising=False)
        yield running


def dockyard(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str,
             stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def stored_hosts(server: Server) -> list[str]:
    return [r.host for r in server.control.registries.list(server.accounts["alice"])]


def test_login_with_password_stdin_ls_and_logout(
        server: Server, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = dockyard(monkeypatch, capsys, "registry", "login", HOST, "-u", "alice",
                              "--password-stdin", stdin=PASSWORD + "\n")
    assert (code, out) == (0, "Login Succeeded\n"), err
    assert server.driver.login_checks == [(HOST, "alice")]
    auth = server.control.registries.auth_for(server.accounts["alice"], HOST)
    assert auth is not None and auth.password == PASSWORD  # the newline is not part of it
    code, out, err = dockyard(monkeypatch, capsys, "registry", "ls")
    assert code == 0 and out.splitlines()[0].split() == ["HOST", "USERNAME", "UPDATED"]
    assert out.splitlines()[1].split()[:2] == [HOST, "alice"]
    code, listed, _ = dockyard(monkeypatch, capsys, "registry", "ls", "--json")
    (item,) = json.loads(listed)
    assert code == 0 and set(item) == {"host", "username", "updated_at"}
    assert PASSWORD not in out + listed + err
    code, out, _ = dockyard(monkeypatch, capsys, "registry", "logout", HOST)
    assert (code, out) == (0, f"Removing login credentials for {HOST}\n")
    code, out, _ = dockyard(monkeypatch, capsys, "registry", "logout", HOST)
    assert (code, out) == (0, f"Not logged in to {HOST}\n")  # as docker logout says it
    code, out, err = dockyard(monkeypatch, capsys, "registry", "ls")
    assert code == 0 and out == "" and "registry login" in err


def test_docker_hub_by_its_legacy_url(server: Server, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = dockyard(monkeypatch, capsys, "registry", "login", HUB, "-u", "hubuser",
                            "--password-stdin", stdin=PASSWORD)
    assert code == 0, err
    assert stored_hosts(server) == ["docker.io"]
    code, out, _ = dockyard(monkeypatch, capsys, "registry", "logout", "index.docker.io")
    assert out == "Removing login credentials for docker.io\n"


def test_a_refused_login_is_an_error_without_traceback_or_password(
        server: Server, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    wrong = "wrong-" + PASSWORD
    code, out, err = dockyard(monkeypatch, capsys, "registry", "login", HOST, "-u", "alice",
                              "--password-stdin", stdin=wrong + "\n")
    assert code == ExitCode.FAILURE and out == ""
    assert f"error: registry {HOST} refused the login of user 'alice'" in err
    assert "hint:" in err and "Traceback" not in err and wrong not in err
    assert stored_hosts(server) == []


def write_docker_config(directory: Path, config: dict[str, object]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_from_docker_config_uploads_only_that_hosts_login(
        server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("DOCKER_CONFIG", str(write_docker_config(tmp_path / "docker", {"auths": {
        HOST: {"auth": basic("alice", PASSWORD)},
        "other.example.com": {"auth": basic("bob", OTHER_PASSWORD)}}})))
    code, out, err = dockyard(monkeypatch, capsys, "registry", "login", HOST,
                              "--from-docker-config")
    assert (code, out) == (0, "Login Succeeded\n"), err
    assert server.driver.login_checks == [(HOST, "alice")]
    assert stored_hosts(server) == [HOST]
    for body in server.bodies:
        assert OTHER_PASSWORD not in body
    assert OTHER_PASSWORD not in caplog.text
    for _path, content in file_contents(server.settings.data):
        assert OTHER_PASSWORD.encode() not in content and PASSWORD.encode() not in content
    # a host the config has no login for: said so, nothing sent
    code, _, err = dockyard(monkeypatch, capsys, "registry", "login", "ghcr.io",
                            "--from-docker-config")
    assert code == ExitCode.FAILURE and "has no login for ghcr.io" in err
    assert len(server.driver.login_checks) == 1


def test_from_docker_config_runs_the_credential_helper_docker_would(
        server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    asked = tmp_path / "asked.txt"
    helper = bin_dir / "docker-credential-fake"
    helper.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"assert sys.argv[1:] == ['get']\n"
        "server = sys.stdin.read()\n"
        f"open({str(asked)!r}, 'a').write(server + '\\n')\n"
        "if server == 'ghcr.io':\n"
        f"    print(json.dumps({{'ServerURL': server, 'Username': 'ghuser', "
        f"'Secret': {PASSWORD!r}}}))\n"
        "elif server == 'https://index.docker.io/v1/':\n"
        "    print(json.dumps({'ServerURL': server, 'Username': '<token>',\n"
        "                      'Secret': 'idtok-93b1'}))\n"
        "else:\n"
        "    print('credentials not found in native keychain'); sys.exit(1)\n")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_CONFIG", str(write_docker_config(tmp_path / "docker", {
        "credHelpers": {"ghcr.io": "fake"}, "credsStore": "fake",
        "auths": {"ghcr.io": {}, HOST: {"auth": basic("alice", OTHER_PASSWORD)}}})))
    code, out, err = dockyard(monkeypatch, capsys, "registry", "login", "GHCR.io",
                              "--from-docker-config")
    assert (code, out) == (0, "Login Succeeded\n"), err
    assert server.driver.login_checks == [("ghcr.io", "ghuser")]
    # credsStore wins over auths (as in docker), and its "not found" is said
    code, _, err = dockyard(monkeypatch, capsys, "registry", "login", HOST,
                            "--from-docker-config")
    assert code == ExitCode.FAILURE and "docker-credential-fake has no login" in err
    assert "credentials not found" in err
    # an identity token (OAuth) is not supported, and said so
    code, _, err = dockyard(monkeypatch, capsys, "registry", "login", "docker.io",
                            "--from-docker-config")
    assert code == ExitCode.FAILURE and "identity token" in err and "idtok-93b1" not in err
    assert asked.read_text().splitlines() == ["ghcr.io", HOST, HUB]
    assert len(server.driver.login_checks) == 1


def test_an_identity_token_in_auths_is_refused(
        server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(write_docker_config(tmp_path / "docker", {
        "auths": {HUB: {"auth": "", "identitytoken": "eyJ-secret-token"}}})))
    code, _, err = dockyard(monkeypatch, capsys, "registry", "login", "docker.io",
                            "--from-docker-config")
    assert code == ExitCode.FAILURE and "identity token" in err
    assert "eyJ-secret-token" not in err and server.driver.login_checks == []


@pytest.mark.parametrize(("args", "stdin", "words"), [
    (("--password-stdin",), PASSWORD, "--password-stdin needs the user name"),
    (("-u", "alice"), "", "standard input is not a terminal"),
    ((), "", "no user name"),
    (("--from-docker-config", "-u", "alice"), "", "give neither -u nor --password-stdin"),
    (("-u", "alice", "--password-stdin"), "\n", "no password given"),
])
def test_usage_errors_send_nothing(server: Server, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
                                   stdin: str, words: str) -> None:
    code, _, err = dockyard(monkeypatch, capsys, "registry", "login", HOST, *args, stdin=stdin)
    assert code == ExitCode.USAGE and words in err, err
    assert server.driver.login_checks == []


def test_the_console_script_refuses_a_bad_host_before_any_server(tmp_path: Path) -> None:
    result = run_cli("registry", "login", "ftp://x.example.com", "-u", "a", "--password-stdin",
                     "--server", "http://127.0.0.1:9", cwd=tmp_path, home=tmp_path / "home")
    assert result.code == ExitCode.USAGE and "not a registry host" in result.err
    assert "Traceback" not in result.err
    top = run_cli("registry", "--help", cwd=tmp_path, home=tmp_path / "home").out
    for command in ("login", "logout", "ls"):
        assert command in top
