"""`ps`: each service's recorded state, its names and endpoints, and what runs now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dockyard.compose.models import Project
from dockyard.errors import DockyardError
from dockyard.ingress.routes import custom_hosts, hosts_table
from dockyard.lifecycle import ServiceState
from dockyard.naming import public_domain, sanitize_label, service_fqdn
from dockyard.runtime.driver import ContainerInfo
from dockyard.runtime.specs import project_labels
from dockyard.server.admission import load_submitted
from dockyard.server.control import ControlPlane
from dockyard.store.store import Account
from dockyard.wire_models import ServiceStatus

S = ServiceState


@dataclass(frozen=True, slots=True)
class ServiceRow:
    service: str
    deployment: str
    state: ServiceState
    reason: str
    since: datetime
    fqdn: str
    endpoints: tuple[str, ...]
    replicas: int
    running: int
    exposure: str
    image: str = ""  # what its containers run: repo@sha256:... (or the image id, local)
    nodes: tuple[str, ...] = ()  # where its replicas run (a multi-node driver)
    pinned_node: str = ""  # the node its named volume keeps it on (a multi-node driver)

    def to_wire(self) -> ServiceStatus:
        return ServiceStatus(
            service=self.service, deployment=self.deployment, state=self.state.name,
            state_number=int(self.state), reason=self.reason, since=self.since.isoformat(),
            fqdn=self.fqdn, endpoint=self.endpoints[0] if self.endpoints else "",
            endpoints=list(self.endpoints), replicas=self.replicas, running=self.running,
            exposure=self.exposure, image=self.image, nodes=list(self.nodes),
            pinned_node=self.pinned_node)


def services(control: ControlPlane, account: Account, project: str) -> list[ServiceRow]:
    """`ps`: each service's recorded state, its names, and what runs now."""
    statuses = control.store.statuses(account, project)
    if not statuses:
        return []
    placement = control.placement(account, project)
    containers = control.driver.containers(project_labels(placement), detail=False)
    # On a shared server a custom domain is an endpoint only once proven and served; the
    # service's reason says why one is not (docs/security.md).
    served = set(hosts_table(control.ingress.table())) if control.settings.playground else None
    recorded: dict[str, dict[str, tuple[str, str, str]]] = {}  # deployment -> its images
    rows: list[ServiceRow] = []
    by_service: dict[str, list[ContainerInfo]] = {}  # in the engine's order, as before
    for container in containers:
        by_service.setdefault(container.service, []).append(container)
    for status in statuses:
        model = deployed_model(control, account, project, status.deployment)
        service = model.services.get(status.service) if model else None
        mine = by_service.get(status.service, [])
        running = len([c for c in mine if c.status == "running"])
        state, reason = status.state, status.reason
        if state is S.SERVICE_DEPLOYMENT_COMPLETED and mine and not mine[0].is_job \
                and running == 0 and not control.is_deploying(account.name, project):
            state, reason = S.SERVICE_DEPLOYMENT_FAILED, "no container is running"
        fqdn, exposure = "", "private"
        endpoints: tuple[str, ...] = ()
        if service is not None:
            settings = control.settings
            if service.is_public:
                exposure = "public"
                fqdn = service_fqdn(settings.mode, username=account.name, project=project,
                                    service=service.name, zone=settings.zone)
                suffix = "" if settings.https_port in (443, 0) else f":{settings.https_port}"
                endpoints = tuple(
                    "https://" + public_domain(settings.mode, username=account.name,
                                               project=project, service=service.name,
                                               port=p.target, zone=settings.zone) + suffix
                    for p in service.ingress_ports)
                endpoints += tuple(f"https://{host}{suffix}" for host in custom_hosts(service)
                                   if served is None or host in served)
            elif "provider" not in service.extra:  # a provider has no container, no name
                fqdn = f"{sanitize_label(service.name)}.{sanitize_label(project)}.internal"
            if service.host_ports:
                exposure = "public" if service.is_public else "host"
                # On a Swarm, host ports are published on the nodes running the replicas.
                hosts = sorted({port.partition("->")[0].rpartition(":")[0]
                                for c in mine if c.node for port in c.host_ports}) \
                    or [_advertised_host(control)]
                endpoints += tuple(f"{host}:{p.published or p.target}"
                                   for p in service.host_ports for host in hosts)
        replicas = len(mine) if not service or "provider" in service.extra \
            else _desired(service, max(1, len(mine)))  # global: the nodes it was placed on
        # The image the containers run: recorded by the deployment that created them.
        made_by = mine[0].deployment if mine else status.deployment
        if made_by not in recorded:
            recorded[made_by] = control.store.deployment_images(account, made_by)
        image = recorded[made_by].get(status.service, ("", "", ""))[1]
        nodes = tuple(sorted({c.node for c in mine if c.node and c.status == "running"}))
        pinned = next((c.pinned_node for c in mine if c.pinned_node), "")
        rows.append(ServiceRow(status.service, status.deployment, state, reason, status.at,
                               fqdn, endpoints, replicas, running, exposure, image, nodes,
                               pinned))
    return rows


def _desired(service: Any, nodes: int) -> int:
    from dockyard.plan import desired_replicas

    return desired_replicas(service, nodes)


def _advertised_host(control: ControlPlane) -> str:
    host = control.settings.host
    return "localhost" if host in ("127.0.0.1", "0.0.0.0", "::", "::1", "") else host


def deployed_model(control: ControlPlane, account: Account, project: str,
                   deployment: str) -> Project | None:
    """The project a deployment deployed, loaded once (a deployment never changes)."""
    cache = control.models
    key = (account.id, deployment)
    with control.models_lock:
        if key in cache:
            found: Project | None = cache[key]
            return found
    data = control.store.deployed_project(account, deployment)
    model: Project | None = None
    if data:
        try:
            model = load_submitted(project, data)
        except DockyardError:
            model = None
    remember_model(control, account, deployment, model)
    return model


def remember_model(control: ControlPlane, account: Account, deployment: str,
                   model: Project | None) -> None:
    """Keep the project `deployment` deployed (a deployment never changes): a deployment
    gives the one it loaded at admission, so the first `ps` after it need not load it again."""
    with control.models_lock:
        if len(control.models) > 256:
            control.models.clear()
        control.models[(account.id, deployment)] = model


