"""Every name, hostname and domain rule of Dockyard, in one place.

The rules are explained in docs/architecture.md, Names and domains.

Public domains follow Defang's two patterns exactly, so a user moving between the two systems sees
the same shapes:

- playground: ``<username>-<service>--<port>.<zone>`` (one shared server, many accounts)
- byoc:       ``<service>--<port>.<project>.<username>.<zone>`` (your own server)

Every label we build is sanitized (`sanitize_label`): lowercase, ``[a-z0-9-]`` only, no runs of
``-``. Because a sanitized label never contains ``--``, the literal ``--`` before the port is an
unambiguous separator that the ingress can split on.

Length limits are never a reason to refuse a deployment. A label longer than 63 characters, or a
name longer than 253, is shortened deterministically: the label's prefix, ``-``, then the first 8
hex digits of the SHA-256 of the full label it replaces (`_shorten`). Only the leftmost label (the
one that names the service) is ever shortened to fit 253; the zone's length is capped per mode
(`MAX_ZONE_LENGTH`) so that this always suffices, which keeps the parent domain
``<project>.<username>.<zone>`` identical for every service and port of a project.

Project names follow Docker Compose v2 (checked against the v2.40.3 binary): an explicit name
(``-p``, ``COMPOSE_PROJECT_NAME``) must already be valid (`is_valid_project_name`); a name taken
from ``name:`` or from the directory is normalized (`normalize_project_name`).

Known limit: playground names of different accounts can collide (user ``alice`` with service
``bob-web`` and user ``alice-bob`` with service ``web`` both get ``alice-bob-web--<port>``);
the server refuses the second deployment (`domain-taken`, server/admission.py), so the first
owner keeps the domain.

This module is pure: no I/O, no printing. Errors are `ValueError` with a message fit for a user;
callers turn them into diagnostics.
"""

from __future__ import annotations

import enum
import itertools
import re
from collections.abc import Iterable

__all__ = [
    "DEFAULT_ZONE",
    "HASH_LENGTH",
    "MAX_LABEL_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_ZONE_LENGTH",
    "PORT_SEPARATOR",
    "PRIVATE_DOMAIN",
    "NamingMode",
    "is_valid_project_name",
    "label_collisions",
    "normalize_project_name",
    "normalize_zone",
    "private_hostnames",
    "public_domain",
    "sanitize_label",
    "service_fqdn",
    "service_label",
]


class NamingMode(enum.StrEnum):
    """How public names are built; chosen once, when the server starts (``--mode``)."""

    PLAYGROUND = "playground"
    BYOC = "byoc"


# `.localhost` names resolve to 127.0.0.1 in browsers and curl, so a deployed URL works on the
# machine itself with no DNS set up.
DEFAULT_ZONE: dict[NamingMode, str] = {
    NamingMode.PLAYGROUND: "prod1a.localhost",
    NamingMode.BYOC: "localhost",
}

MAX_LABEL_LENGTH = 63  # RFC 1035: one DNS label
MAX_NAME_LENGTH = 253  # RFC 1035: a whole name, written without the trailing dot
HASH_LENGTH = 8  # hex digits of SHA-256 appended to a shortened label
PORT_SEPARATOR = "--"
PRIVATE_DOMAIN = "internal"  # `<service>.<project>.internal` on the project network

_MAX_PORT = 65535
# Shortest form a shortened label can take: one character of prefix, "-", the hash.
_MIN_SHORTENED = 1 + 1 + HASH_LENGTH
# Longest first label's tail: "--65535".
_MAX_PORT_SUFFIX = len(PORT_SEPARATOR) + len(str(_MAX_PORT))
# In byoc, the labels between the service label and the zone: "<project>.<username>.".
_BYOC_MIDDLE = 2 * (MAX_LABEL_LENGTH + 1)

# The longest zone for which shortening the first label alone always fits 253 characters.
MAX_ZONE_LENGTH: dict[NamingMode, int] = {
    NamingMode.PLAYGROUND: MAX_NAME_LENGTH - (_MIN_SHORTENED + _MAX_PORT_SUFFIX + 1),
    NamingMode.BYOC: MAX_NAME_LENGTH - (_MIN_SHORTENED + _MAX_PORT_SUFFIX + 1) - _BYOC_MIDDLE,
}

