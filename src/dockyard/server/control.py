"""The control plane's shared parts: store, driver, settings, and who is deploying what.

One `ControlPlane` lives in the server. Deployments of one project never interleave: `begin`
takes the project's slot or refuses (`DeploymentInProgress`), `end` frees it. Containers the
server stops on purpose are remembered so the engine watcher does not take their exit for a
crash.

Every state change goes through `record` (or `follow`, for moves decided from what the engine
showed), which checks it against the transition table: see `record` for what a forbidden move
does, and `DOCKYARD_STRICT_TRANSITIONS`.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockyard.api_errors import DeploymentInProgress as DeploymentInProgress
from dockyard.files import write_private
from dockyard.lifecycle import (
    ENTRY,
    InvalidTransition,
    ServiceEvent,
    ServiceState,
    can_transition,
)
from dockyard.runtime.driver import Driver
from dockyard.runtime.egress import EgressGuard
from dockyard.runtime.specs import Placement
from dockyard.server.configs import Configs
from dockyard.server.contexts import ContextStore
from dockyard.server.engine_events import EngineEvents
from dockyard.server.ingress import Ingress
from dockyard.server.keys import load_cipher
from dockyard.server.project_files import ProjectFileCopies
from dockyard.server.puller import Puller
from dockyard.server.registry_auth import RegistryCredentials
from dockyard.server.secret_files import SecretFiles
from dockyard.server.settings import ServerSettings
from dockyard.store.store import Account, ServiceStatus, Store

log = logging.getLogger("dockyard.server")

# "1": a forbidden state transition raises `InvalidTransition` instead of only being logged.
# The test suite sets it (tests/conftest.py), so a bug that makes one fails the tests.
STRICT_TRANSITIONS = "DOCKYARD_STRICT_TRANSITIONS"
# The first move a deployment makes a service do: start it, or take it away (down, scale 0).
NEW_DEPLOYMENT = ENTRY | {ServiceState.DEPLOYMENT_SCALED_IN}


class KeyedLocks:
    """One lock per key (an account name), made on first use."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def __call__(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


@dataclass
class _Slot:
    deployment: str


