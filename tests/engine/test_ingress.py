"""The ingress end to end: deployed projects answer at their domains through the real proxy.

The real `dockyard` CLI, a real local server (its own DOCKYARD_HOME per test, the helpers of
tests/support/deployments.py), the real Docker Engine and Debian's HAProxy, started by the
server on free loopback ports (SERVER_ENV: DOCKYARD_HTTP_PORT=0, DOCKYARD_HTTPS_PORT=0,
DOCKYARD_INGRESS_HOST=127.0.0.1). Requests go to 127.0.0.1 on those ports with the domain in the
Host header (HTTP), and in SNI and Host (HTTPS, verified against the server's local CA for the
exact domain): no DNS is needed.

The projects are under `projects/ingress-*`: every replica answers `GET /` with its hostname (the
container id, so replicas differ) and its version, checks run every second and containers stop
within a second. Waiting is polling for a condition with a deadline.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from tests.support.deployments import (
    COMPLETED,
    FAILED,
    USER,
    Dockyard,
    containers,
    copy_project,
    docker_exec,
    edit,
    eventually,
    free_port,
    is_running,
    label,
    process_alive,
)
from tests.support.engine import engine_ready

_HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy"
                                      if Path("/usr/sbin/haproxy").exists() else None)

pytestmark = [
    pytest.mark.docker,
    pytest.mark.proxy,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1 (run scripts/setup "
                       "as root)"),
    pytest.mark.skipif(not os.environ.get("CI") and _HAPROXY is None,
                       reason="haproxy is not installed (scripts/setup installs it)"),
]

T = TypeVar("T")


# -- requests through the ingress ------------------------------------------------------------------
class Response:
    def __init__(self, status: int, body: str) -> None:
        self.status = status
        self.body = body

    @property
    def lines(self) -> list[str]:
        return self.body.strip().splitlines()

    @property
    def replica(self) -> str:
        """The hostname the replica wrote first in its page."""
        return self.lines[0] if self.lines else ""

    @property
    def version(self) -> str:
        return self.lines[-1] if self.lines else ""

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.body!r})"


def get(port: int, host: str, *, ca: str | None = None, host_header: str | None = None,
        timeout: float = 5.0) -> Response:
    """`GET /` at 127.0.0.1:`port` for `host`: Host header (HTTP), or SNI and Host (HTTPS,
    verified against the CA `ca` for exactly `host` when `ca` is given)."""
    sock: socket.socket = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        if ca is not None:
            context = ssl.create_default_context(cadata=ca)  # CERT_REQUIRED, check_hostname
            sock = context.wrap_socket(sock, server_hostname=host)
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {host_header or host}\r\nUser-Agent: ingress-test"
                     "\r\nConnection: close\r\n\r\n".encode())
        response = http.client.HTTPResponse(sock)
        response.begin()
        return Response(response.status, response.read().decode(errors="replace"))
    finally:
        sock.close()


def attempt(probe: Callable[[], T]) -> T | None:
    """`probe()`, or None when it raises (for `eventually`)."""
    try:
        return probe()
    except (OSError, http.client.HTTPException):
        return None


class Load:
    """Requests to one domain in a loop on a thread, each on a new connection, until stopped:
    every response and every error is kept, in order."""

    def __init__(self, port: int, host: str, *, ca: str | None = None) -> None:
        self.port, self.host, self.ca = port, host, ca
        self.responses: list[Response] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.responses.append(get(self.port, self.host, ca=self.ca))
            except Exception as exc:  # every failure is a result here, never a thread crash
                self.errors.append(f"{time.strftime('%H:%M:%S')} {type(exc).__name__}: {exc}")
            self._stop.wait(0.01)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def more(self, count: int) -> list[Response]:
        """The next `count` responses from now (waiting for them)."""
        mark = len(self.responses)
        eventually(lambda: len(self.responses) >= mark + count, f"{count} more responses")
        return self.responses[mark:]

    def failures(self) -> list[str]:
        bad = [f"HTTP {r.status}: {r.body[:200]!r}" for r in self.responses if r.status != 200]
        return self.errors + bad

    def summary(self) -> str:
        statuses = Counter(r.status for r in self.responses)
        versions = Counter(r.version for r in self.responses if r.status == 200)
        return (f"{len(self.responses)} responses {dict(statuses)}, versions {dict(versions)}, "
                f"{len(self.errors)} errors: {self.errors[:5]}")


# -- the server and its proxy ----------------------------------------------------------------------
def ports(dy: Dockyard) -> tuple[int, int]:
    """(http_port, https_port) of the ingress, from server.json."""
    state = json.loads((dy.data / "server.json").read_text())
    return int(state["http_port"]), int(state["https_port"])


def ca_pem(dy: Dockyard) -> str:
    result = dy.cli("ca", "--pem")
    assert result.code == 0, str(result)
    assert "BEGIN CERTIFICATE" in result.out, str(result)
    return result.out


def byoc_domain(service: str, port: int, project: str) -> str:
    return f"{service}--{port}.{project}.{USER}.localhost"


def logs(dy: Dockyard) -> str:
    """The server's and the proxy's logs, for failure messages."""
    parts = []
    for path in (dy.data / "server.log", dy.data / "ingress" / "haproxy.log"):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            text = "(missing)"
        parts.append(f"--- {path} (last lines)\n" + "\n".join(text.splitlines()[-40:]))
    return "\n".join(parts)


def proxies(dy: Dockyard) -> dict[int, int]:
    """pid → parent pid of every live `haproxy` process whose command line names the server's
    ingress directory (the master and its workers)."""
    ingress = str(dy.data / "ingress").encode()
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if (argv and argv[0].endswith(b"haproxy") and any(ingress in a for a in argv)
                and process_alive(int(entry.name))):
            found[int(entry.name)] = ppid
    return found


def proxy_master(dy: Dockyard) -> int | None:
    """The pid of the HAProxy master the server runs: the server's `haproxy` child."""
    found = dy.server()
    assert found is not None, "no local server runs"
    masters = [pid for pid, parent in proxies(dy).items() if parent == found[1]]
    assert len(masters) <= 1, f"several proxies: {masters}"
    return masters[0] if masters else None


