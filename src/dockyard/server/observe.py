"""What runs now, as the plan reads it: per service, from its containers' labels and states."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from dockyard.compose.models import Project, Service
from dockyard.plan import RunningService
from dockyard.runtime.driver import LABEL_CONFIG_PARTS, ContainerInfo, Driver
from dockyard.runtime.specs import Placement, is_job, placement_fields
from dockyard.server.legacy import is_legacy


def by_service(containers: Iterable[ContainerInfo]) -> dict[str, list[ContainerInfo]]:
    out: dict[str, list[ContainerInfo]] = {}
    for info in containers:
        out.setdefault(info.service, []).append(info)
    return out


def global_nodes(driver: Driver, project: Project) -> dict[str, int]:
    """How many nodes each `deploy.mode: global` service may run on now (the plan's replica
    count for it: one engine is one node; a Swarm counts its ready nodes that match)."""
    return {name: driver.global_replicas(placement_fields(service)[0])
            for name, service in project.services.items()
            if service.deploy is not None and service.deploy.mode == "global"}


def observe(project: Project, placement: Placement,
            running: Mapping[str, list[ContainerInfo]]) -> dict[str, RunningService]:
    """Per service with containers (none being removed): its configuration hash and parts,
    how many replicas count, whether it is healthy as it runs, mixed versions, old names."""
    observed: dict[str, RunningService] = {}
    for name, containers in running.items():
        live = [c for c in containers if c.status != "removing"]
        if not live:
            continue
        service = project.services.get(name)
        observed[name] = RunningService(
            name, live[0].config_hash,
            replica_count(service, live) if service is not None else len(live),
            parts=config_parts_of(live[0]),
            healthy=service is not None and healthy_as_is(service, live),
            mixed=len({c.config_hash for c in live}) > 1,
            renamed=any(is_legacy(placement, c) for c in live))
    return observed


def replica_count(service: Service, live: list[ContainerInfo]) -> int:
    """The replicas that count: every container of a job, else those running or about to."""
    return len(live) if is_job(service) else len(
        [c for c in live if c.status in ("running", "restarting", "created")])


def healthy_as_is(service: Service, live: list[ContainerInfo]) -> bool:
    """Nothing to restart: every container runs and is healthy (a job: exited 0)."""
    if not live:
        return False
    if is_job(service):
        return all(c.status == "exited" and c.exit_code == 0 for c in live)
    return all(c.status == "running" and c.health in (None, "healthy") for c in live)


def config_parts_of(container: ContainerInfo) -> dict[str, str] | None:
    """The config parts a container was created with (None: an older container)."""
    text = container.labels.get(LABEL_CONFIG_PARTS)
    if not text:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else None
