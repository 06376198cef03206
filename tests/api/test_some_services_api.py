"""Acting on some services over the API (fake engine, the real Python client): `up SERVICE...`
deploys those and their dependencies and leaves the others' containers alone, `down
SERVICE...` removes only those (refused while a running service depends on one), and
`restart` goes replica by replica through the ingress rotation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.api_errors import DependentsRunning
from dockyard.errors import UsageError
from dockyard.naming import NamingMode
from dockyard.server.ingress import Ingress
from tests.fakes import FakeProxy
from tests.support.server import IMAGE, Server, follow, running_server

WEB_ROUTE = "alice/shop/web/8080"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path) as running:
        yield running


def shop(version: str = "v1", web_replicas: int = 2) -> dict[str, Any]:
    return {
        "db": {"image": IMAGE, "command": ["sleep", "1d"]},
        "api": {"image": IMAGE, "depends_on": ["db"], "environment": {"V": version}},
        "web": {"image": IMAGE, "depends_on": ["api"], "ports": [{"target": 8080}],
                "healthcheck": {"test": ["CMD", "true"]}, "environment": {"V": version},
                "deploy": {"replicas": web_replicas}},
        "cache": {"image": IMAGE, "environment": {"V": version}},
    }


def body(definitions: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {"project": {"name": "shop", "services": definitions}, **options}


def started(server: Server, path: str, json: dict[str, Any]) -> tuple[str, str]:
    response = server.call("POST", path, json=json)
    assert response.status_code == 202, response.text
    deployment = str(response.json()["deployment"])
    return deployment, server.events(deployment)[1]


def ps(server: Server) -> dict[str, dict[str, Any]]:
    return {row.service: row.to_json() for row in server.client_of().services("shop")}


def test_up_with_names_deploys_them_and_their_dependencies_only(server: Server) -> None:
    first, status = server.up("shop", shop("v1"))
    assert status == "succeeded"
    before = server.containers("shop")

    # Every service changed; only api (and db, which it depends on) are deployed.
    client = server.client_of()
    deployment = client.deploy("shop", {"name": "shop", "services": shop("v2")}, {},
                               services=["api"])
    events, end = follow(client, deployment)
    assert end["status"] == "succeeded"
    assert {e["service"] for e in events} == {"api", "db"}
    after = server.containers("shop")
    assert after["web"] == before["web"] and after["cache"] == before["cache"]
    assert after["db"] == before["db"]  # unchanged: kept, not restarted
    assert not after["api"] & before["api"]  # replaced: v2
    rows = ps(server)
    assert sorted(rows) == ["api", "cache", "db", "web"]  # ps still shows every service
    assert rows["web"]["deployment"] == first and rows["cache"]["deployment"] == first
    assert rows["api"]["deployment"] == deployment
    assert rows["db"]["deployment"] == deployment
    assert {r["state"] for r in rows.values()} == {"SERVICE_DEPLOYMENT_COMPLETED"}
    # The selection is what the deployment recorded of itself.
    assert client.deployment(deployment).record.options["services"] == ["api"]


def test_a_partial_up_removes_no_service_that_left_the_file(server: Server) -> None:
    server.up("shop", shop())
    before = server.containers("shop")
    fewer = {k: v for k, v in shop().items() if k != "cache"}
    deployment, status = started(server, "/v1/projects/shop/deployments",
                                 body(fewer, services=["db"]))
    assert status == "succeeded"
    assert server.containers("shop") == before  # cache still runs: nothing removed
    plan = server.call("POST", "/v1/projects/shop/plan", json=body(fewer, services=["web"]))
    assert plan.status_code == 200, plan.text
    assert [(s["service"], s["action"]) for s in plan.json()["services"]] == [
        ("db", "keep"), ("api", "keep"), ("web", "keep")]


def test_an_unknown_service_is_refused_before_anything_happens(server: Server) -> None:
    server.up("shop", shop())
    records = len(server.store.deployments(server.accounts["alice"], "shop"))
    client = server.client_of()
    for call in (lambda: client.deploy("shop", {"name": "shop", "services": shop("v2")}, {},
                                       services=["wbe"]),
                 lambda: client.plan("shop", {"name": "shop", "services": shop("v2")}, {},
                                     services=["wbe"]),
                 lambda: client.down("shop", services=["wbe"]),
                 lambda: client.restart("shop", ["wbe"])):
        with pytest.raises(UsageError) as refused:
            call()
        assert "no service 'wbe' in project 'shop'" in refused.value.message
        assert refused.value.hint == "its services: api, cache, db, web"
    assert len(server.store.deployments(server.accounts["alice"], "shop")) == records


def test_down_with_names_refuses_while_a_running_dependent_stays(server: Server) -> None:
    server.up("shop", shop())
    before = server.containers("shop")
    client = server.client_of()
    with pytest.raises(DependentsRunning) as refused:
        client.down("shop", services=["db"])
    assert refused.value.message == ("cannot take down db of project 'shop': api depends on "
                                     "db, and it keeps running")
    assert "`dockyard compose down api db`" in (refused.value.hint or "")
    assert "--force" in (refused.value.hint or "")
    with pytest.raises(UsageError, match="--volumes"):
        client.down("shop", services=["web"], volumes=True)
    assert server.containers("shop") == before

    deployment = client.down("shop", services=["web"])
    assert follow(client, deployment)[1]["status"] == "succeeded"
    after = server.containers("shop")
    assert "web" not in after
    assert {k: v for k, v in before.items() if k != "web"} == after
    assert sorted(ps(server)) == ["api", "cache", "db"]
    assert server.driver.networks  # the project's network stays

    forced = client.down("shop", services=["db"], force=True)
    assert follow(client, forced)[1]["status"] == "succeeded"
    assert sorted(server.containers("shop")) == ["api", "cache"]


def test_down_naming_every_service_is_a_whole_down(server: Server) -> None:
    server.up("shop", shop())
    status = started(server, "/v1/projects/shop/down",
                     {"services": ["web", "api", "db", "cache"]})[1]
    assert status == "succeeded"
    assert server.containers("shop") == {}
    assert ps(server) == {}


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[Server, FakeProxy]]:
    with running_server(tmp_path) as running:
        running.driver.addresses = True
        proxy = FakeProxy()
        running.control.ingress = Ingress(NamingMode.BYOC, "localhost", proxy)
        running.control.ingress.start()
        try:
            yield running, proxy
        finally:
            running.control.ingress.stop()


def _served(proxy: FakeProxy, since: int) -> list[set[str]]:
    """The replicas in rotation for web's route in each table the proxy got since `since`."""
    return [{u.container for u in table[WEB_ROUTE].upstreams}
            for table in proxy.tables[since:] if WEB_ROUTE in table]


