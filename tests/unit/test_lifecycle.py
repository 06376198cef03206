"""Service states (docs/architecture.md, The state machine): Defang's numbers, the transition
table, events on the wire."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from dockyard.errors import DockyardError
from dockyard.exit_codes import ExitCode
from dockyard.lifecycle import (
    BUILD_STATES,
    ENTRY,
    INITIAL,
    TERMINAL,
    TRANSITIONS,
    InvalidTransition,
    ServiceEvent,
    ServiceState,
    can_transition,
    check_transition,
)

S = ServiceState

# Defang's `ServiceState` protobuf numbers; they go on the wire unchanged.
WIRE_NUMBERS = {
    "NOT_SPECIFIED": 0,
    "BUILD_QUEUED": 1,
    "BUILD_PROVISIONING": 2,
    "BUILD_PENDING": 3,
    "BUILD_ACTIVATING": 4,
    "BUILD_RUNNING": 5,
    "BUILD_STOPPING": 6,
    "UPDATE_QUEUED": 7,
    "SERVICE_DEPLOYMENT_PENDING": 8,
    "SERVICE_DEPLOYMENT_COMPLETED": 9,
    "SERVICE_DEPLOYMENT_FAILED": 10,
    "BUILD_FAILED": 11,
    "DEPLOYMENT_SCALED_IN": 12,
}

# The allowed moves, written out by number and independently of the module's table.
EXPECTED_EDGES = """
    0->1 0->7
    1->2 2->3 3->4 4->5 5->6 6->7
    1->11 2->11 3->11 4->11 5->11 6->11
    7->8 7->9 7->10 7->12
    8->9 8->10
    9->1 9->7 9->8 9->10 9->12
    10->1 10->7 10->8 10->9 10->12
    11->1 11->7 11->12
    12->1 12->7
