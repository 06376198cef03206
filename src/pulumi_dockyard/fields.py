"""The `services` map of Defang's Pulumi providers, as a Compose document Dockyard loads.

Defang's `Project(services=...)` (pulumi-defang-aws/-gcp/-azure 2.x, `compose.ServiceConfigArgs`)
takes a Compose-shaped map with snake_case keys. This module knows every field of it:
- the ones that are Compose under another name or shape become Compose (`health_check` with
  `interval_seconds` -> `healthcheck` with `interval: 5s`, `domain_name` -> `domainname`,
  `volumes` entries -> long-form named volumes, declared at the top level);
- the ones Dockyard has no meaning for (managed Postgres, Redis, object stores, LLMs, cloud
  policies, autoscaling, a port's load-balancer `listener`) are refused by name: dropping one
  silently would deploy something else than the program says;
- every other key is Compose's own spelling and goes to Compose as it is, where Dockyard's
  loader checks it like any Compose file (an unknown key is refused there, by its path).

Strings outside `environment` are literal (a `$` is escaped for Compose's interpolation);
environment values are Compose templates as in a Compose file: `${NAME}` is the config NAME.

`wire_names` gives the map the property names Defang's SDK sends (camelCase of its schema), so
a component registers the very inputs Defang's `Project` would. Pure: no I/O, no Pulumi.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_dockyard.errors import UnsupportedField


@dataclass(frozen=True)
class Shape:
    """An input type of Defang's schema: its fields, and the shape of each nested one
    (`maps`: a map of str to that shape; `lists`: a list of it; `types`: one of it)."""

    fields: frozenset[str]
    types: Mapping[str, Shape] = field(default_factory=dict)
    maps: Mapping[str, Shape] = field(default_factory=dict)
    lists: Mapping[str, Shape] = field(default_factory=dict)


def _shape(names: str, **nested: Any) -> Shape:
    kinds: dict[str, dict[str, Shape]] = {"types": {}, "maps": {}, "lists": {}}
    for key, value in nested.items():
        kind, shape = value
        kinds[kind][key] = shape
    return Shape(frozenset(names.split()) | frozenset(nested), **kinds)


_EMPTY = _shape("")
PORT = _shape("target app_protocol listener mode protocol")
VOLUME = _shape("source target read_only")
DEPENDENCY = _shape("condition required")
SERVICE_NETWORK = _shape("aliases")
NETWORK = _shape("internal")
RESOURCE_CONFIG = _shape("cpus memory")
RESOURCES = _shape("", reservations=("types", RESOURCE_CONFIG))
DEPLOY = _shape("replicas", resources=("types", RESOURCES))
HEALTH_CHECK = _shape("interval_seconds retries start_period_seconds test timeout_seconds")
BUILD = _shape("context args cache_from cache_to dockerfile platforms shm_size target")
MANAGED = _shape("allow_downtime from_snapshot")
SERVICE = _shape(
    "aliases autoscaling command container_name entrypoint environment image network_mode "
    "platform policies restart stop_grace_period volumes_from working_dir domain_name",
    build=("types", BUILD), deploy=("types", DEPLOY), health_check=("types", HEALTH_CHECK),
    llm=("types", _EMPTY), object_store=("types", _shape("bucket")),
    postgres=("types", MANAGED), redis=("types", MANAGED),
    depends_on=("maps", DEPENDENCY), networks=("maps", SERVICE_NETWORK),
    ports=("lists", PORT), volumes=("lists", VOLUME))

# Defang's fields with no meaning on a Dockyard server: why, and what to do instead.
_REFUSED = {
    "postgres": ("a managed Postgres is a cloud service Dockyard does not run",
                 "run Postgres as a service with an image (`image: postgres:17`) and a volume"),
    "redis": ("a managed Redis is a cloud service Dockyard does not run",
              "run Redis as a service with an image (`image: redis:7`)"),
    "object_store": ("a managed object store is a cloud service Dockyard does not run",
                     "run an S3-compatible store (such as MinIO) as a service"),
    "llm": ("a managed LLM is a cloud service Dockyard does not run",
            "run a model server as a service with an image"),
    "policies": ("cloud IAM policies have no meaning on a Dockyard server", "remove it"),
    "aliases": ("Defang's service `aliases` have no Dockyard equivalent",
                "use `networks: {NAME: {aliases: [...]}}`"),
}


def camel(name: str) -> str:
    """`app_protocol` -> `appProtocol`: how Defang's schema names a snake_case field."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def wire_names(value: Any, shape: Shape) -> Any:
    """`value` (a plain mapping of `shape`) with the property names Pulumi sends for Defang's
    input types; keys of maps (service names, environment variables) are kept as written.
    Keys outside Defang's schema (Compose's own spellings) are kept too."""
    if not isinstance(value, Mapping):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = camel(key) if key in shape.fields else key
        if key in shape.types:
            out[name] = wire_names(item, shape.types[key])
        elif key in shape.maps and isinstance(item, Mapping):
            out[name] = {k: wire_names(v, shape.maps[key]) for k, v in item.items()}
        elif key in shape.lists and isinstance(item, list | tuple):
            out[name] = [wire_names(v, shape.lists[key]) for v in item]
        else:
            out[name] = item
    return out


