"""The server's side of the ingress: which replicas serve which public route, right now.

The deployer says when replicas join a route (after they are healthy) and when they leave it
(drained before they stop); the engine watcher takes a replica out of rotation when it dies or
its health check fails and puts it back when it recovers; recovery rebuilds the whole table from
the engine when the server starts. The routes themselves (host names, check type) come from the
pure `dockyard.ingress.routes` over each service's deployed model. A supervisor thread starts the
proxy again if it dies, with every route restored.

With no proxy (`--no-ingress`, or in unit tests) every method is a no-op, so the deployer does
not need to know.

On a playground server a tenant's custom domain is in the table only once proven
(`domains`, `dockyard.server.domains`): until then, and when its proof fails, the rest of the
route serves and that name answers 404 like any host the server does not serve. When two
accounts have proven one name, the first proof keeps it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from dockyard.compose.models import Project
from dockyard.ingress.domain_policy import owners
from dockyard.ingress.routes import Check, Route, Upstream, service_routes
from dockyard.naming import NamingMode
from dockyard.runtime.driver import LABEL_ACCOUNT, ContainerInfo, EngineEvent
from dockyard.server.domains import DomainProofs

log = logging.getLogger("dockyard.server")

IN_ROTATION_TIMEOUT = 15.0  # seconds for the proxy to see a new replica up
SUPERVISE_SECONDS = 1.0
RENEWAL_CHECK_SECONDS = 6 * 3600.0  # how often certificates are checked for renewal


class Proxy(Protocol):
    """What the manager needs of a proxy driver (`dockyard.ingress.haproxy.HAProxy`)."""

    def start(self, routes: Mapping[str, Route], certificates: Sequence[Path] = (),
              https_only: frozenset[str] = frozenset()) -> None: ...

    def apply(self, routes: Mapping[str, Route], certificates: Sequence[Path] = (),
              https_only: frozenset[str] = frozenset()) -> None: ...

    def stop(self) -> None: ...

    def ensure_running(self) -> bool: ...

    def in_rotation(self, route_key: str, endpoints: Iterable[str]) -> bool: ...

    def sessions(self, route_key: str, endpoints: Iterable[str]) -> int: ...


class Certificates(Protocol):
    """Certificates for a set of routes: PEM files (the default first) and HTTPS-only hosts."""

    def for_routes(self, routes: Mapping[str, Route]) -> tuple[list[Path], frozenset[str]]: ...

    def ca_certificate_pem(self) -> str: ...

    def domain_proofs(self) -> DomainProofs | None: ...


@dataclass
class _Service:
    """One public service's routes and the containers that serve them."""

    routes: list[Route]  # without upstreams
    addresses: dict[str, str] = field(default_factory=dict)  # container id → address
    resting: set[str] = field(default_factory=set)  # out of rotation
    # container id → {target port: the port the proxy connects to}, where not the target
    # (`ContainerInfo.published`: a Swarm's engine-picked node ports)
    published: dict[str, dict[int, int]] = field(default_factory=dict)

    def endpoint(self, container_id: str, port: int) -> str:
        """Where the proxy reaches `port` of the container: ADDRESS:PORT."""
        return self.upstream(container_id, port).endpoint

    def note_published(self, container_id: str, published: Mapping[int, int]) -> None:
        if published:
            self.published[container_id] = dict(published)
        else:
            self.published.pop(container_id, None)

    def upstream(self, container_id: str, port: int) -> Upstream:
        reach = self.published.get(container_id, {}).get(port, port)
        return Upstream(self.addresses[container_id], reach, container_id)


