"""The Docker Swarm driver: the same `Driver`, its replicas run as services across a Swarm.

The server talks to a Swarm manager's engine. Builds, pushes, pulls and image questions go to
that engine, as with `DockerEngine` (built images reach the other nodes through the configured
registry, by digest). A project's network is an attachable overlay network; each replica is a
Swarm service of one task (`swarm_specs.service_spec`), whose id stands for the "container" the
control plane knows; its state comes from its tasks and their nodes (`swarm_specs.container_info`).
Events are the tasks' changes, followed by polling the manager (Engine 20.10 sends no task
events): a task that stops running is a `die`, one that runs is a `start`, and a replica whose
node goes down dies with the reason "node NAME is down". See docs/swarm.md.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import docker.errors
import requests.exceptions

from dockyard.runtime.docker_engine import (
    DockerEngine,
    _check_owner,
    _errors,
    _label_filter,
    _log_lines,
)
from dockyard.runtime.driver import (
    LABEL_ACCOUNT,
    LABEL_CONFIG_HASH,
    LABEL_MANAGED,
    LABEL_PROJECT,
    LABEL_SERVER,
    LABEL_SERVICE,
    ContainerInfo,
    ContainerSpec,
    EngineEvent,
    LogLine,
    StreamStop,
)
from dockyard.runtime.errors import EngineError, EngineUnavailable
from dockyard.runtime.swarm_specs import (
    LABEL_NODE_PIN,
    NodeView,
    SecretFile,
    container_info,
    current_task,
    node_of,
    place,
    placement_nodes,
    service_spec,
)

POLL_SECONDS = 0.5  # how often the task follower asks the manager (two light API calls)
VOLUME_RELEASE_SECONDS = 30.0  # how long a removed replica's container may hold its volume
LABEL_SECRET_OWNER = "dockyard.secret-of"  # a Swarm secret's replica (its service name)


class SwarmEngine(DockerEngine):
    """`DockerEngine` for images and builds, Swarm services for everything that runs."""

    default_update_parallelism = 1  # one replica at a time, as Swarm's own update_config

    def __init__(self, base_url: str | None = None) -> None:
        super().__init__(base_url)
        with _errors():
            info = self._api.info()
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            self.client.close()
            raise EngineUnavailable(
                "the Docker Engine is not a Swarm manager: the swarm driver deploys onto the "
                "Swarm that the server's engine manages",
                hint="run `docker swarm init` there (or scripts/cluster up N for a test "
                     "cluster), or start the server with --driver docker")
        self.node_id = str(swarm.get("NodeID") or "")  # the manager the server talks to
        self._nodes: dict[str, NodeView] = {}
        self._nodes_at = 0.0
        self._lock = threading.Lock()

    @property
    def _api(self) -> Any:
        """docker-py's low-level client (its Swarm calls are untyped)."""
        return self.client.api

    # -- nodes -------------------------------------------------------------------------------
    def nodes(self, fresh: bool = False) -> dict[str, NodeView]:
        """The Swarm's nodes by id (cached for a second: every `ps` asks)."""
        with self._lock:
            if fresh or time.monotonic() - self._nodes_at > 1.0:
                with _errors():
                    found = self._api.nodes()
                self._nodes = {str(n["ID"]): _node_view(n) for n in found}
                self._nodes_at = time.monotonic()
            return dict(self._nodes)

    def node_of(self, container_id: str) -> str:
        """The node a replica runs on (its hostname), "" when not placed."""
        return node_of(self._tasks(container_id), self.nodes())

    # -- networks and volumes ----------------------------------------------------------------
    def ensure_network(self, name: str, labels: Mapping[str, str], *,
                       internal: bool = False) -> None:
        with _errors():
            for network in self._api.networks(names=[name]):
                if network["Name"] == name:
                    _check_owner("network", name, network.get("Labels") or {}, labels)
                    return
            self._api.create_network(name, driver="overlay", attachable=True,
                                           labels=dict(labels), check_duplicate=True,
                                           internal=internal)

    def network_bridges(self, labels: Mapping[str, str]) -> dict[str, str]:
        """Overlay networks have no host bridge here: the overlay itself fences a project (a
        task on another project's network cannot reach it), so no egress rule applies."""
        return {}

    def ensure_volume(self, name: str, labels: Mapping[str, str]) -> None:
        """Swarm makes a named volume on the node where a task first mounts it (with the
        owner labels `service_spec` gives it), and the replica stays pinned to that node."""

    def remove_volume(self, name: str) -> None:
        """Remove it once no task container uses it: Swarm removes the containers of a
        removed service a moment later, on its own."""
        deadline = time.monotonic() + VOLUME_RELEASE_SECONDS
        while True:
            try:
                super().remove_volume(name)
                return
            except EngineError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def volumes(self, labels: Mapping[str, str]) -> list[str]:
        """Named volumes of the manager's engine: where every replica writing one is pinned
        (`_volume_pin`)."""
        return super().volumes(labels)

    # -- replicas ------------------------------------------------------------------------------
    def run(self, spec: ContainerSpec) -> str:
        secrets = [self._secret(spec.name, m.source or "", m.target, spec.labels)
                   for m in spec.mounts if m.type == "bind"]
        pin = self._volume_pin(spec) if any(m.type == "volume" and m.source and not m.read_only
                                            for m in spec.mounts) else None
        avoid: tuple[str, ...] = ()
        if spec.global_mode or spec.max_replicas_per_node or spec.spread:
            candidates = placement_nodes(self.nodes(fresh=True), spec.constraints)
            chosen, avoid = place(spec, candidates, *_tally(spec, self._placed(spec)))
            if spec.max_replicas_per_node and not spec.global_mode \
                    and {n.id for n in candidates} <= set(avoid):
                raise EngineError(
                    f"no node of the Swarm may run another replica of service "
                    f"{spec.labels.get(LABEL_SERVICE, spec.name)!r}: "
                    f"max_replicas_per_node {spec.max_replicas_per_node} on "
                    f"{len(candidates)} ready node(s) that match its placement",
                    hint="lower deploy.replicas, raise "
                         "deploy.placement.max_replicas_per_node, or add nodes")
            if spec.global_mode:
                if chosen is None:
                    raise EngineError(
                        f"no node of the Swarm is left for another replica of global service "
                        f"{spec.labels.get(LABEL_SERVICE, spec.name)!r} "
                        f"({len(candidates)} ready node(s) match its placement)",
                        hint="check `docker node ls` and the service's "
                             "deploy.placement.constraints")
                pin = chosen  # one per node, where its node's volume is too
        body = service_spec(spec, secrets=secrets, pin=pin, avoid=avoid)
        api = self._api
        with _errors():
            response = api._post_json(api._url("/services/create"), data=body)
            created = api._result(response, True)
        service_id = str(created["ID"])
        if (spec.max_replicas_per_node or spec.spread) and not spec.global_mode:
            node = self._wait_placed(service_id)  # the next replica counts it on its node
            if spec.max_replicas_per_node and node:
                self._fence_full_node(spec, service_id, node)
        return service_id

    def _fence_full_node(self, spec: ContainerSpec, service_id: str, node: str) -> None:
        """When `node` now holds max_replicas_per_node replicas of the version, the version's
        other replicas must not move there either (a replica Swarm moves after a node loss
        would otherwise join them). Only their placement constraints change: Swarm keeps a
        task running on a node that still matches them."""
        placed = self._placed(spec)
        taken, _ = _tally(spec, placed)
        if taken.get(node, 0) < (spec.max_replicas_per_node or 0):
            return
        fence = f"node.id!={node}"
        version = spec.labels.get(LABEL_CONFIG_HASH)
        for service, where in placed:
            labels = service["Spec"].get("Labels") or {}
            if service["ID"] == service_id or where == node \
                    or labels.get(LABEL_CONFIG_HASH) != version:
                continue
            placement = service["Spec"].setdefault("TaskTemplate", {}) \
                .setdefault("Placement", {})
            constraints = placement.setdefault("Constraints", [])
            if fence not in constraints:
                constraints.append(fence)
                self._update(service, service["Spec"])

    def global_replicas(self, constraints: Sequence[str]) -> int:
        """One replica per ready, active node its constraints allow (at least one: with no
        such node, `run` says so)."""
        return max(1, len(placement_nodes(self.nodes(fresh=True), constraints)))

    def _placed(self, spec: ContainerSpec) -> list[tuple[dict[str, Any], str]]:
        """Every replica (Swarm service) of the spec's Dockyard service, of any version, with
        the node it is pinned to or runs on ("" before it is placed)."""
        with _errors():
            services = self._api.services(filters={"label": _service_filter(spec)})
            tasks = self._api.tasks(filters={"label": _service_filter(spec)}) \
                if services else []
        placed = []
        for service in services:
            labels = (service.get("Spec") or {}).get("Labels") or {}
            task = current_task([t for t in tasks if t.get("ServiceID") == service["ID"]])
            placed.append((service, str(labels.get(LABEL_NODE_PIN)
                                        or (task or {}).get("NodeID") or "")))
        return placed

    def _wait_placed(self, service_id: str, timeout: float = 10.0) -> str:
        """The node Swarm placed the replica's task on ("" when not within `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = current_task(self._tasks(service_id))
            if task is not None and task.get("NodeID"):
                return str(task["NodeID"])
            time.sleep(0.1)
        return ""

    def _secret(self, owner: str, source: str, target: str,
                labels: Mapping[str, str]) -> SecretFile:
        """The server's secret file (on its tmpfs) as a Swarm secret: held encrypted in the
        managers' raft log, given to a task's node in memory and mounted on tmpfs."""
        path = Path(source)
        data = path.read_bytes()
        st = path.stat()
        digest = hashlib.sha256(owner.encode() + b"\0" + target.encode() + b"\0" + data)
        name = f"dy-{digest.hexdigest()[:40]}"
        with _errors():
            found = [s for s in self._api.secrets(filters={"name": name})
                     if (s.get("Spec") or {}).get("Name") == name]
            if found:
                secret_id = str(found[0]["ID"])
            else:
                keep = {k: v for k, v in labels.items() if k in (LABEL_MANAGED, LABEL_SERVER)}
                created = self._api.create_secret(
                    name, data, labels={**keep, LABEL_SECRET_OWNER: owner})
                secret_id = str(created["ID"])
        return SecretFile(secret_id=secret_id, secret_name=name, target=target,
                          mode=st.st_mode & 0o777, uid=str(st.st_uid), gid=str(st.st_gid))

    def _volume_pin(self, spec: ContainerSpec) -> str:
        """The node a replica writing named volumes runs on, for good: the one an earlier
        replica of the service was pinned to while that node is in the Swarm, else the
        manager the server talks to. There the server's own engine holds the volume: `down
        --volumes` removes it and `ps` sees it; a worker's volumes are out of its reach."""
        with _errors():
            found = self._api.services(filters={"label": _service_filter(spec)})
        nodes = self.nodes(fresh=True)
        for service in sorted(found, key=lambda s: str(s.get("CreatedAt") or ""), reverse=True):
            pin = str(((service.get("Spec") or {}).get("Labels") or {}).get(LABEL_NODE_PIN)
                      or "")
            if pin in nodes:
                return pin
        return self.node_id

    def _service(self, service_id: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self._api.inspect_service(service_id)
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            raise EngineError(f"the Docker Engine refused: {exc.explanation}") from None
        except requests.exceptions.RequestException as exc:
            raise EngineUnavailable(f"the Docker Engine stopped answering: {exc}",
                                    hint="is the Swarm manager's dockerd running?") from None
        return found

    def _tasks(self, service_id: str) -> list[dict[str, Any]]:
        with _errors():
            found: list[dict[str, Any]] = self._api.tasks(
                filters={"service": service_id})
        return [t for t in found if str(t.get("ServiceID") or "").startswith(service_id)]

    def containers(self, labels: Mapping[str, str], *, detail: bool = True,
                   fresh: bool = False) -> list[ContainerInfo]:
        return self._containers(labels, fresh_nodes=False)  # tasks are never kept

    def _containers(self, labels: Mapping[str, str], *,
                    fresh_nodes: bool) -> list[ContainerInfo]:
        with _errors():
            services = self._api.services(filters={"label": _label_filter(labels)})
            tasks = self._api.tasks(filters={"label": _label_filter(labels)}) \
                if services else []
        by_service: dict[str, list[dict[str, Any]]] = {}
        for task in tasks:
            by_service.setdefault(str(task.get("ServiceID")), []).append(task)
        # Read after the tasks: a node lost or drained is seen with the task change it made.
        nodes = self.nodes(fresh=fresh_nodes)
        infos = [container_info(s, by_service.get(str(s["ID"]), []), nodes) for s in services]
        return sorted(infos, key=lambda i: i.name)

    def inspect(self, container_id: str) -> ContainerInfo | None:
        service = self._service(container_id)
        if service is None:
            return None
        tasks = self._tasks(str(service["ID"]))
        return container_info(service, tasks, self.nodes())

    def stop(self, container_id: str, timeout: int | None = None) -> None:
        """Scale the replica to no task: Swarm stops it within its stop grace period."""
        service = self._service(container_id)
        if service is None:
            return
        spec = service["Spec"]
        spec["Mode"] = {"Replicated": {"Replicas": 0}}
        self._update(service, spec)
        deadline = time.monotonic() + (timeout if timeout is not None else 30) + 15
        while time.monotonic() < deadline:
            nodes = self.nodes()  # a task on a node that is down stops with it: not waited for
            running = [t for t in self._tasks(str(service["ID"]))
                       if (t.get("Status") or {}).get("State") in ("running", "starting")
                       and getattr(nodes.get(str(t.get("NodeID"))), "ready", True)]
            if not running:
                return
            time.sleep(0.3)

    def restart(self, container_id: str) -> None:
        """A new task in place of the old one (`docker service update --force`)."""
        service = self._service(container_id)
        if service is None:
            return
        spec = service["Spec"]
        template = spec.setdefault("TaskTemplate", {})
        template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
        if "Replicated" in (spec.get("Mode") or {}):
            spec["Mode"] = {"Replicated": {"Replicas": 1}}
        self._update(service, spec)

    def _update(self, service: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
        api = self._api
        version = int((service.get("Version") or {}).get("Index") or 0)
        with _errors():
            response = api._post_json(api._url("/services/{0}/update", str(service["ID"])),
                                      data=spec, params={"version": version})
            api._raise_for_status(response)

    def remove(self, container_id: str) -> None:
        service = self._service(container_id)
        if service is None:
            return
        name = str((service.get("Spec") or {}).get("Name") or "")
        with _errors():
            try:
                self._api.remove_service(str(service["ID"]))
            except docker.errors.NotFound:
                pass
        self._remove_secrets(name)

    def _remove_secrets(self, owner: str) -> None:
        """The replica's secrets, once its tasks are gone (a secret in use cannot go)."""
        with _errors():
            secrets = self._api.secrets(
                filters={"label": [f"{LABEL_SECRET_OWNER}={owner}"]})
        deadline = time.monotonic() + 20
        for secret in secrets:
            while True:
                try:
                    self._api.remove_secret(str(secret["ID"]))
                    break
                except docker.errors.NotFound:
                    break
                except docker.errors.APIError:
                    if time.monotonic() > deadline:
                        break  # still in use: the next `down` or prune takes it
                    time.sleep(0.5)

    def logs(self, container_id: str, *, tail: int | None = None,
             since: datetime | None = None, until: datetime | None = None,
             follow: bool = False, stop: StreamStop | None = None) -> Iterator[LogLine]:
        """The replica's output through the manager (`docker service logs`), from every task
        on every node; `until` is applied here, as the service log API has none."""
        kwargs: dict[str, Any] = {"stdout": True, "stderr": True, "timestamps": True,
                                  "follow": follow, "tail": "all" if tail is None else tail}
        if since is not None:
            kwargs["since"] = max(since.timestamp(), 1e-6)
        try:
            stream = self._api.service_logs(container_id, **kwargs)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            raise EngineError(f"the Docker Engine refused: {exc.explanation}") from None
        if stop is not None:
            close = getattr(stream, "close", None)
            if close is not None:
                stop.attach(close)
        for line in _log_lines(container_id, stream):
            if until is None or line.at is None or line.at <= until:
                yield line

    def events(self, labels: Mapping[str, str]) -> Iterator[EngineEvent]:
        """Task changes of the replicas carrying `labels`, as container events (blocks)."""
        seen: dict[str, tuple[str, str | None, bool]] = {}
        where: dict[str, tuple[str | None, tuple[tuple[int, int], ...]]] = {}
        first = True
        while True:
            current = {c.id: c for c in self._containers(labels, fresh_nodes=True)}
            for service_id, info in current.items():
                now = (info.status, info.health, info.stopping)
                before = seen.get(service_id)
                seen[service_id] = now
                reached = (info.ip_address, tuple(sorted(info.published.items())))
                moved = where.get(service_id) not in (None, reached)
                where[service_id] = reached
                if first:
                    continue
                actions = _actions(before, now) if before != now else []
                if moved and info.status == "running" and info.ip_address \
                        and "start" not in actions:
                    actions.append("start")  # reached elsewhere now: the ingress follows
                for action in actions:
                    yield EngineEvent(action=action, container_id=service_id,
                                      labels={**info.labels, "name": info.name},
                                      exit_code=info.exit_code if action == "die" else None,
                                      lost=info.lost if action == "die" else "")
            for gone in set(seen) - set(current):
                del seen[gone]
                where.pop(gone, None)
            first = False
            time.sleep(POLL_SECONDS)


def _service_filter(spec: ContainerSpec) -> list[str]:
    """The label filter for every replica of the spec's Dockyard service, any version."""
    return _label_filter({k: spec.labels[k] for k in (LABEL_SERVER, LABEL_ACCOUNT,
                                                       LABEL_PROJECT, LABEL_SERVICE)
                          if k in spec.labels})


def _tally(spec: ContainerSpec, placed: Sequence[tuple[Mapping[str, Any], str]]
           ) -> tuple[dict[str, int], set[str]]:
    """How many replicas of the spec's version (its configuration hash: a scale-out adds to
    them, a replacement starts a new version) each node holds, and the nodes holding a replica
    of another version."""
    taken: dict[str, int] = {}
    others: set[str] = set()
    version = spec.labels.get(LABEL_CONFIG_HASH)
    for service, node in placed:
        if not node:
            continue
        if ((service.get("Spec") or {}).get("Labels") or {}).get(LABEL_CONFIG_HASH) == version:
            taken[node] = taken.get(node, 0) + 1
        else:
            others.add(node)
    return taken, others


def _actions(before: tuple[str, str | None, bool] | None,
             now: tuple[str, str | None, bool]) -> list[str]:
    """The container events a change of a replica's (status, health, stopping) stands for: a
    task Swarm is shutting down (its node drained) is a `kill`, so the ingress takes it out of
    rotation before its container stops."""
    status, health, stopping = now
    was_status, was_health, was_stopping = before if before is not None else \
        ("created", None, False)
    actions: list[str] = []
    if stopping and not was_stopping and status == "running":
        actions.append("kill")
    if was_status == "running" and status != "running":
        actions.append("die")
    if status == "running" and was_status != "running":
        actions.append("start")
    if status == "running" and health != was_health and health in ("healthy", "unhealthy"):
        actions.append(f"health_status: {health}")
    return actions


def _node_view(node: Mapping[str, Any]) -> NodeView:
    status = node.get("Status") or {}
    description = node.get("Description") or {}
    address = str(status.get("Addr") or "")
    if address in ("", "0.0.0.0", "127.0.0.1"):
        manager = node.get("ManagerStatus") or {}
        address = str(manager.get("Addr") or address).rpartition(":")[0] or address
    spec = node.get("Spec") or {}
    platform = description.get("Platform") or {}
    return NodeView(id=str(node.get("ID") or ""),
                    hostname=str(description.get("Hostname") or ""),
                    address=address, ready=status.get("State") == "ready",
                    drained=spec.get("Availability") == "drain",
                    role=str(spec.get("Role") or "worker"),
                    labels={str(k): str(v) for k, v in (spec.get("Labels") or {}).items()},
                    engine_labels={str(k): str(v) for k, v in
                                   ((description.get("Engine") or {}).get("Labels")
                                    or {}).items()},
                    os=str(platform.get("OS") or "linux"),
                    arch=str(platform.get("Architecture") or ""))


def describe(driver: object) -> str:
    """`docker` or `swarm`: which driver a server runs (for its status and logs)."""
    return "swarm" if isinstance(driver, SwarmEngine) else "docker"

