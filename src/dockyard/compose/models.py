"""The normalized, typed and immutable Compose project.

Every short syntax has become its long form, every value has its type (ports are numbers,
durations are nanoseconds, memory is bytes, environment values are strings or None), relative
paths are absolute, and defaults are filled in. Keys Dockyard does not model one by one are kept,
normalized, in `extra` so nothing the specification defines is lost.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return EMPTY


def frozen_map(items: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(items or {}))


class PortMode(enum.StrEnum):
    INGRESS = "ingress"
    HOST = "host"


@dataclass(frozen=True, slots=True)
class Port:
    target: int
    published: str | None = None  # a port or a range, as Compose prints it
    host_ip: str | None = None
    protocol: str = "tcp"
    mode: str = PortMode.INGRESS.value
    app_protocol: str | None = None
    name: str | None = None

    @property
    def is_ingress(self) -> bool:
        return self.mode == PortMode.INGRESS and self.protocol != "udp"


@dataclass(frozen=True, slots=True)
class Build:
    context: str
    dockerfile: str | None = "Dockerfile"
    args: Mapping[str, str | None] = field(default_factory=_empty)
    target: str | None = None
    labels: Mapping[str, str] = field(default_factory=_empty)
    # cache_from, ssh, platforms, dockerfile_inline ...
    extra: Mapping[str, Any] = field(default_factory=_empty)


class Condition(enum.StrEnum):
    STARTED = "service_started"
    HEALTHY = "service_healthy"
    COMPLETED_SUCCESSFULLY = "service_completed_successfully"


@dataclass(frozen=True, slots=True)
class Dependency:
    condition: str = Condition.STARTED.value
    required: bool = True
    restart: bool = False


@dataclass(frozen=True, slots=True)
class Healthcheck:
    test: tuple[str, ...] | None = None  # ("CMD", ...), ("CMD-SHELL", cmd) or ("NONE",)
    interval: int | None = None  # nanoseconds
    timeout: int | None = None
    start_period: int | None = None
    start_interval: int | None = None
    retries: int | None = None
    disable: bool = False


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    cpus: float | None = None
    memory: int | None = None  # bytes
    pids: int | None = None
    extra: Mapping[str, Any] = field(default_factory=_empty)  # devices, generic_resources


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    condition: str | None = None
    delay: int | None = None
    max_attempts: int | None = None
    window: int | None = None


@dataclass(frozen=True, slots=True)
class Deploy:
    replicas: int | None = None
    limits: ResourceSpec | None = None
    reservations: ResourceSpec | None = None
    restart_policy: RestartPolicy | None = None
    labels: Mapping[str, str] = field(default_factory=_empty)
    mode: str | None = None
    # placement, update_config, rollback_config, endpoint_mode
    extra: Mapping[str, Any] = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class ServiceNetwork:
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    extra: Mapping[str, Any] = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class Mount:
    """A `volumes:` entry: a named volume, a bind mount, a tmpfs ..."""

    type: str
    target: str
    source: str | None = None
    read_only: bool = False
    # bind/volume/tmpfs/image options, consistency
    extra: Mapping[str, Any] = field(default_factory=_empty)

    @property
    def is_bind(self) -> bool:
        return self.type == "bind"


@dataclass(frozen=True, slots=True)
class FileReference:
    """A service's `secrets:`/`configs:` entry in long form."""

    source: str
    target: str | None = None
    uid: str | None = None
    gid: str | None = None
    mode: int | None = None


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    image: str | None = None
    build: Build | None = None
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: Mapping[str, str | None] = field(default_factory=_empty)
    ports: tuple[Port, ...] = ()
    expose: tuple[str, ...] = ()
    depends_on: Mapping[str, Dependency] = field(default_factory=_empty)
    healthcheck: Healthcheck | None = None
    deploy: Deploy | None = None
    restart: str | None = None
    stop_grace_period: int | None = None
    networks: Mapping[str, ServiceNetwork | None] = field(default_factory=_empty)
    volumes: tuple[Mount, ...] = ()
    secrets: tuple[FileReference, ...] = ()
    configs: tuple[FileReference, ...] = ()
    labels: Mapping[str, str] = field(default_factory=_empty)
    domainname: str | None = None
    hostname: str | None = None
    user: str | None = None
    working_dir: str | None = None
    profiles: tuple[str, ...] = ()
    extensions: Mapping[str, Any] = field(default_factory=_empty)  # x-* keys
    # every other key of the specification, normalized
    extra: Mapping[str, Any] = field(default_factory=_empty)

    @property
    def ingress_ports(self) -> tuple[Port, ...]:
        """Public HTTP ports. UDP cannot be ingress: such a port is served as a host port."""
        return tuple(p for p in self.ports if p.is_ingress)

    @property
    def host_ports(self) -> tuple[Port, ...]:
        return tuple(p for p in self.ports if not p.is_ingress)

    @property
    def is_public(self) -> bool:
        return bool(self.ingress_ports)


@dataclass(frozen=True, slots=True)
class Resource:
    """A top-level network, volume, secret or config: its name on the engine and its settings."""

    name: str
    external: bool = False
    settings: Mapping[str, Any] = field(default_factory=_empty)  # everything else, normalized


@dataclass(frozen=True, slots=True)
class Project:
    name: str
    working_dir: str
    compose_files: tuple[str, ...]
    services: Mapping[str, Service]
    networks: Mapping[str, Resource] = field(default_factory=_empty)
    volumes: Mapping[str, Resource] = field(default_factory=_empty)
    secrets: Mapping[str, Resource] = field(default_factory=_empty)
    configs: Mapping[str, Resource] = field(default_factory=_empty)
    models: Mapping[str, Any] = field(default_factory=_empty)
    extensions: Mapping[str, Any] = field(default_factory=_empty)
    disabled_services: tuple[str, ...] = field(default=())  # excluded by profiles
