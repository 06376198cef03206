"""What the pages show, read through the server's own functions (the API's answers, as the
same account sees them): `compose ls`, `ps` with each service's health, the deployment
history with its timelines, and config names. Nothing here reads a config's value."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dockyard.api_errors import NotFound
from dockyard.lifecycle import ServiceState
from dockyard.runtime.specs import project_labels
from dockyard.server import ps
from dockyard.server.control import ControlPlane
from dockyard.server.routes.common import deployment_of, project_exists
from dockyard.store.store import Account, DeploymentRecord, ProjectOverview, StoredEvent

S = ServiceState
DONE = S.SERVICE_DEPLOYMENT_COMPLETED
BAD = frozenset({S.SERVICE_DEPLOYMENT_FAILED, S.BUILD_FAILED})
HISTORY_SHOWN = 50


def tone(state: ServiceState | str) -> str:
    """A state's colour class: ok, bad, off (scaled in, nothing yet) or busy."""
    found = state if isinstance(state, ServiceState) else ServiceState[state]
    if found is DONE:
        return "ok"
    if found in BAD:
        return "bad"
    if found in (S.DEPLOYMENT_SCALED_IN, S.NOT_SPECIFIED):
        return "off"
    return "busy"


@dataclass(frozen=True)
class ServiceView:
    row: ps.ServiceRow
    health: str  # "2/2 healthy", "1 unhealthy, 1 starting", "no healthcheck", ...

    @property
    def tone(self) -> str:
        return tone(self.row.state)

    @property
    def links(self) -> list[tuple[str, str]]:
        """(href, text) of each endpoint: an ingress URL as it is, a host port over HTTP."""
        return [(e if "://" in e else f"http://{e}", e) for e in self.row.endpoints]


def projects(control: ControlPlane, who: Account) -> list[ProjectOverview]:
    """`compose ls`: each project, its latest deployment and its services by state."""
    return control.store.project_overviews(who)


def services(control: ControlPlane, who: Account, project: str) -> list[ServiceView]:
    """`ps`, with each service's health from what its containers report (one engine call)."""
    rows = ps.services(control, who, project)
    if not rows:
        return []
    found = control.driver.containers(project_labels(control.placement(who, project)),
                                      detail=False)
    health: dict[str, Counter[str]] = {}
    for info in found:
        if info.status == "running":
            health.setdefault(info.service, Counter())[info.health or "none"] += 1
    return [ServiceView(row, health_text(health.get(row.service, Counter()), row))
            for row in rows]


@dataclass(frozen=True)
class ProjectView:
    """What the project page shows, live: its services and its latest deployment."""

    services: list[ServiceView]
    latest: DeploymentRecord | None


def project(control: ControlPlane, who: Account, project: str) -> ProjectView:
    """A project of the account (404 otherwise): `ps` and its latest deployment."""
    project_exists(control, who, project)
    latest = control.store.deployments(who, project, limit=1)
    return ProjectView(services(control, who, project), latest[0] if latest else None)


def health_text(counts: Counter[str], row: ps.ServiceRow) -> str:
    if not counts:
        if row.state is DONE:  # completed with nothing running: a job that finished (ps)
            return "finished (a job)"
        return "not running" if row.state is not S.DEPLOYMENT_SCALED_IN else "scaled in"
    if set(counts) == {"none"}:
        return f"{counts['none']} running, no healthcheck"
    parts = [f"{n} {kind}" for kind, n in sorted(counts.items()) if kind != "none"]
    if counts.get("none"):
        parts.append(f"{counts['none']} without healthcheck")
    if list(counts) == ["healthy"]:
        return f"{counts['healthy']}/{row.replicas} healthy"
    return ", ".join(parts)


@dataclass(frozen=True)
class DeploymentView:
    record: DeploymentRecord
    services: list[str]
    events: list[StoredEvent] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # record (who, git), configs, plan
    images: dict[str, tuple[str, str, str]] = field(default_factory=dict)

    @property
    def outcome(self) -> dict[str, ServiceState]:
        """Each service's last state in this deployment."""
        return {e.event.service: e.event.state for e in self.events}

    @property
    def duration(self) -> str:
        end = self.record.finished_at
        if end is None:
            return ""
        return _span(self.record.created_at, end)


def _span(start: datetime, end: datetime) -> str:
    seconds = max(0, int((end - start).total_seconds()))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def history(control: ControlPlane, who: Account, project: str) -> list[DeploymentView]:
    """The project's deployments, newest first, with each one's services."""
    project_exists(control, who, project)
    out = []
    for record in control.store.deployments(who, project, limit=HISTORY_SHOWN):
        data = control.store.deployed_project(who, record.id) or {}
        out.append(DeploymentView(record, sorted((data.get("services") or {}).keys())))
    return out


def deployment(control: ControlPlane, who: Account, project: str,
               deployment_id: str) -> DeploymentView:
    """One deployment of `project` with its timeline, images and record (404 otherwise)."""
    record = deployment_of(control, who, deployment_id)
    if record.project != project:
        raise NotFound(f"project {project!r} has no deployment {deployment_id!r}",
                       hint="the project's Deployments page lists them")
    store = control.store
    data = store.deployed_project(who, record.id) or {}
    facts = store.deployment_facts(who, record.id)
    return DeploymentView(record, sorted((data.get("services") or {}).keys()),
                          store.events_since(who, record.id),
                          {"record": facts.record, "configs": facts.configs,
                           "plan": facts.plan or []},
                          store.deployment_images(who, record.id))


def config_names(control: ControlPlane, who: Account, project: str
                 ) -> list[tuple[str, datetime]]:
    """Names and when each was set: never a value."""
    project_exists(control, who, project)
    return control.configs.names(who, project)
