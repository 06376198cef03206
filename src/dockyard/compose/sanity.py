"""Values the Compose schema lets through but no engine takes sensibly (pure).

A deployment platform receives projects from anyone: a negative CPU count, a one-byte memory
limit, a NUL byte in an environment value or a 500-character hostname must be refused here,
with the key that holds it, not reach the engine and fail (or succeed) in some odd way there.
The same checks run in the CLI and again on the server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from dockyard.compose.models import Project, ResourceSpec, Service
from dockyard.compose.paths import KeyPath
from dockyard.diagnostics import Diagnostic, Location, error

Locate = Callable[[KeyPath], Location]

MIN_MEMORY = 6 * 1024 * 1024  # the Docker Engine refuses a memory limit below 6 MiB
MAX_INGRESS_PORTS = 32  # each one is a domain and a proxy route
MAX_REPLICAS = 1000
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)"
                       r"(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")


def check_values(project: Project, locate: Locate) -> Iterator[Diagnostic]:
    """Every out-of-range or malformed value of every service."""
    for name, service in sorted(project.services.items()):
        yield from _service(service, lambda *path, n=name: locate(("services", n, *path)))


def _invalid(message: str, where: Location, hint: str) -> Diagnostic:
    return error("invalid-value", message, where, hint)


def _service(service: Service, at: Callable[..., Location]) -> Iterator[Diagnostic]:
    name = service.name
    deploy = service.deploy
    if deploy is not None:
        if deploy.replicas is not None and not 0 <= deploy.replicas <= MAX_REPLICAS:
            yield _invalid(f"service {name!r}: {deploy.replicas} replicas",
                           at("deploy", "replicas"), f"use 0 to {MAX_REPLICAS}")
        for kind, spec in (("limits", deploy.limits), ("reservations", deploy.reservations)):
            if spec is not None:
                yield from _resources(name, kind, spec, at)
    for key, value in service.environment.items():
        if "\0" in key or (value is not None and "\0" in value):
            yield _invalid(f"service {name!r}: environment variable {key!r} holds a NUL byte",
                           at("environment", key), "remove the NUL character")
    for key, value in service.labels.items():
        if "\0" in key or "\0" in value:
            yield _invalid(f"service {name!r}: label {key!r} holds a NUL byte",
                           at("labels", key), "remove the NUL character")
    if service.working_dir is not None and not service.working_dir.startswith("/"):
        yield _invalid(f"service {name!r}: working_dir {service.working_dir!r} is not an "
                       "absolute path", at("working_dir"), "write it from the root: /app")
    for index, mount in enumerate(service.volumes):
        if not mount.target.startswith("/"):
            yield _invalid(f"service {name!r}: volume target {mount.target!r} is not an "
                           "absolute path", at("volumes", index),
                           "mount at a path from the root: data:/data")
    for text, key in ((service.hostname, "hostname"), (service.domainname, "domainname")):
        if text is not None and text != "" and not _HOSTNAME.match(text):
            yield _invalid(f"service {name!r}: {key} {text!r} is not a host name (labels of "
                           "letters, digits and '-', at most 63 characters each)", at(key),
                           "use a short DNS name")
    for index, entry in enumerate(service.extra.get("extra_hosts") or ()):
        text = str(entry)
        host, sep, address = (text.partition("=") if "=" in text else text.partition(":"))
        if not sep or not host or not address or "\0" in text:
            yield _invalid(f"service {name!r}: extra_hosts entry {text!r} is not HOST:ADDRESS",
                           at("extra_hosts", index), "for example db.local:10.0.0.5")
    if len(service.ingress_ports) > MAX_INGRESS_PORTS:
        yield _invalid(f"service {name!r} has {len(service.ingress_ports)} public ports; at "
                       f"most {MAX_INGRESS_PORTS} are allowed", at("ports"),
                       "publish fewer ports (each one gets a domain)")


def _resources(name: str, kind: str, spec: ResourceSpec,
               at: Callable[..., Location]) -> Iterator[Diagnostic]:
    if spec.cpus is not None and not spec.cpus > 0:
        yield _invalid(f"service {name!r}: {spec.cpus:g} CPUs", at("deploy", "resources", kind,
                       "cpus"), "use a positive number such as 0.5")
    if spec.memory is not None and kind == "reservations" and spec.memory < 0:
        yield _invalid(f"service {name!r}: {spec.memory} bytes of memory",
                       at("deploy", "resources", kind, "memory"), "use a size such as 64m")
    if spec.memory is not None and kind == "limits" and spec.memory < MIN_MEMORY:
        yield _invalid(f"service {name!r}: {spec.memory} bytes of memory is below the "
                       "engine's minimum of 6 MiB", at("deploy", "resources", kind, "memory"),
                       "use at least 6m")
    if spec.pids is not None and (spec.pids == 0 or spec.pids < -1):
        yield _invalid(f"service {name!r}: pids {spec.pids}", at("deploy", "resources", kind,
                       "pids"), "use a positive number (-1: no limit, where allowed)")
