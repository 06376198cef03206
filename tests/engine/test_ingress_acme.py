"""ACME certificates for deployed projects, end to end: the real CLI and server, the real Docker
Engine and HAProxy, and Debian's pebble as the ACME CA (offline).

Each test runs its own local server (its own DOCKYARD_HOME, the `Dockyard` helper of
tests/support/deployments.py) in byoc mode with a real zone (`apps.example.com`, outside the
local zones), so its generated domains go to ACME:

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

import json
import shlex
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import yaml

from tests.support.deployments import (
    COMPLETED,
    USER,
    Dockyard,
    copy_project,
    free_port,
)
from tests.support.ingress import (
    PROXY_MARKS,
    answer_ok,
    issued_by,
    local_ca,
    logs,
    request,
)
from tests.support.pebble import Pebble

pytestmark = PROXY_MARKS

ZONE = "apps.example.com"  # a real zone: not local, so its names go to ACME
EMAIL = "alice@example.com"
PROJECT = "acme-web"  # tests/engine/projects/acme-web: `web` answers "hello" on 8080

T = TypeVar("T")


def domain(service: str, port: int, project: str) -> str:
    return f"{service}--{port}.{project}.{USER}.{ZONE}"


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