"""
EXPECTED: frozenset[tuple[int, int]] = frozenset(
    (int(a), int(b)) for a, b in (edge.split("->") for edge in EXPECTED_EDGES.split())
)

ALL_PAIRS = [(a, b) for a in ServiceState for b in ServiceState]

T0 = datetime(2021, 9, 1, 12, 34, 56, tzinfo=UTC)


# --- states ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "number"), WIRE_NUMBERS.items())
def test_state_numbers_match_defang(name: str, number: int) -> None:
    assert ServiceState[name] == number
    assert S(number).name == name


def test_no_other_states() -> None:
    assert {s.name: s.value for s in ServiceState} == WIRE_NUMBERS


def test_every_state_has_its_own_description() -> None:
    descriptions = [s.description for s in ServiceState]
    assert all(descriptions)
    assert len(set(descriptions)) == len(descriptions)
    assert S.BUILD_RUNNING.description == "the build is running; its log streams"
    assert "healthy" in S.SERVICE_DEPLOYMENT_COMPLETED.description


def test_state_sets() -> None:
    assert {
        S.SERVICE_DEPLOYMENT_COMPLETED,
        S.SERVICE_DEPLOYMENT_FAILED,
        S.BUILD_FAILED,
        S.DEPLOYMENT_SCALED_IN,
    } == TERMINAL
    assert {S.NOT_SPECIFIED} == INITIAL
    assert {S.BUILD_QUEUED, S.UPDATE_QUEUED} == ENTRY
    assert {S(n) for n in range(1, 7)} == BUILD_STATES
    assert [s for s in ServiceState if s.is_terminal] == sorted(TERMINAL)


# --- the transition table ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "new"), ALL_PAIRS, ids=[f"{a.name}->{b.name}" for a, b in ALL_PAIRS]
)
def test_every_pair_of_states(current: ServiceState, new: ServiceState) -> None:
    allowed = (int(current), int(new)) in EXPECTED
    assert can_transition(current, new) is allowed
    if allowed:
        check_transition(current, new)
    else:
        with pytest.raises(InvalidTransition):
            check_transition(current, new)


def test_table_covers_every_state() -> None:
    assert set(TRANSITIONS) == set(ServiceState)
    assert all(isinstance(targets, frozenset) for targets in TRANSITIONS.values())


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        TRANSITIONS[S.BUILD_FAILED] = frozenset()  # type: ignore[index]


def test_initial_states_are_those_nothing_leads_into() -> None:
    targets = set().union(*TRANSITIONS.values())
    assert set(ServiceState) - targets == INITIAL


def _reachable(start: ServiceState) -> set[ServiceState]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_every_state_is_reachable_from_the_start() -> None:
    assert _reachable(S.NOT_SPECIFIED) == set(ServiceState)


@pytest.mark.parametrize("state", list(ServiceState))
def test_every_state_can_settle(state: ServiceState) -> None:
    assert _reachable(state) & TERMINAL


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_a_new_deployment_can_start_from_every_settled_state(state: ServiceState) -> None:
    assert {S.BUILD_QUEUED, S.UPDATE_QUEUED} <= TRANSITIONS[state]


@pytest.mark.parametrize("state", sorted(set(ServiceState) - TERMINAL - INITIAL))
def test_a_deployment_in_flight_is_never_jumped_over(state: ServiceState) -> None:
    # only the build's own end leads on to UPDATE_QUEUED; nothing restarts a deployment mid-way
    assert S.BUILD_QUEUED not in TRANSITIONS[state]
    assert (S.UPDATE_QUEUED in TRANSITIONS[state]) is (state is S.BUILD_STOPPING)


@pytest.mark.parametrize(
    "path",
    [
        # a build, then a healthy start
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        # no build needed
        [0, 7, 8, 9],
        # Defang's build-failure.events sample: BUILD_PROVISIONING ... BUILD_FAILED
        [0, 1, 2, 11],
        # a crash after the deployment, a restart, recovered; then a crash loop
        [0, 7, 8, 9, 8, 9, 10, 8, 9],
        # health check flaps without restarts
        [0, 7, 8, 9, 10, 9],
        # redeploy: unchanged service kept as is; then a changed one rebuilt
        [0, 7, 8, 9, 7, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        # a dependency failed, so it never started; fixed by the next deployment
        [0, 7, 10, 7, 8, 9],
        # down, then up again
        [0, 7, 8, 9, 12, 7, 8, 9],
        # scaled to zero by an update, and back
        [0, 7, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        # a failed build, then `down`
        [0, 1, 2, 3, 4, 5, 11, 12],
    ],
)
def test_realistic_histories_are_allowed(path: list[int]) -> None:
    for a, b in zip(path, path[1:], strict=False):
        check_transition(S(a), S(b))


def test_invalid_transition_is_a_dockyard_bug() -> None:
    with pytest.raises(InvalidTransition) as caught:
        check_transition(S.BUILD_RUNNING, S.SERVICE_DEPLOYMENT_COMPLETED, service="web")
    err = caught.value
    assert isinstance(err, DockyardError)
    assert err.exit_code is ExitCode.INTERNAL
    assert (err.current, err.new, err.service) == (
        S.BUILD_RUNNING,
        S.SERVICE_DEPLOYMENT_COMPLETED,
        "web",
    )
    assert err.message == (
        "service 'web': invalid state transition BUILD_RUNNING -> SERVICE_DEPLOYMENT_COMPLETED"
    )
    assert err.hint is not None
    assert "BUILD_STOPPING, BUILD_FAILED" in err.hint


def test_invalid_transition_without_a_service() -> None:
    err = InvalidTransition(S.NOT_SPECIFIED, S.NOT_SPECIFIED)
    assert str(err) == "invalid state transition NOT_SPECIFIED -> NOT_SPECIFIED"


# --- events ------------------------------------------------------------------------------------


def test_event_json_round_trip() -> None:
    event = ServiceEvent(
        service="web",
        state=S.SERVICE_DEPLOYMENT_COMPLETED,
        at=T0,
        reason="healthy: GET / answered 200",
        deployment="a1b2c3d4e5f6",
    )
    data = event.to_json()
    assert data == {
        "service": "web",
        "state": "SERVICE_DEPLOYMENT_COMPLETED",
        "state_number": 9,
        "at": "2021-09-01T12:34:56Z",
        "reason": "healthy: GET / answered 200",
        "deployment": "a1b2c3d4e5f6",
    }
    assert ServiceEvent.from_json(json.loads(json.dumps(data))) == event


@pytest.mark.parametrize("state", list(ServiceState))
def test_every_state_round_trips(state: ServiceState) -> None:
    event = ServiceEvent(service="api", state=state, at=T0 + timedelta(microseconds=1))
    data = event.to_json()
    assert data["state"] == state.name
    assert data["state_number"] == int(state)
    assert data["at"] == "2021-09-01T12:34:56.000001Z"
    assert data["deployment"] is None
    back = ServiceEvent.from_json(data)
    assert back == event
    assert back.state is state


def test_event_defaults() -> None:
    event = ServiceEvent(service="web", state=S.UPDATE_QUEUED, at=T0)
    assert (event.reason, event.deployment) == ("", None)


def test_event_is_frozen() -> None:
    event = ServiceEvent(service="web", state=S.UPDATE_QUEUED, at=T0)
    with pytest.raises(AttributeError):
        event.reason = "x"  # type: ignore[misc]


def test_event_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        ServiceEvent(service="web", state=S.UPDATE_QUEUED, at=datetime(2021, 9, 1, 12))


@pytest.mark.parametrize(
    "tz", [timezone(timedelta(hours=2)), timezone(timedelta(hours=-5)), ZoneInfo("UTC")]
)
def test_event_time_is_kept_in_utc(tz: timezone | ZoneInfo) -> None:
    local = T0.astimezone(tz)
    event = ServiceEvent(service="web", state=S.UPDATE_QUEUED, at=local)
    assert event.at == T0
    assert event.at.tzinfo is UTC
    assert event.to_json()["at"] == "2021-09-01T12:34:56Z"


def test_event_state_must_be_a_service_state() -> None:
    with pytest.raises(TypeError, match="ServiceState"):
        ServiceEvent(service="web", state=9, at=T0)  # type: ignore[arg-type]


def test_from_json_accepts_the_number_or_the_name_alone() -> None:
    base = {"service": "web", "at": "2021-09-01T12:34:56+00:00"}
    assert ServiceEvent.from_json({**base, "state_number": 8}).state is S.SERVICE_DEPLOYMENT_PENDING
    assert ServiceEvent.from_json({**base, "state": "BUILD_FAILED"}).state is S.BUILD_FAILED


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"state": "DEPLOYMENT_COMPLETED"}, "unknown service state"),
        ({"state": "BUILD_FAILED"}, "disagrees with state_number"),
        ({"state_number": 13}, "unknown service state number 13"),
        ({"state_number": "9"}, "'state_number' must be an integer"),
        ({"state_number": True}, "'state_number' must be an integer"),
        ({"state": None, "state_number": None}, "neither 'state' nor 'state_number'"),
        ({"service": None}, "'service' must be a str"),
        ({"at": 12}, "'at' must be a str"),
        ({"at": "yesterday"}, "not an ISO-8601 time"),
        ({"at": "2021-09-01T12:34:56"}, "no timezone"),
        ({"reason": 5}, "'reason' must be a string"),
        ({"deployment": 5}, "'deployment' must be a string"),
    ],
)
def test_from_json_refuses_bad_data(change: dict[str, object], message: str) -> None:
    data: dict[str, object] = {
        **ServiceEvent(service="web", state=S.SERVICE_DEPLOYMENT_COMPLETED, at=T0).to_json(),
        **change,
    }
    with pytest.raises(ValueError, match=message):
        ServiceEvent.from_json(data)
