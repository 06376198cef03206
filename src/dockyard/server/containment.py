"""What a tenant's containers may take from the server they share (pure policy, issue 10).

Checked before a deployment starts, so a refused project never starts anything:

- logs: a Compose `logging:` driver other than json-file or local is refused in playground
  mode (the engine must keep the log for `dockyard logs`, and a remote driver would let a tenant
  ship its output anywhere); in byoc mode the Compose validator warns and the containers keep
  json-file. `max-size`/`max-file` that are not a size or a count are refused: the server's
  bounds would silently replace them.
- processes: a service's `deploy.resources.limits.pids` may lower the server's per-container
  limit, never raise it; 0 or a negative number means "unlimited" to the engine, so it is over
  any limit.
- capabilities: in playground mode `cap_add` may only name the capabilities the engine gives
  every container anyway (`DEFAULT_CAPABILITIES`: adding one back after a `cap_drop` is
  harmless); any other (NET_ADMIN, SYS_ADMIN, SYS_PTRACE, SYS_TIME, ALL ...) would act on
  the kernel the tenants share, or on their neighbours' packets, and is refused. A single
  user's server applies every `cap_add`.
- host ports: in playground mode a port that becomes a host port (`mode: host`, and every UDP
  port) must lie in the account's allowed range (`--allow-host-ports alice=30000-30009`); a
  published range counts port by port. Without a range, an account publishes no host port:
  an ingress port (a domain) is what a tenant gets.
"""

from __future__ import annotations

from dockyard.compose.models import Port, Project, Service
from dockyard.diagnostics import Diagnostic, Location, error
from dockyard.runtime.driver import LOG_DRIVERS
from dockyard.runtime.specs import log_files_option, log_size_option, logging_options

HOST_PORT_HINT_NONE = ("use an ingress port (`- \"8080\"`: the service gets a domain), or ask "
                       "the server's operator for a host port range (--allow-host-ports)")


def _at(service: str, key: str) -> Location:
    return Location(path=f"services.{service}.{key}")


def logging_problems(project: Project, *, playground: bool) -> list[Diagnostic]:
    """Every service's `logging:` the server cannot honour."""
    problems: list[Diagnostic] = []
    for name, service in sorted(project.services.items()):
        driver, options = logging_options(service)
        if playground and driver is not None and driver not in LOG_DRIVERS:
            problems.append(error(
                "logging-driver", f"service {name!r}: logging driver {driver!r} is not allowed "
                "on this server: the engine keeps every log for `dockyard logs`",
                _at(name, "logging.driver"),
                "remove `logging.driver`, or use json-file (logs are rotated by the server)"))
        size, files = options.get("max-size"), options.get("max-file")
        if size is not None and not (log_size_option(size) or 0) > 0:
            problems.append(error(
                "logging-options", f"service {name!r}: logging max-size {size!r} is not a "
                "size", _at(name, "logging.options.max-size"),
                "use a size such as 10m or 512k (the server's limit applies when smaller)"))
        if files is not None and not (log_files_option(files) or 0) > 0:
            problems.append(error(
                "logging-options", f"service {name!r}: logging max-file {files!r} is not a "
                "positive whole number", _at(name, "logging.options.max-file"),
                "use a count such as 3 (the server's limit applies when smaller)"))
    return problems


def pids_problems(project: Project, limit: int) -> list[Diagnostic]:
    """Services asking for more processes per container than `limit` (0: no limit)."""
    if not limit:
        return []
    problems: list[Diagnostic] = []
    for name, service in sorted(project.services.items()):
        asked = service.deploy.limits.pids if service.deploy and service.deploy.limits else None
        if asked is not None and (asked <= 0 or asked > limit):
            shown = "unlimited processes" if asked <= 0 else f"{asked} processes"
            problems.append(error(
                "limit-exceeded", f"service {name!r}: {shown} per container; at most {limit} "
                "allowed here", _at(name, "deploy.resources.limits.pids"),
                f"set pids to a number from 1 to {limit}, or leave it out to get {limit}"))
    return problems


# What the Docker Engine gives every container (its default capability set).
DEFAULT_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})


def capability_problems(project: Project) -> list[Diagnostic]:
    """Playground: every `cap_add` beyond the engine's defaults, one problem per service."""
    problems: list[Diagnostic] = []
    for name, service in sorted(project.services.items()):
        asked = [str(c) for c in service.extra.get("cap_add") or ()]
        refused = [c for c in asked
                   if c.upper().removeprefix("CAP_") not in DEFAULT_CAPABILITIES]
        if refused:
            problems.append(error(
                "capability-refused", f"service {name!r}: cap_add {', '.join(refused)} is "
                "not allowed on this shared server (only the engine's default capabilities "
                "may be added back)", _at(name, "cap_add"),
                "remove them; a service needing more privileges runs on a server of your own "
                "(byoc mode)"))
    return problems


def host_port_numbers(port: Port) -> list[int]:
    """The host ports a port entry binds: its published port or range, else its target."""
    published = port.published or str(port.target)
    first, _, last = published.partition("-")
    if not first.isdigit() or not (last or first).isdigit():
        return []
    return list(range(int(first), int(last or first) + 1))


def host_port_problems(project: Project, allowed: tuple[int, int] | None) -> list[Diagnostic]:
    """One problem per port entry that binds a host port outside `allowed` (playground)."""
    problems: list[Diagnostic] = []
    for name, service in sorted(project.services.items()):
        for index, port in _host_ports(service):
            numbers = host_port_numbers(port)
            outside = [n for n in numbers if allowed is None
                       or not allowed[0] <= n <= allowed[1]]
            if not outside:
                continue
            what = (f"host port {outside[0]}" if len(numbers) == 1 else
                    f"host ports {port.published} ({len(outside)} of them outside the range)")
            why = ("UDP ports are published on the host" if port.mode != "host"
                   else "mode: host publishes it on the server")
            if allowed is None:
                message = (f"service {name!r}: {what}/{port.protocol} is refused: this account "
                           f"may publish no host port ({why})")
                hint = HOST_PORT_HINT_NONE
            else:
                message = (f"service {name!r}: {what}/{port.protocol} is outside the host ports "
                           f"this account may publish, {allowed[0]}-{allowed[1]} ({why})")
                hint = (f"publish a port from {allowed[0]} to {allowed[1]} (`published: "
                        f"\"{allowed[0]}\"`), or use an ingress port (a domain)")
            problems.append(error("host-port-refused", message, _at(name, f"ports[{index}]"),
                                  hint))
    return problems


def _host_ports(service: Service) -> list[tuple[int, Port]]:
    return [(i, p) for i, p in enumerate(service.ports) if not p.is_ingress]
