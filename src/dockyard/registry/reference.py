"""Image references and registry host names, read as the engine and `docker login` read them.

A reference is `[DOMAIN/]PATH[:TAG][@DIGEST]` (distribution's grammar, which the engine uses):
the first part names a registry only when it has a dot or a port, is `localhost`, or has
capitals; otherwise the image is on Docker Hub. The path is lower case, the whole name at most
255 characters, the tag at most 128 word characters, and a digest names an algorithm the engine
knows with its full hex (`sha256:` and 64 lower-case hex digits).

Credentials are keyed by registry host as `docker login` keys them: every spelling of Docker Hub
is "docker.io" (the engine's auth config still wants the legacy `https://index.docker.io/v1/`),
any other host is kept as written, lower-cased, port included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
DOCKER_HUB_AUTH_ADDRESS = "https://index.docker.io/v1/"
HUB_SPELLINGS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io",
                           "registry.hub.docker.com"})
NAME_MAX = 255  # distribution: NameTotalLengthMax (domain and path)

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?")
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DIGEST_RE = re.compile(_DIGEST)
_IMAGE_ID = re.compile(r"(?:sha256:)?([0-9a-f]{1,64})")
_DIGEST_HEX = {"sha256": 64, "sha384": 96, "sha512": 128}  # what the engine can verify
_HOST = re.compile(rf"(?P<name>{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*)(?::(?P<port>[0-9]+))?")


@dataclass(frozen=True, slots=True)
class Reference:
    """An image reference, parsed as the engine parses it."""

    domain: str | None  # as written (None: Docker Hub)
    path: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """The repository as written, without tag or digest (`127.0.0.1:5000/team/app`)."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def tagged(self) -> str:
        """As written, with `:latest` when neither tag nor digest is given."""
        tag = self.tag if self.tag or self.digest else "latest"
        return self.name + (f":{tag}" if tag else "") + (f"@{self.digest}" if self.digest else "")

    @property
    def normalized(self) -> str:
        """Fully qualified: `busybox` is `docker.io/library/busybox:latest`."""
        hub = self.domain in (None, "docker.io", "index.docker.io")
        domain = "docker.io" if hub else str(self.domain)
        path = f"library/{self.path}" if hub and "/" not in self.path else self.path
        head = f"{domain}/{path}"
        tag = self.tag if self.tag or self.digest else "latest"
        return head + (f":{tag}" if tag else "") + (f"@{self.digest}" if self.digest else "")


def parse_reference(text: str) -> Reference | None:
    """The reference, or None when the engine would not take it as one."""
    found = _REFERENCE.fullmatch(text)
    if found is None:
        return None
    domain, path = found.group("domain"), found.group("path")
    if domain is not None and not _is_domain(domain):
        path = f"{domain}/{path}"  # `dockyard/busybox`: a Docker Hub namespace, no registry
        domain = None
        if _PATH.fullmatch(path) is None:
            return None
    digest = found.group("digest")
    if digest is not None and not _is_known_digest(digest):
        return None
    reference = Reference(domain, path, found.group("tag"), digest)
    if len(reference.name) > NAME_MAX:
        return None
    return reference


def is_valid_reference(text: str) -> bool:
    """Whether the engine takes `text` as an image reference (an image id is not one)."""
    return parse_reference(text) is not None


def why_invalid(text: str) -> str:
    """Why the engine refuses `text` as a reference, in a few words for people (for text that
    `is_valid_reference` refuses)."""
    name, at, digest = text.partition("@")
    if not text:
        return "it is empty"
    if any(c.isspace() for c in text):
        return "it has spaces"
    if at and (_DIGEST_RE.fullmatch(digest) is None or not _is_known_digest(digest)):
        return "the digest after @ is not sha256: and 64 lower-case hex digits"
    last = name.rsplit("/", 1)[-1]
    stem, colon, tag = last.partition(":")
    repository = name[:len(name) - len(last)] + stem
    if len(repository) > NAME_MAX:
        return f"the name is longer than {NAME_MAX} characters"
    if colon and len(tag) > 128:
        return "the tag is longer than 128 characters"
    if text != text.lower() and parse_reference(text.lower()) is not None:
        return "a repository name is lower case"
    return "it is not of the form [REGISTRY/]NAME[:TAG][@DIGEST]"


