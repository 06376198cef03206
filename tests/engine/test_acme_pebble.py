"""The ACME issuer against a real ACME server: Debian's pebble, offline (no Docker).

pebble runs with its DNS pointed at pebble-challtestsrv, whose every A answer is 127.0.0.1, so
HTTP-01 reaches a tiny HTTP server of the test on pebble's `httpPort`, and DNS-01 TXT records
are set through challtestsrv's management API. pebble's own TLS certificate comes from the
local CA, which is also what the issuer is told to trust (`ca_bundle`). Issued chains are
checked against pebble's root. The first tests need no server at all.
"""

from __future__ import annotations

import http.server
import json
import logging
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store

from dockyard.ingress.acme import (
    AcmeIssuer,
    ChallTestSrvDns,
    CommandDns,
    Dns01Solver,
    Http01Presenter,
)
from dockyard.ingress.ca import LocalCA
from dockyard.ingress.certificates import IssuedCertificate
from dockyard.ingress.tls_errors import CertificateError
from tests.support.pebble import program, stop, wait_for_port


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TokenServer:
    """An HTTP-01 presenter: serves presented tokens over HTTP, like the proxy on port 80."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.presented: list[str] = []
        self.requests: list[str] = []
        tokens, requests = self.tokens, self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                requests.append(self.path)
                prefix = "/.well-known/acme-challenge/"
                answer = tokens.get(self.path[len(prefix):]) \
                    if self.path.startswith(prefix) else None
                body = (answer or "not found").encode()
                self.send_response(200 if answer else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def present(self, token: str, key_authorization: str) -> None:
        self.presented.append(token)
        self.tokens[token] = key_authorization

    def cleanup(self, token: str) -> None:
        del self.tokens[token]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class SilentPresenter:
    """Says it presents, serves nothing: validation must fail."""

    presented: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)

    def present(self, token: str, key_authorization: str) -> None:
        self.presented.append(token)

    def cleanup(self, token: str) -> None:
        self.cleaned.append(token)


@dataclass
class RecordingDns:
    inner: ChallTestSrvDns
    calls: list[tuple[str, str]] = field(default_factory=list)

    def set_txt(self, fqdn: str, value: str) -> None:
        self.calls.append(("set", fqdn))
        self.inner.set_txt(fqdn, value)

    def clear_txt(self, fqdn: str) -> None:
        self.calls.append(("clear", fqdn))
        self.inner.clear_txt(fqdn)


@dataclass
class Pebble:
    directory_url: str
    management_url: str  # pebble's own (HTTPS): roots
    dns_management_url: str  # challtestsrv's (HTTP)
    ca_bundle: Path
    tokens: TokenServer

    def issuer(self, account_dir: Path, *, http01: Http01Presenter | None = None,
               dns01: Dns01Solver | None = None, trusted: bool = True) -> AcmeIssuer:
        """An issuer for this pebble: HTTP-01 through `tokens` unless told otherwise."""
        if http01 is None and dns01 is None:
            http01 = self.tokens
        return AcmeIssuer(self.directory_url, account_dir, email="alice@example.com",
                          ca_bundle=self.ca_bundle if trusted else None, http01=http01,
                          dns01=dns01, timeout=30)

    def root(self) -> x509.Certificate:
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        response = httpx.get(f"{self.management_url}/roots/0", verify=context, timeout=10)
        response.raise_for_status()
        return x509.load_pem_x509_certificate(response.content)


@pytest.fixture(scope="module")
def pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    pebble_bin, challtestsrv_bin = program("pebble"), program("pebble-challtestsrv")
    if pebble_bin is None or challtestsrv_bin is None:
        pytest.skip("pebble is not installed (scripts/setup installs Debian's pebble)")
    work = tmp_path_factory.mktemp("pebble")
    ca = LocalCA.load_or_create(work / "ca")
    tls = ca.issue(["localhost", "127.0.0.1"])
    (work / "pebble.crt").write_bytes(tls.chain_pem)
    (work / "pebble.key").write_bytes(tls.key_pem)
    tokens = TokenServer()
    acme_port, management_port, dns_port, dns_management_port, tls_port = \
        (free_port() for _ in range(5))
    config = {"pebble": {
        "listenAddress": f"127.0.0.1:{acme_port}",
        "managementListenAddress": f"127.0.0.1:{management_port}",
        "certificate": str(work / "pebble.crt"), "privateKey": str(work / "pebble.key"),
        "httpPort": tokens.port, "tlsPort": tls_port, "ocspResponderURL": "",
        "externalAccountBindingRequired": False}}
    (work / "pebble.json").write_text(json.dumps(config))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        dns_log = work / "challtestsrv.log"
        with dns_log.open("wb") as out:
            dns = subprocess.Popen(
                [challtestsrv_bin, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                 "-dns01", f"127.0.0.1:{dns_port}", "-http01", "", "-https01", "",
                 "-tlsalpn01", "", "-management", f"127.0.0.1:{dns_management_port}"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        processes.append(dns)
        wait_for_port(dns_management_port, dns, dns_log)
        pebble_log = work / "pebble.log"
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
        yield Pebble(directory_url=f"https://127.0.0.1:{acme_port}/dir",
                     management_url=f"https://localhost:{management_port}",
                     dns_management_url=f"http://127.0.0.1:{dns_management_port}",
                     ca_bundle=ca.certificate_path, tokens=tokens)
    finally:
        for process in reversed(processes):
            stop(process)
        tokens.close()


def verify_chain(cert: IssuedCertificate, root: x509.Certificate, name: str) -> None:
    leaf, *intermediates = x509.load_pem_x509_certificates(cert.chain_pem)
    assert intermediates, "an ACME chain holds the intermediate"
    verifier = PolicyBuilder().store(Store([root])).build_server_verifier(x509.DNSName(name))
    verifier.verify(leaf, intermediates)


# -- no server needed ------------------------------------------------------------------------------
def test_a_wildcard_without_dns01_is_refused_before_any_network_call(tmp_path: Path) -> None:
    issuer = AcmeIssuer(f"https://127.0.0.1:{free_port()}/dir", tmp_path / "acme",
                        http01=SilentPresenter())
    assert not issuer.can_wildcard
    with pytest.raises(CertificateError, match=r"\*\.shop\.alice\.example\.com.*DNS-01") as caught:
        issuer.issue(["shop.alice.example.com", "*.shop.alice.example.com"])
    assert caught.value.hint is not None and "--acme-dns-hook" in caught.value.hint
    assert not (tmp_path / "acme").exists()  # not even an account key: nothing was contacted


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    url = f"https://127.0.0.1:{free_port()}/dir"
    issuer = AcmeIssuer(url, tmp_path / "acme", http01=SilentPresenter(), timeout=5)
    with pytest.raises(CertificateError, match="cannot be reached") as caught:
        issuer.issue(["a.example.com"])
    assert url in caught.value.message
    assert (tmp_path / "acme" / "account.key").stat().st_mode & 0o777 == 0o600


def hook(script: str) -> list[str]:
    """A DNS hook command: a Python script that gets `set|clear fqdn value` as arguments."""
    return [sys.executable, "-c", script]


def test_command_dns_runs_the_hook_with_set_and_clear(tmp_path: Path) -> None:
    log = tmp_path / "hook.log"
    dns = CommandDns(hook(f"import sys; open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) "
                          "+ '\\n')"))
    dns.set_txt("_acme-challenge.shop.example.com.", "v1")
    dns.set_txt("_acme-challenge.shop.example.com.", "v2")
    dns.clear_txt("_acme-challenge.shop.example.com.")
    assert log.read_text().splitlines() == [
        "set _acme-challenge.shop.example.com. v1", "set _acme-challenge.shop.example.com. v2",
        "clear _acme-challenge.shop.example.com. v1",
        "clear _acme-challenge.shop.example.com. v2"]


def test_a_failing_dns_hook_is_a_clear_error_with_its_stderr(tmp_path: Path) -> None:
    dns = CommandDns(hook("import sys; print('line 1', file=sys.stderr); "
                          "print('API said: zone not found', file=sys.stderr); sys.exit(3)"))
    with pytest.raises(CertificateError) as caught:
        dns.set_txt("_acme-challenge.shop.example.com.", "value")
    message = caught.value.message
    assert "exit 3" in message and "API said: zone not found" in message
    assert sys.executable in message and "import sys" not in message  # no arguments (tokens)
    missing = CommandDns([str(tmp_path / "no-such-hook")])
    with pytest.raises(CertificateError, match="cannot run"):
        missing.set_txt("_acme-challenge.x.example.com.", "value")


# -- against pebble --------------------------------------------------------------------------------
def test_http01_issues_a_certificate_for_a_generated_name(pebble: Pebble, tmp_path: Path) -> None:
    name = "api--8000.shop.alice.example.com"
    issuer = pebble.issuer(tmp_path / "acme")
    presented_before = len(pebble.tokens.presented)
    cert = issuer.issue([name])
    assert cert.names == (name,)
    verify_chain(cert, pebble.root(), name)
    assert len(pebble.tokens.presented) == presented_before + 1
    assert pebble.tokens.tokens == {}  # cleaned up
    assert any(path.startswith("/.well-known/acme-challenge/") for path in pebble.tokens.requests)
    assert (tmp_path / "acme" / "account.key").stat().st_mode & 0o777 == 0o600


def test_dns01_issues_a_wildcard_with_its_apex(pebble: Pebble, tmp_path: Path) -> None:
    dns = RecordingDns(ChallTestSrvDns(pebble.dns_management_url))
    issuer = pebble.issuer(tmp_path / "acme", dns01=dns)
    assert issuer.can_wildcard
    cert = issuer.issue(["*.shop.alice.example.com", "shop.alice.example.com"])
    assert cert.names == ("*.shop.alice.example.com", "shop.alice.example.com")
    root = pebble.root()
    verify_chain(cert, root, "web--8080.shop.alice.example.com")
    verify_chain(cert, root, "shop.alice.example.com")
    fqdn = "_acme-challenge.shop.alice.example.com."
    assert dns.calls == [("set", fqdn), ("set", fqdn), ("clear", fqdn)]  # one name, two values


def test_the_account_is_created_once_and_reused(pebble: Pebble, tmp_path: Path) -> None:
    account_dir = tmp_path / "acme"
    pebble.issuer(account_dir).issue(["one.shop.alice.example.com"])
    key = (account_dir / "account.key").read_bytes()
    stamp = (account_dir / "account.key").stat().st_mtime_ns
    account = json.loads((account_dir / "account.json").read_text())
    assert account["directory"] == pebble.directory_url
    # A new issuer (a restarted server) reuses the key and the registration.
    cert = pebble.issuer(account_dir).issue(["two.shop.alice.example.com"])
    assert cert.names == ("two.shop.alice.example.com",)
    assert (account_dir / "account.key").read_bytes() == key
    assert (account_dir / "account.key").stat().st_mtime_ns == stamp
    again = json.loads((account_dir / "account.json").read_text())
    assert again["registration"]["uri"] == account["registration"]["uri"]


def test_an_account_the_server_forgot_is_registered_again(
        pebble: Pebble, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = tmp_path / "first"
    pebble.issuer(first).issue(["three.shop.alice.example.com"])
    # A registration kept for a key the server does not know (a test server restarted): the
    # server answers accountDoesNotExist, and the issuer registers that key.
    forgot = tmp_path / "forgot"
    forgot.mkdir()
    (forgot / "account.key").write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    shutil.copy(first / "account.json", forgot / "account.json")
    with caplog.at_level(logging.DEBUG, logger="dockyard.ingress.acme"):
        cert = pebble.issuer(forgot).issue(["four.shop.alice.example.com"])
    assert cert.names == ("four.shop.alice.example.com",)
    assert "forgot account" in caplog.text
    uri = json.loads((forgot / "account.json").read_text())["registration"]["uri"]
    assert uri != json.loads((first / "account.json").read_text())["registration"]["uri"]


def test_unwritable_account_files_are_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    issuer = AcmeIssuer("https://127.0.0.1:1/dir", tmp_path / "file" / "acme",
                        http01=SilentPresenter())
    with pytest.raises(CertificateError, match="account files"):
        issuer.issue(["a.example.com"])


def test_a_failed_validation_names_the_domain_and_cleans_up(
        pebble: Pebble, tmp_path: Path) -> None:
    silent = SilentPresenter()
    issuer = pebble.issuer(tmp_path / "acme", http01=silent)
    with pytest.raises(CertificateError) as caught:
        issuer.issue(["broken.shop.alice.example.com"])
    error = caught.value
    assert "broken.shop.alice.example.com" in error.message
    assert "http-01" in error.message and "404" in error.message
    assert error.hint is not None and "port 80" in error.hint
    assert silent.presented and silent.cleaned == silent.presented


def test_an_untrusted_acme_server_is_a_clear_error(pebble: Pebble, tmp_path: Path) -> None:
    issuer = pebble.issuer(tmp_path / "acme", trusted=False)
    with pytest.raises(CertificateError, match="cannot be verified") as caught:
        issuer.issue(["x.shop.alice.example.com"])
    assert caught.value.hint is not None and "--acme-ca-bundle" in caught.value.hint
