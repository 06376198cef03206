"""Start-up recovery of replacements cut short (`recovery._half_done`), over a real SQLite store
and a fake engine: what stays of each service, and the state it is left in."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import FakeDriver

from dockyard.lifecycle import ServiceEvent, ServiceState
from dockyard.runtime.driver import ContainerSpec
from dockyard.server.control import ControlPlane
from dockyard.server.recovery import recover
from dockyard.server.settings import ServerSettings
from dockyard.store.store import Account, Store

S = ServiceState


@pytest.fixture
def control(tmp_path: Path) -> ControlPlane:
    settings = ServerSettings(data=tmp_path, stabilization_seconds=0.0)
    return ControlPlane(settings, Store.open(settings.database_url), FakeDriver())


def _project(**services: dict[str, Any]) -> dict[str, Any]:
    return {"name": "shop", "services": {name: {"image": "dockyard/busybox:1", **service}
                                         for name, service in services.items()}}


def _deployment(control: ControlPlane, alice: Account, project: dict[str, Any],
                **states: tuple[ServiceState, str]) -> str:
    """A deployment of `project` in which each service went through to its state (reason)."""
    deployment = control.store.create_deployment(alice, "shop", "up", project)
    for service, (state, reason) in states.items():
        path = [S.UPDATE_QUEUED, S.SERVICE_DEPLOYMENT_PENDING]
        path += [state] if state not in path else []
        for step in path:
            control.store.add_event(alice, ServiceEvent(service, step, datetime.now(UTC),
                                                        reason, deployment))
    return deployment


def _replica(control: ControlPlane, service: str, deployment: str, number: int,
             **state: Any) -> str:
    labels = {"dockyard.managed": "true", "dockyard.server": control.server_id,
              "dockyard.account": "alice", "dockyard.project": "shop",
              "dockyard.service": service, "dockyard.deployment": deployment,
              "dockyard.config-hash": deployment, "dockyard.replica": str(number),
              "dockyard.job": "false"}
    driver = control.driver
    assert isinstance(driver, FakeDriver)
    cid = driver.run(ContainerSpec(name=f"{service}-{deployment}-{number}", image="i",
                                   labels=labels, environment={}, network="n", aliases=()))
    driver.items[cid] = replace(driver.items[cid], **state)
    return cid


def _status(control: ControlPlane, alice: Account, service: str) -> tuple[str, S, str]:
    found = next(s for s in control.store.statuses(alice, "shop") if s.service == service)
    return found.deployment, found.state, found.reason


def test_a_global_service_cut_short_stop_first_keeps_its_finished_nodes(
        control: ControlPlane) -> None:
    """A Swarm (three nodes) replacing a global service node by node, stop-first: the server
    died after node 2's old replica stopped (not yet removed) and before its new one was
    healthy. Nodes 1 and 2 keep the new version, node 3 the previous one; the stopped old
    replica goes."""
    driver = control.driver
    assert isinstance(driver, FakeDriver)
    driver.nodes = 3
    alice = control.store.ensure_account("alice")
    web = {"deploy": {"mode": "global", "update_config": {"order": "stop-first"}}}
    old = _deployment(control, alice, _project(web=web),
                      web=(S.SERVICE_DEPLOYMENT_COMPLETED, "healthy"))
    control.store.finish_deployment(alice, old, "succeeded")
    retired = _replica(control, "web", old, 2, status="exited")
    serving = _replica(control, "web", old, 3)
    new = _deployment(control, alice, _project(web={**web, "environment": {"V": "2"}}),
                      web=(S.SERVICE_DEPLOYMENT_PENDING, "replacing: 1 of 3 replicas updated"))
    first = _replica(control, "web", new, 1, health="healthy")
    second = _replica(control, "web", new, 2, health="starting")

    assert recover(control) == [new]

    assert set(driver.items) == {serving, first, second}, f"{retired} should have gone"
    assert _status(control, alice, "web") == (
        new, S.SERVICE_DEPLOYMENT_FAILED,
        "the server stopped during the update: 2 of 3 replicas run the new version, 1 the "
        "previous one (1 not healthy yet); `dockyard compose up` finishes it, `dockyard "
        "rollback` goes back to the previous deployment")


def test_an_update_that_had_finished_is_completed_and_an_unhealthy_new_replica_goes(
        control: ControlPlane) -> None:
    """Every batch was done (the old replicas gone) but the last state was not recorded:
    COMPLETED in the new deployment. A new replica reported unhealthy never stays."""
    alice = control.store.ensure_account("alice")
    web = {"deploy": {"replicas": 2}}
    old = _deployment(control, alice, _project(web=web),
                      web=(S.SERVICE_DEPLOYMENT_COMPLETED, "healthy"))
    control.store.finish_deployment(alice, old, "succeeded")
    new = _deployment(control, alice, _project(web={**web, "environment": {"V": "2"}}),
                      web=(S.SERVICE_DEPLOYMENT_PENDING, "replacing"))
    kept = {_replica(control, "web", new, n, health="healthy") for n in (1, 2)}
    sick = _replica(control, "web", new, 3, health="unhealthy")

    recover(control)

    driver = control.driver
    assert isinstance(driver, FakeDriver)
    assert set(driver.items) == kept, f"{sick} should have gone"
    deployment, state, reason = _status(control, alice, "web")
    assert (deployment, state) == (new, S.SERVICE_DEPLOYMENT_COMPLETED), reason


def test_a_service_the_deployment_had_settled_is_left_as_it_was(control: ControlPlane) -> None:
    """web's update paused (FAILED, two versions running) while api was still deploying when
    the server died: web keeps both versions and its reason, and is not COMPLETED."""
    alice = control.store.ensure_account("alice")
    old = _deployment(control, alice, _project(web={"deploy": {"replicas": 2}}, api={}),
                      web=(S.SERVICE_DEPLOYMENT_COMPLETED, "healthy"),
                      api=(S.SERVICE_DEPLOYMENT_COMPLETED, "healthy"))
    control.store.finish_deployment(alice, old, "succeeded")
    before = {_replica(control, "web", old, 2), _replica(control, "api", old, 1)}
    paused = "1 of 2 replicas run the new version, the others the previous one; paused"
    new = _deployment(control, alice, _project(web={"deploy": {"replicas": 2},
                                                    "environment": {"V": "2"}}, api={}),
                      web=(S.SERVICE_DEPLOYMENT_FAILED, paused),
                      api=(S.SERVICE_DEPLOYMENT_PENDING, "starting"))
    after = _replica(control, "web", new, 1)

    recover(control)

    driver = control.driver
    assert isinstance(driver, FakeDriver)
    assert set(driver.items) == before | {after}
    assert _status(control, alice, "web") == (new, S.SERVICE_DEPLOYMENT_FAILED, paused)
