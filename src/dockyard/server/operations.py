"""What the API does, as functions of the control plane: the HTTP layer only translates.

A deployment is checked completely before anything is touched (docs/architecture.md, How a
deployment runs): the project is loaded and validated again on the server (the client may be
anything), every image it does not build must be on the engine (there may be no registry to pull
from), every build context must have been uploaded, every config it references must exist. Only then
is a deployment recorded and its worker started.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from dockyard.compose import LoadOptions, load_project
from dockyard.compose.models import Project
from dockyard.diagnostics import Diagnostic, Location, error
from dockyard.errors import DockyardError, ProjectInvalid
from dockyard.ingress.routes import (
    check_custom_hosts,
    custom_hosts,
    host_conflicts,
    hosts_table,
    project_routes,
    route_prefix,
)
from dockyard.lifecycle import ServiceState
from dockyard.naming import public_domain, sanitize_label, service_fqdn
from dockyard.runtime.driver import (
    LABEL_DEPLOYMENT,
    LABEL_SERVICE,
    ContainerInfo,
)
from dockyard.runtime.specs import (
    network_name,
    project_labels,
    service_labels,
)
from dockyard.secrets.resolve import missing_configs
from dockyard.server import retention
from dockyard.server.control import ControlPlane
from dockyard.server.deploy_request import BuildInput, DeployRequest
from dockyard.server.deployer import Deployer
from dockyard.server.domain_reports import claim_project_domains
from dockyard.server.image_plan import ImagePlan, plan_images
from dockyard.server.legacy import is_legacy, remove_legacy_network
from dockyard.server.project_size import check_project_size
from dockyard.server.scrub import scrub_engine_text
from dockyard.server.secret_files import remove_project_secrets
from dockyard.store.store import Account
from dockyard.wire import check_wire

S = ServiceState
log = logging.getLogger("dockyard.server")


class NotFound(DockyardError):
    """Something the account does not have (or that does not exist: the same answer)."""


def load_submitted(name: str, data: Mapping[str, Any]) -> Project:
    """The project a client sent, checked as the wire format (`dockyard.wire`: no key that
    names a path), then loaded and validated again as a Compose file of its own.

    Every profile is active: the client already chose the services (a service it sent is one
    its profiles enabled). Nothing is interpolated from the server's environment.
    """
    refused = check_wire(data)
    if refused:
        raise ProjectInvalid(refused)
    with tempfile.TemporaryDirectory(prefix="dockyard-project-") as directory:
        path = Path(directory) / "compose.json"
        path.write_text(json.dumps(dict(data)))
        try:
            result = load_project(LoadOptions(working_dir=directory, files=(str(path),),
                                              project_name=name, profiles=("*",), environ={}))
        except ProjectInvalid as exc:  # the server's temporary path is nobody else's business
            raise ProjectInvalid([_without_file(d, directory) for d in exc.diagnostics]) \
                from None
    return result.project


def _without_file(diagnostic: Diagnostic, directory: str) -> Diagnostic:
    """`diagnostic` located by its key path only: the file was the server's temporary copy
    in `directory`, which no message may show either."""
    where = dataclasses.replace(diagnostic.location, file=None, line=None)
    return dataclasses.replace(
        diagnostic, location=where,
        message=diagnostic.message.replace(directory, "<project>"),
        hint=diagnostic.hint.replace(directory, "<project>") if diagnostic.hint else None)


def _problem(code: str, message: str, service: str, key: str, hint: str) -> Diagnostic:
    return error(code, message, Location(path=f"services.{service}.{key}"), hint)


def check_request(control: ControlPlane, project: Project,
                  builds: Mapping[str, BuildInput], configs: Mapping[str, str],
                  account: str | None = None, *, pull: str | None = None,
                  rebuild: bool = False, pins: Mapping[str, str] | None = None) -> ImagePlan:
    """Everything that would fail the deployment later, found now (raises ProjectInvalid);
    returns what each service runs and what to pull (`image_plan`)."""
    problems: list[Diagnostic] = _domain_problems(control, project, account)
    problems += _external_problems(control, project)
    problems += _limit_problems(control, project, account)
    for name, service in sorted(project.services.items()):
        if service.build is not None and name not in (pins or {}):
            build = builds.get(name)
            if build is None:
                problems.append(_problem("context-missing", "no build context was sent",
                                         name, "build", "use `dockyard compose up`, which "
                                         "uploads it"))
            elif not control.contexts.has(build.digest, None if account is None else
                                          _owner_of(control, account)):
                problems.append(_problem("context-missing", f"build context {build.digest} "
                                         "was not uploaded", name, "build",
                                         "run `dockyard compose up` again"))
    # Images: on the engine or pulled (the registry asked now, with the account's access); on a
    # playground server also the account's to use (the Dockerfiles of its builds included).
    owner = control.store.account_by_name(account) if account is not None else None
    images, image_problems = plan_images(
        control, project, builds, owner,
        None if account is None else _owner_of(control, account), pull=pull, rebuild=rebuild,
        pins=pins)
    problems += image_problems
    for config, users in missing_configs(project, configs).items():
        where = "environment" if config in _env_configs(project, users[0]) else "secrets"
        problems.append(error(
            "config-missing", f"config {config!r} is not set (needed by "
            f"{', '.join(users)})", Location(path=f"services.{users[0]}.{where}"),
            f"set it with `dockyard config set {config}` (in this project's directory, or "
            f"with -p {project.name})"))
    if problems:
        raise ProjectInvalid(problems)
    return images


def _external_problems(control: ControlPlane, project: Project) -> list[Diagnostic]:
    """On a shared server, no `external` volume or network: an external name could be any
    object on the engine, another tenant's data included. (A single user's server may use
    its own: their ownership is theirs to judge.)"""
    if not control.settings.playground:
        return []
    problems: list[Diagnostic] = []
    for kind, resources in (("volumes", project.volumes), ("networks", project.networks)):
        for name, resource in sorted(resources.items()):
            if resource.external:
                problems.append(error(
                    "external-refused", f"{kind[:-1]} {name!r} is external: a shared server "
                    "does not attach objects it did not create for this project",
                    Location(path=f"{kind}.{name}.external"),
                    f"remove `external: true`; the server creates the project's own {kind}"))
    return problems


def _limit_problems(control: ControlPlane, project: Project,
                    account: str | None) -> list[Diagnostic]:
    """What the account may deploy here (playground limits, and what its containers may take
    from the host: `server.containment`), checked before anything starts."""
    from dockyard.plan import desired_replicas
    from dockyard.server.containment import (
        host_port_problems,
        logging_problems,
        pids_problems,
    )

    settings = control.settings
    problems: list[Diagnostic] = logging_problems(project, playground=settings.playground)
    if settings.playground:
        problems += host_port_problems(project, settings.allow_host_ports.get(account or ""))
    limits = settings.limits
    if limits is None:
        return problems
    problems += pids_problems(project, limits.pids)
    hint = "ask the server's operator for higher limits, or deploy less"
    if limits.projects and account is not None:
        owner = control.store.account_by_name(account)
        # Deployed (services recorded) or being admitted/deployed now: the caller holds the
        # account's admission lock, so concurrent requests are counted one after another.
        counted = set(control.store.projects_deployed(owner) if owner else []) | \
            control.deploying_projects(account)
        others = sorted(counted - {project.name})
        if len(others) >= limits.projects:
            problems.append(error(
                "limit-exceeded", f"the account may have {limits.projects} project"
                f"{'s' if limits.projects != 1 else ''} deployed here and has: "
                f"{', '.join(sorted(others))}", Location(path="name"),
                "take one down first (`dockyard compose down -p NAME`)"))
    if limits.services and len(project.services) > limits.services:
        problems.append(error("limit-exceeded", f"the project has {len(project.services)} "
                              f"services; at most {limits.services} are allowed here",
                              Location(path="services"), hint))
    for name, service in sorted(project.services.items()):
        replicas = desired_replicas(service)
        if limits.replicas and replicas > limits.replicas:
            problems.append(_problem("limit-exceeded", f"{replicas} replicas; at most "
                                     f"{limits.replicas} allowed here", name, "deploy.replicas",
                                     hint))
        for kind in ("limits", "reservations"):
            spec = getattr(service.deploy, kind) if service.deploy else None
            if spec is None:
                continue
            if limits.cpus and spec.cpus and spec.cpus > limits.cpus:
                problems.append(_problem("limit-exceeded", f"{spec.cpus:g} CPUs; at most "
                                         f"{limits.cpus:g} allowed here", name,
                                         f"deploy.resources.{kind}.cpus", hint))
            if limits.memory and spec.memory and spec.memory > limits.memory:
                problems.append(_problem("limit-exceeded", f"{spec.memory} bytes of memory; "
                                         f"at most {limits.memory} allowed here", name,
                                         f"deploy.resources.{kind}.memory", hint))
    return problems


def _owner_of(control: ControlPlane, account: str) -> str:
    found = control.store.account_by_name(account)
    return str(found.id) if found else "-"


def _env_configs(project: Project, service: str) -> list[str]:
    from dockyard.compose.interpolation import config_references

    names: list[str] = []
    for key, value in project.services[service].environment.items():
        names += [key] if value is None else config_references(value)
    return names


def _domain_problems(control: ControlPlane, project: Project,
                     account: str | None) -> list[Diagnostic]:
    """Custom domains that cannot be served, and hosts another route already serves.

    Only domains being served count as taken: a claim that is not proven (playground) holds
    nothing, so a tenant cannot squat on another's domain by naming it first.
    """
    settings = control.settings
    problems = [_problem("domain-invalid", f"{p.host!r} {p.message}", p.service, "domainname",
                         "use a domain name outside the server's zone (its names are "
                         "generated), or remove it")
                for p in check_custom_hosts(settings.mode, settings.zone, project)]
    if account is None:
        return problems
    mine = project_routes(settings.mode, settings.zone, account, project)
    own = route_prefix(account, project.name)
    others = {k: r for k, r in control.ingress.table().items() if not k.startswith(own)}
    taken = hosts_table(others)
    for host, first, second in host_conflicts(mine):
        problems.append(_problem("domain-taken", f"{host!r} is claimed by two services "
                                 f"({first.split('/')[2]} and {second.split('/')[2]})",
                                 second.split("/")[2], "domainname",
                                 "give each service its own domain"))
    for route in mine:
        for host in route.hosts:
            if host in taken:
                problems.append(_problem(
                    "domain-taken", f"{host!r} is already served by another project",
                    route.key.split("/")[2], "domainname",
                    "choose another domain, or take it down from the project that serves it"))
    return problems


def start_deployment(control: ControlPlane, account: Account, project_name: str,
                     project_data: Mapping[str, Any], builds: Mapping[str, BuildInput], *,
                     force: bool, rebuild: bool, pull: str | None = None,
                     pins: Mapping[str, str] | None = None, action: str = "up") -> str:
    check_project_size(project_data, control.settings.max_project_bytes)
    project = load_submitted(project_name, project_data)
    configs = control.configs.values(account, project.name)
    # Admission is atomic per account: checking the limits and taking the project's slot
    # happen under one lock, so concurrent requests cannot all pass a limit of one.
    with control.admission(account.name):
        images = check_request(control, project, builds, configs, account.name, pull=pull,
                               rebuild=rebuild, pins=pins)
        # Playground: a custom domain is served once proven to point here. Proofs start only
        # for an admitted request, before its deployment is recorded (they note their outcome
        # in the reason of the deployment after the latest one), and run beside it.
        claim_project_domains(control, account.name, project)
        # The project's network first: refused here, before a deployment is recorded, when
        # the name is taken by an object this server, account and project did not make.
        placement = control.placement(account, project.name)
        control.driver.ensure_network(network_name(placement), project_labels(placement))
        deployment = control.store.create_deployment(account, project.name, action,
                                                     dict(project_data),
                                                     [b.digest for b in builds.values()])
        try:
            control.begin(account, project.name, deployment)
        except DockyardError:
            control.store.finish_deployment(account, deployment, "refused")
            raise
    request = DeployRequest(project=project, builds=builds, force=force, rebuild=rebuild,
                            configs=configs, images=images, pins=dict(pins or {}))

    def work() -> None:
        status = "failed"
        try:
            status = Deployer(control, account, deployment, request).run()
        except Exception as exc:  # the engine failed under the deployment: settle every service
            reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            log.exception("deployment %s failed", deployment)
            settle_unfinished(control, account, project.name, deployment, str(reason))
        finally:
            control.store.finish_deployment(account, deployment, status)
            control.end(account, project.name)
            retention.after_deployment(control, account, project.name)

    threading.Thread(target=work, name=f"deployment-{deployment}", daemon=True).start()
    return deployment


def start_redeploy(control: ControlPlane, account: Account, deployment_id: str, *,
                   pull: str | None = None) -> str:
    """Deploy again exactly what a recorded deployment ran: its project, and each service's
    image by the digest (or local image id) it recorded, never by a tag that may have moved
    since. Builds are not run again. Refused before anything changes when the deployment
    recorded no image for a service, or an image is gone (not on the engine, in no registry).
    """
    record = control.store.deployment(account, deployment_id)
    data = control.store.deployed_project(account, deployment_id) if record else None
    if record is None or data is None:
        raise NotFound(f"no deployment {deployment_id!r}",
                       hint="`dockyard deployments` lists them")
    recorded = control.store.deployment_images(account, deployment_id)
    services = sorted((data.get("services") or {}).keys())
    missing = [name for name in services if name not in recorded]
    if missing:
        raise ProjectInvalid([error(
            "image-missing", f"deployment {deployment_id} recorded no image for service "
            f"{name} (it never got that far), so it cannot be redeployed exactly",
            Location(path=f"services.{name}.image"),
            "redeploy a deployment that succeeded (`dockyard deployments` lists them)")
            for name in missing])
    pins = {name: recorded[name][1] for name in services}
    return start_deployment(control, account, record.project, data, {}, force=False,
                            rebuild=False, pull=pull, pins=pins, action="redeploy")


def settle_unfinished(control: ControlPlane, account: Account, project: str, deployment: str,
                      reason: str) -> None:
    """Every service `deployment` left in flight, failed with `reason`."""
    from dockyard.lifecycle import BUILD_STATES, TERMINAL

    for status in control.store.statuses(account, project):
        if status.deployment == deployment and status.state not in TERMINAL:
            failed = S.BUILD_FAILED if status.state in BUILD_STATES else \
                S.SERVICE_DEPLOYMENT_FAILED
            control.record(account, deployment, status.service, failed, reason)


def start_down(control: ControlPlane, account: Account, project_name: str, *,
               volumes: bool) -> str:
    latest = _latest_project(control, account, project_name)
    if latest is None and not control.driver.containers(
            project_labels(control.placement(account, project_name))):
        raise NotFound(f"project {project_name!r} has no deployment",
                       hint="`dockyard deployments` lists what was deployed")
    # A down records which services it took down, not another copy of the project; a down
    # refused because a deployment runs is finished as refused at once (never left running).
    outline = {"name": project_name,
               "services": {name: {} for name in (latest or {}).get("services") or {}}}
    with control.admission(account.name):
        deployment = control.store.create_deployment(account, project_name, "down", outline)
        try:
            control.begin(account, project_name, deployment)
        except DockyardError:
            control.store.finish_deployment(account, deployment, "refused")
            raise

    def work() -> None:
        status = "failed"
        try:
            status = "succeeded" if _down(control, account, project_name, deployment,
                                          volumes) else "failed"
        finally:
            control.store.finish_deployment(account, deployment, status)
            control.end(account, project_name)
            retention.after_deployment(control, account, project_name)

    threading.Thread(target=work, name=f"down-{deployment}", daemon=True).start()
    return deployment


def _latest_project(control: ControlPlane, account: Account,
                    project: str) -> dict[str, Any] | None:
    for record in control.store.deployments(account, project, limit=20):
        if record.action == "up":
            return control.store.deployed_project(account, record.id)
    return None


DOWN_NOTES = ""  # the deployment log's project-level "service": what `down` did beyond services


def _down(control: ControlPlane, account: Account, project: str, deployment: str,
          volumes: bool) -> bool:
    """Take the project down; False when something asked for could not be removed.

    What happened to the network and to each volume is written to the deployment's log under
    the project-level name (`DOWN_NOTES`), so `down` says truthfully what it removed and what
    it kept. Only objects carrying this server's, account's and project's labels are touched.
    """
    placement = control.placement(account, project)
    owner = project_labels(placement)
    containers = control.driver.containers(owner)
    services = sorted({c.service for c in containers} |
                      {s.service for s in control.store.statuses(account, project)})
    control.ingress.forget(account.name, project)
    remove_project_secrets(control.settings.data, placement)
    for info in containers:
        control.expect_stop(info.id)
    threads = [threading.Thread(target=_stop_remove, args=(control, info))
               for info in containers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for service in services:
        control.record(account, deployment, service, S.DEPLOYMENT_SCALED_IN,
                       "removed by `down`")
    notes: list[str] = []
    complete = True
    try:
        control.driver.remove_network(network_name(placement), owner)
    except DockyardError as exc:  # still in use (another server's containers): keep it
        log.warning("network %s kept: %s", network_name(placement), exc.message)
        notes.append(f"network kept: {scrub_engine_text(exc.message, control.settings.data)}")
    control.egress.forget()  # a removed network's egress rules go with it
    if any(is_legacy(placement, c) for c in containers):
        remove_legacy_network(control.driver, placement)
    if volumes:
        found = control.driver.volumes(owner)
        for volume in found:
            try:
                control.driver.remove_volume(volume)
            except DockyardError as exc:
                complete = False
                notes.append(f"volume {volume} kept: "
                             f"{scrub_engine_text(exc.message, control.settings.data)}")
            else:
                notes.append(f"volume {volume} removed")
        if not found:
            notes.append("no volume to remove")
    if notes:
        control.store.append_build_log(account, deployment, DOWN_NOTES, notes)
    control.store.forget_services(account, project, services)
    return complete


def _stop_remove(control: ControlPlane, info: ContainerInfo) -> None:
    control.driver.stop(info.id)
    control.driver.remove(info.id)


# -- ps ---------------------------------------------------------------------------------------
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

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "deployment": self.deployment,
                "state": self.state.name, "state_number": int(self.state),
                "reason": self.reason, "since": self.since.isoformat(), "fqdn": self.fqdn,
                "endpoint": self.endpoints[0] if self.endpoints else "",
                "endpoints": list(self.endpoints), "replicas": self.replicas,
                "running": self.running, "exposure": self.exposure, "image": self.image}


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
    for status in statuses:
        model = deployed_model(control, account, project, status.deployment)
        service = model.services.get(status.service) if model else None
        mine = [c for c in containers if c.service == status.service]
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
            else:
                fqdn = f"{sanitize_label(service.name)}.{sanitize_label(project)}.internal"
            if service.host_ports:
                exposure = "public" if service.is_public else "host"
                host = _advertised_host(control)
                endpoints += tuple(f"{host}:{p.published or p.target}"
                                   for p in service.host_ports)
        replicas = len(mine) if not service else _desired(service)
        # The image the containers run: recorded by the deployment that created them.
        made_by = mine[0].deployment if mine else status.deployment
        if made_by not in recorded:
            recorded[made_by] = control.store.deployment_images(account, made_by)
        image = recorded[made_by].get(status.service, ("", "", ""))[1]
        rows.append(ServiceRow(status.service, status.deployment, state, reason, status.at,
                               fqdn, endpoints, replicas, running, exposure, image))
    return rows


def _desired(service: Any) -> int:
    from dockyard.plan import desired_replicas

    return desired_replicas(service)


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
    with control.models_lock:
        if len(cache) > 256:
            cache.clear()
        cache[key] = model
    return model


# -- logs -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LogEntry:
    service: str
    kind: str  # build or run
    text: str
    at: datetime | None
    container: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "type": self.kind, "line": self.text,
                "at": self.at.isoformat() if self.at else None, "container": self.container}


def build_logs(control: ControlPlane, account: Account, deployment: str,
               services: list[str]) -> Iterator[LogEntry]:
    data = control.store.deployed_project(account, deployment) or {}
    names = services or sorted((data.get("services") or {}).keys())
    for name in names:
        for line in control.store.build_log(account, deployment, name):
            yield LogEntry(name, "build", line, None)


def run_containers(control: ControlPlane, account: Account, project: str,
                   services: list[str], deployment: str | None) -> list[ContainerInfo]:
    placement = control.placement(account, project)
    found = control.driver.containers(project_labels(placement))
    if services:
        found = [c for c in found if c.service in services]
    if deployment:
        found = [c for c in found if c.labels.get(LABEL_DEPLOYMENT) == deployment]
    return found


def service_of(info: ContainerInfo) -> str:
    return info.labels.get(LABEL_SERVICE, "")


__all__ = ["NotFound", "ServiceRow", "LogEntry", "service_labels", "start_deployment",
           "start_down", "services"]
