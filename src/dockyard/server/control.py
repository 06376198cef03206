"""The control plane's shared parts: store, driver, settings, and who is deploying what.

One `ControlPlane` lives in the server. Deployments of one project never interleave: `begin`
takes the project's slot or refuses (`DeploymentInProgress`), `end` frees it. Containers the
server stops on purpose are remembered so the engine watcher does not take their exit for a
crash.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockyard.errors import DockyardError
from dockyard.files import write_private
from dockyard.lifecycle import ServiceEvent, ServiceState, can_transition
from dockyard.runtime.driver import Driver
from dockyard.runtime.egress import EgressGuard
from dockyard.runtime.specs import Placement
from dockyard.secrets.crypto import ConfigCipher
from dockyard.server.configs import Configs
from dockyard.server.contexts import ContextStore
from dockyard.server.ingress import Ingress
from dockyard.server.puller import Puller
from dockyard.server.registry_auth import RegistryCredentials
from dockyard.server.settings import ServerSettings
from dockyard.store.store import Account, Store


class DeploymentInProgress(DockyardError):
    """Another deployment of the same project is running."""


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
        self.configs = Configs(store, ConfigCipher.load_or_create(settings.data),
                               settings.limits.projects if settings.limits else 0)
        self.registries = RegistryCredentials(store, self.configs.cipher, driver)

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
        """Record `service` moving to `state`, unless the table forbids it.

        A move the table does not list is dropped rather than recorded (the watcher can race a
        deployment's own events); a note in the same state is recorded as an event.
        """
        current = self.current_state(account, deployment, service)
        if current != state and not can_transition(current, state):
            return current
        self.store.add_event(account, ServiceEvent(
            service=service, state=state, at=datetime.now(UTC), reason=reason,
            deployment=deployment))
        self.notify()
        return state

    def current_state(self, account: Account, deployment: str, service: str) -> ServiceState:
        record = self.store.deployment(account, deployment)
        if record is None:
            return ServiceState.NOT_SPECIFIED
        for status in self.store.statuses(account, record.project):
            if status.service == service:
                return status.state
        return ServiceState.NOT_SPECIFIED


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