_NOT_LABEL_CHARS = re.compile(r"[^a-z0-9]+")
_ZONE_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_NOT_PROJECT_CHARS = re.compile(r"[^a-z0-9_-]+")


# --- labels -----------------------------------------------------------------------------------


def _digest(key: str) -> str:
    import hashlib  # only for long names: `compose config` starts faster without it

    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def _shorten(label: str, limit: int) -> str:
    """Fit a sanitized `label` into `limit` characters: prefix + "-" + hash of the whole label.

    The hash covers the full label, so two different labels never shorten to the same result
    (up to a 32-bit hash collision), and the same label always shortens the same way.
    """
    if len(label) <= limit:
        return label
    if limit < _MIN_SHORTENED:  # pragma: no cover - prevented by MAX_ZONE_LENGTH
        raise ValueError(f"no room for the label {label!r}: {limit} characters left")
    prefix = label[: limit - HASH_LENGTH - 1].rstrip("-")
    return f"{prefix}-{_digest(label)}"


def sanitize_label(text: str) -> str:
    """Turn any text into one DNS label: lowercase ``[a-z0-9-]``, at most 63 characters.

    `_`, `.` and every other character outside ``[a-z0-9-]`` (including non-ASCII letters) become
    ``-``; runs of ``-`` collapse and leading/trailing ``-`` go. A longer result is shortened
    deterministically rather than refused. Raises `ValueError` if nothing usable is left.
    """
    label = _NOT_LABEL_CHARS.sub("-", text.lower()).strip("-")
    if not label:
        raise ValueError(f"{text!r} has no letters or digits, so it cannot be used in a hostname")
    return _shorten(label, MAX_LABEL_LENGTH)