@pytest.fixture
def dockyard(dockyard_home: Path) -> Iterator[Dockyard]:
    """The CLI with this test's DOCKYARD_HOME; its server and projects are gone afterwards."""
    dy = Dockyard(dockyard_home)
    try:
        yield dy
    finally:
        dy.close()


def deploy(dy: Dockyard, name: str, tmp_path: Path, what: str,
           change: Callable[[Path], None] | None = None) -> tuple[str, Path]:
    """A copy of projects/`name` (changed by `change`), deployed under a unique name."""
    directory = copy_project(name, tmp_path)
    if change is not None:
        change(directory / "compose.yaml")
    project = dy.name(what)
    result = dy.up(directory, project)
    assert result.code == 0, f"{result}\n{logs(dy)}"
    return project, directory


def replicas(project: str, service: str) -> dict[str, dict[str, Any]]:
    """The running containers of `service`, by their hostname (the short container id)."""
    return {str(c["Config"]["Hostname"]): c for c in containers(project, service=service)
            if is_running(c)}


def spread(port: int, domain: str, count: int, **options: Any) -> Counter[str]:
    """Which replica answered each of `count` requests (all must be 200)."""
    seen: Counter[str] = Counter()
    for _ in range(count):
        response = get(port, domain, **options)
        assert response.status == 200, response
        seen[response.replica] += 1
    return seen


