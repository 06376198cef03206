"""Custom domains on a playground server, over the API: served only once proven.

In-process: a real store, the fake engine and a fake proxy that records every routing table
(tests/fakes.py), and `DomainProofs` with fake checks (a dict of answers), so what is tested is
the flow: the deployment goes on while the proof runs, the route gets the name only once it is
proven, the service's reason says why a name is not served, and a served name is another
tenant's to take no more. The real check and the real proxy are in
tests/engine/test_custom_domains.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient

from dockyard.naming import NamingMode, public_domain, service_fqdn
from dockyard.server.app import create_app
from dockyard.server.control import ControlPlane
from dockyard.server.domains import DomainProofs
from dockyard.server.ingress import Ingress
from dockyard.server.settings import Limits, ServerSettings
from dockyard.store.store import Store
from tests.fakes import FakeDriver, FakeProxy

ZONE = "prod1a.localhost"
WEB = "alice/shop/web/8080"
GENERATED = public_domain(NamingMode.PLAYGROUND, username="alice", project="shop",
                          service="web", port=8080, zone=ZONE)
FQDN = service_fqdn(NamingMode.PLAYGROUND, username="alice", project="shop", service="web",
                    zone=ZONE)  # generated too: served at once, as the first port
ANSWERS: dict[str, str | None] = {  # what the fake check finds for each name
    "shop.example.net": None,
    "login.examplebank.test": "it does not resolve: Name or service not known",
}
T = TypeVar("T")


@dataclass
class Api:
    client: TestClient
    control: ControlPlane
    proxy: FakeProxy
    tokens: dict[str, str]
    asked: list[str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = ServerSettings(data=tmp_path / "server", mode=NamingMode.PLAYGROUND, zone=ZONE,
                              stabilization_seconds=0.0, deploy_timeout_seconds=5.0,
                              limits=Limits(), allow_images=("dockyard/busybox:*",))
    settings.data.mkdir()
    store = Store.open(settings.database_url)
    driver = FakeDriver()
    driver.addresses = True
    control = ControlPlane(settings, store, driver)
    proxy = FakeProxy()
    asked: list[str] = []

    def check(host: str) -> str | None:
        asked.append(host)
        time.sleep(0.2)  # a proof takes a moment: the deployment does not wait for it
        return ANSWERS.get(host, "unknown")

    domains = DomainProofs(NamingMode.PLAYGROUND, ZONE, settings.data / "domains.json",
                           token_check=check)
    control.ingress = Ingress(NamingMode.PLAYGROUND, ZONE, proxy, domains=domains)
    control.ingress.start()
    tokens = {name: store.create_token(store.ensure_account(name)) for name in ("alice", "bob")}
    with TestClient(create_app(control)) as client:
        yield Api(client, control, proxy, tokens, asked)
    control.ingress.stop()
    store.close()


def web(**extra: Any) -> dict[str, Any]:
    return {"image": "dockyard/busybox:1", "ports": [{"target": 8080}],
            "healthcheck": {"test": ["CMD", "true"]}, **extra}


def deploy(api: Api, services: dict[str, Any], who: str = "alice",
           name: str = "shop") -> tuple[int, Any]:
    response = api.client.post(f"/v1/projects/{name}/deployments", headers=api.auth(who),
                               json={"project": {"name": name, "services": services}})
    if response.status_code != 202:
        return response.status_code, response.json()
    deployment = response.json()["deployment"]
    with api.client.stream("GET", f"/v1/deployments/{deployment}/events",
                           headers=api.auth(who)) as stream:
        kind = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "end":
                return 202, json.loads(line[6:])["status"]
    raise AssertionError("no end event")


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 10) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.05)


def ps_row(api: Api, service: str = "web", who: str = "alice",
           project: str = "shop") -> dict[str, Any]:
    response = api.client.get(f"/v1/projects/{project}/services", headers=api.auth(who))
    assert response.status_code == 200, response.text
    body = response.json()
    rows = body if isinstance(body, list) else body.get("services", [])
    (row,) = [r for r in rows if r["service"] == service]
    return dict(row)


def row_saying(api: Api, text: str, who: str = "alice") -> dict[str, Any]:
    """The `web` row of `ps`, once its reason says `text`."""
    def probe() -> dict[str, Any] | None:
        row = ps_row(api, who=who)
        return row if text in row["reason"] else None
    return eventually(probe, f"the reason says {text!r}")


def test_an_unproven_custom_domain_is_not_served_and_ps_says_why(api: Api) -> None:
    assert deploy(api, {"web": web(domainname="login.examplebank.test")}) == (202, "succeeded")
    # The service deployed and its generated domain serves; the custom one does not.
    assert api.proxy.table[WEB].hosts == (GENERATED, FQDN)
    row = row_saying(api, "not verified")
    assert row["state"] == "SERVICE_DEPLOYMENT_COMPLETED", row
    assert "custom domain login.examplebank.test is not served: not verified (it does not " \
           "resolve" in row["reason"], row
    assert not any("login.examplebank.test" in e for e in row["endpoints"]), row
    assert any(GENERATED in e for e in row["endpoints"]), row
    assert all("login.examplebank.test" not in r.hosts for t in api.proxy.tables
               for r in t.values()), "the unproven name was served at some point"
    assert api.asked == ["login.examplebank.test"]


def test_a_proven_custom_domain_is_added_to_the_route_once_proven(api: Api) -> None:
    assert deploy(api, {"web": web(domainname="shop.example.net")}) == (202, "succeeded")
    eventually(lambda: True if api.proxy.table[WEB].hosts == (GENERATED, FQDN, "shop.example.net")
               else None, "the proven name joins the route")
    row = row_saying(api, "verified and served")
    assert "HTTP only, no certificate" in row["reason"], row
    assert any("shop.example.net" in e for e in row["endpoints"]), row
    # A second deployment does not prove it again: it is remembered for alice.
    assert deploy(api, {"web": web(domainname="shop.example.net")}) == (202, "succeeded")
    assert api.proxy.table[WEB].hosts == (GENERATED, FQDN, "shop.example.net")
    assert api.asked == ["shop.example.net"]


def test_a_served_domain_is_taken_but_an_unproven_claim_blocks_nobody(api: Api) -> None:
    assert deploy(api, {"web": web(domainname="shop.example.net"),
                        "api": web(domainname="login.examplebank.test")}) == (202, "succeeded")
    eventually(lambda: True if "shop.example.net" in api.proxy.table[WEB].hosts else None,
               "alice's proven name is served")
    status, body = deploy(api, {"web": web(domainname="shop.example.net")}, who="bob")
    assert status == 422 and body["diagnostics"][0]["code"] == "domain-taken", body
    # alice named login.examplebank.test without proving it: bob is not refused for it, and
    # it is his only once *he* proves it (here he cannot either).
    assert deploy(api, {"web": web(domainname="login.examplebank.test")}, who="bob") == \
        (202, "succeeded")
    row_saying(api, "not verified", who="bob")
    assert all("login.examplebank.test" not in r.hosts for r in api.proxy.table.values())