def label_collisions(names: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs of distinct names whose labels are equal, so a validator can name both.

    Each pair is sorted and the list is sorted. Names with no usable label at all are skipped:
    `sanitize_label` reports those on its own.
    """
    by_label: dict[str, set[str]] = {}
    for name in names:
        try:
            label = sanitize_label(name)
        except ValueError:
            continue
        by_label.setdefault(label, set()).add(name)
    return sorted(
        pair for group in by_label.values() for pair in itertools.combinations(sorted(group), 2)
    )


def service_label(mode: NamingMode, *, username: str, service: str) -> str:
    """The label that names a service: ``<username>-<service>`` in playground, else ``<service>``.

    In playground many accounts share one zone, so the username keeps their services apart.
    """
    svc = sanitize_label(service)
    if mode is NamingMode.PLAYGROUND:
        return _shorten(f"{sanitize_label(username)}-{svc}", MAX_LABEL_LENGTH)
    return svc


# --- zones and domains ------------------------------------------------------------------------


def normalize_zone(zone: str, mode: NamingMode | None = None) -> str:
    """Lowercase `zone`, drop one trailing dot, and check it is a DNS name we can build under.

    With `mode`, also check the zone leaves room for the labels that mode puts in front of it
    (`MAX_ZONE_LENGTH`). Raises `ValueError` naming the problem.
    """
    name = zone.lower()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise ValueError("the zone must not be empty (for example: example.com)")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"the zone {zone!r} is longer than {MAX_NAME_LENGTH} characters")
    for label in name.split("."):
        if not _ZONE_LABEL.fullmatch(label):
            raise ValueError(
                f"the zone {zone!r} is not a DNS name: label {label!r} must be 1 to 63 ASCII "
                "letters, digits or '-', not starting or ending with '-' (write an "
                "internationalized name in its xn-- form)"
            )
    if name.rsplit(".", 1)[-1].isdigit():
        raise ValueError(f"the zone {zone!r} looks like an IP address; a zone is a domain name")
    if mode is not None and len(name) > MAX_ZONE_LENGTH[mode]:
        raise ValueError(
            f"the zone {zone!r} is {len(name)} characters long; {mode} mode allows at most "
            f"{MAX_ZONE_LENGTH[mode]} so that every service name fits in {MAX_NAME_LENGTH}"
        )
    return name


def _check_port(port: int) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= _MAX_PORT:
        raise ValueError(f"port {port!r} is not a port number (1 to {_MAX_PORT})")
    return port


def _parent(mode: NamingMode, *, username: str, project: str, zone: str) -> str:
    zone = normalize_zone(zone, mode)
    if mode is NamingMode.PLAYGROUND:
        return zone
    return f"{sanitize_label(project)}.{sanitize_label(username)}.{zone}"


def _first_label(mode: NamingMode, *, username: str, service: str) -> str:
    """The unshortened service part of the first label (`service_label` before the 63 cap)."""
    svc = sanitize_label(service)
    if mode is NamingMode.PLAYGROUND:
        return f"{sanitize_label(username)}-{svc}"
    return svc


def _join(head: str, suffix: str, parent: str) -> str:
    """``<head><suffix>.<parent>``, shortening `head` so the label fits 63 and the name 253."""
    budget = min(MAX_LABEL_LENGTH, MAX_NAME_LENGTH - len(parent) - 1) - len(suffix)
    return f"{_shorten(head, budget)}{suffix}.{parent}"


def public_domain(
    mode: NamingMode, *, username: str, project: str, service: str, port: int, zone: str
) -> str:
    """The domain the ingress serves one port of a service at.

    playground ``<username>-<service>--<port>.<zone>``; byoc
    ``<service>--<port>.<project>.<username>.<zone>``. `port` is the container (target) port.
    `project` is not part of a playground name. Raises `ValueError` for a bad zone or port.
    """
    suffix = f"{PORT_SEPARATOR}{_check_port(port)}"
    parent = _parent(mode, username=username, project=project, zone=zone)
    return _join(_first_label(mode, username=username, service=service), suffix, parent)


def service_fqdn(mode: NamingMode, *, username: str, project: str, service: str, zone: str) -> str:
    """A service's public name without a port (what ``ps`` shows and ``DOCKYARD_FQDN`` holds).

    playground ``<username>-<service>.<zone>``; byoc ``<service>.<project>.<username>.<zone>``.
    """
    parent = _parent(mode, username=username, project=project, zone=zone)
    return _join(_first_label(mode, username=username, service=service), "", parent)


def private_hostnames(
    mode: NamingMode, *, username: str, project: str, service: str
) -> tuple[str, ...]:
    """The names a service answers to on its project's own network.

    The Compose service name as written (Docker aliases use it, so unmodified Compose files keep
    working), ``<service>.<project>.internal``, and in playground also ``<username>-<service>``
    (Defang's playground name for internal calls).
    """
    names = [
        service,
        f"{sanitize_label(service)}.{sanitize_label(project)}.{PRIVATE_DOMAIN}",
    ]
    if mode is NamingMode.PLAYGROUND:
        names.append(service_label(mode, username=username, service=service))
    return tuple(dict.fromkeys(names))


# --- project names (Docker Compose v2 rules) --------------------------------------------------


def is_valid_project_name(name: str) -> bool:
    """Whether Compose accepts `name` as given with ``-p`` or ``COMPOSE_PROJECT_NAME``.

    Lowercase letters, digits, ``_`` and ``-``, starting with a letter or digit.
    """
    return _PROJECT_NAME.fullmatch(name) is not None


def normalize_project_name(name: str) -> str:
    """Compose's normalization of a ``name:`` value or a directory name.

    Lowercase, drop every character outside ``[a-z0-9_-]``, then drop leading ``_`` and ``-``
    (``Fancy-Proj_Dir`` -> ``fancy-proj_dir``, ``My App`` -> ``myapp``). Raises `ValueError`
    when nothing is left, as Compose does ("project name must not be empty").
    """
    normalized = _NOT_PROJECT_CHARS.sub("", name.lower()).lstrip("_-")
    if not normalized:
        raise ValueError(
            f"project name must not be empty: {name!r} has no letters or digits "
            "(set one with -p/--project-name or `name:`)"
        )
    return normalized
