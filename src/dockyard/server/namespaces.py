"""Shared namespaces and networks a deployment can honour, checked at admission (pure).

`network_mode: service:X` and `ipc: service:X` join the namespaces of X's running container
(`runtime.specs`, the deployer resolves it); `network_mode: none` leaves the service with no
network, and `bridge` (or `default`) puts it on the project's `default` network (the engine's
own bridge would put it beside every other project). Everything else would reach outside the
project and is refused: the host's namespaces (`host`), another container (`container:NAME`). A
service joining another's network namespace has no network of its own, so it publishes no
port and sets no host name or hosts entry (publish them on X). The Swarm driver runs each
replica as a Swarm service, which cannot join another's namespaces.
"""

from __future__ import annotations

from dockyard.compose.models import Project
from dockyard.diagnostics import Diagnostic, Location, error
from dockyard.runtime.specs import SHARED_BRIDGE_MODES, shared_service

IPC_MODES = ("private", "shareable", "none")  # besides service:X


def _at(service: str, key: str) -> Location:
    return Location(path=f"services.{service}.{key}")


def namespace_problems(project: Project, *, driver: str = "docker") -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    for name, service in sorted(project.services.items()):
        extra = service.extra
        mode, ipc = extra.get("network_mode"), extra.get("ipc")
        joined = shared_service(mode)
        if mode is not None and joined is None and mode not in ("none",
                                                                  *SHARED_BRIDGE_MODES):
            problems.append(error(
                "network-mode-refused", f"service {name!r}: network_mode {mode!r} would reach "
                "outside the project; only `service:NAME`, `none` and `bridge` are run here",
                _at(name, "network_mode"), "remove it: the service joins the project's "
                "networks (`networks:`), where the others reach it by name"))
        if ipc is not None and shared_service(ipc) is None and ipc not in IPC_MODES:
            problems.append(error(
                "network-mode-refused", f"service {name!r}: ipc {ipc!r} would share IPC "
                "outside the project; only `service:NAME`, private, shareable and none are "
                "run here", _at(name, "ipc"), "remove it, or use `ipc: service:NAME`"))
        for entry in extra.get("volumes_from") or ():
            if str(entry).startswith("container:"):
                problems.append(error(
                    "network-mode-refused", f"service {name!r}: volumes_from {entry!r} names "
                    "a container outside the project", _at(name, "volumes_from"),
                    "use `volumes_from: [SERVICE]`, or mount the same named volume"))
        if joined is not None or mode == "none":
            given = [key for key, value in (("ports", service.ports),
                                            ("hostname", service.hostname),
                                            ("domainname", service.domainname),
                                            ("extra_hosts", extra.get("extra_hosts")))
                     if value]
            if given:
                where = f"{joined}'s" if joined else "no"
                problems.append(error(
                    "network-mode-refused", f"service {name!r} runs in {where} network "
                    f"namespace (network_mode {mode!r}) and cannot set {', '.join(given)}",
                    _at(name, given[0]), f"set them on {joined} instead" if joined else
                    "remove them, or remove `network_mode: none`"))
        if driver == "swarm":
            for key, value in (("network_mode", mode), ("ipc", ipc)):
                if shared_service(value) is not None or (key == "network_mode"
                                                         and value == "none"):
                    problems.append(error(
                        "network-mode-refused", f"service {name!r}: {key} {value!r} is not "
                        "run by the Swarm driver (a Swarm service joins overlay networks only, "
                        "never another's namespaces)", _at(name, key),
                        "run both processes in one service, or deploy to a server with the "
                        "docker driver"))
    return problems