def integral(value: Any) -> Any:
    """Numbers as Compose wants them: Pulumi sends every number as a float (`80.0`)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [integral(v) for v in value]
    return value


def to_compose(project_name: str, services: Mapping[str, Any], program_dir: str,
               networks: Mapping[str, Any] | None = None,
               volumes: Mapping[str, Any] | None = None,
               extensions: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Compose document of a program's project. Paths (build contexts, env files) are
    relative to `program_dir`. Raises `UnsupportedField` naming the first refused field."""
    if not isinstance(services, Mapping) or not services:
        raise UnsupportedField("services", "a Project needs at least one service",
                               "pass services={'NAME': {'image': ...}}")
    declared: dict[str, Any] = {}
    document: dict[str, Any] = {"name": project_name, "services": {}}
    for name, spec in integral(services).items():
        where = f"services.{name}"
        if not isinstance(spec, Mapping):
            raise UnsupportedField(where, "a service must be a mapping of its fields")
        document["services"][name] = _service(spec, where, program_dir, declared)
    if networks:
        document["networks"] = _literal(integral(dict(networks)))
    named = {**declared, **_literal(integral(dict(volumes or {})))}
    if named:
        document["volumes"] = named
    document.update(extensions or {})
    return document


def _service(spec: Mapping[str, Any], where: str, program_dir: str,
             volumes: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in spec.items():
        path = f"{where}.{key}"
        if value is None:
            continue
        if key in _REFUSED:
            reason, hint = _REFUSED[key]
            raise UnsupportedField(path, reason, hint)
        if key == "autoscaling":
            if value:
                raise UnsupportedField(path, "Dockyard does not autoscale; it runs "
                                       "`deploy.replicas` replicas", "set deploy.replicas")
        elif key == "environment":
            out[key] = dict(value) if isinstance(value, Mapping) else list(value)
        elif key == "health_check":
            out["healthcheck"] = _health_check(value, path)
        elif key == "domain_name":
            out["domainname"] = _literal(value)
        elif key == "build":
            out[key] = _build(value, path, program_dir)
        elif key == "ports":
            out[key] = [_port(p, f"{path}[{i}]") for i, p in enumerate(value)]
        elif key == "volumes":
            out[key] = [_volume(v, f"{path}[{i}]", volumes) for i, v in enumerate(value)]
        elif key == "env_file":
            files = [value] if isinstance(value, str) else list(value)
            out[key] = [_absolute(f, program_dir) if isinstance(f, str) else
                        {**f, "path": _absolute(str(f.get("path", "")), program_dir)}
                        for f in files]
        else:
            out[key] = _literal(value)
    return out


def _health_check(value: Any, path: str) -> Any:
    if not isinstance(value, Mapping):
        return _literal(value)
    out: dict[str, Any] = {}
    for key, item in value.items():
        if item is None:
            continue
        if key.endswith("_seconds"):
            out[key[: -len("_seconds")]] = f"{item}s"
        else:
            out[key] = _literal(item)
    return out


def _build(value: Any, path: str, program_dir: str) -> Any:
    if isinstance(value, str):
        return {"context": _absolute(value, program_dir)}
    if not isinstance(value, Mapping) or not value.get("context"):
        raise UnsupportedField(f"{path}.context", "a build needs its context directory",
                               "set build.context, relative to the program's directory")
    out = {k: _literal(v) for k, v in value.items() if v is not None}
    out["context"] = _absolute(str(value["context"]), program_dir)
    return out


def _port(value: Any, path: str) -> Any:
    if not isinstance(value, Mapping):
        return _literal(value)
    if value.get("listener") is not None:
        raise UnsupportedField(f"{path}.listener", "a port's load-balancer listener is "
                               "Defang's cloud setting; Dockyard's ingress serves each "
                               "port at its own domain", "remove `listener`")
    return {k: _literal(v) for k, v in value.items() if v is not None}


def _volume(value: Any, path: str, declared: dict[str, Any]) -> Any:
    if not isinstance(value, Mapping):
        return _literal(value)
    out = {k: _literal(v) for k, v in value.items() if v is not None}
    source = out.get("source")
    if "type" not in out and isinstance(source, str) and source and \
            not source.startswith(("/", ".", "~")):
        out["type"] = "volume"
        out.setdefault("volume", {})  # as Compose normalizes `source:target`
        declared.setdefault(source, {})
    return out


def _absolute(path: str, program_dir: str) -> str:
    return os.path.normpath(os.path.join(program_dir, os.path.expanduser(path)))


def _literal(value: Any) -> Any:
    """A value Compose must not interpolate: `$` written `$$`."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, Mapping):
        return {k: _literal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_literal(v) for v in value]
    return value
