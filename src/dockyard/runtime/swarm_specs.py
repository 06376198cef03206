"""A container spec as a Docker Swarm service, and a service's tasks as a container (pure).

Why one Swarm service per Dockyard replica: the server keeps deciding what a deployment does
(its plan, start-first health-gated replacement, drain-then-stop through the ingress proxy,
rollback), exactly as on one engine, while Swarm does what one engine cannot: place each
replica on a node, restart it there, and reschedule it on another node when its node is lost.
See docs/swarm.md.

The mapping:
- the replica's own name, labels, image (pinned by digest when a registry gave one), command,
  environment, healthcheck, stop grace period and signal, user, working dir, init, read-only,
  capabilities dropped, extra hosts, tmpfs and log options go into the task's container spec;
- resources: CPU and memory limits, pids limit, memory reservation (a CPU reservation stays a
  weight on one engine: Swarm reserves CPUs, so it becomes `NanoCPUs` reserved);
- restart: a long-running replica restarts on any exit (`unless-stopped`, `always`) or on
  failure with its attempts; a job (`restart: "no"`) is one task that is never restarted (a
  `replicated-job` would fit, but Engine 20.10 leaves a finished job's container on its node
  after the service is removed, so `down` could not leave every node clean);
- placement: the Compose constraints, spread preferences and max_replicas_per_node, and the
  node a named volume lives on (`pin`): a service writing it never moves away from its data;
- networking: the project's overlay network with the replica's aliases, endpoint mode `dnsrr`
  (no virtual IP: names resolve to the tasks themselves, which needs no IPVS and works the
  same where IPVS exists), ingress ports published in host mode on the node's address at the
  same port, where the ingress proxy reaches them, and host ports in host mode;
- secret files (the server's tmpfs files, `server.secret_files`) become Swarm secrets mounted
  at the same target, so no value is written to a node's disk (`SecretFile` here).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dockyard.runtime.driver import ContainerInfo, ContainerSpec, parse_engine_time

NANO = 1_000_000_000
LABEL_NODE_PIN = "dockyard.node-pin"  # the node id a service writing a named volume stays on
_RUNNING_STATES = ("running",)
_STARTING_STATES = ("starting",)
_WAITING_STATES = ("new", "allocated", "pending", "assigned", "accepted", "preparing", "ready")
REJECTIONS_TO_FAIL = 3  # Swarm rejected the replica this often (no image, port taken): failed


@dataclass(frozen=True, slots=True)
class SecretFile:
    """One secret file a replica mounts, as a Swarm secret already created."""

    secret_id: str
    secret_name: str
    target: str
    mode: int = 0o400
    uid: str = "0"
    gid: str = "0"


@dataclass(frozen=True, slots=True)
class NodeView:
    """What a task's state needs from its node."""

    id: str
    hostname: str
    address: str
    ready: bool
    drained: bool = False  # availability `drain`: Swarm moves its tasks elsewhere
    role: str = "worker"
    labels: Mapping[str, str] = field(default_factory=dict)  # node.labels.*
    engine_labels: Mapping[str, str] = field(default_factory=dict)  # engine.labels.*
    os: str = "linux"
    arch: str = ""

    def matches(self, constraints: Sequence[str]) -> bool:
        """Whether Swarm may place a task with these placement constraints here: `node.id`,
        `node.hostname`, `node.role`, `node.platform.os|arch`, `node.labels.K` and
        `engine.labels.K` with `==` or `!=` (as Swarm: a missing label is not equal; values
        compare case-insensitively)."""
        for constraint in constraints:
            op = "==" if "==" in constraint else "!=" if "!=" in constraint else ""
            if not op:
                continue  # not a constraint Swarm knows: Swarm itself refuses it
            key, value = (part.strip() for part in constraint.split(op, 1))
            actual = self.attribute(key)
            equal = actual is not None and actual.lower() == value.lower()
            if equal != (op == "=="):
                return False
        return True

    def attribute(self, key: str) -> str | None:
        """A placement key's value here (`node.labels.zone`), None when the node has none."""
        fixed = {"node.id": self.id, "node.hostname": self.hostname, "node.role": self.role,
                 "node.platform.os": self.os, "node.platform.arch": self.arch}
        if key in fixed:
            return fixed[key]
        for prefix, labels in (("node.labels.", self.labels),
                               ("engine.labels.", self.engine_labels)):
            if key.startswith(prefix):
                return labels.get(key.removeprefix(prefix))
        return None


