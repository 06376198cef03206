"""ACME certificates for deployed projects, end to end: the real CLI and server, the real Docker
Engine and HAProxy, and Debian's pebble as the ACME CA (offline).

Each test runs its own local server (its own DOCKYARD_HOME, the `Dockyard` helper of
test_deployments.py) in byoc mode with a real zone (`apps.example.com`, outside the local zones),
so its generated domains go to ACME:

- HTTP-01: pebble validates by connecting to the domain on its `httpPort`, which the test sets to
  the server's ingress HTTP port; pebble-challtestsrv (pebble's DNS) answers every A query with
  127.0.0.1, where the ingress listens. The project gets one certificate listing its hosts, and
  those hosts are HTTPS-only (HTTP answers a 308 redirect).
- DNS-01: the server's DNS hook is a script of the test that sets and clears TXT records through
  challtestsrv's management API; the project gets one wildcard certificate for all its domains.
- An ACME CA that cannot be reached: the deployment still completes, and the hosts are served
  with a certificate from the server's local CA (documented: an ACME failure does not stop a
  deployment).

Requests go to 127.0.0.1 on the ingress ports with the domain in SNI and Host, and are verified
for the exact domain: against pebble's issuing root (`GET /roots/0` on its management port), or
against the server's local CA (`dockyard ca --pem`). pebble runs with PEBBLE_VA_NOSLEEP=1 and
PEBBLE_AUTHZREUSE=0 on free ports, one pebble per test (its `httpPort` is that test's ingress
port). Tests that need pebble are skipped without it; a missing engine or haproxy skips all.
"""

from __future__ import annotations

import http.client
import json
import os
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import yaml
from cryptography import x509

from dockyard.ingress.ca import LocalCA
from tests.engine.test_acme_pebble import program, stop, wait_for_port
from tests.engine.test_deployments import (
    COMPLETED,
    USER,
    Dockyard,
    copy_project,
    free_port,
)
from tests.engine.test_example_images import _engine_ready

_HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy"
                                      if Path("/usr/sbin/haproxy").exists() else None)

