"""How a changed service's replicas are replaced: Compose's `deploy.update_config` and
`deploy.rollback_config`, read into one frozen `RolloutPolicy` (pure: no engine, no store).

- `parallelism`: how many replicas are replaced at a time (0: all at once). Unset, the
  driver's default: 0 on one Docker Engine (today's behaviour), 1 on a Swarm.
- `delay`: the wait between two batches.
- `order`: start-first or stop-first, as `runtime.specs.replacement_order` decides it (a job
  and a service publishing host ports are always stop-first).
- `failure_action`: what a failed batch does to the rest: `pause` (the default, as Swarm's)
  stops there, `continue` goes on with the next batches, `rollback` stops there and the whole
  deployment goes back to the one before it (`server.rollback`).
- `monitor`: how long new replicas must stay up before they count as healthy (the service's
  stabilization window instead of the server's `--stabilization`); unset or 0: the server's.

A rollback deployment (`dockyard rollback`, or one started by `failure_action: rollback`) reads
`rollback_config`, each key it leaves out taken from `update_config`, so a service that asked
for a careful update is rolled back as carefully. A rollback is never rolled back itself, so
there `rollback` acts as `pause`. `max_failure_ratio` is not used: any failed batch counts.

The loader keeps what Compose accepts (a parallelism of "abc", a failure_action of "bogus");
`rollout_problems` refuses those at admission, naming the service and the key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.compose.models import Project, Service
from dockyard.compose.units import parse_duration
from dockyard.diagnostics import Diagnostic, Location, error
from dockyard.runtime.specs import replacement_order

FAILURE_ACTIONS = ("pause", "continue", "rollback")
ROLLBACK_FAILURE_ACTIONS = ("pause", "continue")  # as Swarm takes them in rollback_config
KEYS = ("update_config", "rollback_config")


@dataclass(frozen=True, slots=True)
class RolloutPolicy:
    parallelism: int  # replicas replaced at a time; 0: all at once
    delay_seconds: float  # the wait between two batches
    order: str  # "start-first" or "stop-first"
    failure_action: str  # "pause", "continue" or "rollback"
    monitor_seconds: float | None  # the stabilization window; None: the server's

    def batches(self, replicas: int) -> list[range]:
        """The replica numbers (from 1) each batch starts, in order: one batch of all of
        them when parallelism is 0 or not below `replicas`."""
        size = self.parallelism if 0 < self.parallelism < replicas else max(replicas, 1)
        return [range(first, min(first + size, replicas + 1))
                for first in range(1, replicas + 1, size)] or [range(1, 1)]


def rollout_policy(service: Service, *, rollback: bool = False,
                   default_parallelism: int = 0) -> RolloutPolicy:
    """The policy replacing `service` (admitted: `rollout_problems` found nothing); for a
    rollback deployment when `rollback`; `default_parallelism` is the driver's."""
    settings = _settings(service, rollback)
    parallelism = _parallelism(settings.get("parallelism"))
    action = str(settings.get("failure_action") or "pause")
    if action not in FAILURE_ACTIONS or (rollback and action == "rollback"):
        action = "pause"
    monitor = _seconds(settings.get("monitor"))
    return RolloutPolicy(
        parallelism=default_parallelism if parallelism is None else parallelism,
        delay_seconds=_seconds(settings.get("delay")) or 0.0,
        order=replacement_order(_with_update_config(service, settings)),
        failure_action=action,
        monitor_seconds=monitor or None)


def rollout_problems(project: Project) -> list[Diagnostic]:
    """The update_config and rollback_config values no rollout can follow (admission)."""
    problems: list[Diagnostic] = []
    for name, service in sorted(project.services.items()):
        for key in KEYS:
            settings = _raw(service, key)
            path = f"services.{name}.deploy.{key}"
            value = settings.get("parallelism")
            if value is not None and _parallelism(value) is None:
                problems.append(error(
                    "schema", f"service {name!r}: deploy.{key}.parallelism {value!r} is not a "
                    "whole number of replicas", Location(path=f"{path}.parallelism"),
                    "give how many replicas to replace at a time (0: all at once)"))
            for duration in ("delay", "monitor"):
                text = settings.get(duration)
                if text is not None and _seconds(text) is None:
                    problems.append(error(
                        "schema", f"service {name!r}: deploy.{key}.{duration} {text!r} is not "
                        "a duration of 0 or more", Location(path=f"{path}.{duration}"),
                        "use a duration such as 10s, 1m30s or 500ms"))
            allowed = FAILURE_ACTIONS if key == "update_config" else ROLLBACK_FAILURE_ACTIONS
            action = settings.get("failure_action")
            if action is not None and action not in allowed:
                problems.append(error(
                    "schema", f"service {name!r}: deploy.{key}.failure_action {action!r} is "
                    f"not one of {', '.join(allowed)}", Location(path=f"{path}.failure_action"),
                    f"use {' or '.join(allowed)} (pause when left out)"))
    return problems


def _raw(service: Service, key: str) -> Mapping[str, Any]:
    found = service.deploy.extra.get(key) if service.deploy is not None else None
    return found if isinstance(found, Mapping) else {}


def _settings(service: Service, rollback: bool) -> dict[str, Any]:
    """update_config, or for a rollback rollback_config over it (keys it sets win)."""
    update = dict(_raw(service, "update_config"))
    if rollback:
        update.update({k: v for k, v in _raw(service, "rollback_config").items()
                       if v is not None})
    return update


def _with_update_config(service: Service, settings: Mapping[str, Any]) -> Service:
    """`service` with `settings` as its update_config (so `replacement_order` reads the
    order a rollback asks for, and keeps its forced stop-first cases)."""
    if service.deploy is None:
        return service
    extra = {**service.deploy.extra, "update_config": dict(settings)}
    return dataclasses.replace(service, deploy=dataclasses.replace(service.deploy, extra=extra))


def _parallelism(value: Any) -> int | None:
    """A non-negative whole number (YAML's or a string of digits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _seconds(value: Any) -> float | None:
    """A duration of 0 or more in seconds (None: unset, or not such a duration)."""
    if value is None:
        return None
    try:
        ns = parse_duration(str(value))
    except ValueError:
        return None
    return ns / 1e9 if ns >= 0 else None
