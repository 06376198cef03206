"""Routes: which host names the ingress serves, and where each one goes (pure).

A route is one ingress port of one public service: its generated domain (docs/architecture.md, Names
and domains), plus, on the service's first ingress port, the service's FQDN (its name without a
port, which `ps` shows: a user who copies it must not get a 404), its `domainname` and every
network alias that is a domain name (has a dot). Its upstreams are the replicas in rotation;
replicas out of rotation (draining before they stop, or failing their health check) stay listed so
the proxy can let their in-flight requests finish. Private services and host-mode ports never get a
route.

Custom names are checked here too: a custom name inside the server's zone would let one account
take another's generated domain, so it is refused; two routes claiming one host are a conflict.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from dockyard.compose.models import Project, Service
from dockyard.naming import NamingMode, normalize_zone, public_domain, service_fqdn

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})+$")


class Check(enum.StrEnum):
    """How the proxy checks a replica: an HTTP GET of `/` below 500, or a TCP connect.

    A service with its own Compose healthcheck gets TCP checks (its `/` may legitimately fail);
    the engine's health status takes an unhealthy replica out of rotation for it.
    """

    HTTP = "http"
    TCP = "tcp"


@dataclass(frozen=True, slots=True, order=True)
class Upstream:
    """One replica's address on its project network, and the container it belongs to."""

    address: str
    port: int
    container: str = ""

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"


@dataclass(frozen=True, slots=True)
class Route:
    key: str  # account/project/service/port: the route's identity across deployments
    hosts: tuple[str, ...]  # the generated names first (the port's domain, then the FQDN)
    check: Check
    upstreams: tuple[Upstream, ...] = ()  # in rotation
    resting: tuple[Upstream, ...] = ()  # out of rotation: draining, or failing health checks
    generated: int = 1  # how many of `hosts` are generated names; the rest are custom

    @property
    def generated_hosts(self) -> tuple[str, ...]:
        """The names the server makes up (inside its zone, under one wildcard)."""
        return self.hosts[:self.generated]

    @property
    def custom_hosts(self) -> tuple[str, ...]:
        """The names the user chose (`domainname`, aliases): some need a proof first."""
        return self.hosts[self.generated:]

    def with_upstreams(self, upstreams: Iterable[Upstream],
                       resting: Iterable[Upstream] = ()) -> Route:
        live = tuple(sorted(set(upstreams)))
        rest = tuple(sorted(set(resting) - set(live)))
        return replace(self, upstreams=live, resting=rest)

    def with_custom_hosts(self, custom: Iterable[str]) -> Route:
        """This route serving only `custom` of its custom names (the generated ones stay)."""
        return replace(self, hosts=(*self.generated_hosts, *custom))


def route_key(account: str, project: str, service: str, port: int) -> str:
    return f"{account}/{project}/{service}/{port}"


def route_prefix(account: str, project: str, service: str | None = None) -> str:
    """The key prefix of every route of a project (or of one of its services)."""
    return f"{account}/{project}/" + (f"{service}/" if service is not None else "")


def is_hostname(name: str) -> bool:
    """A DNS name: labels of letters, digits and '-', and a last label that is not all digits
    (so no IP address, nor a shorthand such as `127.1`, passes for a domain)."""
    return bool(_HOSTNAME.match(name)) and not name.rsplit(".", 1)[-1].isdigit()


def custom_hosts(service: Service) -> tuple[str, ...]:
    """`domainname` and the network aliases that are domain names, lowercased, in order."""
    names: list[str] = []
    if service.domainname:
        names.append(service.domainname.lower().rstrip("."))
    for network in service.networks.values():
        for alias in network.aliases if network else ():
            if "." in alias:
                names.append(alias.lower().rstrip("."))
    return tuple(dict.fromkeys(names))


def service_routes(mode: NamingMode, zone: str, account: str, project: str,
                   service: Service) -> list[Route]:
    """The routes of one service, without upstreams (empty for a private service)."""
    routes: list[Route] = []
    check = Check.TCP if service.healthcheck is not None and not service.healthcheck.disable \
        else Check.HTTP
    for index, port in enumerate(service.ingress_ports):
        generated = [public_domain(mode, username=account, project=project,
                                   service=service.name, port=port.target, zone=zone)]
        extra: tuple[str, ...] = ()
        if index == 0:  # the FQDN and the custom names answer as the first port, as in ps
            generated.append(service_fqdn(mode, username=account, project=project,
                                          service=service.name, zone=zone))
            extra = tuple(h for h in custom_hosts(service) if h not in generated)
        hosts = tuple(dict.fromkeys((*generated, *extra)))
        routes.append(Route(route_key(account, project, service.name, port.target), hosts,
                            check, generated=len(generated)))
    return routes


def project_routes(mode: NamingMode, zone: str, account: str, project: Project) -> list[Route]:
    return [route for service in project.services.values()
            for route in service_routes(mode, zone, account, project.name, service)]


@dataclass(frozen=True, slots=True)
class HostProblem:
    service: str
    host: str
    message: str


def check_custom_hosts(mode: NamingMode, zone: str, project: Project) -> list[HostProblem]:
    """Custom names that cannot be served: not a domain name, or inside the server's zone."""
    zone = normalize_zone(zone, mode)
    problems: list[HostProblem] = []
    for service in project.services.values():
        if not service.is_public:  # its domainname is only the container's, as in Compose
            continue
        for host in custom_hosts(service):
            if not is_hostname(host):
                problems.append(HostProblem(service.name, host, "is not a valid domain name"))
            elif host == zone or host.endswith("." + zone):
                problems.append(HostProblem(
                    service.name, host,
                    f"is inside the server's zone {zone}, whose names are generated"))
            elif mode is NamingMode.PLAYGROUND and (host == "localhost"
                                                    or host.endswith(".localhost")):
                problems.append(HostProblem(
                    service.name, host, "is a loopback name: on a shared server it would "
                    "prove nothing about who controls it"))
    return problems


def host_conflicts(routes: Iterable[Route]) -> list[tuple[str, str, str]]:
    """Hosts claimed by two routes: (host, first route key, second route key)."""
    owner: dict[str, str] = {}
    conflicts: list[tuple[str, str, str]] = []
    for route in routes:
        for host in route.hosts:
            first = owner.setdefault(host, route.key)
            if first != route.key:
                conflicts.append((host, first, route.key))
    return conflicts


def hosts_table(routes: Mapping[str, Route]) -> dict[str, str]:
    """host → route key, for every route (the first claim of a host wins)."""
    table: dict[str, str] = {}
    for key in sorted(routes):
        for host in routes[key].hosts:
            table.setdefault(host, key)
    return table
