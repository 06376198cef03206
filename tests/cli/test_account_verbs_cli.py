"""`dockyard logout` (the real console script: it needs no server) and `dockyard whoami --json`
(the CLI in-process against an in-process server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard.cli.main import main
from dockyard.client import api
from dockyard.client.credentials import credentials_path, save_token
from dockyard.exit_codes import ExitCode
from tests.support.cli import run_cli
from tests.support.server import running_server

SHARED = "https://dockyard.example.com"
OTHER = "https://other.example.com"


def test_logout_forgets_that_servers_token_and_keeps_the_others(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"DOCKYARD_HOME": str(home)}
    save_token(SHARED + "/", "token-one", env)
    save_token(OTHER, "token-two", env)
    result = run_cli("logout", "--server", SHARED, cwd=tmp_path, home=home)
    assert result.code == ExitCode.OK, result
    assert f"logged out of {SHARED}" in result.err and "token-one" not in result.err
    assert json.loads(credentials_path(env).read_text()) == {OTHER: "token-two"}
    assert credentials_path(env).stat().st_mode & 0o777 == 0o600

    # The default server is $DOCKYARD_SERVER; logging out twice says so, no traceback.
    again = run_cli("logout", cwd=tmp_path, home=home, DOCKYARD_SERVER=SHARED)
    assert again.code == ExitCode.OK, again
    assert f"not logged in to {SHARED}" in again.err and "Traceback" not in again.err
    assert json.loads(credentials_path(env).read_text()) == {OTHER: "token-two"}


def test_logout_with_no_server_named_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("logout", cwd=tmp_path, home=tmp_path / "home")
    assert result.code == ExitCode.USAGE, result
    assert "nothing to log out of" in result.err and "--server URL" in result.err
    assert not (tmp_path / "home" / "data" / "server").exists(), "a server was started"


def test_logout_says_a_token_in_the_environment_is_still_sent(tmp_path: Path) -> None:
    home = tmp_path / "home"
    save_token(SHARED, "token-one", {"DOCKYARD_HOME": str(home)})
    result = run_cli("logout", "--server", SHARED, cwd=tmp_path, home=home,
                     DOCKYARD_TOKEN="from-env")
    assert result.code == ExitCode.OK and "DOCKYARD_TOKEN is set" in result.err, result


def test_whoami_json_is_one_object(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    with running_server(tmp_path) as server:
        monkeypatch.setattr(api, "connect", lambda *_a, **_k: server.client_of("alice"))
        assert main(["whoami", "--json"]) == ExitCode.OK
        me = json.loads(capsys.readouterr().out)
        assert me == {"account": "alice", "server": "http://testserver", "mode": "byoc",
                      "zone": server.settings.zone}
