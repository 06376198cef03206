"""A server killed during a batched rolling update, over the API (fake engine, fake proxy): the
next server over the same store and engine keeps the batches that finished, drops the one in
flight (start-first: its old replica still serves), keeps a stop-first batch's new replica
(its old one is gone), says what runs in the service's state, routes exactly what it kept, and
the next `up` finishes the update.

The first server is "killed" by freezing its deployment inside the engine call that starts the
last batch's replica (a process killed there does nothing more); the second one is made over
the same data directory and engine, as the next start is, and runs `recover`. The frozen
deployment is let go (and fails) only once the test is done."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dockyard.naming import NamingMode
from dockyard.runtime.driver import ContainerSpec
from dockyard.server.app import create_app
from dockyard.server.control import ControlPlane
from dockyard.server.ingress import Ingress
from dockyard.server.recovery import recover, restore_ingress
from dockyard.server.settings import ServerSettings
from dockyard.store.store import Store
from tests.fakes import FakeDriver, FakeProxy
from tests.support.server import client_over, follow

WEB = "alice/shop/web/8080"


@dataclass
class Side:
    """One server process: its control plane over the shared data directory and engine."""

    control: ControlPlane
    proxy: FakeProxy
    client: TestClient
    headers: dict[str, str]

    def up(self, version: str, order: str) -> tuple[str, str]:
        """Deploy web at `version` and wait: (deployment, final status)."""
        deployment = self.start(version, order)
        return deployment, str(follow(client_over(self.client.app, self.headers),
                                      deployment)[1]["status"])

    def start(self, version: str, order: str) -> str:
        web: dict[str, Any] = {
            "image": "dockyard/busybox:1", "ports": [{"target": 8080}],
            "environment": {"VERSION": version}, "healthcheck": {"test": ["CMD", "true"]},
            "deploy": {"replicas": 3, "update_config": {"parallelism": 1, "order": order}}}
        response = self.client.post("/v1/projects/shop/deployments", headers=self.headers,
                                    json={"project": {"name": "shop", "services": {"web": web}},
                                          "builds": {}})
        assert response.status_code == 202, response.text
        return str(response.json()["deployment"])

    def web(self) -> dict[str, Any]:
        rows = self.client.get("/v1/projects/shop/services", headers=self.headers).json()
        return dict(next(r for r in rows if r["service"] == "web"))


@contextmanager
def side(settings: ServerSettings, driver: FakeDriver) -> Iterator[Side]:
    store = Store.open(settings.database_url)
    control = ControlPlane(settings, store, driver)
    proxy = FakeProxy()
    control.ingress = Ingress(NamingMode.BYOC, "localhost", proxy)
    control.ingress.start()
    token = store.create_token(store.ensure_account("alice"))
    try:
        with TestClient(create_app(control)) as client:
            yield Side(control, proxy, client, {"Authorization": f"Bearer {token}"})
    finally:
        control.ingress.stop()
        store.close()


def versions(driver: FakeDriver) -> Counter[str]:
    return Counter(driver.specs[c].environment["VERSION"] for c in driver.items)


@pytest.mark.parametrize(("order", "kept", "says"), [
    ("start-first", {"v1": 1, "v2": 2},
     "2 of 3 replicas run the new version, 1 the previous one; "),
    ("stop-first", {"v2": 3}, "3 of 3 replicas run the new version (1 not healthy yet); "),
])
def test_a_server_killed_in_the_last_batch_keeps_what_serves_and_up_finishes_it(
        tmp_path: Path, order: str, kept: dict[str, int], says: str) -> None:
    settings = ServerSettings(data=tmp_path / "server", stabilization_seconds=0.0,
                              deploy_timeout_seconds=5.0, https_port=8443)
    settings.data.mkdir()
    driver = FakeDriver()
    driver.addresses = True
    run, started = driver.run, []
    frozen, release = threading.Event(), threading.Event()

    def freezing(spec: ContainerSpec) -> str:
        """v2's third replica starts (not healthy yet), then its server is killed."""
        cid = run(spec)
        if spec.environment.get("VERSION") == "v2":
            started.append(cid)
            if len(started) == 3:
                driver.items[cid] = replace(driver.items[cid], health="starting")
                frozen.set()
                release.wait(30)
                raise RuntimeError("the server was killed")
        return cid

    with side(settings, driver) as first:
        assert first.up("v1", order)[1] == "succeeded"
        driver.run = freezing  # type: ignore[method-assign]
        second = first.start("v2", order)
        try:
            assert frozen.wait(10), "the third batch never started"
            last = started[-1]
            with side(settings, driver) as after:
                assert recover(after.control) == [second]
                restore_ingress(after.control)

                assert versions(driver) == kept
                assert (last in driver.items) == (order == "stop-first")
                row = after.web()
                assert row["deployment"] == second
                assert row["state"] == "SERVICE_DEPLOYMENT_FAILED"
                assert row["reason"] == (
                    f"the server stopped during the update: {says}`dockyard compose up` "
                    "finishes it, `dockyard rollback` goes back to the previous deployment")
                # The proxy routes exactly what runs; a replica not healthy yet rests.
                route = after.proxy.table[WEB]
                assert {u.container for u in route.upstreams + route.resting} == \
                    set(driver.items)
                assert {u.container for u in route.resting} == \
                    ({last} if order == "stop-first" else set())

                driver.run = run  # type: ignore[method-assign]
                third, status = after.up("v2", order)  # mixed versions: replaced
                assert status == "succeeded"
                assert versions(driver) == {"v2": 3}
                assert {i.deployment for i in driver.items.values()} == {third}
                assert after.web()["state"] == "SERVICE_DEPLOYMENT_COMPLETED"
        finally:
            release.set()
            for thread in threading.enumerate():
                if thread.name == f"deployment-{second}":
                    thread.join(10)
