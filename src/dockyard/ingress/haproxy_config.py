"""HAProxy's configuration and runtime commands, computed from the routes (pure).

Each route is one backend with a fixed number of server slots. A slot holds one replica (in
rotation: `ready`; out of rotation: `maint`, where in-flight requests finish but no new one
comes) or nothing (`maint` at a dummy address). Changing which replicas serve a route is a list of
runtime-API commands (`set server ... addr` and `... state`): no reload, no dropped request.

The configuration also holds spare backends (as many per check type as routes of that type, at
least `MIN_SPARES`), with no host: a new route takes one through the runtime API (its replicas
set in its slots, then its hosts added to the hosts map), and a removed route's backend becomes
a spare. Why: each new public service needed a reload, and a reload under load took seconds; a
deployment of 50 new services queued behind a chain of them. Only changed host names or check
type, a route outgrowing its slots, no fitting spare left, or new certificates need a new
configuration, which the proxy driver loads with a seamless reload (and which has spares again).

Port 80 answers the tokens of the `acme.map` (`set_acme_token`) before any routing, at the ACME
CA's `/.well-known/acme-challenge/<token>` and at the server's own custom-domain check
`/.well-known/dockyard-challenge/<token>` (`dockyard.server.domain_check`), for any host.

The host → backend map and the certificate list are files beside the configuration; the
configuration is always written from the whole current state, so a restarted proxy comes back
with every route.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from dockyard.ingress.domain_policy import CHALLENGE_PREFIX
from dockyard.ingress.routes import Check, Route, Upstream

MIN_SLOTS = 4
MIN_SPARES = 16  # spare backends per check type, at least (see the module's docstring)
MAX_SOCKET_PATH = 90
EMPTY_ADDRESS = "127.0.0.1"
EMPTY_PORT = 1
NOT_FOUND_BACKEND = "notfound"


@dataclass(frozen=True, slots=True)
class Paths:
    """The files HAProxy reads, all in the proxy's working directory."""

    directory: Path

    @property
    def config(self) -> Path:
        return self.directory / "haproxy.cfg"

    @property
    def hosts_map(self) -> Path:
        return self.directory / "hosts.map"

    @property
    def acme_map(self) -> Path:
        return self.directory / "acme.map"

    @property
    def redirect_map(self) -> Path:
        return self.directory / "https-only.map"

    @property
    def crt_list(self) -> Path:
        return self.directory / "certificates.list"

    @property
    def socket_directory(self) -> Path:
        """Where the control sockets live: the directory itself, unless its path is too long
        for a Unix socket (HAProxy takes at most 97 characters), then a short private one
        under /tmp named after it."""
        if len(str(self.directory / "master.sock")) <= MAX_SOCKET_PATH:
            return self.directory
        digest = hashlib.sha256(str(self.directory).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"dockyard-ingress-{digest}"

    @property
    def admin_socket(self) -> Path:
        return self.socket_directory / "admin.sock"

    @property
    def master_socket(self) -> Path:
        return self.socket_directory / "master.sock"


@dataclass(frozen=True, slots=True)
class Listener:
    """Where a frontend listens: an inherited file descriptor (pre-bound by the server)."""

    fd: int


@dataclass(frozen=True, slots=True)
class Backend:
    """A route as laid out in HAProxy: its backend name and what each slot holds."""

    name: str
    route: Route
    slots: tuple[Upstream | None, ...]

    def slot_of(self, upstream: Upstream) -> int | None:
        for index, held in enumerate(self.slots):
            if held is not None and held.endpoint == upstream.endpoint:
                return index
        return None


@dataclass(frozen=True, slots=True)
class Spare:
    """A backend no route uses: its name, its check type, and how many slots it has."""

    name: str
    check: Check
    slots: int


@dataclass(frozen=True, slots=True)
class Layout:
    """The whole proxy state: one backend per route, the spare backends, TLS and ACME."""

    backends: Mapping[str, Backend] = field(default_factory=dict)  # by route key
    certificates: tuple[Path, ...] = ()  # PEM files (chain + key); the first is the default
    https_only: frozenset[str] = frozenset()  # hosts whose HTTP requests are redirected
    spares: tuple[Spare, ...] = ()


def backend_name(route_key: str) -> str:
    """A stable backend name for a route (route keys hold characters HAProxy names may not)."""
    return "r_" + hashlib.sha256(route_key.encode()).hexdigest()[:16]


def slot_count(replicas: int) -> int:
    """Slots for `replicas`: room for a start-first replacement (old and new at once)."""
    wanted = max(MIN_SLOTS, 2 * replicas)
    count = MIN_SLOTS
    while count < wanted:
        count *= 2
    return count


def server_name(index: int) -> str:
    return f"s{index + 1}"


def fresh_layout(routes: Mapping[str, Route], certificates: Sequence[Path] = (),
                 https_only: frozenset[str] = frozenset()) -> Layout:
    """Lay every route out from scratch: replicas in order, in rotation first."""
    backends: dict[str, Backend] = {}
    for key in sorted(routes):
        route = routes[key]
        members: list[Upstream | None] = [*route.upstreams, *route.resting]
        members += [None] * (slot_count(len(members)) - len(members))
        backends[key] = Backend(backend_name(key), route, tuple(members))
    spares = tuple(
        Spare(f"spare_{check.value}_{index + 1}", check, MIN_SLOTS)
        for check in Check
        for index in range(max(MIN_SPARES, sum(r.check is check for r in routes.values()))))
    return Layout(backends, tuple(certificates), https_only, spares)


def needs_reload(applied: Layout, routes: Mapping[str, Route], certificates: Sequence[Path],
                 https_only: frozenset[str]) -> bool:
    """Whether `routes` differ from `applied` in something the runtime API cannot change."""
    if applied.certificates != tuple(certificates) or applied.https_only != https_only:
        return True
    for key in routes.keys() & applied.backends.keys():
        route, backend = routes[key], applied.backends[key]
        if backend.route.hosts != route.hosts or backend.route.check != route.check:
            return True
        members = {u.endpoint for u in (*route.upstreams, *route.resting)}
        kept = {u.endpoint for u in backend.slots if u is not None} & members
        if len(members - kept) > len(backend.slots) - len(kept):
            return True
    # A removed route's hosts leave the map by name: a host another route also names would
    # leave with them (the map file would still say it).
    staying = {h for route in routes.values() for h in route.hosts}
    if any(h in staying for key in applied.backends.keys() - routes.keys()
           for h in applied.backends[key].route.hosts):
        return True
    return _claims(applied, routes) is None


def _claims(applied: Layout, routes: Mapping[str, Route]) -> dict[str, Spare] | None:
    """The spare each new route of `routes` takes, or None when one has none that fits (its
    check type, enough slots) or names a host another route keeps serving."""
    added = sorted(routes.keys() - applied.backends.keys())
    kept = routes.keys() & applied.backends.keys()
    taken = {h for key in kept for h in applied.backends[key].route.hosts}
    free = list(applied.spares)
    claims: dict[str, Spare] = {}
    for key in added:
        route = routes[key]
        if taken & set(route.hosts):
            return None
        taken |= set(route.hosts)
        needed = slot_count(len(route.upstreams) + len(route.resting))
        spare = next((s for s in free if s.check is route.check and s.slots >= needed), None)
        if spare is None:
            return None
        free.remove(spare)
        claims[key] = spare
    return claims


def runtime_update(applied: Layout, routes: Mapping[str, Route], *,
                   hosts_map: str = "hosts.map") -> tuple[Layout, list[str]]:
    """The runtime-API commands that turn `applied` into `routes`.

    Replicas keep their slots; a replica leaving frees its slot (maint first, then the dummy
    address); a new one takes a free slot, gets its address, then `ready`. A removed route's
    hosts leave `hosts_map` (the map file as the configuration names it) and its backend
    becomes a spare; a new route takes a spare (`_claims`), and its hosts join the map once
    its replicas are in their slots. Call only when `needs_reload` is False.
    """
    commands: list[str] = []
    backends: dict[str, Backend] = {}
    claims = _claims(applied, routes) or {}
    owners = _host_owners(applied)
    spares = [s for s in applied.spares if s not in claims.values()]
    for key in sorted(applied.backends.keys() - routes.keys()):
        gone = applied.backends[key]
        commands += [f"del map {hosts_map} {host}" for host in gone.route.hosts
                     if owners.get(host) == gone.name]
        for index, held in enumerate(gone.slots):
            if held is not None:
                target = f"{gone.name}/{server_name(index)}"
                commands.append(f"set server {target} state maint")
                commands.append(f"set server {target} addr {EMPTY_ADDRESS} port {EMPTY_PORT}")
        spares.append(Spare(gone.name, gone.route.check, len(gone.slots)))
    for key, route in sorted(routes.items()):
        claimed = claims.get(key)
        backend = applied.backends[key] if claimed is None else \
            Backend(claimed.name, replace(route, upstreams=(), resting=()),
                    (None,) * claimed.slots)
        live = {u.endpoint: u for u in route.upstreams}
        resting = {u.endpoint: u for u in route.resting}
        slots = list(backend.slots)
        before = {u.endpoint: (u, u.endpoint in {r.endpoint for r in backend.route.upstreams})
                  for u in backend.slots if u is not None}
        for index, held in enumerate(slots):
            if held is None:
                continue
            target = f"{backend.name}/{server_name(index)}"
            was_live = before[held.endpoint][1]
            if held.endpoint in live:
                slots[index] = live[held.endpoint]
                if not was_live:
                    commands.append(f"set server {target} state ready")
            elif held.endpoint in resting:
                slots[index] = resting[held.endpoint]
                if was_live:
                    commands.append(f"set server {target} state maint")
            else:
                slots[index] = None
                if was_live:
                    commands.append(f"set server {target} state maint")
                commands.append(f"set server {target} addr {EMPTY_ADDRESS} port {EMPTY_PORT}")
        for upstream, in_rotation in [*((u, True) for u in route.upstreams),
                                      *((u, False) for u in route.resting)]:
            if upstream.endpoint in before:
                continue
            index = slots.index(None)
            slots[index] = upstream
            target = f"{backend.name}/{server_name(index)}"
            commands.append(f"set server {target} addr {upstream.address} port {upstream.port}")
            if in_rotation:
                commands.append(f"set server {target} state ready")
        backends[key] = Backend(backend.name, route, tuple(slots))
        if claimed is not None:
            commands += [f"add map {hosts_map} {host} {claimed.name}" for host in route.hosts]
    return Layout(backends, applied.certificates, applied.https_only, tuple(spares)), commands


def _host_owners(layout: Layout) -> dict[str, str]:
    """host → the backend serving it (the first route by key, as the map file is written)."""
    owners: dict[str, str] = {}
    for key in sorted(layout.backends):
        for host in layout.backends[key].route.hosts:
            owners.setdefault(host, layout.backends[key].name)
    return owners


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(layout: Layout, paths: Paths, *, http: Listener, https: Listener | None
                  ) -> str:
    """The whole configuration file for `layout`."""
    lines = [
        "# Written by the Dockyard server; every change is overwritten.",
        "global",
        f"    stats socket {paths.admin_socket} mode 600 level admin expose-fd listeners",
        "    stats timeout 30s",
        "    hard-stop-after 120s",
        "    ssl-default-bind-options ssl-min-ver TLSv1.2",
        "",
        "defaults",
        "    mode http",
        "    timeout connect 3s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 10s",
        "    timeout tunnel 1h",
        "    timeout check 2s",
        # Every retry goes to another replica: one that just stopped is not waited for.
        "    option redispatch 1",
        "    retries 3",
        "    option forwardfor",
        "    default-server inter 1s fastinter 500ms downinter 1s rise 1 fall 2",
        "",
    ]
    routing = [
        f"    use_backend %[req.hdr(host),field(1,:),lower,map({paths.hosts_map},"
        f"{NOT_FOUND_BACKEND})]",
    ]
    lines += [
        "frontend http",
        f"    bind fd@{http.fd}",
        "    http-request set-var(txn.acme) path,field(4,/),map("
        f"{paths.acme_map}) if {{ path_beg /.well-known/acme-challenge/ }} || "
        f"{{ path_beg {CHALLENGE_PREFIX} }}",
        '    http-request return status 200 content-type text/plain lf-string "%[var(txn.acme)]"'
        " if { var(txn.acme) -m found }",
        f"    http-request redirect scheme https code 308 if {{ req.hdr(host),field(1,:),lower,"
        f"map({paths.redirect_map}) -m found }}",
        "    http-request set-header X-Forwarded-Proto http",
        *routing,
        "",
    ]
    if https is not None and layout.certificates:
        lines += [
            "frontend https",
            f"    bind fd@{https.fd} ssl crt-list {paths.crt_list} alpn h2,http/1.1",
            "    http-request set-header X-Forwarded-Proto https",
            *routing,
            "",
        ]
    lines += [
        f"backend {NOT_FOUND_BACKEND}",
        '    http-request return status 404 content-type text/plain string'
        ' "no service is published at this address\\n"',
        "",
    ]
    for key in sorted(layout.backends):
        backend = layout.backends[key]
        route = backend.route
        lines += _backend_lines(backend.name, f"{route.key}: {' '.join(route.hosts)}",
                                route.check, backend.slots,
                                {u.endpoint for u in route.upstreams})
    for spare in layout.spares:
        lines += _backend_lines(spare.name, "spare: no route yet", spare.check,
                                (None,) * spare.slots, set())
    return "\n".join(lines)


def _backend_lines(name: str, comment: str, check: Check,
                   slots: Sequence[Upstream | None], live: set[str]) -> list[str]:
    lines = [f"backend {name}", f"    # {comment}", "    balance roundrobin"]
    if check is Check.HTTP:
        lines += ["    option httpchk GET /", "    http-check expect rstatus ^[1-4]"]
    for index, held in enumerate(slots):
        if held is None:
            where, state = f"{EMPTY_ADDRESS}:{EMPTY_PORT}", " disabled"
        else:
            where = held.endpoint
            state = "" if held.endpoint in live else " disabled"
        lines.append(f"    server {server_name(index)} {where} check{state}")
    lines.append("")
    return lines


def render_hosts_map(layout: Layout) -> str:
    return "".join(f"{host} {name}\n" for host, name in sorted(_host_owners(layout).items()))


def render_crt_list(layout: Layout) -> str:
    return "".join(f"{_quote(str(path))}\n" if " " in str(path) else f"{path}\n"
                   for path in layout.certificates)


def render_redirect_map(layout: Layout) -> str:
    return "".join(f"{host} 1\n" for host in sorted(layout.https_only))
