"""Rolling replacement over the API (fake engine): `deploy.update_config.parallelism` replaces
a changed service's replicas in batches, each healthy and in place before the next old ones
go; a failed batch pauses the rollout (the default) or not (`continue`); a rollback reads
`rollback_config`; the Swarm driver's default is one replica at a time; bad values are refused
before anything changes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.runtime.driver import LABEL_DEPLOYMENT, ContainerSpec
from tests.support.server import IMAGE, Server, running_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path) as running:
        yield running


@pytest.fixture
def steps(server: Server, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """What the engine was asked, in order: ("run", deployment) and ("remove", deployment)
    of each container."""
    driver, seen = server.driver, []
    run, remove = driver.run, driver.remove

    def recorded_run(spec: ContainerSpec) -> str:
        seen.append(("run", spec.labels[LABEL_DEPLOYMENT]))
        return run(spec)

    def recorded_remove(container_id: str) -> None:
        info = driver.items.get(container_id)
        if info is not None:
            seen.append(("remove", info.deployment))
        remove(container_id)

    monkeypatch.setattr(driver, "run", recorded_run)
    monkeypatch.setattr(driver, "remove", recorded_remove)
    return seen


def crash_after(server: Server, monkeypatch: pytest.MonkeyPatch, healthy: int) -> None:
    """From now on, every container after the first `healthy` ones crashes."""
    run, started = server.driver.run, [0]

    def crashing(spec: ContainerSpec) -> str:
        started[0] += 1
        if started[0] > healthy:
            spec = dataclasses.replace(spec, command=("sh", "-c", "crash"))
        return run(spec)

    monkeypatch.setattr(server.driver, "run", crashing)


def web(version: str, **update: Any) -> dict[str, Any]:
    deploy: dict[str, Any] = {"replicas": 3}
    if update:
        deploy["update_config"] = update
    return {"web": {"image": IMAGE, "command": ["sleep", version], "deploy": deploy}}


def up(server: Server, services: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
    response = server.deploy("shop", services)
    assert response.status_code == 202, response.text
    deployment = str(response.json()["deployment"])
    events, status = server.events(deployment)
    return deployment, status, [e for e in events if e.get("service") == "web"]


def versions(server: Server) -> list[str]:
    """The deployment of each container of web, sorted."""
    return sorted(server.driver.items[c].deployment for c in server.containers("shop")["web"])


def test_parallelism_one_replaces_one_replica_at_a_time(server: Server,
                                                        steps: list[tuple[str, str]]) -> None:
    first, status, _ = up(server, web("1", parallelism=1, delay="10ms"))
    assert status == "succeeded"
    steps.clear()
    second, status, events = up(server, web("2", parallelism=1, delay="10ms"))
    assert status == "succeeded"
    assert steps == [("run", second), ("remove", first)] * 3
    assert versions(server) == [second] * 3
    reasons = [e["reason"] for e in events]
    assert any(r.endswith(": 1 of 3 replicas updated") for r in reasons), reasons
    assert any(r.endswith(": 2 of 3 replicas updated") for r in reasons), reasons
    assert events[-1]["state"] == "SERVICE_DEPLOYMENT_COMPLETED"


def test_parallelism_two_goes_in_batches_of_two(server: Server,
                                                steps: list[tuple[str, str]]) -> None:
    first, _, _ = up(server, web("1", parallelism=2))
    steps.clear()
    second, status, _ = up(server, web("2", parallelism=2))
    assert status == "succeeded"
    assert steps == [("run", second), ("run", second), ("remove", first), ("remove", first),
                     ("run", second), ("remove", first)]


def test_without_update_config_one_engine_replaces_all_at_once(
        server: Server, steps: list[tuple[str, str]]) -> None:
    first, _, _ = up(server, web("1"))
    steps.clear()
    second, status, events = up(server, web("2"))
    assert status == "succeeded"
    assert steps == [("run", second)] * 3 + [("remove", first)] * 3
    assert not any("replicas updated" in e["reason"] for e in events)


def test_the_swarm_drivers_default_is_one_at_a_time(server: Server,
                                                    steps: list[tuple[str, str]],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server.driver, "default_update_parallelism", 1)
    first, _, _ = up(server, web("1"))
    steps.clear()
    second, status, _ = up(server, web("2"))
    assert status == "succeeded"
    assert steps == [("run", second), ("remove", first)] * 3


def test_a_failed_batch_pauses_the_rollout_and_the_rest_keeps_serving(
        server: Server, steps: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    first, _, _ = up(server, web("1", parallelism=1))
    steps.clear()
    crash_after(server, monkeypatch, healthy=1)  # the second new replica crashes
    second, status, events = up(server, web("2", parallelism=1))
    assert status == "failed"
    # batch 1 replaced one replica; batch 2's new replica was removed; batch 3 never started
    assert steps == [("run", second), ("remove", first), ("run", second), ("remove", second)]
    assert versions(server) == sorted([first, first, second])
    last = events[-1]
    assert last["state"] == "SERVICE_DEPLOYMENT_FAILED"
    assert last["reason"].startswith(
        "1 of 3 replicas run the new version, the others the previous one; batch 2 of 3 "
        "failed, paused there: `dockyard rollback` restores the previous version: container "
        "dy-alice-shop-"), last

    # what the paused rollout left is planned as a replacement, never kept
    response = server.call("POST", "/v1/projects/shop/plan", json={"project": {
        "name": "shop", "services": web("2", parallelism=1)}})
    assert response.status_code == 200, response.text
    assert response.json()["services"] == [{"service": "web", "action": "replace",
                                            "reasons": ["mixed versions running"],
                                            "replicas": 3}]


def test_a_first_batch_that_fails_changes_nothing(server: Server, steps: list[tuple[str, str]],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    first, _, _ = up(server, web("1", parallelism=1))
    steps.clear()
    crash_after(server, monkeypatch, healthy=0)
    second, status, events = up(server, web("2", parallelism=1))
    assert status == "failed"
    assert steps == [("run", second), ("remove", second)]
    assert versions(server) == [first] * 3
    assert events[-1]["reason"].endswith("; the previous version keeps running")


def test_failure_action_continue_tries_every_batch(server: Server,
                                                   steps: list[tuple[str, str]],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    first, _, _ = up(server, web("1", parallelism=1, failure_action="continue"))
    steps.clear()
    crash_after(server, monkeypatch, healthy=0)
    second, status, events = up(server, web("2", parallelism=1, failure_action="continue"))
    assert status == "failed"
    assert steps == [("run", second), ("remove", second)] * 3
    assert versions(server) == [first] * 3
    assert events[-1]["reason"].startswith(
        "0 of 3 replicas run the new version, the others the previous one; 3 of 3 batches "
        "failed (`dockyard rollback` restores the previous version), the first, batch 1: ")


def test_a_rollback_replaces_by_rollback_config(server: Server,
                                                steps: list[tuple[str, str]]) -> None:
    services = web("1")
    services["web"]["deploy"]["rollback_config"] = {"parallelism": 1}
    first, _, _ = up(server, services)
    second, status, _ = up(server, {"web": {**services["web"], "command": ["sleep", "2"]}})
    assert status == "succeeded"
    steps.clear()
    response = server.call("POST", "/v1/projects/shop/rollback", json={})
    assert response.status_code == 202, response.text
    rollback = str(response.json()["deployment"])
    assert server.events(rollback)[1] == "succeeded"
    assert steps == [("run", rollback), ("remove", second)] * 3


def test_values_no_rollout_can_follow_are_refused_before_anything_changes(
        server: Server) -> None:
    response = server.deploy("shop", web("1", parallelism=-1, failure_action="bogus"))
    assert response.status_code == 422, response.text
    text = response.text
    assert "deploy.update_config.parallelism -1 is not a whole number" in text
    assert "deploy.update_config.failure_action 'bogus' is not one of pause, continue, " \
        "rollback" in text
    assert not server.driver.items


def test_scaling_in_removes_the_replicas_that_do_not_run_first(server: Server) -> None:
    # E.g. a global service's replica on a node that left the Swarm: the live ones stay.
    _, status, _ = up(server, web("v1"))
    assert status == "succeeded"
    first = sorted(server.containers("shop")["web"],
                   key=lambda c: int(server.driver.items[c].labels["dockyard.replica"]))[0]
    server.driver.items[first] = dataclasses.replace(server.driver.items[first],
                                                     status="restarting")
    fewer = web("v1")
    fewer["web"]["deploy"]["replicas"] = 2
    _, status, events = up(server, fewer)
    assert status == "succeeded" and events[-1]["reason"] == "scaled in to 2 replicas"
    left = server.containers("shop")["web"]
    assert first not in left and len(left) == 2
