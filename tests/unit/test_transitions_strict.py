"""Forbidden state transitions are never dropped silently (issue 12), over a real SQLite store.

- `ControlPlane.record`: a move the table forbids is not recorded, is logged as a warning
  naming the deployment, the service and both states, and raises `InvalidTransition` in
  strict mode (DOCKYARD_STRICT_TRANSITIONS=1, which tests/conftest.py sets for every test);
- `ControlPlane.follow` (the watcher's moves): a move decided from a state the service is no
  longer in, or from another deployment's, is a race and is dropped quietly;
- a deployment starting (or `down` removing) a service that an ended deployment left PENDING
  (restarting) settles that one as FAILED first ("superseded by ..."), then moves it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.fakes import FakeDriver

from dockyard.lifecycle import InvalidTransition, ServiceEvent, ServiceState
from dockyard.server.control import STRICT_TRANSITIONS, ControlPlane
from dockyard.server.settings import ServerSettings
from dockyard.store.store import Account, Store

S = ServiceState


@pytest.fixture
def control(tmp_path: Path) -> ControlPlane:
    settings = ServerSettings(data=tmp_path, stabilization_seconds=0.0)
    return ControlPlane(settings, Store.open(settings.database_url), FakeDriver())


def deployed(control: ControlPlane, *states: ServiceState) -> tuple[Account, str]:
    """alice's `shop` deployment, its `web` moved through `states` (without checks)."""
    alice = control.store.ensure_account("alice")
    deployment = control.store.create_deployment(alice, "shop", "up", {})
    for state in states:
        control.store.add_event(alice, ServiceEvent("web", state, datetime.now(UTC), "test",
                                                    deployment))
    return alice, deployment


def history(control: ControlPlane, account: Account, deployment: str) -> list[ServiceState]:
    return [e.event.state for e in control.store.events_since(account, deployment)]


def test_the_test_suite_runs_in_strict_mode(control: ControlPlane) -> None:
    assert control.strict_transitions, f"tests/conftest.py sets {STRICT_TRANSITIONS}=1"


def test_a_forbidden_move_raises_in_strict_mode_and_is_logged(
        control: ControlPlane, caplog: pytest.LogCaptureFixture) -> None:
    alice, deployment = deployed(control, S.UPDATE_QUEUED)
    with caplog.at_level(logging.WARNING, "dockyard.server"), \
            pytest.raises(InvalidTransition) as raised:
        control.record(alice, deployment, "web", S.BUILD_RUNNING, "building")
    assert raised.value.current is S.UPDATE_QUEUED and raised.value.new is S.BUILD_RUNNING
    assert "'web'" in raised.value.message and raised.value.hint
    warning, = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert deployment in warning and "web" in warning
    assert "UPDATE_QUEUED -> BUILD_RUNNING" in warning
    assert history(control, alice, deployment) == [S.UPDATE_QUEUED]  # nothing recorded


def test_without_strict_mode_a_forbidden_move_is_logged_and_not_recorded(
        control: ControlPlane, caplog: pytest.LogCaptureFixture) -> None:
    control.strict_transitions = False
    alice, deployment = deployed(control, S.UPDATE_QUEUED)
    with caplog.at_level(logging.WARNING, "dockyard.server"):
        after = control.record(alice, deployment, "web", S.BUILD_RUNNING, "building")
    assert after is S.UPDATE_QUEUED
    assert any("forbidden state transition" in r.getMessage() for r in caplog.records)
    assert history(control, alice, deployment) == [S.UPDATE_QUEUED]


def test_allowed_moves_and_notes_are_recorded(control: ControlPlane) -> None:
    alice, deployment = deployed(control)
    for state in (S.UPDATE_QUEUED, S.SERVICE_DEPLOYMENT_PENDING,
                  S.SERVICE_DEPLOYMENT_PENDING, S.SERVICE_DEPLOYMENT_COMPLETED):
        assert control.record(alice, deployment, "web", state, "ok") is state
    assert history(control, alice, deployment) == [
        S.UPDATE_QUEUED, S.SERVICE_DEPLOYMENT_PENDING, S.SERVICE_DEPLOYMENT_PENDING,
        S.SERVICE_DEPLOYMENT_COMPLETED]


