"""Certificates for real domains from an ACME CA (RFC 8555: Let's Encrypt, ZeroSSL, pebble).

Built on certbot's `acme` library. The issuer proves control of each name by one of two
challenges, answered by pluggable solvers:

- HTTP-01: a token served at `http://<name>/.well-known/acme-challenge/<token>` (the ingress
  proxy answers it on port 80, through an `Http01Presenter`); one name at a time, no wildcards.
- DNS-01: a TXT record at `_acme-challenge.<name>` (published by a `Dns01Solver`: an operator's
  command for their DNS provider, or pebble's test server); the only way to get a wildcard.

The account key is created once and reused, and so is the registration, so renewals do not
create accounts. The library never prints; it logs at debug level only.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import httpx
import requests
from acme import challenges, crypto_util, messages
from acme import errors as acme_errors
from acme.client import ClientNetwork, ClientV2
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.errors import Error as JoseError
from josepy.jwa import ES256, ES384, RS256, JWASignature
from josepy.jwk import JWK, JWKEC, JWKRSA

from dockyard import __version__
from dockyard.errors import DockyardError
from dockyard.ingress.certificates import (
    IssuedCertificate,
    is_ip,
    normalize_names,
    private_directory,
    write_private_file,
)
from dockyard.ingress.tls_errors import CertificateError

log = logging.getLogger(__name__)

ACCOUNT_KEY_FILE = "account.key"
ACCOUNT_FILE = "account.json"
USER_AGENT = f"dockyard/{__version__} acme-python"
HTTP01 = "http-01"
DNS01 = "dns-01"


# -- solvers ---------------------------------------------------------------------------------------
class Http01Presenter(Protocol):
    """Serves `key_authorization` at `/.well-known/acme-challenge/<token>` on port 80."""

    def present(self, token: str, key_authorization: str) -> None: ...

    def cleanup(self, token: str) -> None: ...


class Dns01Solver(Protocol):
    """Publishes TXT records. `fqdn` is `_acme-challenge.<domain>.` (with the final dot).

    `set_txt` adds a value next to any others at that name (a wildcard and its apex share one
    name, each with its own value); `clear_txt` removes the values it set there.
    """

    def set_txt(self, fqdn: str, value: str) -> None: ...

    def clear_txt(self, fqdn: str) -> None: ...


class ChallTestSrvDns:
    """DNS-01 through pebble-challtestsrv's management API: pebble's DNS, for tests."""

    def __init__(self, management_url: str, *, timeout: float = 10.0) -> None:
        self.management_url = management_url.rstrip("/")
        self.timeout = timeout

    def set_txt(self, fqdn: str, value: str) -> None:
        self._post("set-txt", {"host": fqdn, "value": value})

    def clear_txt(self, fqdn: str) -> None:
        self._post("clear-txt", {"host": fqdn})

    def _post(self, path: str, body: dict[str, str]) -> None:
        url = f"{self.management_url}/{path}"
        try:
            response = httpx.post(url, json=body, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise CertificateError(f"the challenge test server at {url} cannot be reached "
                                   f"({type(exc).__name__})") from None
        if response.status_code != 200:
            raise CertificateError(f"the challenge test server refused {path} "
                                   f"(HTTP {response.status_code}): {response.text[:200]}")


class CommandDns:
    """DNS-01 through an operator's command: `argv + ["set"|"clear", fqdn, value]`.

    How any DNS provider plugs in: the command adds (`set`) or removes (`clear`) one TXT value,
    and returns 0 once the change is published (it waits for propagation itself). `clear` is
    called once per value set at that name.
    """

    def __init__(self, argv: Sequence[str], *, timeout: float = 300.0) -> None:
        if isinstance(argv, str) or not argv:
            raise ValueError("argv must be a non-empty sequence of arguments")
        self.argv = list(argv)
        self.timeout = timeout
        self._values: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def set_txt(self, fqdn: str, value: str) -> None:
        self._run("set", fqdn, value)
        with self._lock:
            self._values.setdefault(fqdn, []).append(value)

    def clear_txt(self, fqdn: str) -> None:
        with self._lock:
            values = self._values.pop(fqdn, None) or [""]
        failure: CertificateError | None = None
        for value in values:
            try:
                self._run("clear", fqdn, value)
            except CertificateError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def _run(self, action: str, fqdn: str, value: str) -> None:
        # Only the program's name in messages: the rest of the command may hold an API token.
        program = self.argv[0]
        hint = "check the DNS hook (--acme-dns-hook); it is run as " \
               "`<hook> set|clear <fqdn> <value>` and must exit 0"
        try:
            done = subprocess.run([*self.argv, action, fqdn, value], capture_output=True,
                                  text=True, timeout=self.timeout, stdin=subprocess.DEVNULL,
                                  check=False)
        except OSError as exc:
            raise CertificateError(f"the DNS hook {program} cannot run ({exc.strerror})",
                                   hint=hint) from None
        except subprocess.TimeoutExpired:
            raise CertificateError(f"the DNS hook {program} did not finish `{action} {fqdn}` "
                                   f"within {self.timeout:g} s", hint=hint) from None
        if done.returncode != 0:
            tail = "\n".join(line for line in done.stderr.splitlines() if line.strip())[-500:]
            raise CertificateError(
                f"the DNS hook {program} failed `{action} {fqdn}` (exit {done.returncode})"
                + (f": {tail}" if tail else " with no output on stderr"), hint=hint)
        log.debug("DNS hook %s %s %s: done", program, action, fqdn)


# -- the issuer ------------------------------------------------------------------------------------
class AcmeIssuer:
    """Obtains certificates from the ACME directory at `directory_url`.

    `account_dir` keeps the account key (0600) and registration between runs; `ca_bundle`
    verifies a private server's TLS (pebble's); `timeout` bounds validation plus finalization.
    Challenges: DNS-01 for every name when `dns01` is set (wildcards need it), else HTTP-01.
    """

    def __init__(self, directory_url: str, account_dir: Path, *, email: str | None = None,
                 ca_bundle: Path | None = None, http01: Http01Presenter | None = None,
                 dns01: Dns01Solver | None = None, timeout: float = 90) -> None:
        self.directory_url = directory_url
        self.account_dir = account_dir
        self.email = email
        self.ca_bundle = ca_bundle
        self.http01 = http01
        self.dns01 = dns01
        self.timeout = timeout
        self._lock = threading.Lock()  # one order at a time: the network client is not shared

    @property
    def can_wildcard(self) -> bool:
        return self.dns01 is not None

    @property
    def account_key_path(self) -> Path:
        return self.account_dir / ACCOUNT_KEY_FILE

    def issue(self, names: Sequence[str], *, http01_only: bool = False) -> IssuedCertificate:
        """A certificate for `names` (key and full chain), or a `CertificateError` saying why.

        Every challenge presented is cleaned up, whether the order succeeds or not.
        `http01_only` answers HTTP-01 even when a DNS hook is configured: a tenant's custom
        domain on a shared server must prove it points at this server, and the operator's DNS
        hook may well control zones the tenant does not.
        """
        wanted = normalize_names(names)
        self._check_solvers(wanted, http01_only)
        with self._lock:
            net: ClientNetwork | None = None
            try:
                net = self._network()
                return self._order(self._client(net), wanted, http01_only)
            except DockyardError:  # ours, or a solver's (the proxy's): already explained
                raise
            except Exception as exc:  # the acme library's, requests', josepy's: all explained
                raise self._explain(exc, wanted) from None
            finally:
                if net is not None:
                    net.session.close()

    # -- steps -------------------------------------------------------------------------------------
    def _check_solvers(self, wanted: tuple[str, ...], http01_only: bool = False) -> None:
        wildcards = [n for n in wanted if n.startswith("*.")]
        if http01_only and self.http01 is None:
            raise CertificateError("HTTP-01 is required for these names, and it is not set up",
                                   hint="run the server with its ingress proxy")
        if wildcards and (self.dns01 is None or http01_only):
            raise CertificateError(
                f"{wildcards[0]} is a wildcard, and an ACME CA issues wildcards only through "
                "DNS-01: no DNS hook is configured",
                hint="configure one (--acme-dns-hook COMMAND), or ask for each name instead")
        if self.http01 is None and self.dns01 is None:
            raise CertificateError("no ACME challenge can be answered: neither HTTP-01 nor "
                                   "DNS-01 is set up", hint="configure a DNS hook or HTTP-01")

    def _network(self) -> ClientNetwork:
        if self.ca_bundle is not None and not self.ca_bundle.is_file():
            raise CertificateError(f"the ACME CA bundle {self.ca_bundle} does not exist",
                                   hint="check --acme-ca-bundle")
        key, alg = self._account_key()
        net = ClientNetwork(key, alg=alg, user_agent=USER_AGENT,
                            timeout=max(1, math.ceil(min(self.timeout, 45))))
        if self.ca_bundle is not None:
            # requests' `verify` takes a CA bundle path as well as a bool.
            net.verify_ssl = str(self.ca_bundle)  # type: ignore[assignment]
        return net

    def _client(self, net: ClientNetwork) -> ClientV2:
        client = ClientV2(ClientV2.get_directory(self.directory_url, net), net)
        self._register(client)
        return client

    def _account_key(self) -> tuple[JWK, JWASignature]:
        path = self.account_key_path
        private_directory(self.account_dir)
        hint = f"remove {path} to use a new ACME account"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            new = ec.generate_private_key(ec.SECP256R1())
            write_private_file(path, new.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
            (self.account_dir / ACCOUNT_FILE).unlink(missing_ok=True)  # it was another key's
            log.debug("ACME account key created at %s", path)
            return JWKEC(key=new), ES256
        except OSError as exc:
            raise CertificateError(f"the ACME account key {path} cannot be read "
                                   f"({exc.strerror})", hint=hint) from None
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise CertificateError(f"the ACME account key {path} is corrupt", hint=hint) from None
        if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
            return JWKEC(key=key), ES256
        if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
            return JWKEC(key=key), ES384
        if isinstance(key, rsa.RSAPrivateKey):
            return JWKRSA(key=key), RS256
        raise CertificateError(f"the ACME account key {path} is of an unsupported kind",
                               hint="use an EC P-256 or RSA key, or " + hint)

    def _register(self, client: ClientV2) -> None:
        """Use the stored registration, or find or create the account of this key."""
        stored = self._stored_registration()
        if stored is not None:
            try:
                regr = client.query_registration(stored)
            except messages.Error as exc:
                if exc.code != "accountDoesNotExist":
                    raise
                log.debug("the ACME server forgot account %s: registering again", stored.uri)
            else:
                if regr.uri != stored.uri:
                    self._store_registration(regr)
                return
        meta = client.directory.meta
        if getattr(meta, "external_account_required", False):
            raise CertificateError(
                f"the ACME server {self.directory_url} requires external account binding "
                "(EAB), which Dockyard does not support",
                hint="use a CA that does not require it (Let's Encrypt)")
        new = messages.NewRegistration.from_data(email=self.email, terms_of_service_agreed=True)
        try:
            regr = client.new_account(new)
        except acme_errors.ConflictError as exc:  # this key has an account: use it
            regr = client.query_registration(messages.RegistrationResource(
                uri=exc.location, body=messages.Registration()))
        log.debug("ACME account %s registered", regr.uri)
        self._store_registration(regr)

    def _stored_registration(self) -> messages.RegistrationResource | None:
        path = self.account_dir / ACCOUNT_FILE
        try:
            saved = json.loads(path.read_text())
            if saved.get("directory") != self.directory_url:
                return None
            regr: messages.RegistrationResource = messages.RegistrationResource.from_json(
                saved["registration"])
            return regr
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError,
                JoseError) as exc:
            log.debug("ignoring the stored ACME registration %s (%s)", path, exc)
            return None

    def _store_registration(self, regr: messages.RegistrationResource) -> None:
        saved = {"directory": self.directory_url, "registration": json.loads(regr.json_dumps())}
        write_private_file(self.account_dir / ACCOUNT_FILE,
                           json.dumps(saved, indent=2).encode() + b"\n")

    def _order(self, client: ClientV2, wanted: tuple[str, ...],
               http01_only: bool = False) -> IssuedCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        key_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        csr = crypto_util.make_csr(
            key_pem, [n for n in wanted if not is_ip(n)],
            ipaddrs=[ipaddress.ip_address(n) for n in wanted if is_ip(n)])
        order = client.new_order(csr)
        tokens: list[str] = []
        records: list[str] = []
        try:
            answers: list[tuple[messages.ChallengeBody, challenges.ChallengeResponse]] = []
            for authzr in order.authorizations:
                if authzr.body.status == messages.STATUS_VALID:
                    continue  # the CA still trusts an earlier validation of this name
                answers.append(self._present(client, authzr, tokens, records, http01_only))
            for challb, response in answers:
                client.answer_challenge(challb, response)
            # The acme library compares deadlines with naive local time.
            deadline = datetime.now() + timedelta(seconds=self.timeout)
            order = client.poll_and_finalize(order, deadline)
        finally:
            self._cleanup(tokens, records)
        if not order.fullchain_pem:
            raise CertificateError(f"the ACME server {self.directory_url} finalized the order "
                                   "without a certificate")
        cert = IssuedCertificate.from_pem(key_pem, order.fullchain_pem.encode())
        if set(cert.names) != set(wanted):
            raise CertificateError(f"the ACME server issued a certificate for "
                                   f"{', '.join(cert.names)} instead of {', '.join(wanted)}")
        return replace(cert, names=wanted)

    def _present(self, client: ClientV2, authzr: messages.AuthorizationResource,
                 tokens: list[str], records: list[str], http01_only: bool = False,
                 ) -> tuple[messages.ChallengeBody, challenges.ChallengeResponse]:
        """Publish the answer to one authorization's challenge; the answer to send."""
        identifier = authzr.body.identifier.value
        shown = f"*.{identifier}" if authzr.body.wildcard else identifier
        if authzr.body.status != messages.STATUS_PENDING:
            raise CertificateError(f"the ACME authorization for {shown} is "
                                   f"{authzr.body.status}, not pending")
        offered = {challb.chall.typ: challb for challb in authzr.body.challenges}
        account_key = client.net.key
        assert account_key is not None
        dns01, http01 = offered.get(DNS01), offered.get(HTTP01)
        if self.dns01 is not None and dns01 is not None and not http01_only and \
                isinstance(dns01.chall, challenges.DNS01):
            response, value = dns01.chall.response_and_validation(account_key)
            fqdn = dns01.chall.validation_domain_name(identifier) + "."
            records.append(fqdn)  # before set_txt: a half-done set is cleared too
            self.dns01.set_txt(fqdn, str(value))
            log.debug("DNS-01 for %s: TXT at %s", shown, fqdn)
            return dns01, response
        if self.http01 is not None and http01 is not None and \
                isinstance(http01.chall, challenges.HTTP01):
            response, value = http01.chall.response_and_validation(account_key)
            token = str(http01.chall.encode("token"))
            tokens.append(token)
            self.http01.present(token, str(value))
            log.debug("HTTP-01 for %s: token %s", shown, token)
            return http01, response
        raise CertificateError(
            f"the ACME server offers no challenge Dockyard can answer for {shown} "
            f"(offered: {', '.join(sorted(offered)) or 'none'})",
            hint="HTTP-01 needs the proxy on port 80; DNS-01 needs a DNS hook")

    def _cleanup(self, tokens: list[str], records: list[str]) -> None:
        """Withdraw every answer presented; a failure here must not hide the order's outcome."""
        for token in tokens:
            if self.http01 is not None:
                try:
                    self.http01.cleanup(token)
                except Exception as exc:  # logged: the order's result matters more
                    log.debug("HTTP-01 cleanup of token %s failed: %s", token, exc)
        for fqdn in dict.fromkeys(records):
            if self.dns01 is not None:
                try:
                    self.dns01.clear_txt(fqdn)
                except Exception as exc:
                    log.debug("DNS-01 cleanup of %s failed: %s", fqdn, exc)

    # -- errors ------------------------------------------------------------------------------------
    def _explain(self, exc: Exception, wanted: tuple[str, ...]) -> CertificateError:
        server = urlsplit(self.directory_url).netloc or self.directory_url
        names = ", ".join(wanted)
        if isinstance(exc, acme_errors.ValidationError):
            return self._validation_failed(exc)
        if isinstance(exc, acme_errors.IssuanceError):
            exc = exc.error
        if isinstance(exc, messages.Error):
            return CertificateError(f"the ACME server {server} refused the certificate for "
                                    f"{names}: {_problem(exc)}", hint=_problem_hint(exc))
        if isinstance(exc, acme_errors.TimeoutError):
            return CertificateError(f"the ACME server {server} did not validate and issue "
                                    f"{names} within {self.timeout:g} s",
                                    hint="try again later; check that the challenges are "
                                         "reachable")
        if isinstance(exc, requests.exceptions.SSLError):
            return CertificateError(f"the TLS certificate of the ACME server {server} cannot "
                                    "be verified",
                                    hint="for a private ACME server (pebble), pass its CA "
                                         "with --acme-ca-bundle")
        if isinstance(exc, requests.exceptions.RequestException):
            return CertificateError(f"the ACME server {self.directory_url} cannot be reached "
                                    f"({type(exc).__name__})",
                                    hint="check the directory URL (--acme-directory) and the "
                                         "network")
        if isinstance(exc, OSError):
            return CertificateError(f"the ACME account files in {self.account_dir} cannot be "
                                    f"written ({exc.strerror or exc})",
                                    hint="check that directory's owner and permissions")
        log.debug("unexpected ACME failure", exc_info=exc)
        return CertificateError(f"the ACME exchange with {server} for {names} failed: "
                                f"{type(exc).__name__}: {str(exc)[:300]}",
                                hint=f"check that {self.directory_url} is an ACME directory")

    def _validation_failed(self, exc: acme_errors.ValidationError) -> CertificateError:
        problems: list[str] = []
        kinds: set[str] = set()
        for authzr in exc.failed_authzrs:
            identifier = authzr.body.identifier.value
            shown = f"*.{identifier}" if authzr.body.wildcard else identifier
            for challb in authzr.body.challenges:
                if challb.error is not None:
                    kinds.add(str(challb.chall.typ))
                    problems.append(f"{shown} ({challb.chall.typ}): {_problem(challb.error)}")
        if kinds == {DNS01}:
            hint = "the DNS hook must publish the TXT record _acme-challenge.<name> where the " \
                   "CA's resolvers see it (the hook must wait for propagation)"
        else:
            hint = "each name must resolve (A/AAAA) to this server, and port 80 there must " \
                   "reach Dockyard's proxy (check DNS, firewalls, NAT, another web server)"
        detail = "; ".join(problems) or str(exc)
        return CertificateError(f"the ACME server could not validate {detail}", hint=hint)


def _problem(error: messages.Error) -> str:
    detail = error.detail or error.title or error.description or str(error.typ)
    subs = [f"{s.identifier.value if s.identifier else ''} {s.detail or ''}".strip()
            for s in error.subproblems or ()]
    return detail + (f" ({'; '.join(subs)})" if subs else "")


_HINTS: dict[str, str] = {
    "rateLimited": "the CA's rate limit was reached: wait before trying again",
    "rejectedIdentifier": "the CA will not issue for this name (is it a public domain?)",
    "caa": "a CAA record of the domain forbids this CA: allow it in DNS",
    "dns": "the CA cannot resolve the name: check its DNS records",
    "connection": "the CA cannot connect to this server: check DNS, port 80 and firewalls",
    "unauthorized": "the CA found a wrong answer: another server may answer for this name",
    "externalAccountRequired": "this CA requires external account binding, not supported",
    "badCSR": "the CA refused the request's names or key",
}


def _problem_hint(error: messages.Error) -> str:
    return _HINTS.get(error.code or "", "the CA's reason is in the message: fix that, or ask "
                                        "for other names")

