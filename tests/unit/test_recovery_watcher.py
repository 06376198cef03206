"""Server start-up recovery and the engine watcher, over a real SQLite store and a fake engine."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.fakes import FakeDriver

from dockyard.lifecycle import ServiceEvent, ServiceState
from dockyard.runtime.driver import ContainerSpec, EngineEvent
from dockyard.server.control import ControlPlane, DeploymentInProgress
from dockyard.server.recovery import recover
from dockyard.server.settings import ServerSettings
from dockyard.server.watcher import Watcher
from dockyard.store.store import Account, Store

S = ServiceState


@pytest.fixture
def control(tmp_path: Path) -> ControlPlane:
    settings = ServerSettings(data=tmp_path, stabilization_seconds=0.0)
    return ControlPlane(settings, Store.open(settings.database_url), FakeDriver())


def _container(control: ControlPlane, service: str, deployment: str, job: bool = False) -> str:
    labels = {"dockyard.managed": "true", "dockyard.server": control.server_id,
              "dockyard.account": "alice",
              "dockyard.project": "shop", "dockyard.service": service,
              "dockyard.deployment": deployment, "dockyard.config-hash": "h",
              "dockyard.job": "true" if job else "false"}
    return control.driver.run(ContainerSpec(name=f"{service}-{deployment}", image="i",
                                            labels=labels, environment={}, network="n",
                                            aliases=()))


def _state(control: ControlPlane, account: Account, service: str) -> ServiceState:
    return next(s.state for s in control.store.statuses(account, "shop") if s.service == service)


def _event(control: ControlPlane, account: Account, deployment: str, service: str,
           *states: ServiceState) -> None:
    for state in states:
        control.store.add_event(account, ServiceEvent(service, state, datetime.now(UTC),
                                                      "test", deployment))


def _completed(control: ControlPlane, service: str) -> tuple[Account, str, str, FakeDriver]:
    """A service COMPLETED by a finished deployment, with one container: (its account, the
    deployment, the container, the fake engine)."""
    alice = control.store.ensure_account("alice")
    deployment = control.store.create_deployment(alice, "shop", "up", {})
    _event(control, alice, deployment, service, S.UPDATE_QUEUED, S.SERVICE_DEPLOYMENT_PENDING,
           S.SERVICE_DEPLOYMENT_COMPLETED)
    control.store.finish_deployment(alice, deployment, "succeeded")
    container = _container(control, service, deployment)
    driver = control.driver
    assert isinstance(driver, FakeDriver)
    return alice, deployment, container, driver


def test_an_interrupted_deployment_is_failed_and_its_half_replacement_rolled_back(
        control: ControlPlane) -> None:
    store = control.store
    alice = store.ensure_account("alice")
    old = store.create_deployment(alice, "shop", "up", {})
    _event(control, alice, old, "web", S.UPDATE_QUEUED, S.SERVICE_DEPLOYMENT_PENDING,
           S.SERVICE_DEPLOYMENT_COMPLETED)
    store.finish_deployment(alice, old, "succeeded")
    old_web = _container(control, "web", old)
    new = store.create_deployment(alice, "shop", "up", {})
    _event(control, alice, new, "web", S.UPDATE_QUEUED, S.SERVICE_DEPLOYMENT_PENDING)
    new_web = _container(control, "web", new)
    orphan = _container(control, "ghost", "zzzzzzzzzzzz")
    stranger = _container(control, "ghost", "yyyyyyyyyyyy")
    driver = control.driver
    assert isinstance(driver, FakeDriver)
    driver.items[stranger] = replace(driver.items[stranger], labels={
        **driver.items[stranger].labels, "dockyard.server": "another"})

    assert recover(control) == [new]

    assert store.deployment(alice, new).status == "failed"  # type: ignore[union-attr]
    assert old_web in driver.items and new_web not in driver.items
    assert orphan not in driver.items
    assert stranger in driver.items, "another server's container was touched"
    # web was failed as interrupted, then found serving the old version: completed there
    assert store.events(alice, new)[-1].state is S.SERVICE_DEPLOYMENT_FAILED
    assert "interrupted" in store.events(alice, new)[-1].reason
    assert store.events(alice, old)[-1].state is S.SERVICE_DEPLOYMENT_COMPLETED
    status = next(s for s in store.statuses(alice, "shop") if s.service == "web")
    assert status.deployment == old and status.state is S.SERVICE_DEPLOYMENT_COMPLETED


def test_a_completed_service_with_nothing_running_is_failed_at_start(
        control: ControlPlane) -> None:
    alice = control.store.ensure_account("alice")
    deployment = control.store.create_deployment(alice, "shop", "up", {})
    _event(control, alice, deployment, "db", S.UPDATE_QUEUED, S.SERVICE_DEPLOYMENT_PENDING,
           S.SERVICE_DEPLOYMENT_COMPLETED)
    control.store.finish_deployment(alice, deployment, "succeeded")
    recover(control)
    assert _state(control, alice, "db") is S.SERVICE_DEPLOYMENT_FAILED


def test_the_watcher_follows_a_crash_and_ignores_planned_stops_and_jobs(
        control: ControlPlane) -> None:
    alice, deployment, web, driver = _completed(control, "web")
    labels = dict(driver.items[web].labels)
    watcher = Watcher(control)

    control.expect_stop(web)
    watcher.handle(EngineEvent("die", web, labels, 0))
    assert _state(control, alice, "web") is S.SERVICE_DEPLOYMENT_COMPLETED

    other = _container(control, "web", deployment)
    driver.items[other] = replace(driver.items[other], status="exited", exit_code=137)
    watcher.handle(EngineEvent("die", other, labels, 137))
    assert _state(control, alice, "web") is S.SERVICE_DEPLOYMENT_FAILED
    last = control.store.events(alice, deployment)[-1]
    assert "137" in last.reason

    watcher.handle(EngineEvent("health_status: healthy", other, labels))
    assert _state(control, alice, "web") is S.SERVICE_DEPLOYMENT_COMPLETED

    job_labels = {**labels, "dockyard.job": "true"}
    watcher.handle(EngineEvent("die", other, job_labels, 1))
    assert _state(control, alice, "web") is S.SERVICE_DEPLOYMENT_COMPLETED


def test_the_watcher_leaves_a_deploying_project_to_its_deployment(
        control: ControlPlane) -> None:
    alice = control.store.ensure_account("alice")
    deployment = control.store.create_deployment(alice, "shop", "up", {})
    _event(control, alice, deployment, "web", S.UPDATE_QUEUED, S.SERVICE_DEPLOYMENT_PENDING,
           S.SERVICE_DEPLOYMENT_COMPLETED)
    web = _container(control, "web", deployment)
    control.begin(alice, "shop", deployment)
    with pytest.raises(DeploymentInProgress):
        control.begin(alice, "shop", "other")
    driver = control.driver
    assert isinstance(driver, FakeDriver)
    Watcher(control).handle(EngineEvent("die", web, dict(driver.items[web].labels), 1))
    assert _state(control, alice, "web") is S.SERVICE_DEPLOYMENT_COMPLETED
    control.end(alice, "shop")
    control.begin(alice, "shop", "next")  # free again


def test_a_replica_lost_with_its_node_is_pending_with_the_node_and_not_a_crash_loop(
        control: ControlPlane) -> None:
    """A multi-node driver (Swarm) reports a replica whose node went down as `lost`."""
    alice, deployment, api, driver = _completed(control, "api")
    labels = {**driver.items[api].labels, "name": "api-1"}
    driver.items[api] = replace(driver.items[api], status="restarting",
                                lost="node n2 is down", node="n2")
    watcher = Watcher(control)

    watcher.handle(EngineEvent("die", api, labels, 0))
    assert _state(control, alice, "api") is S.SERVICE_DEPLOYMENT_PENDING
    last = control.store.events(alice, deployment)[-1]
    assert last.reason.startswith("node n2 is down; api-1 is rescheduled")

    watcher.handle(EngineEvent("die", api, labels, 0))  # still lost: not a crash loop
    assert _state(control, alice, "api") is S.SERVICE_DEPLOYMENT_PENDING

    driver.items[api] = replace(driver.items[api], status="running", lost="", node="n3")
    watcher.handle(EngineEvent("health_status: healthy", api, labels))
    assert _state(control, alice, "api") is S.SERVICE_DEPLOYMENT_COMPLETED
