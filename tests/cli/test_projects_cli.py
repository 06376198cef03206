"""`dockyard compose ls` and `up --ttl` through the CLI: the in-process server (fake engine)
behind the real client, the table pinned by a golden file (ids and times normalised), its
`--json` the server's answer, and `--ttl` mistakes refused before any server is contacted."""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.cli.main import main
from dockyard.client import api
from dockyard.exit_codes import ExitCode
from tests.support.cli import run_cli, write_files
from tests.support.server import IMAGE, Server, running_server

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """Alice's projects: a shop taken down, a preview with a TTL (volumes too), and a
    failed one with a TTL."""
    with running_server(tmp_path) as running:
        def connect(*_args: object, **_kwargs: object) -> api.Client:
            return running.client_of("alice")

        monkeypatch.setattr(api, "connect", connect)
        client = running.client_of("alice")
        shop = {"name": "shop", "services": {"web": {"image": IMAGE}, "db": {"image": IMAGE}}}
        assert running.events(client.deploy("shop", shop, {}))[1] == "succeeded"
        assert running.events(client.down("shop"))[1] == "succeeded"
        preview = {"name": "pr-123", "services": {"web": {"image": IMAGE},
                                                  "api": {"image": IMAGE}}}
        deployment = client.deploy("pr-123", preview, {}, ttl=7200, ttl_volumes=True)
        assert running.events(deployment)[1] == "succeeded"
        broken = {"name": "broken", "services": {  # the fake engine crashes "crash"
            "web": {"image": IMAGE}, "worker": {"image": IMAGE, "command": ["crash"]}}}
        deployment = client.deploy("broken", broken, {}, ttl=2 * 86400)
        assert running.events(deployment)[1] == "failed"
        yield running


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
         *args: str) -> str:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(list(args)) == 0
    return capsys.readouterr().out


def _normalised(text: str) -> str:
    """Deployment ids and times vary from run to run; the layout must not."""
    text = re.sub(r"\b[0-9a-z]{12}\b(?=  )", "xxxxxxxxxxxx", text)
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "YYYY-MM-DD hh:mm:ss", text)


def test_compose_ls_golden(server: Server, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str], regen: bool) -> None:
    text = _normalised(_cli(monkeypatch, capsys, "compose", "ls"))
    path = GOLDEN / "compose_ls.txt"
    if regen:
        path.write_text(text)
    assert text == path.read_text()


def test_compose_ls_json_is_the_servers_answer(server: Server,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    answer: Any = server.call("GET", "/v1/projects").json()
    assert [p["name"] for p in answer] == ["broken", "pr-123", "shop"]
    assert _cli(monkeypatch, capsys, "compose", "ls", "--json") == \
        json.dumps(answer, indent=2) + "\n"


def test_ps_says_when_the_preview_expires(server: Server, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = _cli(monkeypatch, capsys, "compose", "ps", "-p", "pr-123")
    assert re.search(r"\nExpires in 1h59m \(at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\); the server "
                     r"takes it down then \(`compose up` without --ttl keeps it\)\n$", out), out
    rows = json.loads(_cli(monkeypatch, capsys, "compose", "ps", "-p", "pr-123", "--json"))
    assert {row["expires_at"] for row in rows} == \
        {server.call("GET", "/v1/projects").json()[1]["expires_at"]}
    assert "Expires" not in _cli(monkeypatch, capsys, "compose", "ps", "-p", "shop")


@pytest.mark.parametrize(("args", "said"), [
    (("--ttl", "soon"), "--ttl 'soon' is not a duration"),
    (("--ttl", "0s"), "a TTL is at least 1s"),
    (("--ttl-volumes",), "--ttl-volumes needs --ttl"),
])
def test_ttl_mistakes_are_usage_errors_before_any_server(tmp_path: Path, args: tuple[str, ...],
                                                         said: str) -> None:
    project = write_files(tmp_path / "p", {"compose.yaml": f"services:\n  web:\n    image: "
                                                           f"{IMAGE}\n"})
    home = tmp_path / "home"
    result = run_cli("compose", "up", *args, cwd=project, home=home)
    assert result.code == ExitCode.USAGE, result.err
    assert said in result.err and "hint:" in result.err
    assert not (home / "data" / "server").exists(), "a server was started"


def test_help_says_what_a_later_up_does_to_the_deadline(tmp_path: Path) -> None:
    home = tmp_path / "home"
    up = " ".join(run_cli("compose", "up", "--help", cwd=tmp_path, home=home).out.split())
    assert "A later `up` without --ttl keeps the project" in up
    assert "--ttl-volumes" in up
    assert "ls" in run_cli("compose", "--help", cwd=tmp_path, home=home).out
