"""The ingress's TLS library without a network: the local CA, the certificate store, names.

The CA is created once (private files) and reloaded; a damaged one is a clear error; what it
issues passes a strict X.509 verifier and a real TLS handshake with Python's `ssl`.
"""

from __future__ import annotations

import os
import socket
import ssl
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from dockyard.errors import DockyardError
from dockyard.ingress.ca import LocalCA, is_local_name, trust_instructions
from dockyard.ingress.certificates import (
    CertificateStore,
    IssuedCertificate,
    normalize_names,
    wildcard_for,
)
from dockyard.ingress.tls_errors import CertificateError

HOST = "api--8000.shop.root.localhost"


@pytest.fixture
def ca(tmp_path: Path) -> LocalCA:
    return LocalCA.load_or_create(tmp_path / "tls" / "ca")


def leaf_of(cert: IssuedCertificate) -> x509.Certificate:
    return x509.load_pem_x509_certificates(cert.chain_pem)[0]


def verify(ca: LocalCA, cert: IssuedCertificate, name: str) -> None:
    """Chain-build and check `cert` for `name` with cryptography's RFC 5280 verifier."""
    verifier = PolicyBuilder().store(Store([ca.certificate])).build_server_verifier(
        x509.DNSName(name))
    verifier.verify(leaf_of(cert), [])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- the CA ----------------------------------------------------------------------------------------
def test_ca_is_created_once_with_private_files_and_reloaded(tmp_path: Path) -> None:
    directory = tmp_path / "tls" / "ca"
    ca = LocalCA.load_or_create(directory)
    assert mode(directory) == 0o700
    assert mode(ca.key_path) == 0o600
    assert ca.certificate_path == directory / "ca.crt"
    assert ca.certificate_path.read_bytes() == ca.certificate_pem
    key_before = ca.key_path.read_bytes()

    cert = ca.certificate
    assert cert.subject == cert.issuer
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert isinstance(cn, str) and cn.startswith("Dockyard local CA (")
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=3649) < lifetime < timedelta(days=3651)

    again = LocalCA.load_or_create(directory)
    assert again.certificate_pem == ca.certificate_pem
    assert again.key_path.read_bytes() == key_before
    # The reloaded CA signs with the same key: its leaves verify against the first CA.
    verify(ca, again.issue([HOST]), HOST)


