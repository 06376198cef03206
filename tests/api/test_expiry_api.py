"""Previews that expire (`up --ttl`) and `compose ls`, in-process: a real store, a fake engine
and the real Python client. The server's expirer is driven by hand (`Expirer.run_once` with a
chosen `now`), so no test waits for a deadline; tests/engine/test_expiry.py waits for a real
one across a server restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dockyard.api_errors import RequestInvalid
from dockyard.client.api import Client
from dockyard.server.expiry import BUSY_RETRY_SECONDS, DOWN_CHECK_SECONDS, Expirer
from dockyard.store.store import Account
from tests.support.server import IMAGE, Server, follow, running_server

WEB = {"web": {"image": IMAGE}}
TWO = {"web": {"image": IMAGE},
       "db": {"image": IMAGE, "volumes": [{"type": "volume", "source": "data",
                                          "target": "/data"}]}}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path) as running:
        yield running


def _up(client: Client, project: str, services: dict[str, Any], **options: Any) -> str:
    data: dict[str, Any] = {"name": project, "services": services}
    if any("volumes" in s for s in services.values()):
        data["volumes"] = {"data": {}}
    deployment = client.deploy(project, data, {}, **options)
    assert follow(client, deployment)[1]["status"] == "succeeded"
    return deployment


def _deadline(client: Client, project: str) -> datetime | None:
    (item,) = [p for p in client.projects() if p.name == project]
    return None if item.expires_at is None else datetime.fromisoformat(item.expires_at)


def _wait_down(server: Server, client: Client, expirer: Expirer, now: datetime) -> str:
    """Run the expirer at `now` until the `down` it started has ended; that down's id."""
    assert expirer.run_once(now) == now + timedelta(seconds=DOWN_CHECK_SECONDS)  # a down started
    (down,) = [d for d in client.deployments() if d.action == "down"]
    follow(client, down.id)
    # The down ended: the deadline is forgotten when the expirer looks again.
    assert expirer.run_once(now + timedelta(seconds=DOWN_CHECK_SECONDS)) is None
    return down.id


def test_up_with_a_ttl_records_the_deadline_ps_and_ls_show_it(server: Server) -> None:
    client = server.client_of("alice")
    before = datetime.now(UTC)
    deployment = _up(client, "pr-1", WEB, ttl=7200, ttl_volumes=True)
    after = datetime.now(UTC)
    deadline = _deadline(client, "pr-1")
    assert deadline is not None
    assert before + timedelta(hours=2) <= deadline <= after + timedelta(hours=2)
    stored = server.store.expiry(server.accounts["alice"], "pr-1")
    assert stored is not None
    assert (stored.expires_at, stored.volumes, stored.deployment) == (deadline, True, deployment)
    (row,) = client.services("pr-1")
    assert row.expires_at is not None and datetime.fromisoformat(row.expires_at) == deadline
    (item,) = client.projects()
    assert (item.expire_volumes, item.deployment) == (True, deployment)


def test_a_plain_up_makes_the_project_permanent_and_down_forgets_the_deadline(
        server: Server) -> None:
    client = server.client_of("alice")
    _up(client, "pr-2", WEB, ttl=60)
    assert _deadline(client, "pr-2") is not None
    _up(client, "pr-2", WEB)
    assert _deadline(client, "pr-2") is None
    assert [row.expires_at for row in client.services("pr-2")] == [None]

    _up(client, "pr-2", WEB, ttl=60)
    follow(client, client.down("pr-2"))
    assert _deadline(client, "pr-2") is None


def test_a_later_up_with_a_ttl_moves_the_deadline(server: Server) -> None:
    client = server.client_of("alice")
    _up(client, "pr-3", WEB, ttl=60)
    first = _deadline(client, "pr-3")
    _up(client, "pr-3", WEB, ttl=3600)
    second = _deadline(client, "pr-3")
    assert first is not None and second is not None and second - first > timedelta(minutes=50)


@pytest.mark.parametrize("ttl", [0, -5, 0.5, 10 ** 9])
def test_a_ttl_that_is_no_ttl_is_refused_before_anything_is_deployed(server: Server,
                                                                      ttl: float) -> None:
    client = server.client_of("alice")
    with pytest.raises(RequestInvalid, match="ttl"):
        client.deploy("pr-4", {"name": "pr-4", "services": WEB}, {}, ttl=ttl)
    assert client.deployments() == []
    assert server.containers("pr-4") == {}


def test_the_server_takes_an_expired_project_down_as_down_does(server: Server) -> None:
    client = server.client_of("alice")
    up = _up(client, "pr-5", TWO, ttl=60)
    _up(client, "keep", WEB)  # no deadline: never touched
    (volume,) = server.driver.volumes({"dockyard.project": "pr-5"})
    expirer = Expirer(server.control)
    deadline = _deadline(client, "pr-5")
    assert deadline is not None
    assert expirer.run_once(deadline - timedelta(seconds=1)) == deadline  # not yet
    assert set(server.containers("pr-5")) == {"web", "db"}

    down = _wait_down(server, client, expirer, deadline + timedelta(seconds=1))
    assert server.containers("pr-5") == {}
    assert server.driver.volumes({"dockyard.project": "pr-5"}) == [volume]  # down keeps it
    assert set(server.containers("keep")) == {"web"}
    notes = client.deployment(down).notes
    assert any(f"TTL set by deployment {up} expired" in n for n in notes), notes
    assert _deadline(client, "pr-5") is None
    assert client.services("pr-5") == []
    assert expirer.run_once(deadline + timedelta(hours=1)) is None  # nothing left to do


