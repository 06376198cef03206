"""A fake engine driver and a fake ingress proxy for unit and in-process API tests.

Containers "run" as soon as they are created: a job exits with `job_exit_code`, a service
whose command mentions `crash` exits 1 and counts restarts, anything else runs and is healthy.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dockyard.build.context import PackedContext
from dockyard.ingress.routes import Route
from dockyard.runtime.driver import (
    LABEL_JOB,
    BuildFence,
    ContainerInfo,
    ContainerSpec,
    EngineEvent,
    ImageDetails,
    ImageInfo,
    LogLine,
    PullMessage,
    StreamStop,
)
from dockyard.runtime.errors import BuildFailed, PullFailed, RegistryLoginFailed


class FakeDriver:
    default_update_parallelism = 0  # as one Docker Engine: a replacement starts all at once

    def __init__(self) -> None:
        self.images: dict[str, str] = {"dockyard/busybox:1": "sha256:" + "b" * 64}
        self.networks: set[str] = set()
        self.network_labels: dict[str, dict[str, str]] = {}
        self.volume_set: dict[str, Mapping[str, str]] = {}
        self.items: dict[str, ContainerInfo] = {}
        self.specs: dict[str, ContainerSpec] = {}
        self.builds: list[str] = []
        self.restarts: list[str] = []  # container ids restarted in place, in order
        self.build_gate: threading.Event | None = None  # set by a test to hold builds
        self.fail_builds: set[str] = set()  # tags whose build fails
        self.fences: dict[str, BuildFence | None] = {}  # tag -> how its build was fenced
        self.building: list[str] = []  # tags being built now
        self.job_exit_code = 0
        self.lock = threading.Lock()
        self.counter = 0
        self.nodes = 1  # the nodes a global service runs on (a multi-node driver: several)
        self.addresses = False  # give containers addresses (as the ingress needs)
        self.image_labels: dict[str, dict[str, str]] = {}  # image id -> its build's labels
        self.image_lookups: list[str] = []  # every reference image_id()/_details() was asked
        self.printed = 0  # lines each container prints after its greeting
        self.log_epoch = datetime.now(UTC)  # when they print them (a microsecond apart)
        self.following = 0  # follow streams of logs() open now
        self.log_requests: list[tuple[str, int | None]] = []  # (container, tail) per call
        # Registries check_login accepts: server address -> (username, password).
        self.registry_users: dict[str, tuple[str, str]] = {}
        self.login_checks: list[tuple[str, str]] = []  # (server address, username) per call
        # A fake registry: "repo:tag" as the engine is given it -> image id it serves.
        self.remote: dict[str, str] = {}
        self.private: dict[str, tuple[str, str]] = {}  # registry host -> (username, password)
        self.down: set[str] = set()  # registry hosts that do not answer
        self.pulls: list[tuple[str, str | None]] = []  # (reference, username) per pull
        self.checks: list[tuple[str, str | None]] = []  # registry_digest calls
        self.pushes: list[str] = []

    def close(self) -> None:
        pass

    def build(self, context: PackedContext, *, tag: str, dockerfile: str = "Dockerfile",
              build_args: Mapping[str, str] | None = None, target: str | None = None,
              labels: Mapping[str, str] | None = None,
              on_log: Callable[[str], None] | None = None,
              fence: BuildFence | None = None) -> str:
        with self.lock:
            self.fences[tag] = fence
            self.building.append(tag)
        try:
            return self._build(context, tag, build_args, labels, on_log)
        finally:
            with self.lock:
                self.building.remove(tag)

    def _build(self, context: PackedContext, tag: str, build_args: Mapping[str, str] | None,
               labels: Mapping[str, str] | None, on_log: Callable[[str], None] | None) -> str:
        if self.build_gate is not None:
            self.build_gate.wait(10)
        if on_log:
            on_log("Step 1/1 : FROM dockyard/busybox:1")
        if any(prefix in tag for prefix in self.fail_builds):
            raise BuildFailed(f"the build of {tag} failed", "Step 1/1 : RUN false",
                              ["Step 1/1 : RUN false", "boom"])
        image_id = "sha256:" + hashlib.sha256(
            (context.digest + str(sorted((build_args or {}).items()))).encode()).hexdigest()
        self.images[tag] = image_id
        self.image_labels[image_id] = dict(labels or {})
        self.builds.append(tag)
        return image_id

    def image_id(self, reference: str) -> str | None:
        self.image_lookups.append(reference)
        found = self.images.get(reference)
        if found is None and reference.startswith("sha256:") and len(reference) == 71:
            return reference if reference in self.images.values() else None  # a full id
        return found

    def labelled_images(self, labels: Mapping[str, str]) -> list[ImageInfo]:
        ids = [i for i, lab in self.image_labels.items()
               if all(lab.get(k) == v for k, v in labels.items())]
        return [ImageInfo(id=i, tags=tuple(r for r, v in self.images.items() if v == i),
                          labels=self.image_labels[i], created=n)
                for n, i in enumerate(ids)]

    def tag_image(self, image_id: str, reference: str) -> None:
        self.images[reference] = image_id

    def ensure_network(self, name: str, labels: Mapping[str, str], *,
                       internal: bool = False) -> None:
        self.networks.add(name)
        self.network_labels[name] = {**labels, **({"internal": "true"} if internal else {})}

    def labelled_networks(self, labels: Mapping[str, str]) -> list[str]:
        return sorted(n for n in self.networks
                      if all(self.network_labels.get(n, {}).get(k) == v
                             for k, v in labels.items()))

    def remove_network(self, name: str, owner: Mapping[str, str] | None = None) -> None:
        self.networks.discard(name)

    def network_bridges(self, labels: Mapping[str, str]) -> dict[str, str]:
        return {name: f"br-{hashlib.sha256(name.encode()).hexdigest()[:12]}"
                for name in sorted(self.networks)}

    def ensure_volume(self, name: str, labels: Mapping[str, str]) -> None:
        self.volume_set.setdefault(name, dict(labels))

    def remove_volume(self, name: str) -> None:
        self.volume_set.pop(name, None)

    def volumes(self, labels: Mapping[str, str]) -> list[str]:
        return sorted(n for n, lab in self.volume_set.items()
                      if all(lab.get(k) == v for k, v in labels.items()))

    def run(self, spec: ContainerSpec) -> str:
        with self.lock:
            self.counter += 1
            cid = f"c{self.counter:063d}"
        job = spec.labels.get(LABEL_JOB) == "true"
        crash = any("crash" in part for part in (spec.command or ()))
        status = "exited" if job or crash else "running"
        code = self.job_exit_code if job else (1 if crash else 0)
        self.items[cid] = ContainerInfo(
            id=cid, name=spec.name, labels=dict(spec.labels), status=status, exit_code=code,
            health="healthy" if spec.healthcheck and not job else None,
            restart_count=1 if crash else 0,
            ip_address=f"10.9.0.{self.counter}" if self.addresses else None,
            started_at=datetime.now(UTC))
        self.specs[cid] = spec
        return cid

    def global_replicas(self, constraints: Sequence[str]) -> int:
        return self.nodes

    def containers(self, labels: Mapping[str, str], *, detail: bool = True,
                   fresh: bool = False) -> list[ContainerInfo]:
        return sorted((i for i in list(self.items.values())
                       if all(i.labels.get(k) == v for k, v in labels.items())),
                      key=lambda i: i.name)

    def inspect(self, container_id: str) -> ContainerInfo | None:
        return self.items.get(container_id)

    def stop(self, container_id: str, timeout: int | None = None) -> None:
        if container_id in self.items:
            self.items[container_id] = replace(self.items[container_id], status="exited")

    def restart(self, container_id: str) -> None:
        if container_id in self.items:
            self.restarts.append(container_id)
            self.items[container_id] = replace(self.items[container_id], status="running",
                                               started_at=datetime.now(UTC))

    def remove(self, container_id: str) -> None:
        self.items.pop(container_id, None)
        self.specs.pop(container_id, None)

    def logs(self, container_id: str, *, tail: int | None = None,
             since: datetime | None = None, until: datetime | None = None,
             follow: bool = False, stop: StreamStop | None = None) -> Iterator[LogLine]:
        """`hello from <name>`, then `printed` numbered lines from `log_epoch` on; `tail` is
        applied before `since`/`until`, as Docker 20.10 does. A follow then waits for `stop`
        (at most 60 s) and counts itself in `following` meanwhile."""
        info = self.items.get(container_id)
        if info is None:
            return
        epoch = self.log_epoch
        lines = [LogLine(container_id, f"hello from {info.name}", epoch - timedelta(hours=1))]
        lines += [LogLine(container_id, f"{info.name} line {i}", epoch + timedelta(
            microseconds=i)) for i in range(self.printed)]
        if tail is not None:
            lines = lines[-tail:] if tail else []
        self.log_requests.append((container_id, tail))
        for line in lines:
            if line.at and ((since and line.at < since) or (until and line.at > until)):
                continue
            yield line
        if follow and stop is not None:
            with self.lock:
                self.following += 1
            try:
                stop.stopped.wait(60)
            finally:
                with self.lock:
                    self.following -= 1

    def events(self, labels: Mapping[str, str]) -> Iterator[EngineEvent]:
        return iter(())

    def image_details(self, reference: str) -> ImageDetails | None:
        self.image_lookups.append(reference)
        image_id = self.images.get(reference) or (
            reference if reference in self.images.values() else None)
        if image_id is None:
            return None
        names = [r for r, v in self.images.items() if v == image_id]
        return ImageDetails(image_id, tuple(r for r in names if "@" not in r),
                            tuple(r for r in names if "@" in r))

    def _served(self, reference: str, auth: Mapping[str, str] | None) -> tuple[str, str]:
        """(repository@digest, image id) the fake registry serves for `reference`."""
        host = reference.split("/")[0] if "/" in reference and (
            "." in reference.split("/")[0] or ":" in reference.split("/")[0]) else "docker.io"
        if host in self.down:
            raise PullFailed("down", f'Get "https://{host}/v2/": dial tcp: connect: '
                             "connection refused")
        wanted = self.private.get(host)
        if wanted is not None and (auth is None or (auth.get("username"),
                                                    auth.get("password")) != wanted):
            raise PullFailed("unauthorized", "unauthorized: authentication required")
        repository = reference.split("@")[0].rsplit(":", 1)[0] if "@" not in reference \
            else reference.split("@")[0]
        for name, image_id in self.remote.items():
            digest = "sha256:" + hashlib.sha256(image_id.encode()).hexdigest()
            if name == reference or f"{name.rsplit(':', 1)[0]}@{digest}" == reference:
                return f"{repository}@{digest}", image_id
        raise PullFailed("unknown", f"manifest for {reference} not found: manifest unknown: "
                         "manifest unknown")

    def registry_digest(self, reference: str, *, auth: Mapping[str, str] | None = None,
                        timeout: float = 30.0) -> str:
        self.checks.append((reference, (auth or {}).get("username")))
        return self._served(reference, auth)[0].split("@")[1]

    def pull(self, reference: str, *, auth: Mapping[str, str] | None = None,
             on_progress: Callable[[PullMessage], None] | None = None,
             stop: StreamStop | None = None) -> str:
        self.pulls.append((reference, (auth or {}).get("username")))
        pinned, image_id = self._served(reference, auth)
        if on_progress is not None:
            on_progress({"status": "Downloading", "id": "l1",
                         "progressDetail": {"current": 1 << 20, "total": 2 << 20}})
            on_progress({"status": "Pull complete", "id": "l1"})
        self.images[reference] = image_id
        self.images[pinned] = image_id
        return image_id

    def push(self, reference: str, *, auth: Mapping[str, str] | None = None,
             on_progress: Callable[[PullMessage], None] | None = None,
             stop: StreamStop | None = None) -> str:
        image_id = self.images[reference]
        self.pushes.append(reference)
        self.remote[reference] = image_id
        digest = "sha256:" + hashlib.sha256(image_id.encode()).hexdigest()
        self.images[f"{reference.rsplit(':', 1)[0]}@{digest}"] = image_id
        return digest

    def check_login(self, server_address: str, username: str, password: str) -> None:
        """Accepts exactly `registry_users[server_address]`; a server not in it is down."""
        self.login_checks.append((server_address, username))
        if server_address not in self.registry_users:
            raise RegistryLoginFailed(f'Get "https://{server_address}/v2/": dial tcp: lookup '
                                      f"{server_address}: no such host", denied=False)
        if self.registry_users[server_address] != (username, password):
            raise RegistryLoginFailed(f"login attempt to https://{server_address}/v2/ failed "
                                      "with status: 401 Unauthorized", denied=True)


class FakeProxy:
    """A proxy that records every table it is given; every replica is up at once."""

    def __init__(self) -> None:
        self.tables: list[dict[str, Route]] = []
        self.certificates: list[list[Path]] = []
        self.started = False
        self.sessions_left = 0  # in-flight requests a drain waits for

    def start(self, routes: Mapping[str, Route], certificates: Sequence[Path] = (),
              https_only: frozenset[str] = frozenset()) -> None:
        self.started = True
        self.apply(routes, certificates, https_only)

    def apply(self, routes: Mapping[str, Route], certificates: Sequence[Path] = (),
              https_only: frozenset[str] = frozenset()) -> None:
        self.tables.append(dict(routes))
        self.certificates.append(list(certificates))

    def stop(self) -> None:
        self.started = False

    def ensure_running(self) -> bool:
        return False

    def in_rotation(self, route_key: str, endpoints: Iterable[str]) -> bool:
        return True

    def sessions(self, route_key: str, endpoints: Iterable[str]) -> int:
        if self.sessions_left:
            self.sessions_left -= 1
            return 1
        return 0

    @property
    def table(self) -> dict[str, Route]:
        return self.tables[-1] if self.tables else {}

