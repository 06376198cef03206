"""Custom domains on a real playground server: served only once proven to point here.

One playground server (started by the CLI, as for test_ingress.py's playground test) with the
ingress on loopback and Debian's pebble as its ACME CA (offline; the fixture of
test_ingress_acme.py: pebble validates HTTP-01 on the server's ingress HTTP port, and
pebble-challtestsrv, pebble's DNS, answers every A query with 127.0.0.1 unless told otherwise).
The tenant deploys one project whose four public services each name a custom domain:

- `bad`: `login.examplebank.test`, which does not resolve here (a local name: no CA can prove
  it, so the server's own token check does, through the machine's real resolver);
- `good`: `shop-<run>.examplebank.test`, which an /etc/hosts line added (and removed) by this
  test points at 127.0.0.1, where the ingress listens: the token check passes;
- `acmegood`: `www-<run>.example.net`, a public name: pebble validates it (challtestsrv sends
  it to 127.0.0.1) and issues its certificate;
- `acmebad`: `login-<run>.examplebank.com`, a public name that challtestsrv points at 127.0.0.2,
  where nothing listens: pebble's validation fails.

What is held: every service deploys; the unproven names answer 404 on HTTP and HTTPS (where the
server's default certificate, which does not name them, is presented), no certificate in the
server's store names them, and `ps` says they are not verified and why; `good` is served over
HTTP and has no certificate at all (never the local CA's); `acmegood` is served over HTTPS with
pebble's certificate (and HTTP redirects), not the local CA's.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography import x509

from tests.support.deployments import COMPLETED, USER, Dockyard, free_port
from tests.support.ingress import (
    PROXY_MARKS,
    Answer,
    answer_ok,
    issued_by,
    local_ca,
    logs,
    request,
)
from tests.support.pebble import Pebble

pytestmark = PROXY_MARKS

RUN = uuid.uuid4().hex[:6]
BAD = "login.examplebank.test"
GOOD = f"shop-{RUN}.examplebank.test"
ACME_GOOD = f"www-{RUN}.example.net"
ACME_BAD = f"login-{RUN}.examplebank.com"
HOSTS_FILE = Path("/etc/hosts")
HOSTS_LINE = f"127.0.0.1 {GOOD}  # dockyard test {RUN}\n"
COMMAND = ["sh", "-c", 'mkdir -p /www && echo "$$BODY" > /www/index.html && '
           "exec httpd -f -p 8080 -h /www"]


@pytest.fixture
def hosts_entry() -> Iterator[str]:
    """`GOOD` resolves to 127.0.0.1 through /etc/hosts while the test runs (only our line is
    removed afterwards; the file is rewritten in place, as it may be a bind mount)."""
    if not os.access(HOSTS_FILE, os.W_OK):
        pytest.skip("/etc/hosts is not writable (the test maps a name to the ingress there)")
    with HOSTS_FILE.open("a") as out:
        out.write(HOSTS_LINE)
    try:
        yield GOOD
    finally:
        kept = [line for line in HOSTS_FILE.read_text().splitlines(keepends=True)
                if line != HOSTS_LINE]
        with HOSTS_FILE.open("r+") as out:
            out.seek(0)
            out.write("".join(kept))
            out.truncate()


def compose(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    services: dict[str, Any] = {
        name: {"image": "dockyard/busybox:1", "command": COMMAND,
               "environment": {"BODY": f"hello {name}"}, "ports": ["8080"],
               "domainname": host, "stop_grace_period": "1s"}
        for name, host in (("bad", BAD), ("good", GOOD), ("acmegood", ACME_GOOD),
                           ("acmebad", ACME_BAD))}
    (directory / "compose.yaml").write_text(yaml.safe_dump({"services": services}))
    return directory


def insecure(port: int, host: str) -> Answer:
    """`GET /` over HTTPS for `host` (SNI and Host), whatever certificate is presented."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=host) as sock:
        der = sock.getpeercert(binary_form=True)
        assert der is not None
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read().decode(errors="replace")
        return Answer(response.status, body, {k.lower(): v for k, v in response.getheaders()},
                      x509.load_der_x509_certificate(der))


def stored_names(data: Path) -> dict[str, list[str]]:
    """Every certificate file in the server's store → the names its leaf carries."""
    found: dict[str, list[str]] = {}
    for path in sorted((data / "tls" / "certificates").glob("*.pem")):
        leaf = x509.load_pem_x509_certificate(path.read_bytes())
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        found[path.name] = list(san.get_values_for_type(x509.DNSName))
    return found


