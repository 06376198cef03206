"""A registry that answers slowly holds up only what waits for it (fake engine): while one
account's registry check or pull hangs, the server answers everyone else, other accounts
deploy, and the slow account's own `ps` answers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from dockyard.naming import NamingMode
from dockyard.runtime.driver import PullMessage, StreamStop
from dockyard.server.settings import Limits
from tests.support.server import IMAGE, Server, running_server

SLOW = "slow.example.com/team/app:1"
GATE_SECONDS = 20.0  # what a blocked call waits at most (a hang budget, not a measurement)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path, mode=NamingMode.PLAYGROUND, zone="prod1a.localhost",
                        limits=Limits(projects=3), allow_images=("dockyard/busybox:*",)
                        ) as running:
        running.driver.remote[SLOW] = "sha256:" + "5" * 64
        yield running


def gated(original: Callable[..., Any], entered: threading.Event,
          release: threading.Event) -> Callable[..., Any]:
    def call(reference: str, **kwargs: Any) -> Any:
        if reference.startswith("slow.example.com/"):
            entered.set()
            release.wait(GATE_SECONDS)
        return original(reference, **kwargs)
    return call


def test_a_slow_registry_check_blocks_nobody_else(server: Server,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    entered, release = threading.Event(), threading.Event()
    monkeypatch.setattr(server.driver, "registry_digest",
                        gated(server.driver.registry_digest, entered, release))
    answers: list[int] = []
    slow = threading.Thread(target=lambda: answers.append(server.deploy(
        "slowpoke", {"web": {"image": SLOW}}).status_code))
    slow.start()
    try:
        assert entered.wait(GATE_SECONDS)
        # bob deploys, and alice's other reads answer, while alice's check hangs.
        deployment, status = server.up("fast", {"web": {"image": IMAGE}}, "bob")
        assert status == "succeeded"
        assert server.call("GET", "/v1/projects", "alice").status_code == 200
        assert server.call("GET", f"/v1/deployments/{deployment}", "bob").status_code == 200
        assert not answers  # still waiting for its registry
    finally:
        release.set()
        slow.join(GATE_SECONDS)
    assert answers == [202]


def test_a_slow_pull_blocks_nobody_else(server: Server,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    entered, release = threading.Event(), threading.Event()
    original = server.driver.pull

    def pull(reference: str, *, auth: Mapping[str, str] | None = None,
             on_progress: Callable[[PullMessage], None] | None = None,
             stop: StreamStop | None = None) -> str:
        if reference.startswith("slow.example.com/"):
            entered.set()
            release.wait(GATE_SECONDS)
        return original(reference, auth=auth, on_progress=on_progress, stop=stop)

    monkeypatch.setattr(server.driver, "pull", pull)
    response = server.deploy("slowpoke", {"web": {"image": SLOW}})
    assert response.status_code == 202, response.text
    try:
        assert entered.wait(GATE_SECONDS)
        _, status = server.up("fast", {"web": {"image": IMAGE}}, "bob")
        assert status == "succeeded"
        rows = server.call("GET", "/v1/projects/slowpoke/services").json()
        assert [(r["service"], r["state"]) for r in rows] == [("web", "UPDATE_QUEUED")]
        assert rows[0]["reason"].startswith("pulling "), rows
    finally:
        release.set()
    assert server.events(str(response.json()["deployment"]))[1] == "succeeded"