# -- byoc: routes, TLS, balancing, what has no route --------------------------------------------
def test_public_ports_answer_at_their_domain_over_http_and_https(
        dockyard: Dockyard, tmp_path: Path) -> None:
    host_port = free_port()

    def set_host_port(compose: Path) -> None:
        data = yaml.safe_load(compose.read_text())
        data["services"]["hostport"]["ports"][0]["published"] = host_port
        compose.write_text(yaml.safe_dump(data, sort_keys=False))

    project, _ = deploy(dockyard, "ingress-mixed", tmp_path, "byoc", set_host_port)
    http_port, https_port = ports(dockyard)
    assert http_port not in (0, 80) and https_port not in (0, 443)

    # The CA: the same from the CLI and the API, which also tells the ports.
    ca = ca_pem(dockyard)
    ingress = dockyard.api("/v1/ingress")
    assert ingress["enabled"] is True, ingress
    assert (ingress["http_port"], ingress["https_port"]) == (http_port, https_port), ingress
    assert ingress["ca_certificate"].strip() == ca.strip()

    domain = byoc_domain("web", 8080, project)
    web = replicas(project, "web")
    assert len(web) == 2, web

    # HTTP by Host (also with the port in it, as curl and browsers send it), HTTPS by SNI+Host,
    # verified against the local CA for exactly this name.
    plain = get(http_port, domain)
    assert plain.status == 200 and plain.version == "v1" and plain.replica in web, plain
    with_port = get(http_port, domain, host_header=f"{domain}:{http_port}")
    assert with_port.status == 200 and with_port.version == "v1", with_port
    secure = get(https_port, domain, ca=ca)
    assert secure.status == 200 and secure.version == "v1" and secure.replica in web, secure
    secure_with_port = get(https_port, domain, ca=ca, host_header=f"{domain}:{https_port}")
    assert secure_with_port.status == 200, secure_with_port

    # Balanced round-robin over both replicas, over HTTP and over HTTPS.
    for seen in (spread(http_port, domain, 10), spread(https_port, domain, 10, ca=ca)):
        assert set(seen) == set(web), seen
        assert min(seen.values()) >= 3, seen

    # The private service and the host-port service run, but have no route; nor has a stranger.
    rows = dockyard.ps(project)
    assert {name: row["state"] for name, row in rows.items()} == dict.fromkeys(
        ("web", "private", "hostport"), COMPLETED), rows
    assert get(http_port, "127.0.0.1", host_header="localhost").status == 404
    for host in (byoc_domain("private", 8080, project), byoc_domain("hostport", 8080, project),
                 f"nothing.{project}.{USER}.localhost", "unknown.example.com"):
        response = get(http_port, host)
        assert response.status == 404, (host, response)
    direct = get(host_port, "localhost")
    assert direct.status == 200 and direct.body.strip() == "hostport", direct

    # ps: the endpoint is the HTTPS URL with the ingress port (not 443 here).
    assert rows["web"]["endpoint"] == f"https://{domain}:{https_port}", rows["web"]
    assert f"https://{domain}:{https_port}" in rows["web"]["endpoints"], rows["web"]
    assert rows["private"]["endpoint"] == "" and rows["private"]["endpoints"] == [], rows
    assert rows["hostport"]["endpoint"] == f"localhost:{host_port}", rows["hostport"]


# -- playground ---------------------------------------------------------------------------------
@pytest.fixture
def playground(dockyard_home: Path) -> Iterator[Dockyard]:
    """The CLI of a playground server on this test's DOCKYARD_HOME, started by the CLI itself
    as for byoc (the server writes the local user's token in every mode)."""
    dy = Dockyard(dockyard_home, env={"DOCKYARD_MODE": "playground",
                                      "DOCKYARD_ALLOW_IMAGE": "dockyard/busybox:*"})
    try:
        yield dy
    finally:
        dy.close()


def test_playground_domains_answer_over_http_and_https(
        playground: Dockyard, tmp_path: Path) -> None:
    def one_replica(compose: Path) -> None:  # the playground allows one replica per service
        edit(compose, "replicas: 2", "replicas: 1")

    dy = playground
    project, _ = deploy(dy, "ingress-public", tmp_path, "play", one_replica)
    assert json.loads((dy.data / "server.json").read_text())["mode"] == "playground"
    http_port, https_port = ports(dy)
    domain = f"{USER}-web--8080.prod1a.localhost"
    ca = ca_pem(dy)
    web = replicas(project, "web")
    assert len(web) == 1, web

    plain = get(http_port, domain)
    assert plain.status == 200 and plain.version == "v1" and plain.replica in web, plain
    secure = get(https_port, domain, ca=ca)
    assert secure.status == 200 and secure.version == "v1" and secure.replica in web, secure
    secure_with_port = get(https_port, domain, ca=ca, host_header=f"{domain}:{https_port}")
    assert secure_with_port.status == 200, secure_with_port
    # The byoc name of the same port is not served in playground mode.
    assert get(http_port, byoc_domain("web", 8080, project)).status == 404
    row = dy.ps(project)["web"]
    assert row["endpoint"] == f"https://{domain}:{https_port}", row


