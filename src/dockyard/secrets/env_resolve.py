"""`config resolve`: each service's environment variables, where each value comes from, and the
configs they need, set or not (pure).

A value is written in a Compose file (perhaps with `${VAR}` filled from the environment or
`.env`), read from an `env_file`, or a config: a key with no value is the config of that name,
and a `${NAME}` left in a value is filled from config NAME when the server deploys
(docs/configs.md). A secret file (`/run/secrets/...`) is a config too. Config values are never
here: only whether each is set, from the names the server lists (`Client.configs`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.compose.env_origins import EnvOrigin
from dockyard.compose.interpolation import config_references
from dockyard.compose.models import Project
from dockyard.secrets.resolve import missing_configs, secret_files

MASK = "****"  # how a set config's value is shown
UNSET = "(not set)"  # how a config that is not set is shown


@dataclass(frozen=True, slots=True)
class ResolvedVariable:
    """One environment variable (or secret file) of a service.

    `value` is the template the server fills in (`${NAME}` stays for config NAME, a literal
    `$` is `$$`), None when the whole value is a config. `configs` are the configs it needs and
    `missing` those of them that are not set.
    """

    service: str
    name: str
    value: str | None
    origin: EnvOrigin | None  # None for a whole config and for a secret file
    configs: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    secret_file: bool = False

    @property
    def shown_value(self) -> str:
        """The value as printed: a config's is masked, or says it is not set."""
        if self.value is not None:
            return self.value
        return UNSET if self.missing else MASK

    @property
    def source(self) -> str:
        """Where the value comes from, in words: `compose.yaml:12, ${TAG} from .env`."""
        parts: list[str] = []
        origin = self.origin
        if origin is not None and origin.kind == "env_file":
            parts.append(f"env_file {origin.file}")
        elif origin is not None:
            where = origin.file or "the Compose file"
            parts.append(f"{where}:{origin.line}" if origin.line else where)
            parts += [f"${{{v.name}}} from {v.source}" for v in origin.variables]
        for config in self.configs:
            kind = "config" if not self.secret_file else "config (file)"
            parts.append(f"{kind} {config}" + (" NOT SET" if config in self.missing else ""))
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service, "name": self.name, "value": self.value,
            "source": self.origin.kind if self.value is not None and self.origin else "config",
            "origin": self.origin.to_json() if self.origin else None,
            "secret_file": self.secret_file,
            "configs": [{"name": c, "set": c not in self.missing} for c in self.configs],
        }


@dataclass(frozen=True, slots=True)
class Resolution:
    """Every service's variables (by service, then as the environment orders them) and the
    configs that are needed but not set: config → the services that need it."""

    variables: tuple[ResolvedVariable, ...]
    missing: Mapping[str, list[str]]

    def to_json(self) -> dict[str, Any]:
        return {"variables": [v.to_json() for v in self.variables],
                "missing": {name: list(users) for name, users in self.missing.items()}}


def resolve_environment(project: Project, origins: Mapping[str, Mapping[str, EnvOrigin]],
                        set_configs: Iterable[str]) -> Resolution:
    """Explain each service's environment (`compose.env_origins`) against the configs that are
    set (names only)."""
    have = set(set_configs)
    rows: list[ResolvedVariable] = []
    for service_name, service in sorted(project.services.items()):
        known = origins.get(service_name, {})
        for key, value in service.environment.items():
            needs = (key,) if value is None else tuple(dict.fromkeys(config_references(value)))
            origin = None if value is None else known.get(key, EnvOrigin("compose"))
            rows.append(ResolvedVariable(service_name, key, value, origin, needs,
                                         tuple(c for c in needs if c not in have)))
        for file in secret_files(project, service):
            missing = () if file.config in have else (file.config,)
            rows.append(ResolvedVariable(service_name, file.target, None, None,
                                         (file.config,), missing, secret_file=True))
    return Resolution(tuple(rows), missing_configs(project, have))
