"""The narrow interface between the control plane and a container engine.

See docs/architecture.md, Drivers.

The server plans and decides; a driver only carries out: networks, volumes, images, containers,
logs and engine events, described by plain values. The Docker Engine driver
(`docker_engine.DockerEngine`) is the first implementation and the only code importing `docker`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from dockyard.build.context import PackedContext

LABEL_MANAGED = "dockyard.managed"
LABEL_SERVER = "dockyard.server"  # which server (data directory) owns it: one engine, many
LABEL_ACCOUNT = "dockyard.account"
LABEL_PROJECT = "dockyard.project"
LABEL_SERVICE = "dockyard.service"
LABEL_DEPLOYMENT = "dockyard.deployment"
LABEL_CONFIG_HASH = "dockyard.config-hash"
LABEL_CONFIG_PARTS = "dockyard.config-parts"  # JSON: a short hash per part (`plan.config_parts`)
LABEL_REPLICA = "dockyard.replica"
LABEL_JOB = "dockyard.job"
LABEL_IMAGE = "dockyard.image"  # a build's `image:` name (playground: names are per account)

# The container events the server follows (its watcher and ingress): health checks alone make
# several exec events per container and second, which nobody here reads.
WATCHED_EVENTS = ("start", "die", "stop", "kill", "pause", "unpause", "health_status")

LOG_MAX_SIZE = 10 * 1024 * 1024  # bytes per container log file, unless the server says less
LOG_MAX_FILES = 3  # log files kept per container (the current one and the rotated ones)
LOG_DRIVERS = ("json-file", "local")  # drivers the engine can read back (`dockyard logs`)


@dataclass(frozen=True, slots=True)
class MountSpec:
    type: str  # "volume", "tmpfs", or "bind" (only the server's own files: secrets)
    target: str
    source: str | None = None
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class PublishedPort:
    target: int
    protocol: str
    published: str  # a port or a range
    host_ip: str | None = None


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """Everything needed to create one container, in engine-neutral terms."""

    name: str
    image: str
    labels: Mapping[str, str]
    environment: Mapping[str, str]
    network: str
    aliases: tuple[str, ...]
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    healthcheck: Mapping[str, object] | None = None  # the engine's shape (Test, Interval ...)
    restart: str = "no"  # no, always, unless-stopped, on-failure
    restart_max_attempts: int = 0
    stop_timeout: int | None = None  # seconds
    stop_signal: str | None = None
    nano_cpus: int | None = None
    memory: int | None = None
    memory_reservation: int | None = None
    cpu_shares: int | None = None
    pids_limit: int | None = None
    mounts: tuple[MountSpec, ...] = ()
    ports: tuple[PublishedPort, ...] = ()
    user: str | None = None
    working_dir: str | None = None
    hostname: str | None = None
    domainname: str | None = None
    init: bool | None = None
    read_only: bool = False
    tmpfs: Mapping[str, str] = field(default_factory=dict)
    extra_hosts: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    tty: bool = False
    stdin_open: bool = False
    # The container's log: a driver the engine can read back (`dockyard logs`), always rotated
    # so a chatty service cannot fill the server's disk (max_size bytes per file, max_files).
    log_driver: str = "json-file"
    log_max_size: int = LOG_MAX_SIZE
    log_max_files: int = LOG_MAX_FILES
    # Where a multi-node driver may place it (`runtime.swarm`; one engine ignores them):
    # Compose's deploy.placement constraints ("node.role==worker"), spread preferences (the
    # label after `spread=`) and max_replicas_per_node, and the ports the ingress proxy reaches.
    constraints: tuple[str, ...] = ()
    spread: tuple[str, ...] = ()
    max_replicas_per_node: int | None = None
    global_mode: bool = False  # `deploy.mode: global`: one replica per node it may run on
    ingress_ports: tuple[int, ...] = ()
    # Compose networks beyond `network` (the first), each with its aliases there
    # (`specs.service_networks`); a service joins only the networks it lists.
    networks: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Another container's namespaces (`specs.shared_namespaces`): `network_mode` "none" or
    # "service:<name>", `ipc_mode` "shareable" or "service:<name>"; the deployer turns a
    # service into "container:<id>" of its running container before `run`. With a network
    # mode, `network` and `aliases` are not used.
    network_mode: str | None = None
    ipc_mode: str | None = None


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """A container as the engine reports it."""

    id: str
    name: str
    labels: Mapping[str, str]
    status: str  # created, running, restarting, exited, dead, paused
    exit_code: int
    health: str | None  # None (no healthcheck), starting, healthy, unhealthy
    restart_count: int
    ip_address: str | None
    started_at: datetime | None
    host_ports: tuple[str, ...] = ()  # "0.0.0.0:9100->9100/tcp"
    health_output: str = ""  # what the last health check printed
    node: str = ""  # the node it runs on (a multi-node driver; "" on one engine)
    pinned_node: str = ""  # the node it must stay on (it writes a named volume there)
    lost: str = ""  # why the engine lost it, not the container itself ("node n2 is down")
    stopping: bool = False  # running, but the engine is stopping it (Swarm drains its node)
    # Where the ingress proxy reaches a port of it, by target port, when not at the target on
    # `ip_address`: a Swarm publishes ingress ports on the node at ports the engine picks.
    published: Mapping[int, int] = field(default_factory=dict)

    def reach(self, port: int) -> int:
        """The port the proxy connects to on `ip_address` for the container's `port`."""
        return self.published.get(port, port)

    @property
    def service(self) -> str:
        return self.labels.get(LABEL_SERVICE, "")

    @property
    def deployment(self) -> str:
        return self.labels.get(LABEL_DEPLOYMENT, "")

    @property
    def config_hash(self) -> str:
        return self.labels.get(LABEL_CONFIG_HASH, "")

    @property
    def is_job(self) -> bool:
        return self.labels.get(LABEL_JOB) == "true"


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """A local image as the engine lists it."""

    id: str  # sha256:<64 hex>
    tags: tuple[str, ...]  # repository:tag, as the engine reports them
    labels: Mapping[str, str]
    created: int  # seconds since the epoch


