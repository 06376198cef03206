"""The service states, their transition table, and the event that records one.

docs/architecture.md, The state machine, explains them for people.

States carry Defang's numbers, which go on the wire unchanged. The transition table is the whole
truth: a move it does not list is a bug (`InvalidTransition`). Why each edge exists:

- ``NOT_SPECIFIED`` is the state before any event. A deployment starts a service at
  ``BUILD_QUEUED`` when it has to build, else at ``UPDATE_QUEUED``.
- The build walks its chain one step at a time, 1 -> 2 -> 3 -> 4 -> 5 -> 6 -> 7, so the history
  shows every phase; from any build state (1-6) it can end in ``BUILD_FAILED`` (error, timeout,
  cancellation; the reason says which).
- ``UPDATE_QUEUED`` goes to ``SERVICE_DEPLOYMENT_PENDING`` when containers start; to
  ``SERVICE_DEPLOYMENT_COMPLETED`` directly when the service is unchanged and already healthy
  (docs/architecture.md, How a deployment runs: it is not restarted); to
  ``SERVICE_DEPLOYMENT_FAILED`` when it can never start (a dependency failed, the deployment was
  cancelled); to ``DEPLOYMENT_SCALED_IN`` when the update scales it to zero.
- ``SERVICE_DEPLOYMENT_PENDING`` settles as ``COMPLETED`` (healthy) or ``FAILED``.
- After a deployment the state follows reality: ``COMPLETED`` -> ``PENDING`` when a container dies
  and restarts, ``COMPLETED`` -> ``FAILED`` on a crash loop or failing health check;
  ``FAILED`` -> ``PENDING`` when a restart brings it back, ``FAILED`` -> ``COMPLETED`` when a
  health check recovers without a restart. ``BUILD_FAILED`` makes no claim about running
  containers, so it has nothing to follow and stays until the next deployment.
- From every settled state (`TERMINAL`) a new deployment starts the service again
  (``BUILD_QUEUED`` or ``UPDATE_QUEUED``), and scaling to zero or ``down`` moves it to
  ``DEPLOYMENT_SCALED_IN``. A deployment in flight is never jumped over: to supersede it, settle
  it first (``BUILD_FAILED`` or ``SERVICE_DEPLOYMENT_FAILED``, reason "superseded by ..."), so
  every deployment's history of a service ends in a settled state its watchers can report.
- No state moves to itself: a progress note in the same state is an event, not a transition.
  Nothing moves back to ``NOT_SPECIFIED``.

This module is pure: no I/O, no printing.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Self, TypeVar

from dockyard.errors import DockyardError
from dockyard.exit_codes import ExitCode

__all__ = [
    "BUILD_STATES",
    "ENTRY",
    "INITIAL",
    "TERMINAL",
    "TRANSITIONS",
    "InvalidTransition",
    "ServiceEvent",
    "ServiceState",
    "can_transition",
    "check_transition",
]


class ServiceState(enum.IntEnum):
    """A service's state, numbered exactly as Defang's ``ServiceState`` protobuf enum."""

    NOT_SPECIFIED = 0
    BUILD_QUEUED = 1
    BUILD_PROVISIONING = 2
    BUILD_PENDING = 3
    BUILD_ACTIVATING = 4
    BUILD_RUNNING = 5
    BUILD_STOPPING = 6
    UPDATE_QUEUED = 7
    SERVICE_DEPLOYMENT_PENDING = 8
    SERVICE_DEPLOYMENT_COMPLETED = 9
    SERVICE_DEPLOYMENT_FAILED = 10
    BUILD_FAILED = 11
    DEPLOYMENT_SCALED_IN = 12

    @property
    def description(self) -> str:
        """What the state means in Dockyard (docs/architecture.md, The state machine), for help
        texts and ``ps -l``."""
        return _DESCRIPTIONS[self]

    @property
    def is_terminal(self) -> bool:
        """Whether the state is settled: a deployment has nothing more to do for the service."""
        return self in TERMINAL


_DESCRIPTIONS: Mapping[ServiceState, str] = MappingProxyType(
    {
        ServiceState.NOT_SPECIFIED: "no state has been reported for the service yet",
        ServiceState.BUILD_QUEUED: (
            "the update was received and the service's image build waits in the build queue"
        ),
        ServiceState.BUILD_PROVISIONING: (
            "the builder is being prepared: build context received and checked, "
            "builder resources reserved"
        ),
        ServiceState.BUILD_PENDING: "resources are ready; the build has not started",
        ServiceState.BUILD_ACTIVATING: (
            "the builder is starting: base image resolved, build process created"
        ),
        ServiceState.BUILD_RUNNING: "the build is running; its log streams",
        ServiceState.BUILD_STOPPING: (
            "the build process is ending; the image is being tagged and recorded"
        ),
        ServiceState.UPDATE_QUEUED: (
            "the service update is queued for deployment (first state when no build is needed)"
        ),
        ServiceState.SERVICE_DEPLOYMENT_PENDING: (
            "resources are provisioned and the new containers are starting; not yet healthy"
        ),
        ServiceState.SERVICE_DEPLOYMENT_COMPLETED: (
            "the service is deployed and healthy, and (if public) serving at its domain"
        ),
        ServiceState.SERVICE_DEPLOYMENT_FAILED: (
            "the service could not be deployed: start error, crash loop, failed health check, "
            "timeout"
        ),
        ServiceState.BUILD_FAILED: (
            "the build exited non-zero (or timed out); the reason is recorded"
        ),
        ServiceState.DEPLOYMENT_SCALED_IN: (
            "the service was scaled to zero or its project taken down; no containers run"
        ),
    }
)

_S = ServiceState
_T = TypeVar("_T")

BUILD_STATES: frozenset[ServiceState] = frozenset(
    {
        _S.BUILD_QUEUED,
        _S.BUILD_PROVISIONING,
        _S.BUILD_PENDING,
        _S.BUILD_ACTIVATING,
        _S.BUILD_RUNNING,
        _S.BUILD_STOPPING,
    }
)
"""The image build in progress (1-6); any of them can end in ``BUILD_FAILED``."""

TERMINAL: frozenset[ServiceState] = frozenset(
    {
        _S.SERVICE_DEPLOYMENT_COMPLETED,
        _S.SERVICE_DEPLOYMENT_FAILED,
        _S.BUILD_FAILED,
        _S.DEPLOYMENT_SCALED_IN,
    }
)
"""Settled states: a deployment is over for a service in one of them (``up`` stops waiting)."""

INITIAL: frozenset[ServiceState] = frozenset({_S.NOT_SPECIFIED})
"""States no transition leads into: where a service is before its first event."""

ENTRY: frozenset[ServiceState] = frozenset({_S.BUILD_QUEUED, _S.UPDATE_QUEUED})
"""The states a deployment starts a service in (with a build, or without one)."""

_NEW_DEPLOYMENT = ENTRY | {_S.DEPLOYMENT_SCALED_IN}

TRANSITIONS: Mapping[ServiceState, frozenset[ServiceState]] = MappingProxyType(
    {
        _S.NOT_SPECIFIED: ENTRY,
        _S.BUILD_QUEUED: frozenset({_S.BUILD_PROVISIONING, _S.BUILD_FAILED}),
        _S.BUILD_PROVISIONING: frozenset({_S.BUILD_PENDING, _S.BUILD_FAILED}),
        _S.BUILD_PENDING: frozenset({_S.BUILD_ACTIVATING, _S.BUILD_FAILED}),
        _S.BUILD_ACTIVATING: frozenset({_S.BUILD_RUNNING, _S.BUILD_FAILED}),
        _S.BUILD_RUNNING: frozenset({_S.BUILD_STOPPING, _S.BUILD_FAILED}),
        _S.BUILD_STOPPING: frozenset({_S.UPDATE_QUEUED, _S.BUILD_FAILED}),
        _S.UPDATE_QUEUED: frozenset(
            {
                _S.SERVICE_DEPLOYMENT_PENDING,
                _S.SERVICE_DEPLOYMENT_COMPLETED,
                _S.SERVICE_DEPLOYMENT_FAILED,
                _S.DEPLOYMENT_SCALED_IN,
            }
        ),
        _S.SERVICE_DEPLOYMENT_PENDING: frozenset(
            {_S.SERVICE_DEPLOYMENT_COMPLETED, _S.SERVICE_DEPLOYMENT_FAILED}
        ),
        _S.SERVICE_DEPLOYMENT_COMPLETED: _NEW_DEPLOYMENT
        | {_S.SERVICE_DEPLOYMENT_PENDING, _S.SERVICE_DEPLOYMENT_FAILED},
        _S.SERVICE_DEPLOYMENT_FAILED: _NEW_DEPLOYMENT
        | {_S.SERVICE_DEPLOYMENT_PENDING, _S.SERVICE_DEPLOYMENT_COMPLETED},
        _S.BUILD_FAILED: _NEW_DEPLOYMENT,
        _S.DEPLOYMENT_SCALED_IN: ENTRY,
    }
)
"""Every allowed move, ``from -> {to, ...}``; the module docstring says why each exists."""


class InvalidTransition(DockyardError):
    """A state change the table does not allow. Always a bug in Dockyard, never user error."""

    exit_code = ExitCode.INTERNAL

    def __init__(
        self, current: ServiceState, new: ServiceState, service: str | None = None
    ) -> None:
        self.current = current
        self.new = new
        self.service = service
        where = f"service {service!r}: " if service else ""
        allowed = ", ".join(s.name for s in sorted(TRANSITIONS[current])) or "nothing"
        super().__init__(
            f"{where}invalid state transition {current.name} -> {new.name}",
            hint=f"from {current.name} only {allowed} may follow; this is a bug in Dockyard",
        )


def can_transition(current: ServiceState, new: ServiceState) -> bool:
    """Whether the table allows moving from `current` to `new`."""
    return new in TRANSITIONS[current]


def check_transition(
    current: ServiceState, new: ServiceState, *, service: str | None = None
) -> None:
    """Raise `InvalidTransition` unless the table allows moving from `current` to `new`."""
    if not can_transition(current, new):
        raise InvalidTransition(current, new, service)


@dataclass(frozen=True, slots=True)
class ServiceEvent:
    """One state change of one service: kept in the deployment's history and streamed to watchers.

    `at` must be timezone-aware; it is stored in UTC so histories sort and compare plainly.
    `deployment` is the deployment id (``None`` for changes outside a deployment, such as a crash
    noticed later).
    """

    service: str
    state: ServiceState
    at: datetime
    reason: str = ""
    deployment: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.state, ServiceState):
            raise TypeError(f"state must be a ServiceState, not {self.state!r}")
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError(f"event time {self.at.isoformat()} has no timezone; use UTC")
        if self.at.tzinfo is not UTC:
            object.__setattr__(self, "at", self.at.astimezone(UTC))

    def to_json(self) -> dict[str, str | int | None]:
        """A JSON-ready dict: `state` is the name (readable), `state_number` Defang's number."""
        return {
            "service": self.service,
            "state": self.state.name,
            "state_number": int(self.state),
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "reason": self.reason,
            "deployment": self.deployment,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Self:
        """Read what `to_json` wrote; either `state_number` or `state` is enough.

        Raises `ValueError` for missing or mistyped fields, and when both are given but disagree.
        """
        service = _field(data, "service", str)
        at_text = _field(data, "at", str)
        reason = data.get("reason", "")
        deployment = data.get("deployment")
        if not isinstance(reason, str):
            raise ValueError(f"event field 'reason' must be a string, not {reason!r}")
        if deployment is not None and not isinstance(deployment, str):
            raise ValueError(f"event field 'deployment' must be a string, not {deployment!r}")
        try:
            at = datetime.fromisoformat(at_text)
        except ValueError:
            raise ValueError(f"event field 'at' is not an ISO-8601 time: {at_text!r}") from None
        return cls(
            service=service,
            state=_state_of(data),
            at=at,
            reason=reason,
            deployment=deployment,
        )


def _field(data: Mapping[str, object], key: str, kind: type[_T]) -> _T:
    value = data.get(key)
    if not isinstance(value, kind):
        raise ValueError(f"event field {key!r} must be a {kind.__name__}, not {value!r}")
    return value


def _state_of(data: Mapping[str, object]) -> ServiceState:
    number = data.get("state_number")
    name = data.get("state")
    by_number: ServiceState | None = None
    if number is not None:
        if isinstance(number, bool) or not isinstance(number, int):
            raise ValueError(f"event field 'state_number' must be an integer, not {number!r}")
        try:
            by_number = ServiceState(number)
        except ValueError:
            raise ValueError(f"unknown service state number {number}") from None
    if name is None:
        if by_number is None:
            raise ValueError("event has neither 'state' nor 'state_number'")
        return by_number
    if not isinstance(name, str) or name not in ServiceState.__members__:
        raise ValueError(f"unknown service state {name!r}")
    by_name = ServiceState[name]
    if by_number is not None and by_number is not by_name:
        raise ValueError(f"event state {name} disagrees with state_number {number}")
    return by_name
