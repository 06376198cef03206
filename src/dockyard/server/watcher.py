"""After a deployment, a service's state keeps following the engine.

Why: docs/architecture.md, The state machine.

One thread reads the engine's container events. Outside a deployment of its project (which
records its own states), a long-running service's container that dies moves the service from
COMPLETED to PENDING (the engine restarts it) or FAILED (no restart policy); dying again before
it is stable again is a crash loop: FAILED. A container that starts again and keeps running
through the stabilization window, or whose health check passes again, brings it back to
COMPLETED. Jobs exit by design and are ignored; so are containers the server stops itself.

Each move is decided from the status read when the event came, and recorded with
`ControlPlane.follow`: only if the service is still in that state of that deployment. A
deployment of the project may begin between the `is_deploying` check and the write, and
record its own events; the watcher's decision is then stale, a race and not a bug, and it is
dropped quietly (never a forbidden transition, never a strict-mode failure).
"""

from __future__ import annotations

import logging
import threading
import time

from dockyard.errors import DockyardError
from dockyard.lifecycle import ServiceState
from dockyard.runtime.driver import (
    LABEL_ACCOUNT,
    LABEL_DEPLOYMENT,
    LABEL_MANAGED,
    LABEL_PROJECT,
    LABEL_SERVICE,
    EngineEvent,
)
from dockyard.runtime.specs import server_labels
from dockyard.server.control import ControlPlane
from dockyard.server.engine_events import EngineEvents

S = ServiceState
log = logging.getLogger("dockyard.server")


class Watcher:
    def __init__(self, control: ControlPlane) -> None:
        self.control = control
        self.thread = threading.Thread(target=self._loop, name="engine-watcher", daemon=True)

    def start(self) -> None:
        self.control.engine_events = EngineEvents()
        self.thread.start()

    def _loop(self) -> None:
        while not self.control.shutting_down.is_set():
            try:
                for event in self.control.driver.events(server_labels(self.control.server_id)):
                    try:
                        self.handle(event)
                    except DockyardError as exc:
                        log.warning("engine event not followed: %s", exc.message)
            except DockyardError as exc:
                log.warning("engine events interrupted (%s); retrying", exc.message)
                time.sleep(1.0)
            finally:  # whoever waits on an event may have lost it: let them look again
                if self.control.engine_events is not None:
                    self.control.engine_events.wake_all()

    def handle(self, event: EngineEvent) -> None:
        if self.control.engine_events is not None:
            self.control.engine_events.saw(event.container_id)
        ingress = self.control.ingress
        if ingress.is_member(event.container_id):
            # Where it runs now: a Swarm may have moved it to another node and port, which
            # the engine may only report by the time its health check passes.
            info = self.control.driver.inspect(event.container_id) \
                if event.action == "start" or event.action.endswith(": healthy") else None
            ingress.container_event(event, info)
        labels = event.labels
        account_name = labels.get(LABEL_ACCOUNT)
        project = labels.get(LABEL_PROJECT)
        service = labels.get(LABEL_SERVICE)
        if not (account_name and project and service) or labels.get("dockyard.job") == "true":
            return
        if self.control.is_deploying(account_name, project):
            return
        if self.control.stop_was_expected(event.container_id):
            return
        store = self.control.store
        account = store.account_by_name(account_name)
        if account is None:
            return
        status = next((s for s in store.statuses(account, project) if s.service == service),
                      None)
        if status is None:
            return
        deployment = status.deployment
        name = labels.get("name", event.container_id[:12])
        if event.action == "die":
            code = event.exit_code if event.exit_code is not None else "?"
            if status.state is S.SERVICE_DEPLOYMENT_COMPLETED:
                info = self.control.driver.inspect(event.container_id)
                restarts = labels.get(LABEL_DEPLOYMENT) is not None and info is not None \
                    and info.status in ("restarting", "running")
                lost = event.lost or (info.lost if info is not None else "")
                state = S.SERVICE_DEPLOYMENT_PENDING if restarts or lost or self._restarts(
                    event.container_id) else S.SERVICE_DEPLOYMENT_FAILED
                verb = "the engine restarts it" if state is S.SERVICE_DEPLOYMENT_PENDING \
                    else "it is not restarted"
                why = f"container {name} exited with code {code}; {verb}"
                if lost:  # a lost or drained node (Swarm): not a crash
                    why = f"{lost}; {name} is rescheduled on another node"
                self.control.follow(account, deployment, service, status.state, state, why)
            elif status.state is S.SERVICE_DEPLOYMENT_PENDING and not event.lost \
                    and not self._lost(event):
                self.control.follow(account, deployment, service, status.state,
                                    S.SERVICE_DEPLOYMENT_FAILED, f"crash loop: container "
                                    f"{name} exited again with code {code}")
        elif event.action == "start" and status.state in (S.SERVICE_DEPLOYMENT_PENDING,
                                                          S.SERVICE_DEPLOYMENT_FAILED):
            threading.Thread(target=self._confirm, args=(account_name, project, service,
                                                         event.container_id),
                             daemon=True).start()
        elif event.action.startswith("health_status"):
            healthy = event.action.endswith("healthy") and "unhealthy" not in event.action
            if healthy and status.state in (S.SERVICE_DEPLOYMENT_FAILED,
                                            S.SERVICE_DEPLOYMENT_PENDING):
                self.control.follow(account, deployment, service, status.state,
                                    S.SERVICE_DEPLOYMENT_COMPLETED, "the health check passes "
                                    "again")
            elif not healthy and status.state is S.SERVICE_DEPLOYMENT_COMPLETED:
                self.control.follow(account, deployment, service, status.state,
                                    S.SERVICE_DEPLOYMENT_FAILED,
                                    f"the health check of {name} fails")

    def _lost(self, event: EngineEvent) -> bool:
        """Whether a replica died with its node (Swarm reschedules it): not a crash loop."""
        info = self.control.driver.inspect(event.container_id)
        return info is not None and bool(info.lost)

    def _restarts(self, container_id: str) -> bool:
        info = self.control.driver.inspect(container_id)
        return info is not None and info.labels.get(LABEL_MANAGED) == "true" and \
            info.status in ("restarting", "running")

    def _confirm(self, account_name: str, project: str, service: str,
                 container_id: str) -> None:
        """Back to COMPLETED if the restarted container stays up through the window."""
        driver = self.control.driver
        before = driver.inspect(container_id)
        time.sleep(self.control.settings.stabilization_seconds)
        after = driver.inspect(container_id)
        if before is None or after is None or after.status != "running" \
                or after.restart_count != before.restart_count:
            return
        if after.health not in (None, "healthy"):
            return  # the health_status event decides
        store = self.control.store
        account = store.account_by_name(account_name)
        if account is None or self.control.is_deploying(account_name, project):
            return
        status = next((s for s in store.statuses(account, project) if s.service == service),
                      None)
        # From PENDING or FAILED it recovers; in COMPLETED (a health check passed meanwhile)
        # it is a note. Any other state is a deployment's own, begun meanwhile: not ours.
        if status is not None and status.state in (S.SERVICE_DEPLOYMENT_PENDING,
                                                   S.SERVICE_DEPLOYMENT_FAILED,
                                                   S.SERVICE_DEPLOYMENT_COMPLETED):
            self.control.follow(account, status.deployment, service, status.state,
                                S.SERVICE_DEPLOYMENT_COMPLETED,
                                f"container {after.name} is running again")