class Ingress:
    def __init__(self, mode: NamingMode, zone: str, proxy: Proxy | None = None,
                 certificates: Certificates | None = None,
                 domains: DomainProofs | None = None) -> None:
        self.mode, self.zone = mode, zone
        self.proxy = proxy
        self.certificates = certificates
        if domains is None and certificates is not None and proxy is not None:
            domains = certificates.domain_proofs()
        self.domains = domains  # None: every custom domain is served (byoc, or no proxy)
        if domains is not None:
            domains.on_change = self._refresh
        self._lock = threading.RLock()
        self._services: dict[tuple[str, str, str], _Service] = {}
        self._flush_lock = threading.Lock()  # taken before `_lock`, never after it
        self._pending = 0  # changes `_serve` made that no proxy update carried yet
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self.proxy is not None

    def ca_certificate_pem(self) -> str | None:
        """The local CA's certificate (PEM), which HTTPS clients can be told to trust."""
        return self.certificates.ca_certificate_pem() if self.certificates else None

    # -- life ----------------------------------------------------------------------------------
    def start(self) -> None:
        if self.proxy is None:
            return
        with self._lock:
            table = self.table()
            certificates, https_only = self._certificates(table)
            self.proxy.start(table, certificates, https_only)
        self._supervisor = threading.Thread(target=self._supervise, name="ingress-supervisor",
                                            daemon=True)
        self._supervisor.start()

    def stop(self) -> None:
        self._stopping.set()
        if self.proxy is not None:
            self.proxy.stop()

    def _supervise(self) -> None:
        renewed = time.monotonic()
        while not self._stopping.wait(SUPERVISE_SECONDS):
            try:
                if self.proxy is not None and self.proxy.ensure_running():
                    log.warning("the ingress proxy had stopped; started again with every route")
            except Exception:  # keep supervising; say why
                log.exception("the ingress proxy could not be started again")
            if time.monotonic() - renewed > RENEWAL_CHECK_SECONDS:
                renewed = time.monotonic()
                try:
                    with self._lock:
                        self._apply()  # certificates near their end are issued again
                except Exception:
                    log.exception("certificates could not be renewed")

    # -- the table -----------------------------------------------------------------------------
    def table(self) -> dict[str, Route]:
        """Every route with its upstreams: the proxy's whole desired state."""
        with self._lock:
            routes: dict[str, Route] = {}
            for entry in self._services.values():
                for template in entry.routes:
                    port = _port(template)
                    live = [entry.upstream(c, port) for c in entry.addresses
                            if c not in entry.resting]
                    rest = [entry.upstream(c, port) for c in entry.addresses
                            if c in entry.resting]
                    routes[template.key] = template.with_upstreams(live, rest)
            return self._proven(routes)

    def _proven(self, routes: dict[str, Route]) -> dict[str, Route]:
        """`routes` without the custom domains that need a proof their account has not given."""
        domains = self.domains
        if domains is None:
            return routes
        claims: list[tuple[str, str, float]] = []
        for key, route in routes.items():
            account = key.split("/", 1)[0]
            for host in route.custom_hosts:
                if domains.needs_proof(host):
                    at = domains.verified_at(account, host)
                    if at is not None:
                        claims.append((host, key, at))
        served = owners(claims)
        for key, route in routes.items():
            hosts = tuple(h for h in route.custom_hosts
                          if not domains.needs_proof(h) or served.get(h) == key)
            if hosts != route.custom_hosts:
                routes[key] = route.with_custom_hosts(hosts)
        return routes

    def _refresh(self) -> None:
        """A custom domain was proven (or lost its proof): serve the table again."""
        with self._lock:
            self._apply()

    def _certificates(self, table: Mapping[str, Route]) -> tuple[list[Path], frozenset[str]]:
        if self.certificates is None:
            return [], frozenset()
        return self.certificates.for_routes(table)

    def _apply(self) -> dict[str, Route]:
        if self.proxy is None:
            return {}
        table = self.table()
        certificates, https_only = self._certificates(table)
        self.proxy.apply(table, certificates, https_only)
        return table

    # -- what the deployer calls ---------------------------------------------------------------
    def serve(self, account: str, project: Project, service: str,
              live: Sequence[ContainerInfo], *, wait: bool = True) -> bool:
        """Route the public ports of `service` to `live` (and to nothing else).

        Replicas that were serving and are not in `live` leave the rotation at once; call
        `drain` first to let their requests finish. Returns whether every replica of `live` is
        in rotation (after waiting for the proxy's first check when `wait`).
        """
        reached = [c for c in live if c.ip_address]
        return self._serve(account, project, service, _addresses(reached),
                           _published(reached), wait=wait)

    def add(self, account: str, project: Project, service: str,
            containers: Sequence[ContainerInfo]) -> bool:
        """Put `containers` in rotation beside the replicas already serving."""
        with self._lock:
            entry = self._services.get((account, project.name, service))
            addresses = {} if entry is None else {
                c: a for c, a in entry.addresses.items() if c not in entry.resting}
            published = {} if entry is None else {
                c: p for c, p in entry.published.items() if c in addresses}
        reached = [c for c in containers if c.ip_address]
        addresses.update(_addresses(reached))
        published.update(_published(reached))
        return self._serve(account, project, service, addresses, published, wait=True)

    def _serve(self, account: str, project: Project, service: str,
               addresses: Mapping[str, str], published: Mapping[str, dict[int, int]], *,
               wait: bool) -> bool:
        if self.proxy is None:
            return True
        model = project.services.get(service)
        key = (account, project.name, service)
        with self._lock:
            if model is None or not model.is_public:
                if self._services.pop(key, None) is not None:
                    self._apply()
                return True
            routes = service_routes(self.mode, self.zone, account, project.name, model)
            wanted = _Service(routes, dict(addresses), set(), dict(published))
            queued = self._services.get(key) != wanted
            if queued:
                self._services[key] = wanted
                self._pending += 1
        if not queued:  # served so already: a no-op `up` rewrites nothing, and asks nothing
            return True  # the engine's events keep its rotation
        table = self._flush()
        if not wait:
            return True
        return self._wait_in_rotation(table, routes, wanted)

    def _flush(self) -> dict[str, Route]:
        """Apply the changes `_serve` queued: one proxy update for all the changes queued
        while the previous update ran. Many services of a deployment become healthy at about
        the same time; each new public service needs a reload of the proxy, and one reload
        per service, one after the other, made a deployment's time grow with its size."""
        with self._flush_lock:
            with self._lock:
                if self._pending:
                    self._pending = 0
                    return self._apply()
                return self.table()  # an update that ran meanwhile carried this change

    def _wait_in_rotation(self, table: Mapping[str, Route], routes: Sequence[Route],
                          wanted: _Service) -> bool:
        assert self.proxy is not None
        deadline = time.monotonic() + IN_ROTATION_TIMEOUT
        while True:
            ok = all(self.proxy.in_rotation(r.key, [wanted.endpoint(c, _port(r))
                                                    for c in wanted.addresses])
                     for r in routes if r.key in table)
            if ok or time.monotonic() >= deadline:
                return ok
            time.sleep(0.05)

    def drain(self, account: str, project: str, service: str,
              containers: Sequence[ContainerInfo], timeout: float) -> None:
        """Take `containers` out of rotation, let their in-flight requests finish (at most
        `timeout` seconds), then forget them. Call before stopping them."""
        if self.proxy is None:
            return
        ids = {c.id for c in containers}
        with self._lock:
            entry = self._services.get((account, project, service))
            if entry is None or not ids & set(entry.addresses):
                return
            entry.resting |= ids & set(entry.addresses)
            table = self._apply()
            routes = [r for r in entry.routes if r.key in table]
            endpoints = {r.key: [entry.endpoint(c, _port(r))
                                 for c in ids if c in entry.addresses] for r in routes}
        deadline = time.monotonic() + max(timeout, 0.0)
        while time.monotonic() < deadline:
            if all(self.proxy.sessions(k, e) == 0 for k, e in endpoints.items()):
                break
            time.sleep(0.05)
        with self._lock:
            entry = self._services.get((account, project, service))
            if entry is not None:
                for cid in ids:
                    entry.addresses.pop(cid, None)
                    entry.published.pop(cid, None)
                    entry.resting.discard(cid)
                self._apply()

    def forget(self, account: str, project: str, service: str | None = None) -> None:
        """Remove the routes of a service (or of a whole project)."""
        if self.proxy is None:
            return
        with self._lock:
            keys = [k for k in self._services if k[:2] == (account, project)
                    and (service is None or k[2] == service)]
            for key in keys:
                del self._services[key]
            if keys:
                self._apply()

    # -- what the watcher calls ----------------------------------------------------------------
    def container_event(self, event: EngineEvent, info: ContainerInfo | None = None) -> None:
        """A member died, started again, or changed health: move it in or out of rotation
        (`info`: as it runs now, on a start: a Swarm may have moved it to another node and
        port)."""
        if self.proxy is None:
            return
        with self._lock:
            for entry in self._services.values():
                if event.container_id not in entry.addresses:
                    continue
                before = (dict(entry.addresses), set(entry.resting), dict(entry.published))
                if event.action in ("die", "stop", "kill", "pause") or \
                        event.action.endswith("unhealthy"):
                    entry.resting.add(event.container_id)
                elif event.action in ("start", "unpause") or event.action.endswith(": healthy"):
                    if info is not None and info.ip_address:  # moved: another node or port
                        entry.addresses[event.container_id] = info.ip_address
                        entry.note_published(event.container_id, info.published)
                    has_check = any(r.check is Check.TCP for r in entry.routes)
                    if event.action.endswith(": healthy") or not has_check:
                        entry.resting.discard(event.container_id)
                if (entry.addresses, entry.resting, entry.published) != before:
                    self._apply()
                return

    def is_member(self, container_id: str) -> bool:
        with self._lock:
            return any(container_id in e.addresses for e in self._services.values())

    # -- what recovery calls -------------------------------------------------------------------
    def restore(self, replicas: Iterable[tuple[ContainerInfo, Project]]) -> None:
        """Rebuild the table from the engine (each running replica with the project its
        deployment deployed): public replicas serve, except those whose health check fails."""
        with self._lock:
            self._services.clear()
            for info, model in replicas:
                account = info.labels.get(LABEL_ACCOUNT, "")
                service = model.services.get(info.service)
                if service is None or not service.is_public or info.status != "running" \
                        or not info.ip_address:
                    continue
                key = (account, model.name, info.service)
                entry = self._services.get(key)
                if entry is None:
                    entry = self._services[key] = _Service(service_routes(
                        self.mode, self.zone, account, model.name, service))
                entry.addresses[info.id] = info.ip_address
                entry.note_published(info.id, info.published)
                if info.health not in (None, "healthy"):
                    entry.resting.add(info.id)
            if self.proxy is not None and self._supervisor is not None:
                self._apply()


def _addresses(containers: Iterable[ContainerInfo]) -> dict[str, str]:
    return {c.id: c.ip_address for c in containers if c.ip_address}


def _published(containers: Iterable[ContainerInfo]) -> dict[str, dict[int, int]]:
    return {c.id: dict(c.published) for c in containers if c.published}


def _port(route: Route) -> int:
    return int(route.key.rsplit("/", 1)[1])
