"""Which certificate serves which host: issued when a route needs one, renewed before it ends.

- Generated domains share one wildcard certificate per parent: per project in byoc
  (`*.<project>.<user>.<zone>`), per zone in playground (`*.<zone>`), so adding a service
  issues nothing new.
- Local names (`.localhost` and other local zones), and every name when no ACME directory is
  configured, get certificates from the server's own CA (`<data>/tls/ca/`, created once).
- Real names with an ACME directory: the wildcard through DNS-01 when a DNS hook is configured;
  otherwise one certificate per project listing its hosts, through HTTP-01 answered by the
  proxy on port 80. Hosts served by an ACME certificate redirect HTTP to HTTPS.
- An ACME failure does not stop a deployment: the hosts get a local-CA certificate meanwhile,
  the failure is logged, and issuance is tried again after `ACME_RETRY_SECONDS`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shlex
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from dockyard.errors import DockyardError
from dockyard.ingress.acme import AcmeIssuer, CommandDns
from dockyard.ingress.ca import LocalCA, is_local_name
from dockyard.ingress.certificates import CertificateStore, IssuedCertificate, wildcard_for
from dockyard.ingress.haproxy import HAProxy
from dockyard.ingress.routes import Route
from dockyard.server.settings import ServerSettings

log = logging.getLogger("dockyard.server")

ACME_RETRY_SECONDS = 600.0


class _ProxyHttp01:
    """HTTP-01 answers served by the proxy itself on port 80 (`/.well-known/acme-challenge/`)."""

    def __init__(self, proxy: HAProxy) -> None:
        self.proxy = proxy

    def present(self, token: str, key_authorization: str) -> None:
        self.proxy.set_acme_token(token, key_authorization)

    def cleanup(self, token: str) -> None:
        self.proxy.clear_acme_token(token)


def _key(names: tuple[str, ...], kind: str) -> str:
    first = re.sub(r"[^a-z0-9.-]", "-", names[0].replace("*", "star"))[:80]
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:10]
    return f"{kind}-{first}-{digest}"


class ServerCertificates:
    def __init__(self, settings: ServerSettings, proxy: HAProxy) -> None:
        directory = settings.data / "tls"
        self.settings = settings
        self.ca = LocalCA.load_or_create(directory / "ca")
        self.store = CertificateStore(directory / "certificates")
        self.acme: AcmeIssuer | None = None
        if settings.acme_directory:
            dns = CommandDns(shlex.split(settings.acme_dns_hook)) \
                if settings.acme_dns_hook else None
            self.acme = AcmeIssuer(
                settings.acme_directory, directory / "acme", email=settings.acme_email,
                ca_bundle=Path(settings.acme_ca_bundle) if settings.acme_ca_bundle else None,
                http01=_ProxyHttp01(proxy), dns01=dns)
        self._lock = threading.Lock()
        self._issued: dict[str, IssuedCertificate] = {}
        self._failed: dict[str, float] = {}  # ACME key → when it last failed

    def ca_certificate_pem(self) -> str:
        return self.ca.certificate_pem.decode()

    # -- which names go together ---------------------------------------------------------------
    def groups(self, routes: Mapping[str, Route]) -> dict[tuple[str, ...], str]:
        """The certificates `routes` need: their names → how to issue them (local or acme)."""
        wanted: dict[tuple[str, ...], str] = {}
        per_project: dict[str, list[str]] = {}
        for route in routes.values():
            generated, custom = route.hosts[0], route.hosts[1:]
            wildcard = wildcard_for(generated)
            if self.acme is None or is_local_name(generated):
                wanted[(wildcard,)] = "local"
            elif self.acme.can_wildcard:
                wanted[(wildcard,)] = "acme"
            else:
                project = route.key.rsplit("/", 2)[0]
                per_project.setdefault(project, []).append(generated)
            for host in custom:
                wanted[(host,)] = "local" if self.acme is None or is_local_name(host) \
                    else "acme"
        for hosts in per_project.values():
            wanted[tuple(sorted(set(hosts)))] = "acme"
        return wanted

    def default_names(self) -> tuple[str, ...]:
        zone = self.settings.zone
        return tuple(dict.fromkeys(("localhost", f"*.{zone}")))

    # -- the certificates ------------------------------------------------------------------------
    def for_routes(self, routes: Mapping[str, Route]) -> tuple[list[Path], frozenset[str]]:
        """PEM files for `routes` (the server's default first) and the hosts to keep on HTTPS."""
        with self._lock:
            paths = [self._ensure(self.default_names(), "local")]
            https_only: set[str] = set()
            for names, kind in sorted(self.groups(routes).items()):
                path, served_by_acme = self._ensure_kind(names, kind)
                paths.append(path)
                if served_by_acme:
                    https_only.update(h for r in routes.values() for h in r.hosts
                                      if _covered(h, names))
            return list(dict.fromkeys(paths)), frozenset(https_only)

    def _ensure_kind(self, names: tuple[str, ...], kind: str) -> tuple[Path, bool]:
        if kind == "acme" and self.acme is not None:
            key = _key(names, "acme")
            failed_at = self._failed.get(key)
            if failed_at is None or time.monotonic() - failed_at > ACME_RETRY_SECONDS:
                try:
                    return self._ensure(names, "acme"), True
                except DockyardError as exc:
                    self._failed[key] = time.monotonic()
                    log.warning("ACME certificate for %s not issued (%s); serving a local-CA "
                                "certificate meanwhile", ", ".join(names), exc.message)
        return self._ensure(names, "local"), False

    def _ensure(self, names: tuple[str, ...], kind: str) -> Path:
        key = _key(names, kind)
        path = self.store.path(key)
        cert = self._issued.get(key) or self.store.load(key)
        if cert is None or set(cert.names) != set(names) or \
                cert.needs_renewal(datetime.now(UTC)):
            if kind == "acme" and self.acme is not None:
                cert = self.acme.issue(list(names))
            else:
                cert = self.ca.issue(list(names))
            path = self.store.save(key, cert)
            log.info("certificate for %s issued (%s)", ", ".join(names), kind)
        self._issued[key] = cert
        return path


def _covered(host: str, names: tuple[str, ...]) -> bool:
    for name in names:
        if name == host or (name.startswith("*.") and host.endswith(name[1:])
                            and "." not in host[:-len(name) + 1]):
            return True
    return False