class ControlPlane:
    def __init__(self, settings: ServerSettings, store: Store, driver: Driver) -> None:
        self.settings = settings
        self.store = store
        self.driver = driver
        self.contexts = ContextStore(settings.data / "contexts", settings.max_context_bytes)
        self.server_id = _server_id(settings.data)
        self.build_slots = threading.BoundedSemaphore(settings.build_concurrency)
        # What the engine watcher saw, for deployments waiting on their containers; None
        # until a watcher runs (a waiter then asks the engine by itself).
        self.engine_events: EngineEvents | None = None
        self.puller = Puller(driver, concurrency=settings.pull_concurrency,
                             timeout=settings.pull_timeout_seconds,
                             max_bytes=settings.max_pull_bytes)
        self._lock = threading.Lock()
        self._active: dict[tuple[str, str], _Slot] = {}  # (account name, project)
        # Per account: admission (limits checked and slot taken) is atomic; and, in playground
        # mode, a build takes the account's turn before a shared `build_slots` slot, so one
        # tenant never holds every slot while others wait.
        self.admission = KeyedLocks()
        self.build_turn = KeyedLocks()
        self._expected_stops: set[str] = set()
        self.shutting_down = threading.Event()
        self.models: dict[tuple[int, str], Any] = {}  # deployed projects, loaded once
        self.models_lock = threading.Lock()
        self._changed = threading.Condition()
        self._generation = 0
        self._listeners: list[Callable[[], None]] = []  # async streams (server.streams)
        self.ingress = Ingress(settings.mode, settings.zone)  # main() installs the real one
        self.egress = EgressGuard.off()  # main() installs the real one (playground)
        self.configs = Configs(store, load_cipher(settings),
                               settings.limits.projects if settings.limits else 0)
        self.registries = RegistryCredentials(store, self.configs.cipher, driver)
        # main() installs the checked tmpfs (`server.tmpfs`); a control plane made in-process
        # (tests, over a fake engine) writes where its settings say, else in its data dir.
        self.secret_files = SecretFiles(settings.secrets_dir or settings.data / "secrets")
        self.project_files = ProjectFileCopies(settings.data / "project-files")
        self.strict_transitions = os.environ.get(STRICT_TRANSITIONS) == "1"
        self._moves = KeyedLocks()  # per (account, service): a move's check and write are one

    # -- waking whoever streams events ---------------------------------------------------------
    def notify(self) -> None:
        """Something was recorded: wake every event stream at once (no polling delay)."""
        with self._changed:
            self._generation += 1
            self._changed.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def on_change(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` (in the recording thread, so it must not block) after each change,
        until the returned function is called: how async streams wait without a thread."""
        with self._changed:
            self._listeners.append(listener)

        def remove() -> None:
            with self._changed:
                if listener in self._listeners:
                    self._listeners.remove(listener)
        return remove

    def generation(self) -> int:
        with self._changed:
            return self._generation

    def wait_change(self, seen: int, timeout: float) -> int:
        """Wait until something newer than generation `seen` is recorded, or `timeout`."""
        with self._changed:
            self._changed.wait_for(lambda: self._generation != seen, timeout=timeout)
            return self._generation

    def placement(self, account: Account, project: str) -> Placement:
        return Placement(account=account.name, project=project, mode=self.settings.mode,
                         zone=self.settings.zone, server=self.server_id)

    # -- one deployment per project at a time -----------------------------------------------
    def begin(self, account: Account, project: str, deployment: str) -> None:
        with self._lock:
            current = self._active.get((account.name, project))
            if current is not None:
                raise DeploymentInProgress(
                    f"deployment {current.deployment} of project {project!r} is still running",
                    hint="wait for it to finish (`dockyard compose ps` shows it), then run "
                    "the command again")
            self._active[(account.name, project)] = _Slot(deployment)

    def end(self, account: Account, project: str) -> None:
        with self._lock:
            self._active.pop((account.name, project), None)
        self.notify()

    def deploying_projects(self, account_name: str) -> set[str]:
        """The account's projects with a deployment running now."""
        with self._lock:
            return {project for (owner, project) in self._active if owner == account_name}

    def is_deploying(self, account_name: str, project: str) -> bool:
        with self._lock:
            return (account_name, project) in self._active

    # -- containers stopped on purpose -----------------------------------------------------
    def expect_stop(self, container_id: str) -> None:
        with self._lock:
            self._expected_stops.add(container_id)

    def stop_was_expected(self, container_id: str) -> bool:
        with self._lock:
            return container_id in self._expected_stops

    # -- state changes ------------------------------------------------------------------------
    def record(self, account: Account, deployment: str, service: str, state: ServiceState,
               reason: str) -> ServiceState:
        """Record `service` moving to `state` in `deployment` (a note when it is there already);
        returns the service's state afterwards.

        A move the table forbids is a bug in its caller, never a race: it is not recorded but
        logged as a warning, and in strict mode (`STRICT_TRANSITIONS`, the tests) it raises
        `InvalidTransition`. Races with the engine watcher cannot reach here: its moves go
        through `follow`, which drops the stale ones. One move the table does not list is
        legitimate: a deployment starting a service that an ended deployment left restarting
        (the watcher's PENDING) settles that one first (`_supersede`).
        """
        with self._moves(f"{account.name}\0{service}"):
            current = self.current_state(account, deployment, service)
            if current != state and not can_transition(current, state) and \
                    not self._supersede(account, deployment, service, current, state):
                self._forbidden(deployment, service, current, state, reason)
                return current
            self._add(account, deployment, service, state, reason)
        self.notify()
        return state

    def record_all(self, account: Account, deployment: str, project: str,
                   moves: Sequence[tuple[str, ServiceState, str]]) -> None:
        """`record` for several services of `project` at once, in one write: each move is
        checked as `record` checks it (queued first when the table asks for it; a forbidden
        move is not recorded). For the services a deployment keeps as they are."""
        if not moves:
            return
        with ExitStack() as held:
            for service in sorted({service for service, _, _ in moves}):
                held.enter_context(self._moves(f"{account.name}\0{service}"))
            current = {s.service: s.state for s in self.store.statuses(account, project)}
            now = datetime.now(UTC)
            events: list[ServiceEvent] = []
            for service, state, reason in moves:
                before = current.get(service, ServiceState.NOT_SPECIFIED)
                if before != state and not can_transition(before, state):
                    queued = ServiceState.UPDATE_QUEUED
                    if not can_transition(before, queued) or not can_transition(queued, state):
                        self._forbidden(deployment, service, before, state, reason)
                        continue
                    events.append(ServiceEvent(service=service, state=queued, at=now,
                                               reason="queued", deployment=deployment))
                events.append(ServiceEvent(service=service, state=state, at=now,
                                           reason=reason, deployment=deployment))
            self.store.add_events(account, deployment, events)
        self.notify()

    def follow(self, account: Account, deployment: str, service: str, seen: ServiceState,
               state: ServiceState, reason: str) -> bool:
        """Record a move decided from what the engine showed (the watcher, a late note), only
        while the service is still in state `seen` of `deployment`; whether it was recorded.

        The watcher reads a service's status, then decides. Meanwhile a deployment of the
        project may have begun (`is_deploying` is checked before, not with the write) or
        another event been recorded: the decision is stale, and dropped quietly. That race is
        the only reason a move is dropped without a warning. A move the table forbids from
        `seen` itself is a bug, as in `record`.
        """
        with self._moves(f"{account.name}\0{service}"):
            status = self._status(account, deployment, service)
            if status is None or status.deployment != deployment or status.state is not seen:
                log.debug("stale move of service %s (deployment %s) not recorded: %s -> %s, "
                          "it is now %s", service, deployment, seen.name, state.name,
                          f"{status.state.name} in {status.deployment}" if status else "gone")
                return False
            if seen != state and not can_transition(seen, state):
                self._forbidden(deployment, service, seen, state, reason)
                return False
            self._add(account, deployment, service, state, reason)
        self.notify()
        return True

    def _add(self, account: Account, deployment: str, service: str, state: ServiceState,
             reason: str) -> None:
        self.store.add_event(account, ServiceEvent(
            service=service, state=state, at=datetime.now(UTC), reason=reason,
            deployment=deployment))

    def _supersede(self, account: Account, deployment: str, service: str,
                   current: ServiceState, state: ServiceState) -> bool:
        """A new deployment (`up` starting it, or `down` and scaling to zero taking it away)
        of a service left PENDING by another (its container was restarting when the watcher
        last saw it): settle that one as FAILED first, as the table wants
        (docs/architecture.md, The state machine); then the move is allowed."""
        if state not in NEW_DEPLOYMENT or current is not ServiceState.SERVICE_DEPLOYMENT_PENDING:
            return False
        status = self._status(account, deployment, service)
        if status is None or status.deployment == deployment:
            return False
        self._add(account, status.deployment, service, ServiceState.SERVICE_DEPLOYMENT_FAILED,
                  f"superseded by deployment {deployment}")
        log.info("service %s left PENDING by deployment %s: superseded by deployment %s (%s)",
                 service, status.deployment, deployment, state.name)
        return True

    def _forbidden(self, deployment: str, service: str, current: ServiceState,
                   state: ServiceState, reason: str) -> None:
        log.warning("forbidden state transition not recorded: deployment %s, service %s: "
                    "%s -> %s (%s)", deployment, service, current.name, state.name,
                    reason[:200])
        if self.strict_transitions:
            raise InvalidTransition(current, state, service)

    def _status(self, account: Account, deployment: str, service: str) -> ServiceStatus | None:
        """The service's current status in the project of `deployment` (any deployment's)."""
        record = self.store.deployment(account, deployment)
        if record is None:
            return None
        return next((s for s in self.store.statuses(account, record.project)
                     if s.service == service), None)

    def current_state(self, account: Account, deployment: str, service: str) -> ServiceState:
        found = self.store.service_state(account, deployment, service)
        return ServiceState.NOT_SPECIFIED if found is None else found


def _server_id(data: Path) -> str:
    """This server's id, made once per data directory: the label on everything it creates."""
    path = data / "server-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        data.mkdir(parents=True, exist_ok=True)
        value = secrets.token_hex(6)
        try:  # not a secret (it labels everything the server makes): readable as before
            write_private(path, value + "\n", 0o644, exclusive=True)
        except FileExistsError:  # another server process on this data directory made it first
            return path.read_text().strip()
        return value