# -- health decides the rotation ----------------------------------------------------------------
def test_an_unhealthy_replica_leaves_the_rotation(dockyard: Dockyard, tmp_path: Path) -> None:
    project, _ = deploy(dockyard, "ingress-checked", tmp_path, "unhealthy")
    http_port, _ = ports(dockyard)
    domain = byoc_domain("web", 8080, project)
    web = replicas(project, "web")
    assert len(web) == 2, web
    assert set(spread(http_port, domain, 10)) == set(web)

    sick, well = sorted(web)
    with Load(http_port, domain) as load:
        removed = docker_exec(web[sick], "rm /www/ok")
        assert removed.returncode == 0, removed
        marker = len(load.responses)

        def only_well() -> bool:
            recent = load.responses[marker:][-10:]
            return len(recent) == 10 and {r.replica for r in recent} == {well}

        eventually(only_well, f"requests to leave the unhealthy replica {sick}", timeout=15)
        after = load.more(20)
        assert {r.replica for r in after} == {well}, Counter(r.replica for r in after)

        # Healthy again: it comes back.
        assert docker_exec(web[sick], "touch /www/ok").returncode == 0
        back = len(load.responses)
        eventually(lambda: sick in {r.replica for r in load.responses[back:]},
                   f"the recovered replica {sick} to serve again", timeout=15)
    assert not load.failures(), f"{load.summary()}\n{load.failures()[:10]}\n{logs(dockyard)}"


def test_a_new_version_that_never_gets_healthy_leaves_the_old_one_serving(
        dockyard: Dockyard, tmp_path: Path) -> None:
    project, directory = deploy(dockyard, "ingress-checked", tmp_path, "badv2")
    http_port, https_port = ports(dockyard)
    domain = byoc_domain("web", 8080, project)
    old = replicas(project, "web")
    first = {label(c, "deployment") for c in old.values()}
    assert get(http_port, domain).version == "v1"

    compose = directory / "compose.yaml"
    edit(compose, "VERSION: v1", "VERSION: v2")
    edit(compose, '"test", "-f", "/www/ok"', '"test", "-f", "/www/never"')
    with Load(http_port, domain) as load:
        second = dockyard.up(directory, project)
        load.more(10)
    assert second.code == 5, f"{second}\n{logs(dockyard)}"

    assert load.responses, load.summary()
    assert not load.failures(), f"{load.summary()}\n{load.failures()[:10]}\n{logs(dockyard)}"
    assert {r.version for r in load.responses} == {"v1"}, load.summary()

    row = dockyard.ps(project)["web"]
    assert row["state"] == FAILED, row
    assert row["deployment"] == second.deployment, row
    assert "previous version keeps running" in row["reason"], row

    # Only the old replicas are left, and they still serve, over HTTP and HTTPS.
    now = replicas(project, "web")
    assert set(now) == set(old), (sorted(now), sorted(old))
    assert {label(c, "deployment") for c in containers(project)} == first
    seen = spread(http_port, domain, 10)
    assert set(seen) == set(old), seen
    assert get(https_port, domain, ca=ca_pem(dockyard)).version == "v1"


def test_a_changed_service_is_replaced_with_no_failed_request(
        dockyard: Dockyard, tmp_path: Path) -> None:
    project, directory = deploy(dockyard, "ingress-public", tmp_path, "rolling")
    http_port, _ = ports(dockyard)
    domain = byoc_domain("web", 8080, project)
    compose = directory / "compose.yaml"
    assert get(http_port, domain).version == "v1"

    with Load(http_port, domain) as load:
        eventually(lambda: len(load.responses) >= 10, "the load to start")
        for old, new in (("v1", "v2"), ("v2", "v3")):
            before = replicas(project, "web")
            edit(compose, f"VERSION: {old}", f"VERSION: {new}")
            result = dockyard.up(directory, project)
            assert result.code == 0, f"{result}\n{logs(dockyard)}"
            after = replicas(project, "web")
            assert len(after) == 2 and not set(after) & set(before), (after, before)
            # When `up` returns, the old replicas are out: every request gets the new version.
            tail = load.more(20)
            assert {r.version for r in tail} == {new}, Counter(r.version for r in tail)
            assert {r.replica for r in tail} == set(after), Counter(r.replica for r in tail)

    assert not load.failures(), f"{load.summary()}\n{load.failures()[:10]}\n{logs(dockyard)}"
    versions = [r.version for r in load.responses]
    assert {"v1", "v2", "v3"} <= set(versions), load.summary()
    assert versions[-1] == "v3"


