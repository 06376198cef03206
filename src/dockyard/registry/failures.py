"""What a registry's refusal means, from the engine's error text, in words for people.

The engine reports a failed pull or push as one line of text, mixing its own words with the
registry's (`manifest for 127.0.0.1:5000/x:nope not found: manifest unknown: ...`). `classify`
sorts it into a few kinds a user acts on differently, and writes one sentence naming the
registry and one hint. Checks run from the most specific cause to the least: a network or TLS
failure first (its text may carry any other words in a URL), then refusals, then unknown names.

Engine text may carry credentials (`https://user:secret@host/...`, an Authorization header
echoed back): `scrub` removes them, and every text `classify` returns is scrubbed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from dockyard.registry.reference import DOCKER_HUB, parse_reference

FailureKind = Literal["unknown", "unauthorized", "unreachable", "too-large", "timeout", "other"]
KINDS: tuple[FailureKind, ...] = ("unknown", "unauthorized", "unreachable", "too-large",
                                  "timeout", "other")
MAX_QUOTED = 300  # characters of the engine's text quoted in a reason


@dataclass(frozen=True, slots=True)
class PullFailure:
    kind: FailureKind
    reason: str  # one sentence naming the registry, e.g. "the registry ghcr.io has no tag ..."
    hint: str  # what to do


_SCRUBS = (
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@"), r"\1***@"),  # scheme://user:pw@
    (re.compile(r"(?i)\b(basic|bearer)\s+(?!(?:auth|authentication|credentials|realm|token)"
                r"\b)[A-Za-z0-9._~+/=-]{6,}"), r"\1 ***"),
    (re.compile(r"(?i)\b(password|passwd|pwd|token|access_token|refresh_token|secret|"
                r"identitytoken|registrytoken|auth)(\"?\s*[=:]\s*\"?)[^\s\"&,;}]+"), r"\1\2***"),
)
_TLS = re.compile(r"x509|certificate|tls: |TLS handshake|remote error: tls", re.I)
_PLAIN_HTTP = re.compile(r"server gave HTTP response to HTTPS client", re.I)
_NETWORK = re.compile(
    r"connection refused|no such host|i/o timeout|\bEOF\b|network is unreachable|"
    r"no route to host|connection reset|dial tcp|dial unix|server misbehaving|"
    r"temporary failure in name resolution|lookup \S+ on", re.I)
_SERVER_ERROR = re.compile(
    r"(?:status(?: code)?:? |HTTP |response status )(5\d\d)\b|\b(5\d\d) (?:Service Unavailable|"
    r"Bad Gateway|Internal Server Error|Gateway Time-?out)", re.I)
_TIMEOUT = re.compile(r"deadline exceeded|Client\.Timeout|timed out|took longer than|"
                      r"request canceled", re.I)
_TOO_LARGE = re.compile(r"larger than|too large", re.I)
_NO_CREDENTIALS = re.compile(r"no basic auth credentials|authentication required|"
                             r"login required|credentials required", re.I)
_UNAUTHORIZED = re.compile(r"unauthorized|incorrect username or password|"
                           r"\b401\b|\b403\b|forbidden", re.I)
_DENIED = re.compile(r"pull access denied|\bdenied\b", re.I)
_UNKNOWN = re.compile(r"manifest unknown|not found|no such tag|tag does not exist|"
                      r"repository does not exist|name unknown|not known to registry|"
                      r"no such image|\b404\b", re.I)
_MANIFEST_FOR = re.compile(r"manifest for (\S+) not found")
_ACCESS_FOR = re.compile(r"(?:pull|push) access denied for ([^,\s]+)")


def scrub(text: str) -> str:
    """`text` without credentials: user info in URLs, Authorization values, `password=...`."""
    for pattern, replacement in _SCRUBS:
        text = pattern.sub(replacement, text)
    return text


def classify(engine_message: str, *, host: str) -> PullFailure:
    """The kind of failure the engine's `engine_message` reports for the registry `host` (as
    `registry_host` names it), with a reason and a hint for people."""
    said = _quoted(engine_message)
    login = f"log in with `dockyard registry login {host}`"
    if _PLAIN_HTTP.search(engine_message):
        return PullFailure(
            "unreachable", f"the registry {host} answers in plain HTTP, and the server's engine "
            "speaks HTTPS to it", f"serve {host} with TLS, or add it to the engine's "
            "insecure-registries (/etc/docker/daemon.json) on the server")
    if _TLS.search(engine_message) and "handshake timeout" not in engine_message.lower():
        return PullFailure(
            "unreachable", f"the server's engine does not trust the certificate of the registry "
            f"{host} ({said})", f"put the CA of {host} in /etc/docker/certs.d/{host}/ca.crt on "
            "the server, or fix the registry's certificate")
    server_error = _SERVER_ERROR.search(engine_message)
    if server_error:
        status = server_error.group(1) or server_error.group(2)
        return PullFailure(
            "unreachable", f"the registry {host} failed with HTTP {status} ({said})",
            f"check that {host} is up and healthy, then try again")
    if _NETWORK.search(engine_message) or "handshake timeout" in engine_message.lower():
        return PullFailure(
            "unreachable", f"the registry {host} cannot be reached ({said})",
            f"check that {host} is up and that the server can reach it (address, port, DNS, "
            "firewall)")
    if _TOO_LARGE.search(engine_message):
        return PullFailure("too-large", f"the image is too large ({said})",
                           "use a smaller image, or ask the operator for a larger "
                           "--max-pull-size")
    if _TIMEOUT.search(engine_message):
        return PullFailure("timeout", f"the registry {host} was too slow ({said})",
                           f"try again; if {host} is always this slow, ask the operator for a "
                           "longer --pull-timeout")
    if _DENIED.search(engine_message):
        name = _ACCESS_FOR.search(engine_message)
        what = f" to {_repository(name.group(1))}" if name else ""
        return PullFailure(
            "unauthorized", f"the registry {host} refused access{what}: it does not exist, or "
            "needs credentials with access to it (denied)", f"check the image name, or {login}")
    if _UNAUTHORIZED.search(engine_message):
        return PullFailure(
            "unauthorized", f"the registry {host} refused the credentials (unauthorized)",
            f"{login} with credentials that have access to this image")
    if _NO_CREDENTIALS.search(engine_message):
        return PullFailure(
            "unauthorized", f"the registry {host} asks for credentials ({said})", login)
    if re.search(r"toomanyrequests|rate limit|\b429\b", engine_message, re.I):
        return PullFailure("other", f"the registry {host} limits how often it may be pulled "
                           f"from, and the limit is reached ({said})",
                           f"try again later, or {login}: logged-in pulls get a higher limit")
    if _UNKNOWN.search(engine_message):
        return PullFailure("unknown", _unknown_reason(engine_message, host),
                           f"check the image name and tag exist on {host}")
    return PullFailure("other", f"the registry {host} could not serve the image ({said})",
                       f"check the image name and that {host} works (`docker pull` on the "
                       "server shows the same)")


def _unknown_reason(message: str, host: str) -> str:
    found = _MANIFEST_FOR.search(message)
    reference = parse_reference(found.group(1)) if found else None
    if reference is None:
        return f"the registry {host} has no such image ({_quoted(message)})"
    name = _repository(reference.name)
    if reference.digest:
        return f"the registry {host} has no image {reference.digest} for {name}"
    return f"the registry {host} has no tag {reference.tag or 'latest'!r} for {name}"


def _repository(text: str) -> str:
    """The repository as people name it on its registry: no registry host, no `library/` on
    Docker Hub (`127.0.0.1:5000/app` is `app`, `docker.io/library/nginx` is `nginx`)."""
    reference = parse_reference(text)
    if reference is None:
        return scrub(text)
    if reference.domain is None or reference.domain.lower() in (DOCKER_HUB, "index.docker.io"):
        return reference.path.removeprefix("library/")
    return reference.path


def _quoted(message: str) -> str:
    """The engine's words, scrubbed, on one line and not too long."""
    text = " ".join(scrub(message).split())
    return text if len(text) <= MAX_QUOTED else text[:MAX_QUOTED - 3] + "..."