def placement_nodes(nodes: Mapping[str, NodeView], constraints: Sequence[str]) -> list[NodeView]:
    """The nodes a replica may be placed on now (ready, not drained, matching), by name."""
    return sorted((n for n in nodes.values() if n.ready and not n.drained
                   and n.matches(constraints)), key=lambda n: n.hostname)


def place(spec: ContainerSpec, candidates: Sequence[NodeView], taken: Mapping[str, int],
          others: Collection[str] = ()) -> tuple[str | None, tuple[str, ...]]:
    """Where Dockyard places a replica itself, where Swarm's own scheduler cannot (each
    Dockyard replica is one Swarm service): (the node id it is pinned to, the node ids it
    must avoid). `taken` counts the replicas of the same service and version per node id;
    `others` are the nodes holding a replica of another version of it.

    A global replica is pinned to the first candidate node holding none of this version yet,
    one holding no other version first (a stop-first replacement just freed it: its ports are
    free there); Swarm never moves a global task either. With max_replicas_per_node, the nodes
    holding that many are avoided; with a spread preference (`spread=node.labels.zone`), the
    nodes of every value but those holding the fewest replicas (Swarm spreads the tasks of one
    Swarm service only: each Dockyard replica is one). Both are decided when the replica is
    created; a replica Swarm moves after a node loss may break them until the next deployment."""
    if spec.global_mode:
        free = [n.id for n in candidates if not taken.get(n.id)]
        empty = [node for node in free if node not in others]
        best = empty or free
        return (best[0] if best else None), ()
    avoid: set[str] = set()
    most = spec.max_replicas_per_node
    if most:
        avoid |= {node for node, count in taken.items() if count >= most}
    if spec.spread:  # the first preference: its values with the fewest replicas get the next
        groups: dict[str, int] = {}
        for node in candidates:
            value = node.attribute(spec.spread[0]) or ""
            groups[value] = groups.get(value, 0) + taken.get(node.id, 0)
        fewest = min(groups.values(), default=0)
        avoid |= {n.id for n in candidates
                  if groups[n.attribute(spec.spread[0]) or ""] > fewest}
    return None, tuple(sorted(avoid))


