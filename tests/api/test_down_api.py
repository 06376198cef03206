"""`down` records every service it takes away as DEPLOYMENT_SCALED_IN, in one write for the
services whose move the state machine allows as they stand, and through `record` for a service
another deployment left PENDING (superseded first, as the table asks)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.lifecycle import ServiceState
from dockyard.runtime.errors import EngineUnavailable
from tests.support.server import IMAGE, Server, running_server

S = ServiceState


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path) as running:
        yield running


def test_down_scales_every_service_in_and_supersedes_one_left_pending(server: Server) -> None:
    first, status = server.up("shop", {
        "web": {"image": IMAGE, "ports": [{"target": 8080}],
                "healthcheck": {"test": ["CMD", "true"]}},
        "db": {"image": IMAGE}, "cache": {"image": IMAGE}})
    assert status == "succeeded"
    alice = server.accounts["alice"]
    # The engine watcher saw web restarting after its deployment ended.
    server.control.record(alice, first, "web", S.SERVICE_DEPLOYMENT_PENDING, "restarting")
    response = server.call("POST", "/v1/projects/shop/down", json={})
    down = str(response.json()["deployment"])
    seen, status = server.events(down)
    assert status == "succeeded"
    assert sorted((e["service"], e["state"], e["reason"]) for e in seen) == [
        (name, "DEPLOYMENT_SCALED_IN", "removed by `down`") for name in ("cache", "db", "web")]
    web_then = [e.event for e in server.store.events_since(alice, first)
                if e.event.service == "web"][-1]
    assert (web_then.state, web_then.reason) == (S.SERVICE_DEPLOYMENT_FAILED,
                                                 f"superseded by deployment {down}")
    assert server.containers("shop") == {}


def test_a_down_the_engine_stops_answering_fails_and_says_why(
        server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    _, status = server.up("shop", {"db": {"image": IMAGE}})
    assert status == "succeeded"

    def refused(*_args: object, **_kwargs: object) -> list[str]:
        raise EngineUnavailable("the Docker Engine stopped answering: connection refused",
                                hint="is dockerd running?")

    monkeypatch.setattr(server.control.driver, "labelled_networks", refused)
    response = server.call("POST", "/v1/projects/shop/down", json={})
    down = str(response.json()["deployment"])
    _, status = server.events(down)
    assert status == "failed"
    notes = server.call("GET", f"/v1/deployments/{down}").json()["notes"]
    assert notes == ["stopped: the Docker Engine stopped answering: connection refused"]