def test_ttl_volumes_removes_the_volumes_too(server: Server) -> None:
    client = server.client_of("alice")
    _up(client, "pr-6", TWO, ttl=60, ttl_volumes=True)
    assert server.driver.volumes({"dockyard.project": "pr-6"})
    deadline = _deadline(client, "pr-6")
    assert deadline is not None
    _wait_down(server, client, Expirer(server.control), deadline + timedelta(seconds=1))
    assert server.containers("pr-6") == {}
    assert server.driver.volumes({"dockyard.project": "pr-6"}) == []


def test_an_expiry_waits_for_a_running_deployment_and_a_moved_deadline_is_not_carried_out(
        server: Server) -> None:
    client = server.client_of("alice")
    alice = server.accounts["alice"]
    _up(client, "pr-7", WEB, ttl=60)
    deadline = _deadline(client, "pr-7")
    assert deadline is not None
    later = deadline + timedelta(seconds=1)
    expirer = Expirer(server.control)
    server.control.begin(alice, "pr-7", "xxxxxxxxxxxx")  # a deployment of it runs
    try:
        assert expirer.run_once(later) == later + timedelta(seconds=BUSY_RETRY_SECONDS)
        assert set(server.containers("pr-7")) == {"web"}
    finally:
        server.control.end(alice, "pr-7")
    # That deployment was an `up` with a new TTL: the old deadline is not carried out.
    _up(client, "pr-7", WEB, ttl=3600)
    moved = _deadline(client, "pr-7")
    assert moved is not None
    assert expirer.run_once(later + timedelta(seconds=BUSY_RETRY_SECONDS)) == moved
    assert set(server.containers("pr-7")) == {"web"}
    assert [d.action for d in client.deployments("pr-7")] == ["up", "up"]


def test_compose_ls_lists_the_accounts_projects_with_their_latest_deployment(
        server: Server) -> None:
    alice, bob = server.client_of("alice"), server.client_of("bob")
    first = _up(alice, "shop", TWO)
    _up(alice, "pr-8", WEB, ttl=600)
    down = alice.down("shop")
    follow(alice, down)
    _up(bob, "bobs", WEB)
    found = {p.name: p for p in alice.projects()}
    assert list(found) == ["pr-8", "shop"]  # by name; never bob's
    shop, preview = found["shop"], found["pr-8"]
    assert (shop.deployment, shop.action, shop.status, shop.services, shop.expires_at) == \
        (down, "down", "succeeded", {}, None)
    assert shop.deployment != first
    assert (preview.action, preview.status, preview.services) == \
        ("up", "succeeded", {"SERVICE_DEPLOYMENT_COMPLETED": 1})
    assert preview.created_at is not None and preview.expires_at is not None
    assert [p.name for p in bob.projects()] == ["bobs"]


def test_compose_ls_counts_services_by_state(server: Server) -> None:
    client = server.client_of("alice")
    _up(client, "mixed", {"web": {"image": IMAGE}, "other": {"image": IMAGE}})
    server.store.add_event(server.accounts["alice"], _failed_event(server, "mixed", "other"))
    (item,) = [p for p in client.projects() if p.name == "mixed"]
    assert item.services == {"SERVICE_DEPLOYMENT_COMPLETED": 1, "SERVICE_DEPLOYMENT_FAILED": 1}


def _failed_event(server: Server, project: str, service: str) -> Any:
    from dockyard.lifecycle import ServiceEvent, ServiceState

    (status,) = [s for s in server.store.statuses(server.accounts["alice"], project)
                 if s.service == service]
    return ServiceEvent(service=service, state=ServiceState.SERVICE_DEPLOYMENT_FAILED,
                        at=datetime.now(UTC), reason="crash loop",
                        deployment=status.deployment)


def test_compose_ls_is_one_query_however_many_projects(server: Server) -> None:
    client = server.client_of("alice")
    alice: Account = server.accounts["alice"]
    counted: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        counted.append(statement)

    for name in ("p1", "p2", "p3", "p4"):
        _up(client, name, TWO, ttl=600)
    sa.event.listen(server.store.engine, "before_cursor_execute", count)
    try:
        overviews = server.store.project_overviews(alice)
    finally:
        sa.event.remove(server.store.engine, "before_cursor_execute", count)
    assert [o.name for o in overviews] == ["p1", "p2", "p3", "p4"]
    assert all(sum(o.states.values()) == 2 and o.expiry for o in overviews)
    assert len([s for s in counted if s.lstrip().upper().startswith("SELECT")]) == 1


def test_the_running_expirer_is_woken_by_a_new_deadline_and_stops_cleanly(
        server: Server) -> None:
    client = server.client_of("alice")
    expirer = Expirer(server.control).start()  # no deadline yet: it sleeps (minutes)
    try:
        _up(client, "pr-9", WEB, ttl=1)  # sets one: the sleeping thread must look again
        give_up = time.monotonic() + 20
        while server.containers("pr-9") or _deadline(client, "pr-9") is not None:
            assert time.monotonic() < give_up, "the expirer did not take pr-9 down"
            time.sleep(0.05)
        assert [d.action for d in client.deployments("pr-9")] == ["down", "up"]
    finally:
        expirer.stop()
    assert expirer._thread is not None and not expirer._thread.is_alive()
