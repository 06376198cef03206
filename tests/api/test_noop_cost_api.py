"""A no-op `up` costs the same number of store writes whatever the project's size: the services
the plan keeps are settled in one write (fake engine, real store). Their events say so."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dockyard.store.store import Store
from tests.support.server import IMAGE, Server, running_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path) as running:
        yield running


def project(size: int) -> dict[str, Any]:
    services: dict[str, Any] = {f"s{i}": {"image": IMAGE, "command": ["sleep", "1000"]}
                                for i in range(size)}
    services["s1"]["depends_on"] = ["s0"]
    return services


def writes_of_a_noop_up(server: Server, name: str, size: int,
                        monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[dict[str, Any]]]:
    first, status = server.up(name, project(size))
    assert status == "succeeded"
    count = [0]
    begin = Store._begin

    def counted(store: Store) -> AbstractContextManager[Any]:
        count[0] += 1
        return begin(store)

    monkeypatch.setattr(Store, "_begin", counted)
    again, status = server.up(name, project(size))
    monkeypatch.setattr(Store, "_begin", begin)
    assert status == "succeeded"
    events, _ = server.events(again)
    return count[0], events


def test_a_noop_up_writes_as_often_for_30_services_as_for_3(
        server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    small, _ = writes_of_a_noop_up(server, "small", 3, monkeypatch)
    large, events = writes_of_a_noop_up(server, "large", 30, monkeypatch)
    assert large == small, (small, large)
    assert sorted((e["service"], e["state"], e["reason"]) for e in events) == sorted(
        (f"s{i}", "SERVICE_DEPLOYMENT_COMPLETED", "unchanged: not restarted")
        for i in range(30))
    rows = server.call("GET", "/v1/projects/large/services").json()
    assert {r["state"] for r in rows} == {"SERVICE_DEPLOYMENT_COMPLETED"} and len(rows) == 30


def statements_and_listings_of_a_noop_up(server: Server, name: str, size: int,
                                         monkeypatch: pytest.MonkeyPatch
                                         ) -> tuple[int, int, int, int]:
    """(SQL statements that write, engine container listings, engine volume listings, network
    checks) of a no-op `up`."""
    first, status = server.up(name, project(size))
    assert status == "succeeded"
    writes, listings, volume_listings, networks = [0], [0], [0], [0]

    def count_write(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            writes[0] += 1

    containers, volumes = type(server.driver).containers, type(server.driver).volumes
    ensure_network = type(server.driver).ensure_network

    def network_checked(driver: Any, *args: Any, **kwargs: Any) -> Any:
        networks[0] += 1
        return ensure_network(driver, *args, **kwargs)

    def listed(driver: Any, *args: Any, **kwargs: Any) -> Any:
        listings[0] += 1
        return containers(driver, *args, **kwargs)

    def volumes_listed(driver: Any, *args: Any, **kwargs: Any) -> Any:
        volume_listings[0] += 1
        return volumes(driver, *args, **kwargs)

    sa.event.listen(server.store.engine, "before_cursor_execute", count_write)
    monkeypatch.setattr(type(server.driver), "containers", listed)
    monkeypatch.setattr(type(server.driver), "volumes", volumes_listed)
    monkeypatch.setattr(type(server.driver), "ensure_network", network_checked)
    try:
        again, status = server.up(name, project(size))
    finally:
        sa.event.remove(server.store.engine, "before_cursor_execute", count_write)
        monkeypatch.setattr(type(server.driver), "containers", containers)
        monkeypatch.setattr(type(server.driver), "volumes", volumes)
        monkeypatch.setattr(type(server.driver), "ensure_network", ensure_network)
    assert status == "succeeded"
    return writes[0], listings[0], volume_listings[0], networks[0]


def test_a_noop_up_runs_as_many_writes_and_engine_listings_for_30_services_as_for_3(
        server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    small = statements_and_listings_of_a_noop_up(server, "small", 3, monkeypatch)
    large = statements_and_listings_of_a_noop_up(server, "large", 30, monkeypatch)
    assert large == small, (small, large)
    assert large[1] == 1, "the plan's listing of what runs is the only one"
    assert large[2] == 0, "a project without named volumes has no volume to look for"
    assert large[3] == 1, "the project's network is made sure of once, at admission"
