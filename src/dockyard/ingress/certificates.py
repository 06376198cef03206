"""Certificates as the ingress uses them: one value type, a directory that stores them, names.

Whoever issues a certificate (the local CA or an ACME server) returns an `IssuedCertificate`;
`CertificateStore` keeps each one as a single PEM file (chain, then key: what HAProxy's `crt`
reads), written atomically and readable by the owner only.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from dockyard.files import write_private
from dockyard.ingress.tls_errors import CertificateError

log = logging.getLogger(__name__)

RENEWAL_MARGIN = timedelta(days=30)

_KEY = re.compile(r"[a-z0-9_-][a-z0-9._-]{0,199}")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----\r?\n?", re.S)


# -- names -----------------------------------------------------------------------------------------
def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def normalize_names(names: Iterable[str]) -> tuple[str, ...]:
    """The names a certificate is asked for, lower-cased, without trailing dots or repeats.

    Refuses what no certificate can carry (so the error names the culprit, not an X.509
    internal): non-ASCII names (use their `xn--` form), empty labels, a `*` anywhere but as the
    whole first label, more than 253 characters.
    """
    if isinstance(names, str):
        raise TypeError("names must be a sequence of names, not one string")
    result: dict[str, None] = {}
    for raw in names:
        name = raw.strip().rstrip(".").lower()
        if is_ip(name):
            result[str(ipaddress.ip_address(name))] = None
            continue
        if not name.isascii():
            raise CertificateError(f"{raw!r} is not an ASCII domain name",
                                   hint="use its IDNA form (xn--...)")
        labels = name.split(".")
        if labels[0] == "*" and len(labels) > 1:
            labels = labels[1:]
        if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
            raise CertificateError(
                f"{raw!r} is not a valid domain name for a certificate",
                hint="labels are letters, digits and '-', at most 63 characters each; a wildcard "
                     "is only allowed as the whole first label ('*.example.com')")
        result[name] = None
    if not result:
        raise CertificateError("a certificate needs at least one name")
    return tuple(result)


def wildcard_for(domain: str) -> str:
    """The wildcard that covers `domain` and its siblings: `*.` + its parent domain.

    `api--8000.shop.root.localhost` -> `*.shop.root.localhost`: one certificate per parent serves
    every generated name below it, so a new service needs no new certificate.
    """
    name = domain.strip().rstrip(".").lower()
    _, dot, parent = name.partition(".")
    if not dot or not parent:
        raise ValueError(f"{domain!r} has no parent domain to put a wildcard on")
    return f"*.{parent}"


# -- the certificate ---------------------------------------------------------------------------
@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate with its key, as issued: what the proxy serves for `names`.

    `not_before` is optional (a value built by hand may lack it); when known it lets
    `needs_renewal` scale its margin to short-lived certificates.
    """

    names: tuple[str, ...]
    key_pem: bytes = field(repr=False)  # the private key: never in a repr, a log or an error
    chain_pem: bytes  # the leaf first, then the intermediates (not the root)
    not_after: datetime  # UTC, aware
    not_before: datetime | None = None

    @classmethod
    def from_pem(cls, key_pem: bytes, chain_pem: bytes) -> IssuedCertificate:
        """Parse a key and its chain; names come from the leaf's subjectAltName.

        Checks that the key belongs to the leaf, so a mixed-up pair is refused here rather than
        by the proxy at reload.
        """
        blocks = [m.group(0) for m in _PEM_BLOCK.finditer(chain_pem)
                  if m.group(1) == b"CERTIFICATE"]
        if not blocks:
            raise CertificateError("the certificate chain holds no certificate")
        try:
            leaf = x509.load_pem_x509_certificate(blocks[0])
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise CertificateError(f"the certificate or its key cannot be parsed "
                                   f"({type(exc).__name__})") from None
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        der = serialization.Encoding.DER
        if key.public_key().public_bytes(der, spki) != leaf.public_key().public_bytes(der, spki):
            raise CertificateError("the private key does not belong to the certificate")
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            raise CertificateError("the certificate has no subjectAltName: no names") from None
        names = [*san.get_values_for_type(x509.DNSName),
                 *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]
        chain = b"".join(b if b.endswith(b"\n") else b + b"\n" for b in blocks)
        return cls(names=tuple(names), key_pem=key_pem, chain_pem=chain,
                   not_after=leaf.not_valid_after_utc, not_before=leaf.not_valid_before_utc)

    def haproxy_pem(self) -> bytes:
        """Chain then key in one file: the format of HAProxy's `crt` and `crt-list` entries."""
        chain = self.chain_pem if self.chain_pem.endswith(b"\n") else self.chain_pem + b"\n"
        return chain + self.key_pem

    def needs_renewal(self, now: datetime, margin: timedelta = RENEWAL_MARGIN) -> bool:
        """Whether to replace the certificate now.

        The rule: renew once less than `min(margin, lifetime / 3)` remains. A 90-day certificate
        is renewed 30 days before it ends (Let's Encrypt's advice); a 6-day one after 4 days; a
        5-year one (pebble's) 30 days before. Without `not_before` only `margin` applies.
        """
        if now.tzinfo is None:
            raise ValueError("needs_renewal wants an aware datetime (datetime.now(UTC))")
        window = margin
        if self.not_before is not None:
            window = min(margin, (self.not_after - self.not_before) / 3)
        return self.not_after - now < window


# -- files -----------------------------------------------------------------------------------------
def private_directory(path: Path) -> Path:
    """Create `path` (mode 0700) if needed: it holds private keys."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # not ours to change (a mount point): keep going
        path.chmod(0o700)
    return path


def write_private_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, readable by the owner only (it may hold a key), in
    a private directory made if needed."""
    private_directory(path.parent)
    write_private(path, data)


class CertificateStore:
    """A directory of certificates, one `<key>.pem` (chain + key, mode 0600) each."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, key: str) -> Path:
        """The file of `key`; refuses keys that could leave the directory or hide a file."""
        if not _KEY.fullmatch(key):
            raise ValueError(f"invalid certificate key {key!r}: use 1 to 200 of a-z 0-9 . _ - "
                             "not starting with a dot")
        return self.directory / f"{key}.pem"

    def save(self, key: str, cert: IssuedCertificate) -> Path:
        path = self.path(key)
        write_private_file(path, cert.haproxy_pem())
        return path

    def load(self, key: str) -> IssuedCertificate | None:
        """The certificate saved as `key`, or None when there is none or it cannot be read.

        An unreadable file is not an error: the caller issues a new certificate, whose `save`
        replaces it.
        """
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("certificate file %s cannot be read (%s): ignoring it", path,
                        exc.strerror)
            return None
        keys = [m.group(0) for m in _PEM_BLOCK.finditer(data) if b"PRIVATE KEY" in m.group(1)]
        try:
            if len(keys) != 1:
                raise CertificateError("expected exactly one private key")
            return IssuedCertificate.from_pem(keys[0], data)
        except CertificateError as exc:
            log.warning("certificate file %s is not usable (%s): ignoring it", path, exc.message)
            return None

    def remove(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def keys(self) -> list[str]:
        """The keys saved, sorted (temporary files of a save in progress are not keys)."""
        if not self.directory.is_dir():
            return []
        return sorted(p.name[:-4] for p in self.directory.iterdir()
                      if p.name.endswith(".pem") and _KEY.fullmatch(p.name[:-4]))