def test_a_watcher_move_from_a_state_that_changed_meanwhile_is_dropped_quietly(
        control: ControlPlane, caplog: pytest.LogCaptureFixture) -> None:
    alice, old = deployed(control, S.UPDATE_QUEUED, S.SERVICE_DEPLOYMENT_COMPLETED)
    # The watcher read COMPLETED in `old`; then a new deployment began and recorded its own.
    new = control.store.create_deployment(alice, "shop", "up", {})
    control.record(alice, new, "web", S.BUILD_QUEUED, "waiting for a build slot")
    with caplog.at_level(logging.DEBUG, "dockyard.server"):
        assert not control.follow(alice, old, "web", S.SERVICE_DEPLOYMENT_COMPLETED,
                                  S.SERVICE_DEPLOYMENT_PENDING, "container exited")
        # The same deployment, but not the state the decision was made from.
        assert not control.follow(alice, new, "web", S.SERVICE_DEPLOYMENT_COMPLETED,
                                  S.SERVICE_DEPLOYMENT_FAILED, "health check fails")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert history(control, alice, new) == [S.BUILD_QUEUED]
    assert history(control, alice, old)[-1] is S.SERVICE_DEPLOYMENT_COMPLETED


def test_a_watcher_move_from_the_state_it_saw_is_recorded(control: ControlPlane) -> None:
    alice, deployment = deployed(control, S.UPDATE_QUEUED, S.SERVICE_DEPLOYMENT_COMPLETED)
    assert control.follow(alice, deployment, "web", S.SERVICE_DEPLOYMENT_COMPLETED,
                          S.SERVICE_DEPLOYMENT_PENDING, "container exited; restarted")
    assert history(control, alice, deployment)[-1] is S.SERVICE_DEPLOYMENT_PENDING
    with pytest.raises(InvalidTransition):  # a forbidden move from what it saw is a bug
        control.follow(alice, deployment, "web", S.SERVICE_DEPLOYMENT_PENDING, S.BUILD_QUEUED,
                       "nonsense")


def test_a_new_deployment_supersedes_a_service_left_restarting(control: ControlPlane) -> None:
    alice, old = deployed(control, S.UPDATE_QUEUED, S.SERVICE_DEPLOYMENT_COMPLETED,
                          S.SERVICE_DEPLOYMENT_PENDING)  # the watcher saw it restart
    new = control.store.create_deployment(alice, "shop", "up", {})
    assert control.record(alice, new, "web", S.UPDATE_QUEUED, "image i") is S.UPDATE_QUEUED
    assert history(control, alice, old)[-1] is S.SERVICE_DEPLOYMENT_FAILED
    superseded = control.store.events_since(alice, old)[-1].event
    assert superseded.reason == f"superseded by deployment {new}"
    assert history(control, alice, new) == [S.UPDATE_QUEUED]


def test_a_deployment_never_jumps_over_its_own_service_in_flight(control: ControlPlane) -> None:
    alice, deployment = deployed(control, S.UPDATE_QUEUED, S.SERVICE_DEPLOYMENT_PENDING)
    with pytest.raises(InvalidTransition):
        control.record(alice, deployment, "web", S.UPDATE_QUEUED, "again")


def test_a_down_supersedes_a_service_left_restarting(control: ControlPlane) -> None:
    alice, old = deployed(control, S.UPDATE_QUEUED, S.SERVICE_DEPLOYMENT_COMPLETED,
                          S.SERVICE_DEPLOYMENT_PENDING)
    down = control.store.create_deployment(alice, "shop", "down", {})
    assert control.record(alice, down, "web", S.DEPLOYMENT_SCALED_IN,
                          "removed by `down`") is S.DEPLOYMENT_SCALED_IN
    assert history(control, alice, old)[-1] is S.SERVICE_DEPLOYMENT_FAILED
    assert history(control, alice, down) == [S.DEPLOYMENT_SCALED_IN]
