"""The ingress proxy from outside, for the engine tests: requests to 127.0.0.1 with a domain in
SNI and Host, verified for exactly that domain; the server's local CA; the logs to show when
such a request fails."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from tests.support.deployments import Dockyard
from tests.support.engine import engine_ready
from tests.support.pebble import Pebble

HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy"
                                      if Path("/usr/sbin/haproxy").exists() else None)

# The marks of the ingress proxy's engine tests: skipped without the engine or haproxy (in CI,
# where both must be there, never skipped).
PROXY_MARKS = [
    pytest.mark.docker,
    pytest.mark.proxy,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1 (run scripts/setup "
                       "as root)"),
    pytest.mark.skipif(not os.environ.get("CI") and HAPROXY is None,
                       reason="haproxy is not installed (scripts/setup installs it)"),
]


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
