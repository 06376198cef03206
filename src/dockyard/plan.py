"""What a deployment must do: the desired project against what runs, as a list of actions.

Pure: what runs is given as values read from the engine's labels (service name, config hash,
replica count); the result is an ordered list of `Action`s for a driver to carry out. A service
whose config hash and replica count are unchanged is kept as it is (not restarted: a no-op `up`
restarts nothing); a changed hash replaces it; a changed replica count only scales it; a service
no longer in the project is removed. Starts follow `depends_on`: `start_order` gives the levels
of services that can start in parallel.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.compose.models import Project, Service
from dockyard.compose.render import service_to_dict


class ActionKind(enum.StrEnum):
    CREATE = "create"
    REPLACE = "replace"
    SCALE = "scale"
    KEEP = "keep"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class RunningService:
    """What the engine's labels say about one service of the project."""

    name: str
    config_hash: str
    replicas: int


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    service: str
    reason: str
    replicas: int = 0


def desired_replicas(service: Service) -> int:
    if service.deploy is not None and service.deploy.replicas is not None:
        return service.deploy.replicas
    scale = service.extra.get("scale")
    return int(scale) if isinstance(scale, int) else 1


def config_hash(service: Service, image_id: str | None = None, configs_digest: str = "") -> str:
    """A digest of everything that, changed, needs new containers.

    The replica count is left out (scaling needs no replacement); the image id is put in, so a
    rebuilt image with changed content replaces the service even when the Compose text did not
    change. The `build` section is left out: where the context lies differs between the client
    and the server, and what the build produces is the image id.
    """
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


def plan(project: Project, running: Mapping[str, RunningService],
         image_ids: Mapping[str, str] | None = None,
         configs_digests: Mapping[str, str] | None = None) -> list[Action]:
    """The actions, in start order, then the removals (after, so dependents move first).

    `configs_digests` holds, per service, the keyed digest of the config values it uses (a
    changed value replaces the service, as a changed setting does)."""
    images = image_ids or {}
    digests = configs_digests or {}
    actions: list[Action] = []
    for level in start_order(project):
        for name in level:
            service = project.services[name]
            replicas = desired_replicas(service)
            wanted = config_hash(service, images.get(name), digests.get(name, ""))
            current = running.get(name)
            if current is None:
                actions.append(Action(ActionKind.CREATE, name, "new service", replicas))
            elif current.config_hash != wanted:
                actions.append(Action(ActionKind.REPLACE, name, "configuration or image changed",
                                      replicas))
            elif current.replicas != replicas:
                actions.append(Action(ActionKind.SCALE, name,
                                      f"replicas {current.replicas} -> {replicas}", replicas))
            else:
                actions.append(Action(ActionKind.KEEP, name, "unchanged", replicas))
    for name in sorted(set(running) - set(project.services)):
        actions.append(Action(ActionKind.REMOVE, name, "no longer in the project"))
    return actions
