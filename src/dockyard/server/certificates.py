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
- On a playground server, tenants' custom domains (outside the zone) are different
  (`dockyard.ingress.domain_policy`): never a local-CA certificate. A public name with an ACME
  directory gets the certificate that proved it (`prove_by_acme`, HTTP-01 only), renewed the
  same way, with no local-CA fallback when that fails; any other is served over HTTP only.
  `domain_proofs` makes the prover the ingress asks before it serves such a name.
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
from dockyard.ingress.domain_policy import Proof, proof_for
from dockyard.ingress.haproxy import HAProxy
from dockyard.ingress.routes import Route
from dockyard.server.domain_check import TokenCheck
from dockyard.server.domains import DomainProofs
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
        self.proxy = proxy
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
            generated, custom = route.hosts[0], route.custom_hosts
            wildcard = wildcard_for(generated)  # covers the FQDN too (same parent)
            if self.acme is None or is_local_name(generated):
                wanted[(wildcard,)] = "local"
            elif self.acme.can_wildcard:
                wanted[(wildcard,)] = "acme"
            else:
                project = route.key.rsplit("/", 2)[0]
                per_project.setdefault(project, []).extend(route.generated_hosts)
            for host in custom:
                proof = proof_for(self.settings.mode, self.settings.zone, host,
                                  acme=self.acme is not None)
                if proof is Proof.ACME:
                    wanted[(host,)] = "proven"  # the ACME certificate that proved it, or none
                elif proof is Proof.TRUSTED:
                    wanted[(host,)] = "local" if self.acme is None or is_local_name(host) \
                        else "acme"
                # Proof.TOKEN: served over HTTP only; no CA certifies it for this server.
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
                found = self._ensure_proven(names) if kind == "proven" else \
                    self._ensure_kind(names, kind)
                if found is None:
                    continue
                path, served_by_acme = found
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

    def _ensure_proven(self, names: tuple[str, ...]) -> tuple[Path, bool] | None:
        """A tenant's proven custom domain: its ACME certificate (renewed when due), or None.

        Never the local CA: when renewal fails the certificate serves while it is valid, then
        the name has none (a client gets the default certificate, which does not name it).
        """
        key = _key(names, "acme")
        cert = self._issued.get(key) or self.store.load(key)
        now = datetime.now(UTC)
        if cert is not None and set(cert.names) == set(names) and not cert.needs_renewal(now):
            self._issued[key] = cert
            return self.store.path(key), True
        failed_at = self._failed.get(key)
        if self.acme is not None and (failed_at is None or
                                      time.monotonic() - failed_at > ACME_RETRY_SECONDS):
            try:
                cert = self.acme.issue(list(names), http01_only=True)
                path = self.store.save(key, cert)
                self._issued[key] = cert
                log.info("certificate for %s issued (acme, custom domain)", ", ".join(names))
                return path, True
            except DockyardError as exc:
                self._failed[key] = time.monotonic()
                log.warning("ACME certificate for the custom domain %s not renewed (%s); no "
                            "local-CA certificate is made for it", ", ".join(names),
                            exc.message)
        if cert is not None and set(cert.names) == set(names) and cert.not_after > now:
            return self.store.path(key), True
        return None

    # -- proving custom domains (playground) -------------------------------------------------------
    def domain_proofs(self) -> DomainProofs | None:
        """What proves tenants' custom domains before the ingress serves them (playground
        only: in byoc mode the one user is trusted, as before)."""
        if not self.settings.playground:
            return None
        check = TokenCheck(self.proxy.set_acme_token, self.proxy.clear_acme_token,
                           self.settings.http_port)
        return DomainProofs(self.settings.mode, self.settings.zone,
                            self.settings.data / "domains" / "verified.json",
                            token_check=check,
                            acme_check=self.prove_by_acme if self.acme is not None else None,
                            acme_retry=ACME_RETRY_SECONDS)

    def prove_by_acme(self, host: str) -> str | None:
        """Ask the ACME CA for a certificate for `host` through HTTP-01: None when issued (the
        proof that `host` points at this server; the certificate is then the one served), else
        why not. Runs outside the lock `for_routes` takes, so a slow CA holds up no route."""
        if self.acme is None:
            return "no ACME directory is configured"
        try:
            cert = self.acme.issue([host], http01_only=True)
        except DockyardError as exc:
            return f"the ACME CA did not issue a certificate: {exc.message}"
        key = _key((host,), "acme")
        with self._lock:
            self.store.save(key, cert)
            self._issued[key] = cert
            self._failed.pop(key, None)
        log.info("certificate for %s issued (acme, custom domain proven)", host)
        return None

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

