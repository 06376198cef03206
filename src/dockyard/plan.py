"""What a deployment will do: the desired project against what runs, decided in one place.

Pure: what runs is given as values read from the engine's labels and states
(`RunningService`: config hash and its parts, replica count, health, mixed versions, old engine
names); the images are given as ids. The result is a frozen `Plan`: one `Action` per service
in dependency levels (`start_order`), then the removals. Drivers and the deployer only carry
it out; `up --dry-run` prints it; the Pulumi provider's `diff` will read it.

The decisions, per service:

- **create**: nothing runs for it;
- **replace**, with why: its configuration (`reasons` name each part that changed: image,
  environment, ports, command, config values ...), mixed versions running, engine names from
  an older release, not healthy as it is, or `force`;
- **scale**: only the replica count changed (to 0: scaled in);
- **keep**: same configuration and replica count, and healthy as it is (a job: exited 0), so
  a no-op `up` restarts nothing and reruns no job; a provider service (`provider:`), which
  runs no container, is always kept;
- a service joining another's namespaces (`network_mode`/`ipc: service:X`) is replaced when X
  is (its containers would keep the namespace of X's old container, gone with it);
- **remove**: it is no longer in the project (after everything else, so dependents move first).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from dockyard.compose.models import Project, Service
from dockyard.compose.render import service_to_dict
from dockyard.selection import closure
from dockyard.wire import FILES_KEY

PROJECT_FILES_PART = "project files"


class ActionKind(enum.StrEnum):
    CREATE = "create"
    REPLACE = "replace"
    SCALE = "scale"
    KEEP = "keep"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class RunningService:
    """What the engine says about one service of the project (as the deployer reads it)."""

    name: str
    config_hash: str
    replicas: int
    parts: Mapping[str, str] | None = None  # the hash of each part (None: older containers)
    healthy: bool = True  # every container runs and is healthy (a job: exited 0)
    mixed: bool = False  # its containers run more than one configuration
    renamed: bool = False  # created under the engine names of an older release


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    service: str
    reason: str  # the reasons, joined: what `ps` and the state events say
    replicas: int = 0
    reasons: tuple[str, ...] = ()
    config_hash: str = ""  # what the service's containers will carry
    parts: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """`up --dry-run --json`: one object per service."""
        return {"service": self.service, "action": self.kind.value,
                "reasons": list(self.reasons or (self.reason,)), "replicas": self.replicas}


@dataclass(frozen=True, slots=True)
class Plan(Sequence[Action]):
    """Every service's action: `levels` in start order (each depends only on earlier ones),
    then `removals`. Iterating gives them all, in that order."""

    levels: tuple[tuple[Action, ...], ...]
    removals: tuple[Action, ...] = ()

    @property
    def actions(self) -> tuple[Action, ...]:
        return (*(a for level in self.levels for a in level), *self.removals)

    def action(self, service: str) -> Action | None:
        return next((a for a in self.actions if a.service == service), None)

    def __iter__(self) -> Iterator[Action]:
        return iter(self.actions)

    def __len__(self) -> int:
        return len(self.actions)

    @overload
    def __getitem__(self, index: int) -> Action: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Action]: ...

    def __getitem__(self, index: int | slice) -> Action | Sequence[Action]:
        return self.actions[index]

    @property
    def changes(self) -> bool:
        return any(a.kind is not ActionKind.KEEP for a in self.actions)


def desired_replicas(service: Service, nodes: int = 1) -> int:
    """`deploy.replicas` (or `scale`); a `deploy.mode: global` service runs one per node it
    may be placed on: `nodes`, which the driver counts (one engine: 1)."""
    if service.deploy is not None and service.deploy.mode == "global":
        return nodes
    if service.deploy is not None and service.deploy.replicas is not None:
        return service.deploy.replicas
    scale = service.extra.get("scale")
    return int(scale) if isinstance(scale, int) else 1


def config_parts(service: Service, image_id: str | None = None,
                 configs_digest: str = "") -> dict[str, str]:
    """A short hash of each part of the service that, changed, needs new containers: each
    top-level key of the normalized service, the image id (`image`) and the config values it
    uses (`config values`), and the project files it mounts (`project files`: their digests).

    The replica count is left out (scaling needs no replacement); the image id is put in, so a
    rebuilt image with changed content, or a moved tag, replaces the service even when the
    Compose text did not change. The `build` section is left out: where the context lies
    differs between the client and the server, and what the build produces is the image id.
    """
    data = service_to_dict(service)
    data.pop("build", None)
    data.pop("scale", None)
    deploy = data.get("deploy")
    if isinstance(deploy, dict):
        data["deploy"] = {k: v for k, v in deploy.items() if k != "replicas"}
    files = data.pop(FILES_KEY, None)
    parts = {key: _short(value) for key, value in data.items() if key != "image"}
    parts["image"] = _short({"image": data.get("image"), "id": image_id})
    if files:  # the digests of what it mounts from the project: changed, it is replaced
        parts[PROJECT_FILES_PART] = _short(files)
    if configs_digest:
        parts["config values"] = _short(configs_digest)
    return parts


def config_hash(service: Service, image_id: str | None = None, configs_digest: str = "") -> str:
    """A digest of everything that, changed, needs new containers (`config_parts`)."""
    data = service_to_dict(service)
    data.pop("build", None)
    deploy = data.get("deploy")
    if isinstance(deploy, dict):
        data["deploy"] = {k: v for k, v in deploy.items() if k != "replicas"}
    data.pop("scale", None)
    payload: dict[str, Any] = {"service": data, "image": image_id}
    if configs_digest:  # a keyed digest of the config values the service uses
        payload["configs"] = configs_digest
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _short(value: object) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def start_order(project: Project) -> list[list[str]]:
    """Services in levels: each level depends only on earlier ones; a level starts in parallel.

    The project is valid (no cycles, no unknown dependencies), as the loader guarantees.
    """
    remaining = {name: {d for d in s.depends_on if d in project.services}
                 for name, s in project.services.items()}
    levels: list[list[str]] = []
    done: set[str] = set()
    while remaining:
        ready = sorted(n for n, deps in remaining.items() if deps <= done)
        if not ready:
            raise ValueError(f"dependency cycle among {sorted(remaining)}")
        levels.append(ready)
        done.update(ready)
        for name in ready:
            del remaining[name]
    return levels


UNKNOWN_IMAGE = "<to be built>"  # an image id not known yet (`up --dry-run` of a build)
UNPULLED_IMAGE = "<to be pulled>"  # ... nor of a pull of a new digest


def plan(project: Project, running: Mapping[str, RunningService],
         image_ids: Mapping[str, str] | None = None,
         configs_digests: Mapping[str, str] | None = None, *, force: bool = False,
         services: Collection[str] | None = None,
         global_nodes: Mapping[str, int] | None = None) -> Plan:
    """The whole decision (see the module's docstring).

    `image_ids` holds each service's image id (`UNKNOWN_IMAGE` when it is yet to be built:
    a changed image); `configs_digests` the keyed digest of the config values each service
    uses (a changed value replaces it, as a changed setting does); `force` replaces every
    service that would be kept. `services` (`up SERVICE...`) plans only those and what they
    depend on (`selection.closure`), and removes nothing: every other service, in the project
    or not, is left as it runs. `global_nodes` holds how many nodes each global service may
    run on (`Driver.global_replicas`; one when not given)."""
    images = image_ids or {}
    nodes = global_nodes or {}
    digests = configs_digests or {}
    chosen = None if services is None else set(closure(project, services))
    decided: dict[str, Action] = {}
    ipc_joined = _ipc_joined(project)
    for names in start_order(project):  # dependencies first: a joined service is decided
        for name in names:
            if chosen is None or name in chosen:
                service = _as_run(project.services[name], ipc_joined)
                decided[name] = _joined(service, _decide(
                    service, running.get(name), images.get(name), digests.get(name, ""),
                    force, nodes.get(name, 1)), decided, name in running)
    levels = tuple(level for level in (
        tuple(decided[name] for name in names if name in decided)
        for names in start_order(project)) if level)
    removals = () if chosen is not None else tuple(
        Action(ActionKind.REMOVE, name, "no longer in the project",
               reasons=("no longer in the project",))
        for name in sorted(set(running) - set(project.services)))
    return Plan(levels, removals)


def joined_services(service: Service) -> list[tuple[str, str]]:
    """(namespace, service) of each `network_mode`/`ipc: service:X` of the service."""
    out = []
    for key, what in (("network_mode", "network"), ("ipc", "IPC")):
        value = service.extra.get(key)
        if isinstance(value, str) and value.startswith("service:"):
            out.append((what, value.split(":", 1)[1]))
    return out


def _ipc_joined(project: Project) -> set[str]:
    """The services whose IPC namespace another service joins (`ipc: service:X`)."""
    return {value.split(":", 1)[1] for other in project.services.values()
            if isinstance(value := other.extra.get("ipc"), str) and value.startswith("service:")}


def _as_run(service: Service, ipc_joined: set[str]) -> Service:
    """The service with what other services make of it: `ipc: shareable` when one joins its
    IPC namespace (`ipc_joined`; the engine's private default cannot be joined), so a service
    that becomes joined is replaced by a shareable one."""
    if service.extra.get("ipc") is None and service.name in ipc_joined:
        return dataclasses.replace(service, extra={**service.extra, "ipc": "shareable"})
    return service


def _joined(service: Service, action: Action, decided: Mapping[str, Action],
            runs: bool) -> Action:
    """A running service kept or scaled while a service whose namespace it joins gets new
    containers is replaced too, saying why."""
    if not runs or action.kind not in (ActionKind.KEEP, ActionKind.SCALE) \
            or action.replicas == 0:
        return action
    for what, other in joined_services(service):
        found = decided.get(other)
        if found is not None and found.kind in (ActionKind.REPLACE, ActionKind.CREATE):
            reason = f"joins the {what} namespace of {other}, which gets new containers"
            return Action(ActionKind.REPLACE, action.service, reason, action.replicas,
                          (reason,), action.config_hash, action.parts)
    return action


def _decide(service: Service, current: RunningService | None, image_id: str | None,
            configs_digest: str, force: bool, nodes: int = 1) -> Action:
    name = service.name
    replicas = desired_replicas(service, nodes)
    wanted = config_hash(service, image_id, configs_digest)
    parts = config_parts(service, image_id, configs_digest)

    def act(kind: ActionKind, *reasons: str) -> Action:
        return Action(kind, name, "; ".join(reasons), replicas, tuple(reasons), wanted, parts)

    if "provider" in service.extra:
        return act(ActionKind.KEEP, "a provider service: no container runs for it")

    if current is None:
        if replicas == 0:
            return act(ActionKind.KEEP, "scaled to 0 replicas")
        return act(ActionKind.CREATE, "new service")
    if replicas == 0:
        return act(ActionKind.SCALE, f"replicas {current.replicas} -> 0")
    if current.renamed:
        return act(ActionKind.REPLACE,
                   "engine names now carry the server, account and project (upgrade)")
    if current.mixed:
        return act(ActionKind.REPLACE, "mixed versions running")
    if current.config_hash != wanted:
        return act(ActionKind.REPLACE, *_changed(current.parts, parts, image_id))
    if force:
        return act(ActionKind.REPLACE, "forced (--force)")
    if current.replicas != replicas:
        return act(ActionKind.SCALE, f"replicas {current.replicas} -> {replicas}")
    if not current.healthy:
        return act(ActionKind.REPLACE, "not healthy as it runs: started again")
    return act(ActionKind.KEEP, "unchanged")


def _changed(before: Mapping[str, str] | None, after: Mapping[str, str],
             image_id: str | None) -> tuple[str, ...]:
    """What changed, by part: `image changed`, `environment changed` ... (one reason, when the
    running containers predate recorded parts)."""
    if before is None:
        return ("configuration or image changed",)
    names = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if not names:
        return ("configuration changed",)
    out = []
    for part in names:
        if part == "image" and image_id == UNKNOWN_IMAGE:
            out.append("image to be built")
        elif part == "image" and image_id == UNPULLED_IMAGE:
            out.append("image to be pulled (new digest)")
        else:
            out.append(f"{part} changed")
    return tuple(out)


def apply(plan_: Plan, running: Mapping[str, RunningService]) -> dict[str, RunningService]:
    """What runs after `plan_` was carried out as decided (every container healthy): for the
    property that a plan applied, then planned again, keeps everything."""
    after: dict[str, RunningService] = {}
    for action in plan_.actions:
        if action.kind is ActionKind.REMOVE:
            continue
        if action.kind is ActionKind.KEEP and action.service in running:
            after[action.service] = running[action.service]
            continue
        if action.replicas == 0:
            continue
        after[action.service] = RunningService(action.service, action.config_hash,
                                               action.replicas, dict(action.parts))
    return after
