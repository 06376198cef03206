"""`compose restart [SERVICE...]`: services restarted replica by replica, with no failed request.

A restart is a deployment of its own (action `restart`): it is admitted and recorded, holds the
project's slot (no `up` or `down` interleaves with it), and is followed like `up`. It records
the project as it runs (each service's definition and image from the deployment that made it),
so `ps`, recovery and the ingress read the restarted services as before.

Each service, in `depends_on` order and one after the other, moves as any deployment moves it
(docs/architecture.md, The state machine): UPDATE_QUEUED ("restart: ..."), then
SERVICE_DEPLOYMENT_PENDING while its replicas restart, then COMPLETED, or FAILED.

- **Several replicas**: one at a time. A replica leaves the proxy's rotation and its in-flight
  requests drain (the deployer's `_withdraw`, as before a replaced replica stops); the engine
  stops and starts that same container; it is waited for by the deployment's health rules
  (`health.wait_healthy`: its health check, else `GET /` for a public service, else running
  through the stabilization window); it goes back in rotation (`_publish`); then the next one.
  The other replicas serve all along.
- **One replica of a public service** has nobody to serve while it restarts. Decision: it is
  replaced start-first, exactly as the deployer replaces a changed service (`_replace`): a new
  container of the same definition and image starts beside it, becomes healthy and enters the
  rotation, then the old one drains and goes. No request fails; the container is new (its
  environment takes the config values as they are now, and its labels say so).
- **Stop-first services** (host ports, a named volume it writes, `update_config.order:
  stop-first`: `runtime.specs.replacement_order`) never run two copies at once: a single
  replica restarts in place, and is unavailable meanwhile. So is any service when the server
  runs without an ingress (`--no-ingress`): no proxy, no rotation to keep.
- **A replica that does not come back** healthy stops the restart there: it stays out of
  rotation, its service is FAILED with why, and the replicas and services not reached yet are
  left as they run.
- Jobs are not restarted (they ran to completion: `up --force JOB` runs one again), nor
  services with no running container (`up SERVICE` deploys them).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockyard.api_errors import NotFound
from dockyard.compose.models import Project, Service
from dockyard.errors import DockyardError, UsageError
from dockyard.lifecycle import ServiceState
from dockyard.plan import (
    Action,
    ActionKind,
    config_hash,
    config_parts,
    joined_services,
    start_order,
)
from dockyard.runtime.driver import ContainerInfo
from dockyard.runtime.specs import is_job, project_labels, replacement_order
from dockyard.secrets.resolve import configs_digests
from dockyard.selection import check_known
from dockyard.server import retention
from dockyard.server.admission import load_submitted
from dockyard.server.control import ControlPlane
from dockyard.server.deploy_request import DeployRequest
from dockyard.server.deployer import Deployer, ServiceJob
from dockyard.server.health import Outcome
from dockyard.server.image_plan import ImagePlan
from dockyard.server.observe import by_service
from dockyard.server.ps import deployed_model
from dockyard.server.settle import settle_unfinished
from dockyard.store.store import Account

S = ServiceState
log = logging.getLogger("dockyard.server")


@dataclass(frozen=True, slots=True)
class RestartPlan:
    """What a restart will do, decided before it is recorded."""

    project: dict[str, Any]  # the project as it runs: each service from its own deployment
    model: Project  # the same, loaded
    services: tuple[str, ...]  # to restart, in depends_on order
    images: Mapping[str, tuple[str, str, str]]  # service -> (reference, digest, image id)


def start_restart(control: ControlPlane, account: Account, project: str,
                  services: Sequence[str]) -> str:
    """Admit and start a restart of `services` (none: every service with a running,
    long-running container); the restart's deployment id."""
    decided = plan_restart(control, account, project, services)
    with control.admission(account.name):
        deployment = control.store.create_deployment(account, project, "restart",
                                                     decided.project)
        try:
            control.begin(account, project, deployment)
        except DockyardError:
            control.store.finish_deployment(account, deployment, "refused")
            raise
    control.store.record_images(account, deployment, [
        (name, *found) for name, found in sorted(decided.images.items())])
    def work() -> None:
        status = "failed"
        try:
            status = RollingRestart(control, account, deployment, decided).run()
        except Exception as exc:  # the engine failed under it: settle every service
            reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            log.exception("restart %s failed", deployment)
            settle_unfinished(control, account, project, deployment, str(reason))
        finally:
            control.store.finish_deployment(account, deployment, status)
            control.end(account, project)
            retention.after_deployment(control, account, project)

    threading.Thread(target=work, name=f"restart-{deployment}", daemon=True).start()
    return deployment