@dataclass(frozen=True, slots=True)
class ImageDetails:
    """One local image: its id, its tags and the registry digests it is known by."""

    id: str  # sha256:<64 hex>
    tags: tuple[str, ...]  # repository:tag
    digests: tuple[str, ...]  # repository@sha256:<64 hex>, one per registry it came from


PullMessage = Mapping[str, object]  # one progress message of a pull or push, as the engine says


@dataclass(frozen=True, slots=True)
class BuildFence:
    """Where one build's step containers run and what they may use (playground builds).

    `network` is the project's own network, fenced like its containers (`runtime.egress`);
    `memory` bounds each step container with no swap beyond it; `cpu_shares` is its CPU
    weight (the classic builder takes no CPU quota nor pids limit through docker-py);
    `timeout` is how long the whole build may take before it is stopped (None: no bound).
    """

    network: str | None = None
    memory: int | None = None  # bytes
    cpu_shares: int | None = None
    timeout: float | None = None  # seconds


@dataclass(frozen=True, slots=True)
class EngineEvent:
    """A container event the server follows after a deployment (die, start, health_status)."""

    action: str
    container_id: str
    labels: Mapping[str, str]
    exit_code: int | None = None
    lost: str = ""  # a die: the engine lost it, not a crash ("node n2 is down"), when it died


@dataclass(frozen=True, slots=True)
class LogLine:
    container: str
    text: str
    at: datetime | None


class StreamStop:
    """Ends a blocking engine stream from another thread.

    A reader blocked in the engine's socket cannot be interrupted by a flag: the driver attaches
    how to close its stream, and `stop()` closes it (at once, or as soon as it is attached), so a
    follower that went away frees its thread and its engine connection within moments.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closers: list[Callable[[], None]] = []
        self.stopped = threading.Event()

    def attach(self, close: Callable[[], None]) -> None:
        with self._lock:
            if not self.stopped.is_set():
                self._closers.append(close)
                return
        _quietly(close)

    def stop(self) -> None:
        with self._lock:
            self.stopped.set()
            closers, self._closers = self._closers, []
        for close in closers:
            _quietly(close)


def parse_engine_time(text: str | None) -> datetime | None:
    """The engine's RFC 3339 time (nanoseconds, `Z`) in UTC; None for its zero time."""
    if not text or text.startswith("0001-"):
        return None
    head, _, rest = text.partition(".")
    fraction = "".join(ch for ch in rest if ch.isdigit())[:6]
    try:
        parsed = datetime.fromisoformat(head.rstrip("Z"))
    except ValueError:
        return None
    micro = int(fraction.ljust(6, "0")) if fraction else 0
    return parsed.replace(microsecond=micro, tzinfo=UTC)


def _quietly(close: Callable[[], None]) -> None:
    try:
        close()
    except Exception:  # a stream already gone is stopped all the same
        pass