def service_spec(spec: ContainerSpec, *, secrets: Sequence[SecretFile] = (),
                 pin: str | None = None, avoid: Sequence[str] = ()) -> dict[str, Any]:
    """The engine's ServiceSpec (API 1.41) for one replica."""
    container: dict[str, Any] = {
        "Image": spec.image, "Labels": dict(spec.labels),
        "Env": [f"{k}={v}" for k, v in spec.environment.items()],
        "TTY": spec.tty, "OpenStdin": spec.stdin_open, "ReadOnly": spec.read_only,
    }
    if spec.entrypoint is not None:
        container["Command"] = list(spec.entrypoint)
    if spec.command is not None:
        container["Args"] = list(spec.command)
    for key, value in (("User", spec.user), ("Dir", spec.working_dir),
                       ("Hostname", spec.hostname), ("StopSignal", spec.stop_signal),
                       ("Init", spec.init)):
        if value is not None:
            container[key] = value
    if spec.healthcheck:
        container["Healthcheck"] = dict(spec.healthcheck)
    if spec.stop_timeout is not None:
        container["StopGracePeriod"] = spec.stop_timeout * NANO
    if spec.cap_drop:
        container["CapabilityDrop"] = list(spec.cap_drop)
    if spec.cap_add:
        container["CapabilityAdd"] = list(spec.cap_add)
    if spec.extra_hosts:
        container["Hosts"] = [_host_entry(h) for h in spec.extra_hosts]
    mounts: list[dict[str, Any]] = []
    for mount in spec.mounts:
        if mount.type == "volume":
            mounts.append({"Type": "volume", "Source": mount.source, "Target": mount.target,
                           "ReadOnly": mount.read_only,
                           "VolumeOptions": {"Labels": _owner_labels(spec.labels)}})
        elif mount.type == "tmpfs":
            mounts.append({"Type": "tmpfs", "Target": mount.target})
    for target, options in spec.tmpfs.items():
        mounts.append({"Type": "tmpfs", "Target": target,
                       "TmpfsOptions": _tmpfs_options(options)})
    if mounts:
        container["Mounts"] = mounts
    if secrets:
        container["Secrets"] = [{"SecretID": s.secret_id, "SecretName": s.secret_name,
                                 "File": {"Name": s.target, "UID": s.uid, "GID": s.gid,
                                          "Mode": s.mode}} for s in secrets]
    limits: dict[str, int] = {}
    if spec.nano_cpus:
        limits["NanoCPUs"] = spec.nano_cpus
    if spec.memory:
        limits["MemoryBytes"] = spec.memory
    if spec.pids_limit:
        limits["Pids"] = spec.pids_limit
    reservations: dict[str, int] = {}
    if spec.memory_reservation:
        reservations["MemoryBytes"] = spec.memory_reservation
    if spec.cpu_shares:
        reservations["NanoCPUs"] = spec.cpu_shares * NANO // 1024
    constraints = list(spec.constraints)
    if pin is not None:
        constraints.append(f"node.id=={pin}")
    constraints += [f"node.id!={node}" for node in avoid]
    placement: dict[str, Any] = {}
    if constraints:
        placement["Constraints"] = constraints
    if spec.spread:
        placement["Preferences"] = [{"Spread": {"SpreadDescriptor": s}} for s in spec.spread]
    if spec.max_replicas_per_node:
        placement["MaxReplicas"] = spec.max_replicas_per_node
    task: dict[str, Any] = {
        "ContainerSpec": container,
        "Resources": {"Limits": limits, "Reservations": reservations},
        "RestartPolicy": _restart_policy(spec),
        "Placement": placement,
        "Networks": [{"Target": spec.network, "Aliases": list(spec.aliases)},
                     *({"Target": n, "Aliases": list(a)} for n, a in spec.networks)],
        "LogDriver": {"Name": spec.log_driver,
                      "Options": {"max-size": str(spec.log_max_size),
                                  "max-file": str(spec.log_max_files)}},
    }
    # Ingress ports: in host mode on the node, at a port the engine picks (the proxy is told
    # which: `container_info`), so any number of replicas of any project share a node.
    ports: list[dict[str, Any]] = [{"Protocol": "tcp", "TargetPort": port, "PublishMode": "host"}
                                   for port in spec.ingress_ports]
    ports += [{"Protocol": p.protocol, "TargetPort": p.target,
               "PublishedPort": int(p.published.partition("-")[0]), "PublishMode": "host"}
              for p in spec.ports if p.published.partition("-")[0].isdigit()]
    labels = dict(spec.labels)
    if pin is not None:
        labels[LABEL_NODE_PIN] = pin
    return {
        "Name": spec.name, "Labels": labels, "TaskTemplate": task,
        "Mode": {"Replicated": {"Replicas": 1}},
        "EndpointSpec": {"Mode": "dnsrr", "Ports": ports},
    }


def _restart_policy(spec: ContainerSpec) -> dict[str, Any]:
    if spec.restart == "no":
        return {"Condition": "none"}
    if spec.restart == "on-failure":
        policy: dict[str, Any] = {"Condition": "on-failure", "Delay": NANO}
        if spec.restart_max_attempts:
            policy["MaxAttempts"] = spec.restart_max_attempts
        return policy
    return {"Condition": "any", "Delay": NANO}


def _host_entry(entry: str) -> str:
    """Compose's `host:ip` (or `host=ip`) as Swarm's `ip host`."""
    host, sep, address = entry.partition("=") if "=" in entry else entry.partition(":")
    return f"{address} {host}" if sep else entry