def eventually(probe: Callable[[], Any], what: str, context: Callable[[], str],
               timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}\n{context()}")
        time.sleep(0.3)


def test_only_proven_custom_domains_are_served_and_never_with_a_local_ca_certificate(
        pebble: Pebble, dockyard_home: Path, hosts_entry: str, tmp_path: Path) -> None:
    answer = httpx.post(f"{pebble.dns_management_url}/add-a", timeout=10,
                        json={"host": ACME_BAD, "addresses": ["127.0.0.2"]})
    assert answer.status_code == 200, answer.text
    http_port = pebble.http_port
    https_port = free_port()
    dy = Dockyard(dockyard_home, env={
        "DOCKYARD_MODE": "playground", "DOCKYARD_INGRESS_HOST": "127.0.0.1",
        "DOCKYARD_HTTP_PORT": str(http_port), "DOCKYARD_HTTPS_PORT": str(https_port),
        "DOCKYARD_ACME_DIRECTORY": pebble.directory_url,
        "DOCKYARD_ACME_CA_BUNDLE": str(pebble.ca_bundle), "DOCKYARD_ACME_EMAIL": "t@example.com",
        "DOCKYARD_ALLOW_IMAGE": "dockyard/busybox:*"})
    try:
        def context() -> str:
            return logs(dy, pebble)

        project = dy.name("domains")
        result = dy.up(compose(tmp_path / "project"), project)
        assert result.code == 0, f"{result}\n{context()}"
        rows = dy.ps(project)
        assert {n: r["state"] for n, r in rows.items()} == dict.fromkeys(
            ("acmebad", "acmegood", "bad", "good"), COMPLETED), f"{rows}\n{context()}"

        # Every service serves at its generated name, the unproven ones included.
        generated = f"{USER}-bad--8080.prod1a.localhost"
        plain = request(http_port, generated)
        assert (plain.status, plain.body.strip()) == (200, "hello bad"), plain

        # ps says, for each service, what became of its custom domain.
        def reasons() -> dict[str, str] | None:
            found = {n: str(r["reason"]) for n, r in dy.ps(project).items()}
            settled = all("custom domain" in text for text in found.values())
            return found if settled else None

        said = eventually(reasons, "every service's reason to tell its custom domain",
                          context, timeout=120)
        assert f"custom domain {BAD} is not served: not verified (it does not resolve" in \
            said["bad"], said
        assert f"custom domain {ACME_BAD} is not served: not verified (the ACME CA did not " \
               "issue" in said["acmebad"], said
        assert f"custom domain {GOOD} verified and served (HTTP only" in said["good"], said
        assert f"custom domain {ACME_GOOD} verified and served (HTTPS)" in said["acmegood"], said

        # The unproven names: 404 on HTTP and on HTTPS, under a certificate not naming them.
        for host in (BAD, ACME_BAD):
            plain = request(http_port, host)
            assert plain.status == 404 and "hello" not in plain.body, f"{host}: {plain}"
            secure = insecure(https_port, host)
            assert secure.status == 404 and "hello" not in secure.body, f"{host}: {secure}"
            assert host not in secure.sans, secure.sans

        # The name proven by the token check: served over HTTP, with no certificate at all.
        plain = eventually(lambda: (a := request(http_port, GOOD)).status == 200 and a,
                           f"{GOOD} to be served", context)
        assert plain.body.strip() == "hello good", plain
        assert GOOD not in insecure(https_port, GOOD).sans

        # The name proven by ACME: HTTPS with pebble's certificate, HTTP redirected to it.
        secure = answer_ok(https_port, ACME_GOOD, pebble.root_pem(), context, timeout=60)
        assert secure.body.strip() == "hello acmegood", secure
        assert secure.certificate is not None
        assert not issued_by(secure.certificate, local_ca(dy)), "served by the local CA"
        assert request(http_port, ACME_GOOD).status == 308

        # No certificate in the server's store names a name that was not proven by ACME.
        store = stored_names(dy.data)
        for host in (BAD, ACME_BAD, GOOD):
            holders = [name for name, names in store.items() if host in names]
            assert not holders, f"{host} has a certificate: {holders}\n{store}"
        assert any(ACME_GOOD in names for names in store.values()), store
    finally:
        dy.close()