# -- the proxy dies -------------------------------------------------------------------------------
def test_a_killed_proxy_is_started_again_with_its_routes(
        dockyard: Dockyard, tmp_path: Path) -> None:
    project, _ = deploy(dockyard, "ingress-public", tmp_path, "killproxy")
    http_port, https_port = ports(dockyard)
    domain = byoc_domain("web", 8080, project)
    ca = ca_pem(dockyard)
    assert get(http_port, domain).status == 200

    master = proxy_master(dockyard)
    assert master is not None, f"no haproxy child of the server\n{logs(dockyard)}"
    os.kill(master, signal.SIGKILL)
    killed = time.monotonic()

    def restarted() -> int | None:
        """A new proxy, answering for the route (not a worker of the killed one)."""
        fresh = proxy_master(dockyard)
        if fresh is None or fresh == master:
            return None
        response = attempt(lambda: get(http_port, domain, timeout=1))
        return fresh if response is not None and response.status == 200 else None

    fresh = eventually(restarted, "a new proxy to serve the route after its proxy was killed",
                       timeout=5)
    elapsed = time.monotonic() - killed
    assert elapsed < 5, elapsed
    assert not process_alive(master)
    assert get(http_port, domain).version == "v1"
    secure = get(https_port, domain, ca=ca)
    assert secure.status == 200 and secure.version == "v1", secure
    assert set(spread(http_port, domain, 10)) == set(replicas(project, "web"))
    assert get(http_port, "unknown.example.com").status == 404
    # Nothing of the killed proxy is left serving beside the new one (its workers end too).
    def leftovers() -> dict[int, int]:
        return {pid: parent for pid, parent in proxies(dockyard).items()
                if fresh not in (pid, parent)}

    eventually(lambda: not leftovers(), "the killed proxy's workers to end", timeout=5)
    assert proxy_master(dockyard) == fresh


# -- down ---------------------------------------------------------------------------------------
def test_down_removes_the_routes(dockyard: Dockyard, tmp_path: Path) -> None:
    project, _ = deploy(dockyard, "ingress-public", tmp_path, "downroute")
    http_port, _ = ports(dockyard)
    domain = byoc_domain("web", 8080, project)
    assert get(http_port, domain).status == 200

    down = dockyard.cli("compose", "down", "--json", "-p", project)
    assert down.code == 0, str(down)
    response = get(http_port, domain)
    assert response.status == 404, f"{response}\n{logs(dockyard)}"
    assert containers(project) == []


# -- the FQDN ps shows ---------------------------------------------------------------------------
def test_the_fqdn_ps_shows_answers_as_the_first_port(dockyard: Dockyard, tmp_path: Path) -> None:
    """A user who copies the FQDN column of `ps` (the service's name without a port) gets the
    service's first ingress port, over HTTP and over HTTPS with a certificate for that name."""
    project, _ = deploy(dockyard, "ingress-ports", tmp_path, "fqdn")
    http_port, https_port = ports(dockyard)
    ca = ca_pem(dockyard)
    fqdn = dockyard.ps(project)["web"]["fqdn"]
    assert fqdn == f"web.{project}.{USER}.localhost"
    for response in (get(http_port, fqdn), get(http_port, fqdn, host_header=f"{fqdn}:{http_port}"),
                     get(https_port, fqdn, ca=ca)):
        assert response.status == 200 and response.body.strip() == "port-8080", \
            f"{response}\n{logs(dockyard)}"
    # Each port still answers at its own domain.
    assert get(http_port, byoc_domain("web", 8080, project)).body.strip() == "port-8080"
    assert get(https_port, byoc_domain("web", 9000, project), ca=ca).body.strip() == "port-9000"


# -- custom domain names ----------------------------------------------------------------------
def test_a_custom_domainname_is_served_and_one_in_the_zone_is_refused(
        dockyard: Dockyard, tmp_path: Path) -> None:
    project, directory = deploy(dockyard, "ingress-custom", tmp_path, "custom")
    http_port, _ = ports(dockyard)
    for host in ("shop.example.test", "SHOP.example.test", byoc_domain("shop", 8080, project)):
        response = get(http_port, host)
        assert response.status == 200 and response.body.strip() == "custom-shop", (host, response)

    # A name inside the server's zone (`localhost` in byoc) is refused before anything starts.
    refused = dockyard.name("inzone")
    edit(directory / "compose.yaml", "domainname: shop.example.test", "domainname: x.localhost")
    result = dockyard.up(directory, refused)
    assert result.code == 3, str(result)
    assert "domain-invalid" in result.out + result.err, str(result)
    assert "x.localhost" in result.out + result.err, str(result)
    assert containers(refused) == []
    assert get(http_port, "x.localhost").status == 404
    # The first project is untouched.
    assert get(http_port, "shop.example.test").status == 200
