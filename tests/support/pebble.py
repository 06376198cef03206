"""Debian's pebble (an ACME CA for tests, offline) and pebble-challtestsrv (its DNS) on free
ports, as a fixture; and the helpers that start and stop such programs."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from dockyard.ingress.ca import LocalCA
from tests.support.deployments import free_port


def program(name: str) -> str | None:
    return shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists()
                                  else None)


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{process.args!r} exited {process.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"port {port} of {process.args!r} did not open within 15 s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


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
