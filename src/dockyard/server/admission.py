"""Admission: a deployment is checked completely before anything is touched.

The project is loaded and validated again on the server (the client may be anything), every
image it does not build must be on the engine or pulled, every build context must have been
uploaded, every config it references must exist, and the account's limits and domains must
allow it (docs/architecture.md, How a deployment runs). Only then is a deployment recorded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dockyard.compose import LoadOptions, load_project
from dockyard.compose.models import Project
from dockyard.diagnostics import Diagnostic, Location, error
from dockyard.errors import ProjectInvalid
from dockyard.ingress.routes import (
    check_custom_hosts,
    host_conflicts,
    hosts_table,
    project_routes,
    route_prefix,
)
from dockyard.secrets.resolve import missing_configs
from dockyard.server.control import ControlPlane
from dockyard.server.deploy_request import BuildInput
from dockyard.server.image_plan import ImagePlan, plan_images
from dockyard.server.model_endpoint import model_problems
from dockyard.server.namespaces import namespace_problems
from dockyard.server.rollout import rollout_problems
from dockyard.wire import check_wire

_LOADED: OrderedDict[str, Project] = OrderedDict()  # the last projects loaded, by content
_LOADED_KEPT = 32
_LOADED_LOCK = threading.Lock()


def load_submitted(name: str, data: Mapping[str, Any]) -> Project:
    """The project a client sent, checked as the wire format (`dockyard.wire`: no key that
    names a path), then loaded and validated again as a Compose file of its own.

    Every profile is active: the client already chose the services (a service it sent is one
    its profiles enabled). Nothing is interpolated from the server's environment.

    Loading is a pure function of (`name`, `data`), and a valid project is immutable: the
    last few are kept by the digest of their content, so a no-op `up`, its `ps` and a
    rollback do not load the same document again.
    """
    key = hashlib.sha256(json.dumps([name, data], sort_keys=True).encode()).hexdigest()
    with _LOADED_LOCK:
        if key in _LOADED:
            _LOADED.move_to_end(key)
            return _LOADED[key]
    project = _load_submitted(name, data)
    with _LOADED_LOCK:
        _LOADED[key] = project
        while len(_LOADED) > _LOADED_KEPT:
            _LOADED.popitem(last=False)
    return project


def _load_submitted(name: str, data: Mapping[str, Any]) -> Project:
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
                  rebuild: bool = False, pins: Mapping[str, str] | None = None,
                  whole: Project | None = None) -> ImagePlan:
    """Everything that would fail the deployment later, found now (raises ProjectInvalid);
    returns what each service runs and what to pull (`image_plan`). `project` is what is
    deployed; `whole`, when it is a part of it (`up SERVICE...`), is held to the limits."""
    problems: list[Diagnostic] = _domain_problems(control, project, account)
    problems += _external_problems(control, project)
    problems += namespace_problems(project, driver=control.settings.driver)
    problems += model_problems(control.settings, project)
    problems += rollout_problems(project)  # update_config values no rollout can follow
    problems += _limit_problems(control, whole or project, account)
    problems += _file_problems(control, project, account)
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


def _file_problems(control: ControlPlane, project: Project,
                   account: str | None) -> list[Diagnostic]:
    """Project files that were not uploaded, host paths the operator did not allow (never on
    a shared server), and either one under a driver that cannot mount them."""
    from dockyard.server.project_files import host_path_allowed, project_files

    settings = control.settings
    allowed = () if settings.playground else settings.allow_host_paths
    owner = None if account is None else _owner_of(control, account)
    problems: list[Diagnostic] = []
    for name, service in sorted(project.services.items()):
        files = project_files(service)
        binds = [(i, m) for i, m in enumerate(service.volumes) if m.is_bind]
        if settings.driver == "swarm" and (files or binds):
            problems.append(_problem(
                "project-files-unsupported", f"service {name!r} mounts project files or host "
                "paths, which the Swarm driver cannot mount (a node has no copy of them)",
                name, "volumes", "copy the files into the image with `build`, or keep them "
                "in a named volume"))
            continue
        for item in files:
            if not control.contexts.has(item.digest, owner):
                problems.append(_problem(
                    "project-files-missing", f"the project files {item.source or item.digest} "
                    f"({item.digest}) were not uploaded", name, "volumes",
                    "run `dockyard compose up`, which uploads them"))
        for index, mount in binds:
            if not host_path_allowed(mount.source or "", allowed):
                operator = (" (a shared server never mounts its host's files)" if
                            settings.playground else "; or ask the server's operator to allow "
                            "it (`dockyard server --allow-host-paths DIR`)")
                problems.append(_problem(
                    "bind-mount", f"service {name!r} mounts the host path {mount.source} at "
                    f"{mount.target}: only the files inside the project directory are deployed "
                    "with it", name, f"volumes[{index}]",
                    "move the files into the project directory and mount them as `./...`, or "
                    f"use a named volume{operator}"))
    return problems


def _limit_problems(control: ControlPlane, project: Project,
                    account: str | None) -> list[Diagnostic]:
    """What the account may deploy here (playground limits, and what its containers may take
    from the host: `server.containment`), checked before anything starts."""
    from dockyard.plan import desired_replicas
    from dockyard.server.containment import (
        capability_problems,
        host_port_problems,
        logging_problems,
        pids_problems,
    )

    settings = control.settings
    problems: list[Diagnostic] = logging_problems(project, playground=settings.playground)
    if settings.playground:
        problems += host_port_problems(project, settings.allow_host_ports.get(account or ""))
        problems += capability_problems(project)
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