def test_restart_goes_replica_by_replica_through_the_rotation(
        proxied: tuple[Server, FakeProxy]) -> None:
    server, proxy = proxied
    first, _ = server.up("shop", shop())
    before = server.containers("shop")
    mark = len(proxy.tables)
    client = server.client_of()
    deployment = client.restart("shop", ["web", "db"])
    events, end = follow(client, deployment)
    assert end["status"] == "succeeded"

    web = sorted(before["web"])
    assert server.driver.restarts == [*before["db"], *web]  # db first: web depends on it
    assert server.containers("shop") == before  # the same containers, restarted in place
    served = _served(proxy, mark)
    assert served and all(served), served  # never an empty rotation
    assert set(web) - {web[0]} in served and set(web) - {web[1]} in served  # one out at once
    assert served[-1] == set(web)
    states = [(e["service"], e["state"]) for e in events if e["service"] == "web"]
    assert states == [("web", "UPDATE_QUEUED"), ("web", "SERVICE_DEPLOYMENT_PENDING"),
                      ("web", "SERVICE_DEPLOYMENT_PENDING"),
                      ("web", "SERVICE_DEPLOYMENT_COMPLETED")]
    rows = ps(server)
    assert rows["web"]["deployment"] == deployment and rows["db"]["deployment"] == deployment
    assert rows["api"]["deployment"] == first  # not named: not restarted
    assert rows["web"]["fqdn"] and rows["web"]["image"]  # the restart knows what runs
    assert {r["state"] for r in rows.values()} == {"SERVICE_DEPLOYMENT_COMPLETED"}
    plan = client.deployment(deployment).plan or []
    assert [(p.service, p.action, p.replicas, p.reasons) for p in plan] == [
        ("db", "restart", 1, ["1 replica, one at a time"]),
        ("web", "restart", 2, ["2 replicas, one at a time"])]


def test_a_single_public_replica_is_replaced_start_first(
        proxied: tuple[Server, FakeProxy]) -> None:
    server, proxy = proxied
    server.up("shop", shop(web_replicas=1))
    (old,) = server.containers("shop")["web"]
    mark = len(proxy.tables)
    client = server.client_of()
    deployment = client.restart("shop", ["web"])
    assert follow(client, deployment)[1]["status"] == "succeeded"
    (new,) = server.containers("shop")["web"]
    assert new != old and server.driver.restarts == []
    served = _served(proxy, mark)
    assert all(served), served  # the old one served until the new one did
    assert {old, new} in served and served[-1] == {new}
    # Same definition and image: the next `up` of the same project keeps it.
    again, status = server.up("shop", shop(web_replicas=1))
    assert status == "succeeded"
    assert server.containers("shop")["web"] == {new}


def test_restart_with_no_names_restarts_every_running_service_but_jobs(
        server: Server) -> None:
    services = {**shop(), "migrate": {"image": IMAGE, "restart": "no"}}
    server.up("shop", services)
    deployment, status = started(server, "/v1/projects/shop/restart", {})
    assert status == "succeeded"
    restarted = set(server.driver.restarts)
    containers = server.containers("shop")
    assert restarted == set().union(*(containers[s] for s in ("db", "api", "web", "cache")))
    with pytest.raises(UsageError, match="it is a job"):
        server.client_of().restart("shop", ["migrate"])
