"""Which registries a tenant of a shared server may make the engine contact.

A pull, a registry check and a login all make the server's Docker Engine open a connection to
the host a tenant wrote. The engine runs on the host's network, outside the fence tenant
containers live in (`runtime.egress`), so without a rule a tenant could use it to reach the
host's own services, the private network, or a cloud metadata address, and learn from the
error whether something answered there.

So on a playground server a registry host is refused (`registry-not-allowed`) when it is, or
resolves to, an address that is not globally routable (loopback, private, link-local, carrier
NAT, multicast, reserved, unspecified), unless the operator lists it with `--allow-registry
PATTERN` (fnmatch over `HOST[:PORT]`, such as `registry.internal:5000` or `10.0.0.5:*`). A host
that does not resolve is let through: the engine cannot reach it either, and says so. A single
user's (byoc) server has no such rule: its user owns the machine.

What this does not stop: a name that resolves to a public address now and to a private one
when the engine resolves it a moment later (DNS rebinding). An operator who must close that
too filters the engine host's outbound traffic (docs/security.md).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import socket
from collections.abc import Callable, Sequence

from dockyard.api_errors import RegistryNotAllowed as RegistryNotAllowed

Resolver = Callable[[str], Sequence[str]]


def check_login_registry(registry: str, *, patterns: Sequence[str]) -> None:
    """Raise `RegistryNotAllowed` when a tenant may not log in to `registry`."""
    why = refused_registry(registry, patterns=patterns)
    if why is not None:
        raise RegistryNotAllowed(why, hint=ALLOW_HINT)


ALLOW_HINT = ("use a registry at a public address, or ask the server's operator to allow "
              "this one (dockyard server --allow-registry HOST[:PORT])")


def system_resolver(host: str) -> list[str]:
    """The addresses the system resolves `host` to; none when it does not resolve."""
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({str(item[4][0]) for item in found})


def refused_registry(registry: str, *, patterns: Sequence[str],
                     resolve: Resolver = system_resolver) -> str | None:
    """Why a tenant may not use `registry` (`HOST[:PORT]`, as `registry_host` names it), or
    None when it may."""
    if any(fnmatch.fnmatchcase(registry, pattern) for pattern in patterns):
        return None
    host = _host_of(registry)
    if host == "docker.io":
        host = "registry-1.docker.io"
    try:
        addresses = [host] if _is_address(host) else list(resolve(host))
    except Exception:  # a resolver failure is the engine's to report
        return None
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            continue
        if not ip.is_global:
            shown = "" if address == host else f" ({address})"
            return (f"the registry {registry} is at a private or local address{shown}, which "
                    "a shared server does not let tenants reach")
    return None


def _host_of(registry: str) -> str:
    if registry.startswith("["):  # [v6]:port
        return registry[1:].partition("]")[0]
    head, colon, port = registry.rpartition(":")
    return head if colon and port.isdigit() and ":" not in head else registry


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