def _tmpfs_options(options: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for option in (o.strip() for o in options.split(",") if o.strip()):
        key, _, value = option.partition("=")
        if key == "size" and value.isdigit():
            out["SizeBytes"] = int(value)
        elif key == "mode":
            try:
                out["Mode"] = int(value, 8)
            except ValueError:
                continue
    return out


def _owner_labels(labels: Mapping[str, str]) -> dict[str, str]:
    keep = ("dockyard.managed", "dockyard.server", "dockyard.account", "dockyard.project")
    return {k: v for k, v in labels.items() if k in keep}


def current_task(tasks: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The task that stands for the replica now: the newest one Swarm wants running (or, for a
    finished job, the newest of all)."""
    ordered = sorted(tasks, key=_created, reverse=True)
    wanted = [t for t in ordered if t.get("DesiredState") in ("running", "ready", "complete")]
    found = wanted or ordered
    return found[0] if found else None


def container_info(service: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]],
                   nodes: Mapping[str, NodeView]) -> ContainerInfo:
    """One replica (a Swarm service) as the container the control plane expects.

    A task running is `running` (healthy when the replica has a health check: Swarm holds a
    task in `starting` until its check passes); one waiting to be placed or started is
    `created`; one that failed, was rejected or whose node is down is `exited`, with the task's
    error (or "node n2 is down", also its `lost`) as its health output; a finished job is
    `exited` with its code. A long-running replica that is not running is `restarting`: Swarm
    brings it back (restart policy, rescheduling). `restart_count` is how many of its tasks
    ran a container that ended by itself before this one (failed, exited); a task Swarm
    rejected (no image on that node, its host port taken there) never ran and is no restart:
    the replica waits to be placed again, saying why, and fails after REJECTIONS_TO_FAIL.
    """
    spec = service.get("Spec") or {}
    labels = dict(spec.get("Labels") or {})
    has_check = bool(((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {})
                     .get("Healthcheck"))
    # Swarm brings a long-running replica back by itself (restart policy, rescheduling).
    template = spec.get("TaskTemplate") or {}
    restarts = int(((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas") or 0) > 0 \
        and (template.get("RestartPolicy") or {}).get("Condition") != "none"
    task = current_task(tasks)
    status: Mapping[str, Any] = (task or {}).get("Status") or {}
    state = str(status.get("State") or "new")
    node = nodes.get(str((task or {}).get("NodeID") or ""))
    exit_code = int((status.get("ContainerStatus") or {}).get("ExitCode") or 0)
    reason = str(status.get("Err") or "")
    earlier = sorted((t for t in tasks if t is not task),
                     key=_created, reverse=True)
    # Restarts are earlier tasks whose container ran and ended by itself; a task Swarm
    # rejected (no image on that node, its host port taken there) never ran, and one Swarm
    # replaced while it still ran (its node lost or drained) did not end by itself.
    ended = [t for i, t in enumerate(earlier) if _ran(t)
             and not _replaced_while_running(t, earlier[i - 1] if i else task)]
    rejected = [t for t in earlier if _state(t) == "rejected"]
    if state == "rejected":
        rejected.insert(0, task or {})
    failed = len(ended)
    lost = _lost_node(tasks, nodes)
    health: str | None = None
    if node is not None and not node.ready and state in _RUNNING_STATES + _STARTING_STATES:
        engine_state = "restarting" if restarts else "exited"
        lost = lost or node
    elif state in _RUNNING_STATES + _STARTING_STATES:
        engine_state = "running"
        if has_check:
            health = "healthy" if state in _RUNNING_STATES else "starting"
        if ended:  # what the last restart was about
            exit_code = _exit_code(ended[0])
            reason = str((ended[0].get("Status") or {}).get("Err") or "")
    elif len(rejected) >= REJECTIONS_TO_FAIL and state in _WAITING_STATES + ("rejected",):
        engine_state, exit_code = "exited", 1
        reason = (f"Swarm could not start it ({len(rejected)} tries): "
                  f"{_rejection(rejected[0], nodes)}")
    elif state in _WAITING_STATES or state == "rejected":
        # A replica that ran before and waits for a new task is being brought back (restart
        # policy, a lost or drained node): restarting, not a replica never started.
        placed = [t for t in earlier if _state(t) != "rejected"]
        engine_state = "restarting" if restarts and (placed or lost) else "created"
        if rejected:
            reason = f"{_rejection(rejected[0], nodes)}; Swarm places it again"
        elif ended:
            exit_code = _exit_code(ended[0])
            reason = str((ended[0].get("Status") or {}).get("Err") or "")
    elif state == "complete":
        engine_state = "restarting" if restarts else "exited"
    else:
        engine_state = "restarting" if restarts else "exited"
        exit_code = exit_code or 1
        reason = reason or f"task {state}"
    if lost is not None and engine_state != "running":
        reason = f"node {lost.hostname} is down"
        health = "unhealthy" if has_check else None
    elif engine_state != "running" and earlier and _drained_from(earlier[0], nodes):
        lost = nodes[str(earlier[0].get("NodeID"))]
        reason = f"node {lost.hostname} is drained"
    pinned = nodes.get(labels.get(LABEL_NODE_PIN, ""))
    published = {int(p.get("TargetPort") or 0): int(p.get("PublishedPort") or 0)
                 for p in (status.get("PortStatus") or {}).get("Ports") or ()
                 if p.get("PublishedPort")} if engine_state == "running" else {}
    address = None
    if node is not None and task is not None:
        ports = (spec.get("EndpointSpec") or {}).get("Ports") or ()
        picked = {int(p.get("TargetPort") or 0) for p in ports if not p.get("PublishedPort")}
        if not ports:
            address = _overlay_address(task)
        elif picked <= set(published):  # else the engine has not said yet where they are
            address = node.address
    return ContainerInfo(
        id=str(service.get("ID") or ""), name=str(spec.get("Name") or ""), labels=labels,
        status=engine_state, exit_code=exit_code, health=health, restart_count=failed,
        ip_address=address, started_at=_started(status) if engine_state == "running" else None,
        host_ports=_host_ports(node, spec), health_output=reason[:300],
        node=node.hostname if node is not None else "",
        pinned_node=pinned.hostname if pinned is not None else "",
        lost=reason if lost is not None and engine_state != "running" else "",
        stopping=engine_state == "running" and (task or {}).get("DesiredState") == "shutdown",
        published=published)


def _state(task: Mapping[str, Any]) -> str:
    return str((task.get("Status") or {}).get("State") or "")


def _ran(task: Mapping[str, Any]) -> bool:
    """Whether the task's container ran and ended by itself (a restart, when another follows)."""
    container = (task.get("Status") or {}).get("ContainerStatus") or {}
    return _state(task) in ("failed", "complete") and bool(container.get("ContainerID"))


def _created(item: Mapping[str, Any]) -> datetime:
    """When the engine made it (its `CreatedAt` text trims trailing zeros: not sortable)."""
    return parse_engine_time(str(item.get("CreatedAt") or "")) or datetime.min.replace(tzinfo=UTC)


def _replaced_while_running(task: Mapping[str, Any], newer: Mapping[str, Any] | None) -> bool:
    """Whether Swarm created the task after this one before this one ended: it moved the
    replica (a node lost or drained); a restart is created after the end."""
    if newer is None:
        return False
    created = parse_engine_time(str(newer.get("CreatedAt") or ""))
    ended = parse_engine_time(str((task.get("Status") or {}).get("Timestamp") or ""))
    return created is not None and ended is not None and created < ended


def _exit_code(task: Mapping[str, Any]) -> int:
    return int(((task.get("Status") or {}).get("ContainerStatus") or {}).get("ExitCode") or 0)


def _rejection(task: Mapping[str, Any], nodes: Mapping[str, NodeView]) -> str:
    node = nodes.get(str(task.get("NodeID") or ""))
    where = f" on {node.hostname}" if node is not None else ""
    err = str((task.get("Status") or {}).get("Err") or "rejected")
    return f"rejected{where}: {err}"


def _drained_from(task: Mapping[str, Any], nodes: Mapping[str, NodeView]) -> bool:
    """Whether Swarm shut this task down because its node is drained (it moves elsewhere)."""
    node = nodes.get(str(task.get("NodeID") or ""))
    return node is not None and node.drained and task.get("DesiredState") == "shutdown" \
        and _state(task) in (*_RUNNING_STATES, *_STARTING_STATES, "shutdown")


def _lost_node(tasks: Sequence[Mapping[str, Any]],
               nodes: Mapping[str, NodeView]) -> NodeView | None:
    """The down node a task of the replica was last running on, if any."""
    for task in sorted(tasks, key=_created, reverse=True):
        node = nodes.get(str(task.get("NodeID") or ""))
        state = str((task.get("Status") or {}).get("State"))
        if node is not None and not node.ready and state in _RUNNING_STATES + _STARTING_STATES:
            return node
    return None


def node_of(tasks: Sequence[Mapping[str, Any]], nodes: Mapping[str, NodeView]) -> str:
    """The hostname of the node the replica's current task is on ("" before it is placed)."""
    task = current_task(tasks)
    node = nodes.get(str((task or {}).get("NodeID") or ""))
    return node.hostname if node is not None else ""


def _overlay_address(task: Mapping[str, Any]) -> str | None:
    for attachment in task.get("NetworksAttachments") or ():
        network = (attachment.get("Network") or {}).get("Spec") or {}
        if network.get("Name") == "ingress":
            continue
        for address in attachment.get("Addresses") or ():
            return str(address).partition("/")[0]
    return None


def _host_ports(node: NodeView | None, spec: Mapping[str, Any]) -> tuple[str, ...]:
    if node is None:
        return ()
    ports = (spec.get("EndpointSpec") or {}).get("Ports") or ()
    return tuple(sorted(f"{node.address}:{p.get('PublishedPort')}->{p.get('TargetPort')}/"
                        f"{p.get('Protocol') or 'tcp'}" for p in ports if p.get("PublishedPort")))


def _started(status: Mapping[str, Any]) -> datetime | None:
    return parse_engine_time(str(status.get("Timestamp") or ""))
