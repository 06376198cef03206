"""The server's own certificate authority, for names no public CA can certify.

`*.localhost` and the other local zones cannot get a certificate from Let's Encrypt or any
public CA, yet browsers and HTTP clients want HTTPS to just work there. So the server creates a
small CA once (`ca.key`, `ca.crt` in the directory its caller chooses), issues leaf certificates
for those names itself, and the user trusts that CA once (`trust_instructions`).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import secrets
import socket
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dockyard.ingress.certificates import (
    IssuedCertificate,
    is_ip,
    normalize_names,
    private_directory,
    write_private_file,
)
from dockyard.ingress.tls_errors import CertificateError

CA_KEY_FILE = "ca.key"
CA_CERT_FILE = "ca.crt"
CA_DAYS = 3650
BACKDATE = timedelta(minutes=1)  # tolerates a client clock slightly behind ours

# Zones no public CA issues for: reserved by RFC 2606 / 6761 / 6762 / 8375, ICANN's `internal`,
# and `lan`, which home routers use.
LOCAL_ZONES = ("localhost", "local", "test", "internal", "home.arpa", "lan", "example",
               "invalid")


def is_local_name(name: str) -> bool:
    """Whether `name` can only get a certificate from the local CA.

    True for the local zones and names below them, IP literals, and single-label names (no
    public CA certifies `myhost`); a leading `*.` is ignored.
    """
    host = name.strip().rstrip(".").lower()
    if host.startswith("*."):
        host = host[2:]
    if is_ip(host.strip("[]")):
        return True
    if "." not in host:
        return True
    return any(host == zone or host.endswith("." + zone) for zone in LOCAL_ZONES)


_SigningKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class LocalCA:
    """A CA whose key lives in one directory; `issue` makes leaf certificates for the ingress."""

    def __init__(self, directory: Path, key: _SigningKey, certificate: x509.Certificate) -> None:
        self.directory = directory
        self._key = key
        self.certificate = certificate

    # -- the files ---------------------------------------------------------------------------------
    @classmethod
    def load_or_create(cls, directory: Path) -> LocalCA:
        """The CA in `directory`, created there (key 0600, directory 0700) the first time.

        Two processes starting at once agree on one CA (a lock file). The key is written last, so
        a creation cut short leaves no key and is simply done again.
        """
        private_directory(directory)
        with _locked(directory / ".lock"):
            if not (directory / CA_KEY_FILE).exists():
                return cls._create(directory)
            return cls._load(directory)

    @property
    def key_path(self) -> Path:
        return self.directory / CA_KEY_FILE

    @property
    def certificate_path(self) -> Path:
        return self.directory / CA_CERT_FILE

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def _create(cls, directory: Path) -> LocalCA:
        key = ec.generate_private_key(ec.SECP256R1())
        host = socket.gethostname() or "localhost"
        name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Dockyard"),
            # Unique per CA, so a re-created CA is never mistaken for the old one (NSS keys its
            # trust store on subject and serial).
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, secrets.token_hex(8)),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Dockyard local CA ({host[:40]})"),
        ])
        now = datetime.now(UTC)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        ca = cls(directory, key, certificate)
        write_private_file(ca.certificate_path, ca.certificate_pem)
        write_private_file(ca.key_path, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        return ca

    @classmethod
    def _load(cls, directory: Path) -> LocalCA:
        key_path, cert_path = directory / CA_KEY_FILE, directory / CA_CERT_FILE
        start_over = (f"to start over with a new CA, remove {key_path} and {cert_path} (then "
                      "trust the new CA again: `dockyard ca`)")
        try:
            key_bytes = key_path.read_bytes()
        except OSError as exc:
            raise CertificateError(f"the local CA's key {key_path} cannot be read "
                                   f"({exc.strerror})",
                                   hint=f"run as the user who created it; {start_over}") from None
        try:
            key = serialization.load_pem_private_key(key_bytes, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise CertificateError(f"the local CA's key {key_path} is corrupt (not an "
                                   "unencrypted PEM private key)", hint=start_over) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise CertificateError(f"the local CA's key {key_path} is a {type(key).__name__}, "
                                   "not an EC or RSA key", hint=start_over)
        try:
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except FileNotFoundError:
            raise CertificateError(f"the local CA's certificate {cert_path} is missing",
                                   hint=start_over) from None
        except OSError as exc:
            raise CertificateError(f"the local CA's certificate {cert_path} cannot be read "
                                   f"({exc.strerror})", hint=start_over) from None
        except ValueError:
            raise CertificateError(f"the local CA's certificate {cert_path} is corrupt",
                                   hint=start_over) from None
        spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if key.public_key().public_bytes(*spki) != certificate.public_key().public_bytes(*spki):
            raise CertificateError(f"the local CA's key {key_path} does not belong to its "
                                   f"certificate {cert_path}", hint=start_over)
        if certificate.not_valid_after_utc <= datetime.now(UTC):
            raise CertificateError(f"the local CA's certificate {cert_path} expired on "
                                   f"{certificate.not_valid_after_utc:%Y-%m-%d}",
                                   hint=start_over)
        with contextlib.suppress(OSError):
            key_path.chmod(0o600)
        return cls(directory, key, certificate)

    # -- issuing -----------------------------------------------------------------------------------
    def issue(self, names: Sequence[str], *, days: int = 90) -> IssuedCertificate:
        """A server certificate (EC P-256) for `names`, signed by this CA.

        Every name is a subjectAltName (IP literals as IP addresses); wildcards such as
        `*.shop.root.localhost` are allowed. Valid from a minute ago for `days`, but never past
        the CA's own end.
        """
        wanted = normalize_names(names)
        if days < 1:
            raise ValueError(f"days must be at least 1, not {days}")
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        not_after = min(now + timedelta(days=days), self.certificate.not_valid_after_utc)
        san = x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address(n)) if is_ip(n) else x509.DNSName(n)
            for n in wanted])
        # The common name is only cosmetic (clients match subjectAltName) and limited to 64
        # characters; without one the subject is empty and the SAN must be critical (RFC 5280).
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, wanted[0])]) \
            if len(wanted[0]) <= 64 else x509.Name([])
        ca_ski = self.certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier).value if _has_ski(self.certificate) else None
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(san, critical=len(subject) == 0)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
                if ca_ski is not None
                else x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False)
        )
        leaf = builder.sign(self._key, hashes.SHA256())
        return IssuedCertificate(
            names=wanted,
            key_pem=key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()),
            chain_pem=leaf.public_bytes(serialization.Encoding.PEM),
            not_after=leaf.not_valid_after_utc, not_before=leaf.not_valid_before_utc)


def _has_ski(certificate: x509.Certificate) -> bool:
    try:
        certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return False
    return True


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def trust_instructions(ca_path: Path) -> str:
    """How to make the usual clients trust the CA certificate at `ca_path` (text to show)."""
    path = str(ca_path)
    return f"""\
Trust it once, and HTTPS to local names (*.localhost) works without warnings:

  Debian/Ubuntu (system-wide: curl, wget, most programs):
    sudo cp {path} /usr/local/share/ca-certificates/dockyard.crt && sudo update-ca-certificates

  macOS (the login keychain: Safari, Chrome, curl):
    security add-trusted-cert -r trustRoot -k ~/Library/Keychains/login.keychain-db {path}

  curl, for one command:
    curl --cacert {path} https://...

  Python (requests, httpx, urllib) may not use the system store; point them at a bundle
  (the variable replaces their default bundle, so include the public CAs to keep them):
    cat /etc/ssl/certs/ca-certificates.crt {path} > ~/.dockyard-bundle.pem
    export SSL_CERT_FILE=~/.dockyard-bundle.pem    # requests reads REQUESTS_CA_BUNDLE

  Firefox keeps its own store: Settings > Privacy & Security > Certificates > View
  Certificates > Authorities > Import, pick {path}, tick "Trust this CA to identify
  websites" (or set security.enterprise_roots.enabled to use the system's).

Whoever holds the CA's key (ca.key, next to it, readable by the server's user only) can make
certificates for any name that a machine trusting the CA accepts: keep that file private.
"""