class Driver(Protocol):
    """What the control plane needs from an engine; nothing more."""

    # Replicas a changed service replaces at a time when its Compose file does not say
    # (`deploy.update_config.parallelism`); 0: all at once (`server.rollout`).
    default_update_parallelism: int

    def close(self) -> None: ...

    def global_replicas(self, constraints: Sequence[str]) -> int:
        """How many replicas a `deploy.mode: global` service runs: one per node it may be
        placed on (one engine: 1)."""
        ...

    def build(self, context: PackedContext, *, tag: str, dockerfile: str = "Dockerfile",
              build_args: Mapping[str, str] | None = None, target: str | None = None,
              labels: Mapping[str, str] | None = None,
              on_log: Callable[[str], None] | None = None,
              fence: BuildFence | None = None) -> str:
        """Build the image; a build past `fence.timeout` is stopped (its step container
        killed) and raises `BuildTimedOut`."""
        ...

    def image_id(self, reference: str) -> str | None: ...

    def tag_image(self, image_id: str, reference: str) -> None: ...

    def labelled_images(self, labels: Mapping[str, str]) -> list[ImageInfo]: ...

    def image_details(self, reference: str) -> ImageDetails | None:
        """The local image `reference` names (never pulls), or None."""
        ...

    def pull(self, reference: str, *, auth: Mapping[str, str] | None = None,
             on_progress: Callable[[PullMessage], None] | None = None,
             stop: StreamStop | None = None) -> str:
        """Pull `reference` with `auth` only (never the server's own credentials); return the
        image id. `stop` ends it from another thread. Raises `PullFailed`."""
        ...

    def registry_digest(self, reference: str, *, auth: Mapping[str, str] | None = None,
                        timeout: float = 30.0) -> str:
        """The manifest digest the registry gives for `reference` with `auth`: an access
        check that downloads nothing. Raises `PullFailed` with the registry's answer."""
        ...

    def push(self, reference: str, *, auth: Mapping[str, str] | None = None,
             on_progress: Callable[[PullMessage], None] | None = None,
             stop: StreamStop | None = None) -> str:
        """Push the local `reference` (REPOSITORY:TAG); return the manifest digest the
        registry stored. Raises `PushFailed`."""
        ...

    def ensure_network(self, name: str, labels: Mapping[str, str], *,
                       internal: bool = False) -> None:
        """Create the network (`internal`: with no route out of it) unless it exists and
        carries the owner labels of `labels` (else `EngineError`)."""
        ...

    def remove_network(self, name: str, owner: Mapping[str, str] | None = None) -> None: ...

    def labelled_networks(self, labels: Mapping[str, str]) -> list[str]:
        """The names of the networks carrying every one of `labels` (`down` removes them)."""
        ...

    def network_bridges(self, labels: Mapping[str, str]) -> dict[str, str]:
        """Each network carrying `labels`, by name: its host bridge (egress rules use it)."""
        ...

    def ensure_volume(self, name: str, labels: Mapping[str, str]) -> None: ...

    def remove_volume(self, name: str) -> None: ...

    def volumes(self, labels: Mapping[str, str]) -> list[str]: ...

    def run(self, spec: ContainerSpec) -> str: ...

    def containers(self, labels: Mapping[str, str], *, detail: bool = True,
                   fresh: bool = False) -> list[ContainerInfo]:
        """Containers carrying `labels`; `fresh`: as the engine says now, never a listing
        the driver kept (a plan that changes what runs decides from it)."""
        ...

    def inspect(self, container_id: str) -> ContainerInfo | None: ...

    def stop(self, container_id: str, timeout: int | None = None) -> None: ...

    def restart(self, container_id: str) -> None:
        """Stop the container (within its own stop timeout) and start it again: the same
        container, not a new one (`compose restart`)."""
        ...

    def remove(self, container_id: str) -> None: ...

    def logs(self, container_id: str, *, tail: int | None = None, since: datetime | None = None,
             until: datetime | None = None, follow: bool = False,
             stop: StreamStop | None = None) -> Iterator[LogLine]:
        """Lines with `at` in [since, until] (until inclusive); `tail` is applied by the engine
        BEFORE `until` (Docker 20.10), so a caller paging back by `until` leaves tail out."""
        ...

    def events(self, labels: Mapping[str, str]) -> Iterator[EngineEvent]: ...

    def check_login(self, server_address: str, username: str, password: str) -> None:
        """Check the credentials against the registry (the engine's `POST /auth`), keeping
        nothing: raises `RegistryLoginFailed` with the engine's reason when refused."""
        ...
