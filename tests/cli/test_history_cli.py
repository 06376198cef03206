"""`dockyard deployments show`, `deployments --status` and `dockyard rollback` through the CLI:
the in-process server (fake engine) behind the real client. `deployments show` is pinned by a
golden file (ids, times and digests normalised)."""

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
from dockyard.wire_models import DeployOrigin
from tests.support.golden import check_golden
from tests.support.server import IMAGE, Server, running_server


def shop(command: str) -> dict[str, Any]:
    return {"name": "shop", "services": {
        "web": {"image": IMAGE, "command": ["sh", "-c", command],
                "environment": {"TOKEN": None}},
        "db": {"image": IMAGE, "command": ["sleep", "1000"]}}}


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """Alice's shop: a good deployment, then a bad one (a new config value, a new command)."""
    with running_server(tmp_path) as running:
        def connect(*_args: object, **_kwargs: object) -> api.Client:
            return running.client_of("alice")

        monkeypatch.setattr(api, "connect", connect)
        client = running.client_of("alice")
        origin = DeployOrigin(client_version="0.1.0", user="alice", git_commit="0123456789ab" * 3
                              + "0123", git_dirty=True, git_branch="main")
        running.set_config("shop", "TOKEN", "first-secret")
        good = client.deploy("shop", shop("sleep 1000"), {}, origin=origin)
        assert running.events(good)[1] == "succeeded"
        running.set_config("shop", "TOKEN", "second-secret")
        bad = client.deploy("shop", shop("sleep 2000"), {}, force=True)
        assert running.events(bad)[1] == "succeeded"
        running.good, running.bad = good, bad  # type: ignore[attr-defined]
        yield running


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
         *args: str, code: int = 0) -> tuple[str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(list(args)) == code
    captured = capsys.readouterr()
    return captured.out, captured.err


def _normalised(text: str, server: Server) -> str:
    text = text.replace(server.good, "<good>").replace(server.bad, "<bad>")  # type: ignore[attr-defined]
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?", "YYYY-MM-DD hh:mm:ss", text)
    text = re.sub(r"took \d+\.\d s", "took N s", text)
    text = re.sub(r"running for \d+s", "running for Ns", text)
    text = re.sub(r"sha256:[0-9a-f]{64}", "sha256:<id>", text)
    # Services deploy in parallel: their events interleave differently from run to run.
    head, _, timeline = text.partition("TIME (UTC)")
    first, *events = timeline.splitlines(keepends=True)
    return head + "TIME (UTC)" + first + "".join(sorted(events, key=lambda e: e.split()[2]))


def test_deployments_show_renders_the_record(server: Server, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str],
                                             regen: bool) -> None:
    good: str = server.good  # type: ignore[attr-defined]
    out, _ = _cli(monkeypatch, capsys, "deployments", "show", good)
    assert "first-secret" not in out
    check_golden("deployments_show.txt", _normalised(out, server), regen)
    as_json = json.loads(_cli(monkeypatch, capsys, "deployments", "show", good, "--json")[0])
    assert as_json == server.call("GET", f"/v1/deployments/{good}").json()
    compose = _cli(monkeypatch, capsys, "deployments", "show", good, "--compose")[0]
    assert compose.startswith("name: shop\n") and "sleep 1000" in compose


def test_deployments_filter_by_status(server: Server, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    listed = json.loads(_cli(monkeypatch, capsys, "deployments", "--all", "--status",
                             "succeeded", "--json")[0])
    assert [d["id"] for d in listed] == [server.bad, server.good]  # type: ignore[attr-defined]
    assert json.loads(_cli(monkeypatch, capsys, "deployments", "--all", "--status", "failed",
                           "--json")[0]) == []


def test_rollback_says_what_it_changes_then_goes_back(server: Server,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    good: str = server.good  # type: ignore[attr-defined]
    web = server.containers("shop")["web"]
    dry, _ = _cli(monkeypatch, capsys, "rollback", "-p", "shop", "--dry-run")
    assert re.search(r"web +replace", dry) and re.search(r"db +keep", dry)
    assert server.containers("shop")["web"] == web  # a dry run changes nothing
    out, err = _cli(monkeypatch, capsys, "rollback", "-p", "shop")
    assert f"rolling shop back to deployment {good}: replace web" in err
    assert "SERVICE_DEPLOYMENT_COMPLETED" in out
    assert server.spec_of("shop", "web").environment["TOKEN"] == "first-secret"
    _, err = _cli(monkeypatch, capsys, "rollback", "-p", "shop", "nosuchdeploy",
                  code=int(ExitCode.FAILURE))
    assert "has no deployment 'nosuchdeploy'" in err
