"""The rollout policy (`server.rollout`): Compose's update_config and rollback_config read into
batches, delay, order, failure action and monitor window; what admission refuses; and the plan
replacing a service a paused rollout left on two versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dockyard.compose import LoadOptions, Project, load_project
from dockyard.compose.models import Service
from dockyard.plan import ActionKind, RunningService, config_hash, config_parts, plan
from dockyard.server.rollout import RolloutPolicy, rollout_policy, rollout_problems


def _project(tmp_path: Path, **web: Any) -> Project:
    service = {"image": "dockyard/busybox:1", "deploy": {"replicas": 3}}
    service.update(web)
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump({"services": {"web": service}}))
    return load_project(LoadOptions(working_dir=str(tmp_path), environ={})).project


def _web(tmp_path: Path, **deploy: Any) -> Service:
    return _project(tmp_path, deploy={"replicas": 3, **deploy}).services["web"]


def test_without_update_config_the_drivers_default_applies(tmp_path: Path) -> None:
    web = _web(tmp_path)
    assert rollout_policy(web) == RolloutPolicy(0, 0.0, "start-first", "pause", None)
    assert rollout_policy(web, default_parallelism=1).parallelism == 1


def test_update_config_is_read(tmp_path: Path) -> None:
    web = _web(tmp_path, update_config={"parallelism": 2, "delay": "1m30s", "order": "stop-first",
                                        "failure_action": "continue", "monitor": "500ms"})
    assert rollout_policy(web, default_parallelism=1) == \
        RolloutPolicy(2, 90.0, "stop-first", "continue", 0.5)


def test_parallelism_zero_is_all_at_once_even_where_the_driver_says_one(tmp_path: Path
                                                                       ) -> None:
    policy = rollout_policy(_web(tmp_path, update_config={"parallelism": 0}),
                            default_parallelism=1)
    assert policy.parallelism == 0
    assert policy.batches(3) == [range(1, 4)]


def test_a_quoted_parallelism_counts(tmp_path: Path) -> None:
    """The loader keeps `"2"` as the string it was (Compose reads it as 2)."""
    assert rollout_policy(_web(tmp_path, update_config={"parallelism": "2"})).parallelism == 2


@pytest.mark.parametrize(("parallelism", "replicas", "batches"), [
    (0, 3, [[1, 2, 3]]),
    (1, 3, [[1], [2], [3]]),
    (2, 5, [[1, 2], [3, 4], [5]]),
    (3, 3, [[1, 2, 3]]),
    (10, 3, [[1, 2, 3]]),  # larger than the service: one batch
    (1, 1, [[1]]),
])
def test_batches(parallelism: int, replicas: int, batches: list[list[int]]) -> None:
    policy = RolloutPolicy(parallelism, 0.0, "start-first", "pause", None)
    assert [list(batch) for batch in policy.batches(replicas)] == batches


def test_forced_stop_first_wins_over_order(tmp_path: Path) -> None:
    """Two versions cannot hold one host port: stop-first whatever update_config says."""
    web = _project(tmp_path, ports=[{"target": 80, "published": "8080", "mode": "host"}],
                   deploy={"update_config": {"order": "start-first"}}).services["web"]
    assert rollout_policy(web).order == "stop-first"
    job = _project(tmp_path, restart="no").services["web"]
    assert rollout_policy(job).order == "stop-first"


def test_an_unknown_failure_action_reads_as_pause(tmp_path: Path) -> None:
    """Admission refuses it (below); the policy never acts on it."""
    web = _web(tmp_path, update_config={"failure_action": "bogus"})
    assert rollout_policy(web).failure_action == "pause"


def test_a_rollback_reads_rollback_config_over_update_config(tmp_path: Path) -> None:
    web = _web(tmp_path,
               update_config={"parallelism": 2, "delay": "10s", "failure_action": "rollback",
                              "monitor": "3s", "order": "stop-first"},
               rollback_config={"parallelism": 1, "order": "start-first"})
    assert rollout_policy(web, rollback=True) == \
        RolloutPolicy(1, 10.0, "start-first", "pause", 3.0)  # a rollback is never rolled back
    assert rollout_policy(web) == RolloutPolicy(2, 10.0, "stop-first", "rollback", 3.0)


def test_rollback_config_alone_does_not_change_an_update(tmp_path: Path) -> None:
    web = _web(tmp_path, rollback_config={"parallelism": 1, "delay": "5s"})
    assert rollout_policy(web) == RolloutPolicy(0, 0.0, "start-first", "pause", None)
    assert rollout_policy(web, rollback=True) == \
        RolloutPolicy(1, 5.0, "start-first", "pause", None)


def test_monitor_zero_is_the_servers_window(tmp_path: Path) -> None:
    """As Swarm reads 0: its default."""
    assert rollout_policy(_web(tmp_path, update_config={"monitor": "0s"})).monitor_seconds \
        is None


def test_admission_refuses_values_no_rollout_can_follow(tmp_path: Path) -> None:
    project = _project(tmp_path, deploy={
        "update_config": {"parallelism": -1, "failure_action": "bogus", "delay": "-1s"},
        "rollback_config": {"parallelism": "abc", "failure_action": "rollback",
                            "monitor": "-2s"}})
    found = {(d.location.path, d.code) for d in rollout_problems(project)}
    assert found == {
        ("services.web.deploy.update_config.parallelism", "schema"),
        ("services.web.deploy.update_config.failure_action", "schema"),
        ("services.web.deploy.update_config.delay", "schema"),
        ("services.web.deploy.rollback_config.parallelism", "schema"),
        ("services.web.deploy.rollback_config.failure_action", "schema"),
        ("services.web.deploy.rollback_config.monitor", "schema"),
    }
    messages = [d.message for d in rollout_problems(project)]
    assert "service 'web': deploy.update_config.parallelism -1 is not a whole number of " \
        "replicas" in messages
    assert "service 'web': deploy.rollback_config.failure_action 'rollback' is not one of " \
        "pause, continue" in messages


def test_admission_takes_what_compose_allows(tmp_path: Path) -> None:
    project = _project(tmp_path, deploy={
        "update_config": {"parallelism": "2", "failure_action": "rollback", "delay": "0s",
                          "monitor": "1m", "max_failure_ratio": 0.3, "order": "stop-first"},
        "rollback_config": {"parallelism": 0, "failure_action": "continue"}})
    assert rollout_problems(project) == []


def test_a_service_left_on_two_versions_is_replaced(tmp_path: Path) -> None:
    """A paused rollout leaves some replicas on the new configuration, the others on the
    previous one: the next `up` of the new version replaces the service, never keeps it."""
    project = _project(tmp_path)
    web = project.services["web"]
    paused = RunningService("web", config_hash(web), 3, config_parts(web), mixed=True)
    action = plan(project, {"web": paused}).action("web")
    assert action is not None
    assert (action.kind, action.reason) == (ActionKind.REPLACE, "mixed versions running")