pytestmark = [
    pytest.mark.docker,
    pytest.mark.proxy,
    pytest.mark.skipif(not os.environ.get("CI") and not _engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1 (run scripts/setup "
                       "as root)"),
    pytest.mark.skipif(not os.environ.get("CI") and _HAPROXY is None,
                       reason="haproxy is not installed (scripts/setup installs it)"),
]

ZONE = "apps.example.com"  # a real zone: not local, so its names go to ACME
EMAIL = "alice@example.com"
PROJECT = "acme-web"  # tests/engine/projects/acme-web: `web` answers "hello" on 8080

T = TypeVar("T")


def domain(service: str, port: int, project: str) -> str:
    return f"{service}--{port}.{project}.{USER}.{ZONE}"


# -- pebble ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pebble:
    directory_url: str
    management_url: str  # pebble's own (HTTPS): its issuing roots
    dns_management_url: str  # pebble-challtestsrv's (HTTP): TXT records
    ca_bundle: Path  # the CA of the certificate pebble serves its API with
    http_port: int  # where pebble validates HTTP-01: the test server's ingress HTTP port
    logs: tuple[Path, ...]

    def root_pem(self) -> str:
        """pebble's issuing root (a new one every time pebble starts)."""
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        response = httpx.get(f"{self.management_url}/roots/0", verify=context, timeout=10)
        response.raise_for_status()
        assert "BEGIN CERTIFICATE" in response.text, response.text
        return response.text


@pytest.fixture
def pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """pebble and pebble-challtestsrv on free ports; pebble's `httpPort` is a free port the
    test's server must take as its ingress HTTP port."""
    pebble_bin, challtestsrv_bin = program("pebble"), program("pebble-challtestsrv")
    if pebble_bin is None or challtestsrv_bin is None:
        pytest.skip("pebble is not installed (scripts/setup installs Debian's pebble)")
    work = tmp_path_factory.mktemp("pebble")
    ca = LocalCA.load_or_create(work / "ca")
    tls = ca.issue(["localhost", "127.0.0.1"])
    (work / "pebble.crt").write_bytes(tls.chain_pem)
    (work / "pebble.key").write_bytes(tls.key_pem)
    http_port, acme_port, management_port, dns_port, dns_management_port, tls_port = \
        (free_port() for _ in range(6))
    config = {"pebble": {
        "listenAddress": f"127.0.0.1:{acme_port}",
        "managementListenAddress": f"127.0.0.1:{management_port}",
        "certificate": str(work / "pebble.crt"), "privateKey": str(work / "pebble.key"),
        "httpPort": http_port, "tlsPort": tls_port, "ocspResponderURL": "",
        "externalAccountBindingRequired": False}}
    (work / "pebble.json").write_text(json.dumps(config))
    dns_log, pebble_log = work / "challtestsrv.log", work / "pebble.log"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with dns_log.open("wb") as out:
            dns = subprocess.Popen(
                [challtestsrv_bin, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                 "-dns01", f"127.0.0.1:{dns_port}", "-http01", "", "-https01", "",
                 "-tlsalpn01", "", "-management", f"127.0.0.1:{dns_management_port}"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        processes.append(dns)
        wait_for_port(dns_management_port, dns, dns_log)
        with pebble_log.open("wb") as out:
            server = subprocess.Popen(
                [pebble_bin, "-config", str(work / "pebble.json"),
                 "-dnsserver", f"127.0.0.1:{dns_port}"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=work,
                env={"PATH": "/usr/bin:/bin", "PEBBLE_VA_NOSLEEP": "1",
                     "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"})
        processes.append(server)
        wait_for_port(acme_port, server, pebble_log)
        wait_for_port(management_port, server, pebble_log)
        yield Pebble(directory_url=f"https://localhost:{acme_port}/dir",
                     management_url=f"https://localhost:{management_port}",
                     dns_management_url=f"http://127.0.0.1:{dns_management_port}",
                     ca_bundle=ca.certificate_path, http_port=http_port,
                     logs=(pebble_log, dns_log))
    finally:
        for process in reversed(processes):
            stop(process)


# -- the server ------------------------------------------------------------------------------------
@pytest.fixture
def servers(dockyard_home: Path) -> Iterator[Callable[[dict[str, str]], Dockyard]]:
    """Makes the test's `Dockyard` (its server gets `env`); its server and projects are gone
    afterwards."""
    made: list[Dockyard] = []

    def make(env: dict[str, str]) -> Dockyard:
        dy = Dockyard(dockyard_home, env=env)
        made.append(dy)
        return dy

    try:
        yield make
    finally:
        for dy in made:
            dy.close()


def server_env(directory_url: str, http_port: int, **extra: str) -> dict[str, str]:
    """A byoc server in `ZONE` with ACME at `directory_url`, the ingress on 127.0.0.1."""
    return {"DOCKYARD_MODE": "byoc", "DOCKYARD_ZONE": ZONE,
            "DOCKYARD_INGRESS_HOST": "127.0.0.1", "DOCKYARD_HTTP_PORT": str(http_port),
            "DOCKYARD_HTTPS_PORT": str(free_port()),
            "DOCKYARD_ACME_DIRECTORY": directory_url, "DOCKYARD_ACME_EMAIL": EMAIL, **extra}


def pebble_env(pebble: Pebble, **extra: str) -> dict[str, str]:
    return server_env(pebble.directory_url, pebble.http_port,
                      DOCKYARD_ACME_CA_BUNDLE=str(pebble.ca_bundle), **extra)


def https_port(dy: Dockyard) -> int:
    return int(dy.env["DOCKYARD_HTTPS_PORT"])


def http_port(dy: Dockyard) -> int:
    return int(dy.env["DOCKYARD_HTTP_PORT"])


def logs(dy: Dockyard, pebble: Pebble | None = None) -> str:
    """The server's, the proxy's (and pebble's) logs, for failure messages."""
    paths = [dy.data / "server.log", dy.data / "ingress" / "haproxy.log",
             *(pebble.logs if pebble else ())]
    parts = []
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            text = "(missing)"
        parts.append(f"--- {path} (last lines)\n" + "\n".join(text.splitlines()[-40:]))
    return "\n".join(parts)


def deploy(dy: Dockyard, tmp_path: Path, what: str, pebble: Pebble | None = None,
           change: Callable[[dict[str, object]], None] | None = None) -> str:
    """A copy of projects/acme-web (changed by `change`), deployed under a unique name; every
    service COMPLETED."""
    directory = copy_project(PROJECT, tmp_path)
    if change is not None:
        compose = directory / "compose.yaml"
        data = yaml.safe_load(compose.read_text())
        change(data)
        compose.write_text(yaml.safe_dump(data, sort_keys=False))
    project = dy.name(what)
    result = dy.up(directory, project)
    assert result.code == 0, f"{result}\n{logs(dy, pebble)}"
    rows = dy.ps(project)
    assert {name: row["state"] for name, row in rows.items()} == dict.fromkeys(rows, COMPLETED), \
        f"{rows}\n{logs(dy, pebble)}"
    return project


# -- requests through the ingress ------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    headers: dict[str, str]  # lowercased names
    certificate: x509.Certificate | None  # the server's leaf (HTTPS)

    @property
    def sans(self) -> list[str]:
        assert self.certificate is not None
        names = self.certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value
        return list(names.get_values_for_type(x509.DNSName))


def request(port: int, host: str, *, ca: str | None = None, timeout: float = 10.0) -> Answer:
    """`GET /` at 127.0.0.1:`port` for `host`: HTTP with the Host header, or HTTPS (when `ca`
    is given) with SNI and Host, verified against `ca` for exactly `host`."""
    sock: socket.socket = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    certificate = None
    try:
        if ca is not None:
            context = ssl.create_default_context(cadata=ca)  # CERT_REQUIRED, check_hostname
            sock = context.wrap_socket(sock, server_hostname=host)
            der = sock.getpeercert(binary_form=True)
            assert der is not None
            certificate = x509.load_der_x509_certificate(der)
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: acme-test\r\n"
                     "Connection: close\r\n\r\n".encode())
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read().decode(errors="replace")
        headers = {key.lower(): value for key, value in response.getheaders()}
        return Answer(response.status, body, headers, certificate)
    finally:
        sock.close()


def answer_ok(port: int, host: str, ca: str, context: Callable[[], str],
              timeout: float = 20.0) -> Answer:
    """The first `200` over HTTPS at `host` (the route may take a moment after `up`); fails with
    the last error and `context()` when none comes within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            answer = request(port, host, ca=ca)
            if answer.status == 200:
                return answer
            last = answer
        except (OSError, http.client.HTTPException) as exc:  # ssl errors are OSErrors
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            raise AssertionError(f"no 200 over HTTPS at {host} within {timeout:g}s; last: "
                                 f"{last}\n{context()}")
        time.sleep(0.2)


def local_ca(dy: Dockyard) -> str:
    result = dy.cli("ca", "--pem")
    assert result.code == 0, str(result)
    assert "BEGIN CERTIFICATE" in result.out, str(result)
    return result.out


def issued_by(certificate: x509.Certificate, ca_pem: str) -> bool:
    return certificate.issuer == x509.load_pem_x509_certificate(ca_pem.encode()).subject


# -- HTTP-01 ---------------------------------------------------------------------------------------
def test_http01_gives_a_public_service_a_pebble_certificate_and_https_only(
        pebble: Pebble, servers: Callable[[dict[str, str]], Dockyard], tmp_path: Path) -> None:
    dy = servers(pebble_env(pebble))
    project = deploy(dy, tmp_path, "http01", pebble)
    host = domain("web", 8080, project)
    root = pebble.root_pem()

    # HTTPS at the domain, verified against pebble's root for exactly that name.
    secure = answer_ok(https_port(dy), host, root, lambda: logs(dy, pebble))
    assert secure.body.strip() == "hello", secure
    assert host in secure.sans, secure.sans
    assert secure.certificate is not None
    assert not issued_by(secure.certificate, local_ca(dy)), "served by the local CA"
    # The server asked for it with its own ACME account, kept under its data directory.
    assert (dy.data / "tls" / "acme" / "account.key").is_file()

    # Plain HTTP for that host: a permanent redirect to HTTPS, nothing proxied.
    plain = request(http_port(dy), host)
    assert plain.status == 308, f"{plain}\n{logs(dy, pebble)}"
    assert plain.headers.get("location", "").startswith(f"https://{host}"), plain.headers
    assert "hello" not in plain.body, plain


# -- DNS-01 ----------------------------------------------------------------------------------------
HOOK = """#!/bin/sh
# Dockyard's DNS hook for tests: `hook set|clear <fqdn> <value>` sets or clears a TXT record in
# pebble-challtestsrv (its management API), and notes each call.
echo "$1 $2" >> {calls}
exec {python} -c '
import json, sys, urllib.request
action, fqdn, value = sys.argv[1:4]
if action == "set":
    path, body = "set-txt", {{"host": fqdn, "value": value}}
elif action == "clear":
    path, body = "clear-txt", {{"host": fqdn}}
else:
    sys.exit("unknown action " + action)
request = urllib.request.Request({url} + "/" + path, data=json.dumps(body).encode(),
                                 headers={{"Content-Type": "application/json"}})
opener = urllib.request.build_opener(urllib.request.ProxyHandler({{}}))
with opener.open(request, timeout=10) as response:
    response.read()
' "$@"
"""


def write_hook(directory: Path, management_url: str) -> tuple[Path, Path]:
    """The hook script and the file where it notes its calls."""
    script, calls = directory / "dns-hook", directory / "dns-hook.calls"
    script.write_text(HOOK.format(calls=shlex.quote(str(calls)),
                                  python=shlex.quote(sys.executable),
                                  url=json.dumps(management_url)))
    script.chmod(0o755)
    return script, calls


def test_dns01_serves_every_domain_of_a_project_with_one_wildcard_certificate(
        pebble: Pebble, servers: Callable[[dict[str, str]], Dockyard], tmp_path: Path) -> None:
    hook, calls = write_hook(tmp_path, pebble.dns_management_url)
    dy = servers(pebble_env(pebble, DOCKYARD_ACME_DNS_HOOK=shlex.quote(str(hook))))

    def add_api(data: dict[str, object]) -> None:
        services = data["services"]
        assert isinstance(services, dict)
        api = json.loads(json.dumps(services["web"]))
        api["environment"]["BODY"] = "hello api"
        services["api"] = api

    project = deploy(dy, tmp_path, "dns01", pebble, add_api)
    root = pebble.root_pem()
    wildcard = f"*.{project}.{USER}.{ZONE}"

    web = answer_ok(https_port(dy), domain("web", 8080, project), root, lambda: logs(dy, pebble))
    api = answer_ok(https_port(dy), domain("api", 8080, project), root, lambda: logs(dy, pebble))
    assert (web.body.strip(), api.body.strip()) == ("hello", "hello api"), (web, api)
    assert web.certificate is not None and api.certificate is not None
    assert web.certificate.serial_number == api.certificate.serial_number, \
        "the two domains are served by different certificates"
    assert wildcard in web.sans, web.sans
    assert set(web.sans) <= {wildcard, f"{project}.{USER}.{ZONE}"}, web.sans  # no per-host names
    assert not issued_by(web.certificate, local_ca(dy)), "served by the local CA"

    # The hook set the challenge's TXT record and cleared it afterwards.
    fqdn = f"_acme-challenge.{project}.{USER}.{ZONE}."
    noted = calls.read_text().splitlines() if calls.exists() else []
    assert f"set {fqdn}" in noted and f"clear {fqdn}" in noted, f"{noted}\n{logs(dy, pebble)}"
    assert noted.index(f"set {fqdn}") < noted.index(f"clear {fqdn}"), noted


# -- ACME failing ----------------------------------------------------------------------------------
def test_an_unreachable_acme_ca_does_not_stop_a_deployment_and_the_local_ca_serves(
        servers: Callable[[dict[str, str]], Dockyard], tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there
    directory_url = f"https://localhost:{closed}/dir"
    dy = servers(server_env(directory_url, free_port()))
    project = deploy(dy, tmp_path, "acmefail")
    host = domain("web", 8080, project)
    ca = local_ca(dy)

    secure = answer_ok(https_port(dy), host, ca, lambda: logs(dy))
    assert secure.body.strip() == "hello", secure
    assert secure.certificate is not None and issued_by(secure.certificate, ca)
    # Not an ACME certificate, so the host is not HTTPS-only: plain HTTP is served too.
    plain = request(http_port(dy), host)
    assert (plain.status, plain.body.strip()) == (200, "hello"), f"{plain}\n{logs(dy)}"

    server_log = (dy.data / "server.log").read_text(errors="replace")
    failures = [line for line in server_log.splitlines() if "ACME" in line and host in line]
    assert failures, f"no ACME failure for {host} in the server log\n{logs(dy)}"
    assert any(directory_url in line or "reached" in line for line in failures), failures