def plan_restart(control: ControlPlane, account: Account, project: str,
                 services: Sequence[str]) -> RestartPlan:
    """The services to restart and the project they run in, or why not (before anything is
    recorded): an unknown name, a named job, a named service with nothing running."""
    store = control.store
    statuses = {s.service: s for s in store.statuses(account, project)}
    if not statuses:
        raise NotFound(f"project {project!r} has no deployment",
                       hint="`dockyard compose up` deploys it")
    check_known(services, statuses, project)
    running = by_service(control.driver.containers(
        project_labels(control.placement(account, project)), detail=False, fresh=True))
    data: dict[str, Any] = {"name": project, "services": {}}
    images: dict[str, tuple[str, str, str]] = {}
    chosen: list[str] = []
    restartable: dict[str, Service] = {}
    for name, status in sorted(statuses.items()):
        model = deployed_model(control, account, project, status.deployment)
        recorded = store.deployed_project(account, status.deployment) or {}
        definition = (recorded.get("services") or {}).get(name)
        if model is None or name not in model.services or definition is None:
            continue  # a service whose definition is gone (never deployed that far)
        data["services"][name] = definition
        for key in ("volumes", "networks", "secrets", "configs"):
            data.setdefault(key, {}).update(recorded.get(key) or {})
        live = [c for c in running.get(name, []) if c.status == "running"]
        made_by = live[0].deployment if live else status.deployment
        image = store.deployment_images(account, made_by).get(name) or \
            store.deployment_images(account, status.deployment).get(name)
        if image is not None:
            images[name] = image
        why = _not_restartable(model.services[name], live, image is not None, status.state)
        if why is None:
            restartable[name] = model.services[name]
        if why is None and (not services or name in services):
            chosen.append(name)
        elif why is not None and name in services:
            raise UsageError(f"service {name!r} of project {project!r} cannot be restarted: "
                             f"{why}", hint=f"`dockyard compose up --force {name}` deploys it "
                             "again")
    # A service in another's namespaces (`network_mode`/`ipc: service:X`) would keep the
    # namespace X's restarted container left: it is restarted after X.
    while joined := [n for n, s in restartable.items() if n not in chosen
                     and any(x in chosen for _, x in joined_services(s))]:
        chosen += joined
    if not chosen:
        raise UsageError(f"nothing to restart in project {project!r}: no service has a "
                         "running container", hint="`dockyard compose up` deploys it")
    data = {key: value for key, value in data.items() if value}
    model = load_submitted(project, data)
    order = [name for level in start_order(model) for name in level if name in chosen]
    return RestartPlan(data, model, tuple(order), images)


def _not_restartable(service: Service, live: list[ContainerInfo], has_image: bool,
                     state: ServiceState) -> str | None:
    if is_job(service):
        return "it is a job (it ran to completion)"
    if not live:
        return f"no container of it is running ({state.name})"
    if not has_image:
        return "its deployment recorded no image"
    return None


class RollingRestart(Deployer):
    """The restart's worker: the deployer's own steps (drain, health, rotation, start-first
    replacement), applied replica by replica."""

    def __init__(self, control: ControlPlane, account: Account, deployment: str,
                 decided: RestartPlan) -> None:
        configs = control.configs.values(account, decided.model.name)
        super().__init__(control, account, deployment, DeployRequest(
            project=decided.model, builds={}, configs=configs, images=ImagePlan()))
        self.restarting = decided
        for name, (_, digest, _) in decided.images.items():
            self.run_as[name] = digest  # repo@sha256:... or the local image id it runs

    def run(self) -> str:
        running = self._running()
        lives = {name: sorted((c for c in running.get(name, []) if c.status == "running"),
                              key=lambda c: int(c.labels.get("dockyard.replica", "0") or 0))
                 for name in self.restarting.services}
        # The plan `deployments show` prints: one item per service, as a deployment's.
        self.control.store.set_deployment_plan(self.account, self.deployment, [
            {"service": name, "action": "restart", "replicas": len(live),
             "reasons": [self._how(self.project.services[name], live)]}
            for name, live in lives.items()])
        for name, live in lives.items():
            if not self._restart(name, self.project.services[name], live):
                return "failed"
        return "succeeded"

    def _replaced(self, service: Service, live: list[ContainerInfo]) -> bool:
        """A single public replica that may run beside its replacement: replaced instead."""
        return len(live) == 1 and service.is_public and self.control.ingress.enabled and \
            replacement_order(service) == "start-first"

    def _how(self, service: Service, live: list[ContainerInfo]) -> str:
        if self._replaced(service, live):
            return "its one replica is replaced start-first, so that it keeps serving"
        count = len(live)
        return f"{count} replica{'s' if count != 1 else ''}, one at a time"

    def _restart(self, name: str, service: Service, live: list[ContainerInfo]) -> bool:
        self._record(name, S.UPDATE_QUEUED, f"restart: {self._how(service, live)}")
        if self._replaced(service, live):
            progress = self.progress[name]
            self._replace(self._job(name, service, live), progress, fresh=False)
            return progress.ok
        count = len(live)
        plural = "s" if count != 1 else ""
        outcome = Outcome(True, "")
        for index, info in enumerate(live, 1):
            self._record(name, S.SERVICE_DEPLOYMENT_PENDING,
                         f"restarting {info.name} ({index} of {count})")
            outcome = self._restart_one(name, service, info)
            if not outcome.ok:
                others = f"; the other {count - 1} keep running" if count > 1 else ""
                self._record(name, S.SERVICE_DEPLOYMENT_FAILED,
                             f"{info.name} did not come back: {outcome.reason}{others}")
                return False
        self._record(name, S.SERVICE_DEPLOYMENT_COMPLETED,
                     f"restarted {count} replica{plural} one at a time: {outcome.reason}")
        return True

    def _restart_one(self, name: str, service: Service, info: ContainerInfo) -> Outcome:
        """Out of rotation and drained, restarted, healthy, back in rotation."""
        self._withdraw(name, service, [info])
        self.driver.restart(info.id)
        outcome = self._settle(service, [info.id])
        if not outcome.ok:
            return outcome
        fresh = self.driver.inspect(info.id)
        unreachable = self._publish(name, service, [fresh] if fresh is not None else [])
        return Outcome(False, unreachable) if unreachable else outcome

    def _job(self, name: str, service: Service, live: list[ContainerInfo]) -> ServiceJob:
        """The start-first replacement of a single replica: same definition and image."""
        image_id = self.restarting.images[name][2]
        digest = configs_digests(self.control.configs.digest_key, self.project,
                                 self.request.configs).get(name, "")
        action = Action(ActionKind.REPLACE, name, "restart", 1, ("restart",),
                        config_hash(service, image_id, digest),
                        config_parts(service, image_id, digest))
        return ServiceJob(name, service, action, image_id, live)
