"""Custom domains on a shared server: which need a proof of control, and which proof (pure).

On a playground server many tenants share one ingress, and users are told to trust its local CA.
A tenant naming any domain in `domainname:` (or a network alias with a dot) must not get it
served, and above all must not get a local-CA certificate for it (`login.examplebank.com` would
then pass in every browser that trusts the CA). So there a custom domain is served only once
the server has seen proof that the name points at this ingress:

- `Proof.ACME`: when the server has an ACME directory and the name is a public one, the ACME
  result itself. The CA's HTTP-01 challenge (never DNS-01: the operator's DNS hook may control
  zones the tenant does not) shows the name resolves to this ingress; the certificate issued is
  then the one served. An ACME failure leaves the name unserved: no local-CA fallback.
- `Proof.TOKEN`: otherwise (no ACME, or a local name no public CA certifies), the server's own
  HTTP-01-style check: it publishes a random token at
  `http://<domain>/.well-known/dockyard-challenge/<token>` through its ingress and fetches that
  URL through real DNS. The name is then served over HTTP only: no certificate is issued for it
  (the local CA must not certify it, and no other CA did).
- `Proof.TRUSTED`: a byoc server has one trusted user, who keeps the old behaviour (served at
  once; a local-CA certificate when ACME is not configured or fails).

Names inside the server's zone are refused before a deployment starts (`routes.check_custom_
hosts`): they are generated, and one account must not take another's.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from dockyard.ingress.ca import is_local_name
from dockyard.naming import NamingMode

CHALLENGE_PREFIX = "/.well-known/dockyard-challenge/"
TOKEN_REVERIFY_SECONDS = 24 * 3600.0  # a token proof is checked again at a deployment after this
ACME_REVERIFY_SECONDS = 30 * 24 * 3600.0  # an ACME proof (a new order) at most this often
TOKEN_RETRY_SECONDS = 30.0  # a failed token check is not repeated sooner than this
MAX_ANSWER_BYTES = 1024  # of the answer to a token check: a token, nothing more


class Proof(enum.StrEnum):
    TRUSTED = "trusted"
    ACME = "acme"
    TOKEN = "token"


def in_zone(host: str, zone: str) -> bool:
    zone = zone.lower().rstrip(".")
    return host == zone or host.endswith("." + zone)


def proof_for(mode: NamingMode, zone: str, host: str, *, acme: bool) -> Proof:
    """How `host`, a custom domain of a service, must be proven before it is served."""
    if mode is not NamingMode.PLAYGROUND or in_zone(host, zone):
        return Proof.TRUSTED
    if acme and not is_local_name(host):
        return Proof.ACME
    return Proof.TOKEN


def recheck_after(proof: Proof) -> float:
    """How long a proof of `proof` kind holds before a deployment proves the name again."""
    return ACME_REVERIFY_SECONDS if proof is Proof.ACME else TOKEN_REVERIFY_SECONDS


def challenge_url(host: str, port: int, token: str) -> str:
    """Where the token of a check is fetched: the ingress's HTTP port at `host`."""
    where = host if port == 80 else f"{host}:{port}"
    return f"http://{where}{CHALLENGE_PREFIX}{token}"


def judge_answer(expected: str, status: int, body: bytes) -> str | None:
    """None when the answer to a token check is the token's value; else why not.

    The answer's content never appears in the reason: the server may have fetched it from an
    address of the tenant's choosing, and must not become a way to read it.
    """
    if status != 200:
        return f"it answered HTTP {status} instead of the challenge token, so it is served " \
               f"by another server"
    if body.strip() != expected.encode():
        return "it answered with something else than the challenge token, so it is served " \
               "by another server"
    return None


def unverified_reason(host: str, why: str) -> str:
    """The reason shown for a custom domain that is not served."""
    return f"custom domain {host} is not served: not verified ({why})"


def service_reason(results: Mapping[str, str | None], proofs: Mapping[str, Proof]) -> str:
    """One line about a service's custom domains: which are served and which are not, why."""
    parts: list[str] = []
    for host in sorted(results):
        why = results[host]
        if why is None:
            how = "HTTPS" if proofs.get(host) is Proof.ACME else "HTTP only, no certificate"
            parts.append(f"custom domain {host} verified and served ({how})")
        else:
            parts.append(unverified_reason(host, why))
    return "; ".join(parts)


def owners(claims: Iterable[tuple[str, str, float]]) -> dict[str, str]:
    """host → the route key that serves it, from (host, route key, verified at) claims.

    Two accounts may both prove a name that points here (one after the other); the first proof
    keeps it, so a later tenant cannot take over a domain being served.
    """
    best: dict[str, tuple[float, str]] = {}
    for host, key, at in claims:
        if host not in best or (at, key) < best[host]:
            best[host] = (at, key)
    return {host: key for host, (_, key) in best.items()}