def test_concurrent_creation_agrees_on_one_ca(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        cas = list(pool.map(lambda _: LocalCA.load_or_create(tmp_path / "ca"), range(8)))
    assert len({ca.certificate_pem for ca in cas}) == 1
    assert (tmp_path / "ca" / "ca.crt").read_bytes() == cas[0].certificate_pem


@pytest.mark.parametrize("damage", ["corrupt key", "empty key", "missing cert", "other key",
                                    "corrupt cert"])
def test_a_damaged_ca_is_a_clear_error(tmp_path: Path, damage: str) -> None:
    directory = tmp_path / "ca"
    ca = LocalCA.load_or_create(directory)
    secret = ca.key_path.read_bytes()
    if damage == "corrupt key":
        ca.key_path.write_bytes(secret[:40] + b"garbage" + secret[60:])
    elif damage == "empty key":
        ca.key_path.write_bytes(b"")
    elif damage == "missing cert":
        ca.certificate_path.unlink()
    elif damage == "other key":
        ca.key_path.write_bytes(LocalCA.load_or_create(tmp_path / "other").key_path.read_bytes())
    else:
        ca.certificate_path.write_text("not a certificate\n")
    with pytest.raises(CertificateError) as caught:
        LocalCA.load_or_create(directory)
    error = caught.value
    assert isinstance(error, DockyardError)
    assert str(directory) in error.message
    assert error.hint is not None and "remove" in error.hint
    body = b"".join(secret.splitlines()[1:-1]).decode()
    assert body[40:80] not in error.message + error.hint  # no key material in the error


def test_an_unreadable_key_is_a_clear_error(tmp_path: Path) -> None:
    ca = LocalCA.load_or_create(tmp_path / "ca")
    ca.key_path.unlink()
    ca.key_path.mkdir()  # unreadable as a file, even for root (chmod 0 is not)
    with pytest.raises(CertificateError, match="cannot be read") as caught:
        LocalCA.load_or_create(tmp_path / "ca")
    assert caught.value.hint is not None and "run as the user" in caught.value.hint


# -- issuing ---------------------------------------------------------------------------------------
def test_an_issued_leaf_verifies_against_the_ca(ca: LocalCA) -> None:
    before = datetime.now(UTC)
    cert = ca.issue([HOST, "Localhost.", "127.0.0.1"])
    leaf = leaf_of(cert)

    assert cert.names == (HOST, "localhost", "127.0.0.1")
    leaf.verify_directly_issued_by(ca.certificate)
    verify(ca, cert, HOST)
    verify(ca, cert, "localhost")
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [HOST, "localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert before - timedelta(seconds=62) <= leaf.not_valid_before_utc <= before
    assert cert.not_after == leaf.not_valid_after_utc
    assert timedelta(days=89) < cert.not_after - before <= timedelta(days=90)
    assert isinstance(leaf.public_key(), type(serialization.load_pem_private_key(
        cert.key_pem, None).public_key()))
    assert "PRIVATE KEY" not in repr(cert)
    # Not for another name, nor once expired.
    with pytest.raises(VerificationError):
        verify(ca, cert, "web--8080.shop.root.localhost")
    later = PolicyBuilder().store(Store([ca.certificate])).time(
        cert.not_after + timedelta(days=1)).build_server_verifier(x509.DNSName(HOST))
    with pytest.raises(VerificationError):
        later.verify(leaf, [])


def test_a_wildcard_certificate_covers_one_level(ca: LocalCA) -> None:
    cert = ca.issue(["*.shop.root.localhost"], days=7)
    assert cert.names == ("*.shop.root.localhost",)
    verify(ca, cert, HOST)
    verify(ca, cert, "web--8080.shop.root.localhost")
    for outside in ("shop.root.localhost", "a.b.shop.root.localhost", "api.other.localhost"):
        with pytest.raises(VerificationError):
            verify(ca, cert, outside)
    assert cert.not_before is not None
    assert cert.not_after - cert.not_before == timedelta(days=7, minutes=1)


def test_a_long_name_gets_an_empty_subject_and_a_critical_san(ca: LocalCA) -> None:
    name = ".".join(["a" * 60, "b" * 60, "localhost"])
    leaf = leaf_of(ca.issue([name]))
    assert len(leaf.subject) == 0
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical


@pytest.mark.parametrize("names", [[], ["bad name.localhost"], ["*.*.localhost"],
                                   ["a.*.localhost"], ["café.localhost"], ["a..localhost"],
                                   ["-a.localhost"], ["x" * 64 + ".localhost"]])
def test_names_no_certificate_can_carry_are_refused(ca: LocalCA, names: list[str]) -> None:
    with pytest.raises(CertificateError):
        ca.issue(names)


def test_names_are_normalized() -> None:
    assert normalize_names(["A.Localhost.", "a.localhost", "::1", "*.X.test"]) == (
        "a.localhost", "::1", "*.x.test")
    with pytest.raises(TypeError):
        normalize_names("a.localhost")


@pytest.mark.parametrize(("name", "local"), [
    ("localhost", True), ("LOCALHOST.", True), ("web--8080.shop.root.localhost", True),
    ("*.shop.root.localhost", True), ("printer.local", True), ("app.test", True),
    ("db.shop.internal", True), ("nas.home.arpa", True), ("router.lan", True),
    ("www.example", True), ("x.invalid", True), ("127.0.0.1", True), ("::1", True),
    ("[::1]", True), ("10.1.2.3", True), ("myhost", True),
    ("example.com", False), ("api--8000.shop.alice.example.com", False),
    ("*.shop.alice.example.com", False), ("localhost.com", False), ("test.dev", False),
    ("mylocal.org", False), ("internal.example.net", False), ("home.arpa.net", False),
])
def test_is_local_name(name: str, local: bool) -> None:
    assert is_local_name(name) is local


def test_trust_instructions_name_the_file_and_every_client(tmp_path: Path) -> None:
    path = tmp_path / "ca.crt"
    text = trust_instructions(path)
    assert f"cp {path} /usr/local/share/ca-certificates/dockyard.crt" in text
    assert "update-ca-certificates" in text
    assert "security add-trusted-cert" in text and f"--cacert {path}" in text
    assert "SSL_CERT_FILE" in text and "Firefox" in text


# -- a real TLS handshake --------------------------------------------------------------------------
def handshake(server_pem: Path, ca_file: Path, server_hostname: str) -> bytes:
    """Serve one TLS connection with `server_pem` (chain + key); connect trusting `ca_file`."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(server_pem)
    client_context = ssl.create_default_context(cafile=str(ca_file))  # this CA and no other
    client_context.verify_flags |= ssl.VERIFY_X509_STRICT

    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                with server_context.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"hello over TLS")
            except (ssl.SSLError, OSError):
                pass  # the client refused us: its side of the test says so

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        try:
            with socket.create_connection(listener.getsockname(), timeout=10) as raw, \
                    client_context.wrap_socket(raw, server_hostname=server_hostname) as tls:
                return tls.recv(100)
        finally:
            server.join(10)


def test_python_ssl_trusts_an_issued_certificate_through_the_ca_only(
        ca: LocalCA, tmp_path: Path) -> None:
    store = CertificateStore(tmp_path / "certificates")
    path = store.save("local-api", ca.issue([HOST]))
    assert handshake(path, ca.certificate_path, HOST) == b"hello over TLS"
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch|match"):
        handshake(path, ca.certificate_path, "web--8080.shop.root.localhost")
    # Another CA's clients do not trust it.
    other = LocalCA.load_or_create(tmp_path / "other-ca")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(path, other.certificate_path, HOST)


def test_python_ssl_accepts_a_wildcard_for_a_generated_name(ca: LocalCA, tmp_path: Path) -> None:
    path = CertificateStore(tmp_path).save(
        "wild", ca.issue([wildcard_for(HOST), "localhost"]))
    assert handshake(path, ca.certificate_path, HOST) == b"hello over TLS"
    assert handshake(path, ca.certificate_path, "web--8080.shop.root.localhost")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(path, ca.certificate_path, "a.b.shop.root.localhost")


# -- the store -------------------------------------------------------------------------------------
def test_store_round_trip_in_a_private_file(ca: LocalCA, tmp_path: Path) -> None:
    store = CertificateStore(tmp_path / "certificates")
    assert store.keys() == [] and store.load("local-x") is None
    cert = ca.issue(["*.shop.root.localhost", "localhost"])
    path = store.save("local-x", cert)
    assert path == tmp_path / "certificates" / "local-x.pem"
    assert mode(path) == 0o600
    assert path.read_bytes() == cert.haproxy_pem()
    assert path.read_bytes().index(b"CERTIFICATE") < path.read_bytes().index(b"PRIVATE KEY")
    assert store.load("local-x") == cert
    store.save("local-y", ca.issue(["localhost"]))
    store.save("local-y", cert)  # replaced atomically
    assert store.load("local-y") == cert
    assert store.keys() == ["local-x", "local-y"]
    assert sorted(os.listdir(store.directory)) == ["local-x.pem", "local-y.pem"]  # no temp left
    store.remove("local-x")
    store.remove("local-x")
    assert store.keys() == ["local-y"]


def test_an_unusable_stored_file_loads_as_none(ca: LocalCA, tmp_path: Path) -> None:
    store = CertificateStore(tmp_path)
    (tmp_path / "garbage.pem").write_text("not a certificate")
    assert store.load("garbage") is None
    cert = ca.issue(["localhost"])
    other = ca.issue(["localhost"])
    (tmp_path / "mixed.pem").write_bytes(cert.chain_pem + other.key_pem)
    assert store.load("mixed") is None


@pytest.mark.parametrize("key", ["../x", "..", ".hidden", "a/b", "", "Upper", "x" * 201,
                                 "a b", "/etc/passwd", "a\x00b"])
def test_store_keys_cannot_leave_the_directory(tmp_path: Path, key: str) -> None:
    store = CertificateStore(tmp_path / "certificates")
    with pytest.raises(ValueError, match="invalid certificate key"):
        store.path(key)
    with pytest.raises(ValueError):
        store.load(key)


def test_store_keys_the_server_makes_are_valid(tmp_path: Path) -> None:
    store = CertificateStore(tmp_path)
    for key in ("local-star.shop.root.localhost-0123456789", "acme-a_b-c", "x" * 200):
        assert store.path(key).parent == tmp_path


# -- renewal ---------------------------------------------------------------------------------------
def fake(not_before: datetime | None, lifetime: timedelta) -> IssuedCertificate:
    start = not_before or datetime(2030, 1, 1, tzinfo=UTC)
    return IssuedCertificate(names=("a.example.com",), key_pem=b"", chain_pem=b"",
                             not_after=start + lifetime, not_before=not_before)


def test_needs_renewal_with_the_last_third_or_thirty_days() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    ninety = fake(start, timedelta(days=90))
    assert not ninety.needs_renewal(start + timedelta(days=59))
    assert ninety.needs_renewal(start + timedelta(days=61))
    six = fake(start, timedelta(days=6))  # short-lived: renewed in its last third (2 days)
    assert not six.needs_renewal(start + timedelta(days=3, hours=23))
    assert six.needs_renewal(start + timedelta(days=4, hours=1))
    years = fake(start, timedelta(days=5 * 365))  # pebble's: 30 days before the end
    assert not years.needs_renewal(years.not_after - timedelta(days=31))
    assert years.needs_renewal(years.not_after - timedelta(days=29))
    assert years.needs_renewal(years.not_after + timedelta(days=1))
    assert not ninety.needs_renewal(start + timedelta(days=80), margin=timedelta(days=5))
    assert ninety.needs_renewal(start + timedelta(days=86), margin=timedelta(days=5))
    unknown_start = fake(None, timedelta(days=90))
    assert not unknown_start.needs_renewal(unknown_start.not_after - timedelta(days=31))
    assert unknown_start.needs_renewal(unknown_start.not_after - timedelta(days=29))
    with pytest.raises(ValueError, match="aware"):
        ninety.needs_renewal(datetime(2030, 2, 1))


def test_a_fresh_local_certificate_needs_no_renewal(ca: LocalCA) -> None:
    cert = ca.issue(["localhost"])
    assert not cert.needs_renewal(datetime.now(UTC))
    assert cert.needs_renewal(datetime.now(UTC) + timedelta(days=61))


# -- wildcards -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("domain", "wildcard"), [
    (HOST, "*.shop.root.localhost"),
    ("alice-web--8080.prod1a.localhost", "*.prod1a.localhost"),
    ("API.Shop.Example.com.", "*.shop.example.com"),
    ("a.localhost", "*.localhost"),
])
def test_wildcard_for(domain: str, wildcard: str) -> None:
    assert wildcard_for(domain) == wildcard


@pytest.mark.parametrize("domain", ["localhost", "", "trailing."])
def test_wildcard_for_needs_a_parent(domain: str) -> None:
    with pytest.raises(ValueError):
        wildcard_for(domain)
