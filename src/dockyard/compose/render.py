"""The normalized project in the Compose specification's own shape.

The output matches what `docker compose config --format json` prints for the same project
(ports in long form with `published` as a string, `environment` as a map, `depends_on` as a map
with `condition`, durations as Go durations, memory in bytes, literal `$` written `$$`), so it
can be diffed against Compose v2 and fed back to either tool. `x-dockyard` on each service adds
what Dockyard computed: its exposure, its domains in both naming modes and its private hostnames.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.compose.interpolation import config_references
from dockyard.compose.models import (
    Build,
    Deploy,
    FileReference,
    Healthcheck,
    Mount,
    Port,
    Project,
    Resource,
    ResourceSpec,
    Service,
)
from dockyard.compose.units import format_duration
from dockyard.naming import NamingMode, private_hostnames, public_domain


@dataclass(frozen=True, slots=True)
class NamingContext:
    """Who deploys and where, for the computed names in `x-dockyard`."""

    username: str
    playground_zone: str = "prod1a.localhost"
    byoc_zone: str = "localhost"


def _esc(value: Any) -> Any:
    """Compose writes a literal `$` as `$$` so its output can be loaded again."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, Mapping):
        return {k: _esc(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_esc(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """Frozen containers back to JSON-able dicts and lists."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _drop_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}


def port_to_dict(port: Port) -> dict[str, Any]:
    return _drop_none({
        "name": port.name, "mode": port.mode, "host_ip": port.host_ip, "target": port.target,
        "published": port.published, "protocol": port.protocol,
        "app_protocol": port.app_protocol,
    })


def build_to_dict(build: Build) -> dict[str, Any]:
    out: dict[str, Any] = {"context": build.context}
    if build.dockerfile is not None:
        out["dockerfile"] = build.dockerfile
    if build.args:
        out["args"] = _esc(dict(build.args))
    if build.target is not None:
        out["target"] = build.target
    if build.labels:
        out["labels"] = _esc(dict(build.labels))
    out.update(_esc(_plain(build.extra)))
    return out


def healthcheck_to_dict(check: Healthcheck) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if check.test is not None:
        out["test"] = _esc(list(check.test))
    for key in ("timeout", "interval", "start_period", "start_interval"):
        value = getattr(check, key)
        if value is not None:
            out[key] = format_duration(value)
    if check.retries is not None:
        out["retries"] = check.retries
    if check.disable:
        out["disable"] = True
    return out


def _resources(spec: ResourceSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if spec.cpus is not None:
        out["cpus"] = int(spec.cpus) if spec.cpus.is_integer() else spec.cpus
    if spec.memory is not None:
        out["memory"] = str(spec.memory)
    if spec.pids is not None:
        out["pids"] = spec.pids
    out.update(_plain(spec.extra))
    return out


def deploy_to_dict(deploy: Deploy) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if deploy.mode is not None:
        out["mode"] = deploy.mode
    if deploy.replicas is not None:
        out["replicas"] = deploy.replicas
    if deploy.labels:
        out["labels"] = _esc(dict(deploy.labels))
    resources: dict[str, Any] = {}
    if deploy.limits is not None:
        resources["limits"] = _resources(deploy.limits)
    if deploy.reservations is not None:
        resources["reservations"] = _resources(deploy.reservations)
    out["resources"] = resources
    out["placement"] = {}  # Compose v2 always prints it
    if deploy.restart_policy is not None:
        policy = deploy.restart_policy
        out["restart_policy"] = _drop_none({
            "condition": policy.condition,
            "delay": None if policy.delay is None else format_duration(policy.delay),
            "max_attempts": policy.max_attempts,
            "window": None if policy.window is None else format_duration(policy.window),
        })
    out.update(_esc(_plain(deploy.extra)))
    return out


def mount_to_dict(mount: Mount) -> dict[str, Any]:
    out: dict[str, Any] = {"type": mount.type}
    if mount.source is not None:
        out["source"] = mount.source
    out["target"] = mount.target
    if mount.read_only:
        out["read_only"] = True
    out.update(_plain(mount.extra))
    return out


def file_ref_to_dict(ref: FileReference) -> dict[str, Any]:
    mode = None if ref.mode is None else "0" + format(ref.mode, "o")  # octal, as Compose
    return _drop_none({"source": ref.source, "target": ref.target, "uid": ref.uid,
                       "gid": ref.gid, "mode": mode})


def service_to_dict(service: Service) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if service.image is not None:
        out["image"] = service.image
    if service.build is not None:
        out["build"] = build_to_dict(service.build)
    out["command"] = None if service.command is None else _esc(list(service.command))
    out["entrypoint"] = None if service.entrypoint is None else _esc(list(service.entrypoint))
    if service.environment:
        out["environment"] = dict(service.environment)  # already templates ($$ = literal $)
    if service.ports:
        out["ports"] = [port_to_dict(p) for p in service.ports]
    if service.expose:
        out["expose"] = list(service.expose)
    if service.depends_on:
        out["depends_on"] = {
            name: {"condition": dep.condition, "required": dep.required,
                   **({"restart": True} if dep.restart else {})}
            for name, dep in service.depends_on.items()
        }
    if service.healthcheck is not None:
        out["healthcheck"] = healthcheck_to_dict(service.healthcheck)
    if service.deploy is not None:
        out["deploy"] = deploy_to_dict(service.deploy)
    if service.restart is not None:
        out["restart"] = service.restart
    if service.stop_grace_period is not None:
        out["stop_grace_period"] = format_duration(service.stop_grace_period)
    if service.networks:
        out["networks"] = {
            name: None if net is None else _drop_none({
                "aliases": list(net.aliases) or None, "ipv4_address": net.ipv4_address,
                "ipv6_address": net.ipv6_address, **_plain(net.extra)})
            for name, net in service.networks.items()
        }
    if service.volumes:
        out["volumes"] = [mount_to_dict(m) for m in service.volumes]
    if service.secrets:
        out["secrets"] = [file_ref_to_dict(r) for r in service.secrets]
    if service.configs:
        out["configs"] = [file_ref_to_dict(r) for r in service.configs]
    if service.labels:
        out["labels"] = _esc(dict(service.labels))
    for key in ("domainname", "hostname", "user", "working_dir"):
        value = getattr(service, key)
        if value is not None:
            out[key] = _esc(value)
    if service.profiles:
        out["profiles"] = list(service.profiles)
    out.update(_esc(_plain(service.extra)))
    out.update(_esc(_plain(service.extensions)))
    return dict(sorted(out.items()))


def _resource_to_dict(resource: Resource, *, with_ipam: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"name": resource.name}
    settings = _plain(resource.settings)
    if with_ipam:
        settings.setdefault("ipam", {})
    out.update(_esc(settings))
    if resource.external:
        out["external"] = True
    return out


def dockyard_extension(project: Project, service: Service, naming: NamingContext
                       ) -> dict[str, Any]:
    """What Dockyard computed for a service: exposure, domains and private hostnames."""
    public = service.ingress_ports
    exposure = "public" if public else "host" if service.host_ports else "private"
    domains: dict[str, list[str]] = {}
    for mode, zone in ((NamingMode.PLAYGROUND, naming.playground_zone),
                       (NamingMode.BYOC, naming.byoc_zone)):
        domains[mode.value] = [
            public_domain(mode, username=naming.username, project=project.name,
                          service=service.name, port=port.target, zone=zone)
            for port in public
        ]
    if service.domainname and public:
        for names in domains.values():
            names.append(service.domainname)
    configs = sorted({k for k, v in service.environment.items() if v is None} | {
        ref for v in service.environment.values() if v for ref in config_references(v)})
    return {
        "exposure": exposure,
        "ingress_ports": [p.target for p in public],
        "host_ports": [f"{p.published or p.target}/{p.protocol}" for p in service.host_ports],
        "domains": domains,
        "private_hostnames": {
            mode.value: list(private_hostnames(mode, username=naming.username,
                                               project=project.name, service=service.name))
            for mode in (NamingMode.PLAYGROUND, NamingMode.BYOC)
        },
        "configs": configs,
    }


def project_to_dict(project: Project, naming: NamingContext | None = None) -> dict[str, Any]:
    """The project as Compose prints it; with `naming`, each service also gets `x-dockyard`."""
    services: dict[str, Any] = {}
    for name, service in project.services.items():
        rendered = service_to_dict(service)
        if naming is not None:
            rendered["x-dockyard"] = dockyard_extension(project, service, naming)
        services[name] = rendered
    out: dict[str, Any] = {"name": project.name, "services": services}
    if project.networks:
        out["networks"] = {k: _resource_to_dict(v, with_ipam=not v.external)
                           for k, v in project.networks.items()}
    for key in ("volumes", "secrets", "configs"):
        resources: Mapping[str, Resource] = getattr(project, key)
        if resources:
            out[key] = {k: _resource_to_dict(v) for k, v in resources.items()}
    if project.models:
        out["models"] = _plain(project.models)
    out.update(_esc(_plain(project.extensions)))
    return out
