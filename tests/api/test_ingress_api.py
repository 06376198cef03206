"""The ingress as the deployer drives it, over the API: a fake engine and a fake proxy that
records every routing table it is given (the real HAProxy is in tests/engine)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dockyard.naming import NamingMode
from dockyard.runtime.driver import EngineEvent
from dockyard.server.app import create_app
from dockyard.server.control import ControlPlane
from dockyard.server.ingress import Ingress
from dockyard.server.settings import ServerSettings
from dockyard.store.store import Store
from tests.fakes import FakeDriver, FakeProxy

WEB = "alice/shop/web/8080"
DOMAIN = "web--8080.shop.alice.localhost"
FQDN = "web.shop.alice.localhost"  # what ps shows: it answers as the first port


@dataclass
class Api:
    client: TestClient
    control: ControlPlane
    driver: FakeDriver
    proxy: FakeProxy
    alice: dict[str, str]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = ServerSettings(data=tmp_path / "server", stabilization_seconds=0.0,
                              deploy_timeout_seconds=5.0, https_port=8443)
    settings.data.mkdir()
    store = Store.open(settings.database_url)
    driver = FakeDriver()
    driver.addresses = True
    control = ControlPlane(settings, store, driver)
    proxy = FakeProxy()
    control.ingress = Ingress(NamingMode.BYOC, "localhost", proxy)
    control.ingress.start()
    token = store.create_token(store.ensure_account("alice"))
    with TestClient(create_app(control)) as client:
        yield Api(client, control, driver, proxy, {"Authorization": f"Bearer {token}"})
    control.ingress.stop()
    store.close()


def web(**extra: Any) -> dict[str, Any]:
    return {"image": "dockyard/busybox:1", "ports": [{"target": 8080}],
            "healthcheck": {"test": ["CMD", "true"]}, "deploy": {"replicas": 2}, **extra}


def deploy(api: Api, services: dict[str, Any], name: str = "shop") -> tuple[int, Any]:
    response = api.client.post(f"/v1/projects/{name}/deployments", headers=api.alice,
                               json={"project": {"name": name, "services": services}})
    if response.status_code != 202:
        return response.status_code, response.json()
    deployment = response.json()["deployment"]
    with api.client.stream("GET", f"/v1/deployments/{deployment}/events",
                           headers=api.alice) as stream:
        kind = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "end":
                return 202, json.loads(line[6:])["status"]
    raise AssertionError("no end event")


def serving(table: dict[str, Any], key: str = WEB) -> set[str]:
    route = table.get(key)
    return {u.container for u in route.upstreams} if route else set()


def test_a_public_service_is_routed_to_its_replicas_and_a_private_one_is_not(api: Api) -> None:
    assert deploy(api, {"web": web(), "db": {"image": "dockyard/busybox:1"}}) == (202,
                                                                                 "succeeded")
    table = api.proxy.table
    assert list(table) == [WEB]
    assert table[WEB].hosts == (DOMAIN, FQDN)
    assert len(table[WEB].upstreams) == 2 and not table[WEB].resting
    assert {u.port for u in table[WEB].upstreams} == {8080}
    rows = api.client.get("/v1/projects/shop/services", headers=api.alice).json()
    endpoint = {r["service"]: r["endpoint"] for r in rows}
    assert endpoint == {"web": f"https://{DOMAIN}:8443", "db": ""}


def test_a_replacement_adds_the_new_replicas_before_the_old_ones_leave(api: Api) -> None:
    deploy(api, {"web": web(environment={"VERSION": "1"})})
    old = serving(api.proxy.table)
    start = len(api.proxy.tables)
    assert deploy(api, {"web": web(environment={"VERSION": "2"})}) == (202, "succeeded")
    history = [serving(t) for t in api.proxy.tables[start:]]
    new = history[-1]
    assert new and not new & old
    # never a table without a replica in rotation, and old + new together before old leaves
    assert all(history)
    both = next(i for i, h in enumerate(history) if h == old | new)
    drained = next(i for i, t in enumerate(api.proxy.tables[start:])
                   if {u.container for u in t[WEB].resting} == old)
    assert both < drained
    assert serving(api.proxy.tables[start + drained]) == new


def test_a_failed_new_version_never_enters_the_rotation(api: Api) -> None:
    deploy(api, {"web": web()})
    old = serving(api.proxy.table)
    start = len(api.proxy.tables)
    assert deploy(api, {"web": web(command=["crash"])}) == (202, "failed")
    assert all(serving(t) == old for t in api.proxy.tables[start:])
    assert serving(api.proxy.table) == old


def test_down_and_a_removed_service_remove_their_routes(api: Api) -> None:
    deploy(api, {"web": web(), "api": web(ports=[{"target": 8000}])})
    assert set(api.proxy.table) == {WEB, "alice/shop/api/8000"}
    deploy(api, {"web": web()})
    assert set(api.proxy.table) == {WEB}
    assert api.client.post("/v1/projects/shop/down", headers=api.alice,
                           json={}).status_code == 202
    deadline = time.monotonic() + 5
    while api.proxy.table and time.monotonic() < deadline:
        time.sleep(0.02)
    assert api.proxy.table == {}


def test_custom_domains_are_served_and_checked_before_anything_starts(api: Api) -> None:
    deploy(api, {"web": web(domainname="shop.example.com")})
    assert api.proxy.table[WEB].hosts == (DOMAIN, FQDN, "shop.example.com")
    status, body = deploy(api, {"web": web(domainname="shop.example.com")}, name="other")
    assert status == 422
    assert [(d["code"], d["path"]) for d in body["diagnostics"]] == [
        ("domain-taken", "services.web.domainname")]
    status, body = deploy(api, {"web": web(domainname="x.shop.alice.localhost")},
                          name="third")
    assert status == 422 and body["diagnostics"][0]["code"] == "domain-invalid"
    assert not api.control.store.deployments(api.control.store.ensure_account("alice"),
                                             "other")


def test_an_unhealthy_or_dead_replica_leaves_the_rotation_and_comes_back(api: Api) -> None:
    deploy(api, {"web": web()})
    first = sorted(serving(api.proxy.table))[0]
    ingress = api.control.ingress
    ingress.container_event(EngineEvent("health_status: unhealthy", first, {}))
    assert first not in serving(api.proxy.table)
    assert first in {u.container for u in api.proxy.table[WEB].resting}
    ingress.container_event(EngineEvent("health_status: healthy", first, {}))
    assert first in serving(api.proxy.table)
    ingress.container_event(EngineEvent("die", first, {}))
    assert first not in serving(api.proxy.table)


def test_the_ingress_endpoint_needs_a_token_and_says_what_runs(api: Api) -> None:
    assert api.client.get("/v1/ingress").status_code == 401
    info = api.client.get("/v1/ingress", headers=api.alice).json()
    assert info["enabled"] is True and info["https_port"] == 8443
    assert info["ca_certificate"] is None  # this fake ingress has no certificates


def test_a_replica_published_on_a_node_port_is_reached_there_and_followed_when_it_moves(
        api: Api) -> None:
    # A Swarm publishes an ingress port on the replica's node at a port the engine picks
    # (ContainerInfo.published); the proxy must connect there, and follow a move.
    deploy(api, {"web": web()})
    first = sorted(serving(api.proxy.table))[0]
    info = api.driver.items[first]
    moved = dataclasses.replace(info, ip_address="10.250.0.12", published={8080: 32771})
    api.driver.items[first] = moved
    ingress = api.control.ingress
    ingress.container_event(EngineEvent("die", first, {}))
    ingress.container_event(EngineEvent("start", first, {}), moved)
    ingress.container_event(EngineEvent("health_status: healthy", first, {}))
    [upstream] = [u for u in api.proxy.table[WEB].upstreams if u.container == first]
    assert upstream.endpoint == "10.250.0.12:32771"
    others = [u.endpoint for u in api.proxy.table[WEB].upstreams if u.container != first]
    assert others and all(e.endswith(":8080") for e in others)  # one engine: the target
