"""Forbidden state moves found by running the API tests in strict mode (issue 12).

Each test reproduces one; strict mode (tests/conftest.py) makes the move fail the deployment's
service. The deployer settles such services through `Deployer._fail` now, by allowed moves
only, so each of these holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from dockyard.runtime.driver import PullMessage, StreamStop
from dockyard.runtime.errors import EngineError
from dockyard.server.deployer import Deployer
from tests.support.images import upload
from tests.support.pulls import (
    HOST,
    REF,
    SECRET_ID,
    USERS,
    login,
    two_users,
    up,
    with_playground,
)
from tests.support.server import IMAGE, Server


@pytest.fixture
def playground(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A playground server (fake engine) whose registry serves REF to alice (as in
    test_pulls_api)."""
    with with_playground(tmp_path) as running:
        two_users(running.driver, monkeypatch, HOST, USERS)
        running.driver.remote[REF] = SECRET_ID
        yield running


def test_a_failed_pull_keeps_a_built_service_without_a_forbidden_move(
        playground: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    driver = playground.driver
    login(playground, "alice")
    digest = upload(playground, "alice", "FROM dockyard/busybox:1\n", **{"app.txt": b"1"})
    builds = {"app": {"digest": digest, "args": {}}}
    services = {"web": {"image": REF}, "app": {"build": {"context": "."}},
                "cache": {"image": IMAGE}}
    assert up(playground, "shop", services, builds=builds)[1] == "succeeded"
    newer = f"{HOST}/team/secret:2"
    driver.remote[newer] = "sha256:" + "6" * 64
    pull = driver.pull

    def pull_then_down(reference: str, *, auth: Mapping[str, str] | None = None,
                       on_progress: Callable[[PullMessage], None] | None = None,
                       stop: StreamStop | None = None) -> str:
        driver.down.add(HOST)  # it answered the admission's check, then went away
        return pull(reference, auth=auth, on_progress=on_progress, stop=stop)

    monkeypatch.setattr(driver, "pull", pull_then_down)
    events, status = up(playground, "shop", {**services, "web": {"image": newer}},
                        builds=builds)
    assert status == "failed", events
    last = {e["service"]: e for e in events}
    assert last["app"]["state"] == "SERVICE_DEPLOYMENT_COMPLETED", [
        (e["state"], e["reason"]) for e in events if e["service"] == "app"]
    assert last["app"]["reason"].startswith("kept the running version"), last


def test_an_engine_error_during_a_build_fails_it_without_a_forbidden_move(
        playground: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> str:
        raise EngineError("the engine failed the build: connection reset")

    monkeypatch.setattr(playground.driver, "build", broken)
    digest = upload(playground, "alice", "FROM dockyard/busybox:1\n", **{"app.txt": b"2"})
    events, status = up(playground, "shop", {"app": {"build": {"context": "."}}},
                        builds={"app": {"digest": digest, "args": {}}})
    assert status == "failed", events
    moves = [(e["state"], e["reason"]) for e in events if e["service"] == "app"]
    assert moves[-1][0] == "BUILD_FAILED" and "connection reset" in moves[-1][1], moves


def test_an_engine_error_before_a_new_service_is_queued_fails_it_without_a_forbidden_move(
        playground: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Deployer, use: object) -> None:
        raise EngineError("the engine did not answer: connection reset")

    # The image was read at admission; the engine fails when the deployment looks it up.
    monkeypatch.setattr(Deployer, "_planned_image", broken)
    events, status = up(playground, "shop", {"cache": {"image": IMAGE}})
    assert status == "failed", events
    moves = [(e["state"], e["reason"]) for e in events if e["service"] == "cache"]
    assert moves[-1][0] == "SERVICE_DEPLOYMENT_FAILED", moves
    assert "connection reset" in moves[-1][1], moves