def _is_domain(first: str) -> bool:
    """Docker's rule: the first part names a registry when it has a dot or a port, is
    `localhost`, or has capitals (which no repository name may have)."""
    return "." in first or ":" in first or first == "localhost" or first != first.lower()


def _is_known_digest(digest: str) -> bool:
    """The engine checks a digest before any registry sees it: a known algorithm, its full
    length of lower-case hex."""
    algorithm, _, hex_part = digest.partition(":")
    size = _DIGEST_HEX.get(algorithm)
    return size is not None and len(hex_part) == size and hex_part == hex_part.lower()


def image_id_of(text: str) -> str | None:
    """The hex an engine would read as an image id (or a prefix of one), else None: a bare hex
    string (`cafe`, `0`) is an id to the engine when no image of that name exists."""
    found = _IMAGE_ID.fullmatch(text)
    return found.group(1) if found else None


def registry_host(reference: Reference | str) -> str:
    """The registry an image is pulled from, as credentials are keyed: "docker.io" for Docker
    Hub, else the domain as written, lower-cased (`ghcr.io`, `127.0.0.1:5000`).

    Raises ValueError for text that is not a reference."""
    parsed = parse_reference(reference) if isinstance(reference, str) else reference
    if parsed is None:
        raise ValueError(f"{reference!r} is not an image reference")
    if parsed.domain is None:
        return DOCKER_HUB
    domain = parsed.domain.lower()
    return DOCKER_HUB if domain in HUB_SPELLINGS else domain


def normalize_host(text: str) -> str:
    """The registry host a user means by what they type after `registry login`, keyed as
    `registry_host` keys it: `https://index.docker.io/v1/` is "docker.io", `GHCR.io/owner` is
    "ghcr.io". Like `docker login`, a scheme and any path are dropped.

    Raises ValueError, with a message for people, for anything that is not a host."""
    written = text.strip()
    shape = "write a registry host such as ghcr.io, registry.example.com:5000 or docker.io"
    if not written:
        raise ValueError(f"no registry host given: {shape}")
    if any(c.isspace() for c in written):
        raise ValueError(f"{written!r} is not a registry host (it has spaces): {shape}")
    rest = written
    scheme, sep, after = rest.partition("://")
    if sep:
        if scheme.lower() not in ("http", "https"):
            raise ValueError(f"{written!r} is not a registry host (scheme {scheme!r}; only "
                             f"http:// or https:// may be written): {shape}")
        rest = after
    host = rest.split("/", 1)[0]
    if "@" in host:
        raise ValueError("a registry host has no user name or password in it (give the user "
                         f"with -u, the password on stdin): {shape}")  # never echoed back
    found = _HOST.fullmatch(host)
    if found is None:
        raise ValueError(f"{written!r} is not a registry host: {shape}")
    port = found.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        raise ValueError(f"{written!r} is not a registry host (port {port} is not in "
                         f"1-65535): {shape}")
    host = host.lower()
    return DOCKER_HUB if host in HUB_SPELLINGS else host


def auth_server_address(host: str) -> str:
    """The `serveraddress` the engine's auth config needs for a host `normalize_host` gave."""
    return DOCKER_HUB_AUTH_ADDRESS if host == DOCKER_HUB else host


def pinned(reference_text: str, digest: str) -> str:
    """The reference pinned to `digest`, tag dropped, domain as written:
    `nginx:1.27` and `sha256:ab..` give `nginx@sha256:ab..`.

    Raises ValueError when either is not valid."""
    reference = parse_reference(reference_text)
    if reference is None:
        raise ValueError(f"{reference_text!r} is not an image reference")
    if _DIGEST_RE.fullmatch(digest) is None or not _is_known_digest(digest):
        raise ValueError(f"{digest!r} is not an image digest (sha256:<64 hex digits>)")
    return f"{reference.name}@{digest}"
