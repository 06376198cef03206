"""Which configs a project needs, and where their values go (pure).

A config is used three ways (docs/architecture.md, Concepts; issue 5): an `environment` key with no
value takes the config of that name; `${NAME}` inside an environment value is replaced by it; a
top-level `secrets:` entry with `external: true` is the config of that name (or of its `name:`),
mounted as a file at `/run/secrets/<target>` (mode 0400) in the services that list it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dockyard.compose.interpolation import config_references
from dockyard.compose.models import Project, Service
from dockyard.diagnostics import Diagnostic, error

CONFIG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
SECRETS_DIR = "/run/secrets"


def is_config_name(name: str) -> bool:
    return bool(CONFIG_NAME.match(name))


@dataclass(frozen=True, slots=True)
class SecretFile:
    """A config mounted as a file in a service's containers."""

    config: str
    target: str  # absolute path in the container
    mode: int = 0o400
    uid: str | None = None
    gid: str | None = None


def secret_files(project: Project, service: Service) -> list[SecretFile]:
    """The external secrets `service` lists, as files (non-external ones are not configs)."""
    files: list[SecretFile] = []
    for ref in service.secrets:
        resource = project.secrets.get(ref.source)
        if resource is None or not resource.external:
            continue
        target = ref.target or ref.source
        if not target.startswith("/"):
            target = f"{SECRETS_DIR}/{target}"
        files.append(SecretFile(resource.name or ref.source, target,
                                ref.mode if ref.mode is not None else 0o400, ref.uid, ref.gid))
    return files


def service_configs(project: Project, service: Service) -> list[str]:
    """Every config name one service uses, in order of first use."""
    names: list[str] = []
    for key, value in service.environment.items():
        names += [key] if value is None else config_references(value)
    names += [f.config for f in secret_files(project, service)]
    return list(dict.fromkeys(names))


def config_users(project: Project) -> dict[str, list[str]]:
    """config name → the services that use it."""
    users: dict[str, list[str]] = {}
    for name, service in sorted(project.services.items()):
        for config in service_configs(project, service):
            users.setdefault(config, []).append(name)
    return users


def missing_configs(project: Project, available: Iterable[str]) -> dict[str, list[str]]:
    have = set(available)
    return {name: users for name, users in config_users(project).items() if name not in have}


_UNSET = re.compile(r'the "([^"]+)" variable is not set')


def build_arg_config_problems(warnings: Iterable[Diagnostic],
                              config_names: Iterable[str]) -> list[Diagnostic]:
    """Build args that reference a config: refused, since a build arg ends up in the image's
    layers. Such a reference is a `${NAME}` the local environment does not define (so the
    loader warned `unset-variable` at a `build.args` path) where NAME is a config of the
    project (stored, or used by its services)."""
    configs = set(config_names)
    problems: list[Diagnostic] = []
    for warning in warnings:
        found = _UNSET.search(warning.message)
        path = warning.location.path or ""
        if warning.code != "unset-variable" or not found or ".build.args" not in path:
            continue
        if found.group(1) in configs:
            problems.append(error(
                "config-in-build-arg",
                f"this build arg references config {found.group(1)!r}: configs are never "
                "passed to builds (build args stay in the image's layers)", warning.location,
                "read the config at run time from the environment or /run/secrets instead, "
                "or give the build a non-secret value"))
    return problems


def values_digest(key: bytes, values: Mapping[str, str], names: Iterable[str]) -> str:
    """A keyed digest of the values of `names`: it changes when a value changes (so the
    service's config hash does, and the next `up` replaces it), and reveals nothing."""
    import hashlib  # the server's: the client loads this module for its checks only
    import hmac

    mac = hmac.new(key, digestmod=hashlib.sha256)
    for name in sorted(set(names)):
        mac.update(name.encode() + b"\0" + values.get(name, "").encode() + b"\0")
    return mac.hexdigest()[:16]


def configs_digests(key: bytes, project: Project, values: Mapping[str, str]) -> dict[str, str]:
    """Per service that uses configs: the keyed digest of their values (`values_digest`)."""
    out: dict[str, str] = {}
    for name, service in project.services.items():
        used = service_configs(project, service)
        if used:
            out[name] = values_digest(key, values, used)
    return out


def redact(text: str, values: Iterable[str]) -> str:
    """`text` with every config value (of 4 characters or more) replaced by `****`."""
    for value in sorted({v for v in values if len(v) >= 4}, key=len, reverse=True):
        text = text.replace(value, "****")
    return text
