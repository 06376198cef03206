"""`up --dry-run`: the plan a deployment would carry out, computed without changing anything.

The request goes through the same admission as `up` (the project is loaded and checked again,
registries are asked about the images that would be pulled), then the same `plan()` runs
against what runs now. Images that a real deployment would only know later are named so:
a build that would run is `image to be built`; a pull whose digest differs from the one the
running service recorded is `image to be pulled (new digest)`; a pull of the digest the
service already runs is no change. Nothing is recorded, built, pulled, created or removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockyard.plan import UNKNOWN_IMAGE, UNPULLED_IMAGE, Plan, plan
from dockyard.runtime.specs import project_labels
from dockyard.secrets.resolve import configs_digests
from dockyard.selection import closure, narrowed
from dockyard.server.admission import check_request, load_submitted
from dockyard.server.build_reuse import reusable_build
from dockyard.server.control import ControlPlane
from dockyard.server.deploy_request import BuildInput
from dockyard.server.image_plan import ImagePlan
from dockyard.server.model_endpoint import deployable
from dockyard.server.observe import by_service, global_nodes, observe
from dockyard.server.project_size import check_project_size
from dockyard.store.store import Account


@dataclass(frozen=True, slots=True)
class Preview:
    project: str
    plan: Plan
    builds: tuple[str, ...]  # services whose image would be built
    pulls: tuple[str, ...]  # references that would be pulled

    def to_json(self) -> dict[str, Any]:
        return {"project": self.project, "builds": list(self.builds),
                "pulls": list(self.pulls),
                "services": [action.to_json() for action in self.plan]}


def preview(control: ControlPlane, account: Account, project_name: str,
            project_data: Mapping[str, Any], builds: Mapping[str, BuildInput], *,
            force: bool, rebuild: bool, pull: str | None = None,
            pins: Mapping[str, str] | None = None,
            config_versions: Mapping[str, int] | None = None,
            services: Sequence[str] = ()) -> Preview:
    """`pins` and `config_versions` as a rollback runs them (`rollback.preview_rollback`);
    `services` (`up --dry-run SERVICE...`): the plan of those and what they depend on."""
    from dockyard.server.rollback import run_configs

    check_project_size(project_data, control.settings.max_project_bytes)
    project = whole = load_submitted(project_name, project_data)
    if services:
        project = narrowed(whole, closure(whole, services))
        builds = {name: b for name, b in builds.items() if name in project.services}
    configs, _ = run_configs(control, account, project, config_versions)
    images = check_request(control, project, builds, configs, account.name, pull=pull,
                           rebuild=rebuild, pins=pins, whole=whole)
    project, configs = deployable(control.settings, project, configs)  # as a deployment runs
    placement = control.placement(account, project.name)
    running = by_service(control.driver.containers(project_labels(placement),
                                                detail=False))
    recorded = _recorded(control, account, running)
    ids: dict[str, str] = {}
    building: list[str] = []
    for name, service in project.services.items():
        build = builds.get(name)
        if build is not None:
            found = None if rebuild or name in images.rebuild else reusable_build(
                control.driver, placement, name, service, build,
                playground=control.settings.playground)
            if found is None:
                building.append(name)
            ids[name] = found or UNKNOWN_IMAGE
            continue
        ids[name] = _image_id(control, images, name, recorded.get(name))
    decided = plan(project, observe(project, placement, running), ids,
                   configs_digests(control.configs.digest_key, project, configs), force=force,
                   services=services or None, global_nodes=global_nodes(control.driver, project))
    pulls = sorted({u.reference for u in images.uses
                    if u.pull and (not u.base or u.service in building)})
    return Preview(project.name, decided, tuple(sorted(building)), tuple(pulls))


def _recorded(control: ControlPlane, account: Account,
              running: Mapping[str, list[Any]]) -> dict[str, tuple[str, str]]:
    """Per running service: (digest, image id) its containers' deployment recorded."""
    out: dict[str, tuple[str, str]] = {}
    for name, containers in running.items():
        if containers:
            found = control.store.deployment_images(account, containers[0].deployment)
            if name in found:
                _, digest, image_id = found[name]
                out[name] = (digest, image_id)
    return out


def _image_id(control: ControlPlane, images: ImagePlan, name: str,
              recorded: tuple[str, str] | None) -> str:
    """The image id the service would run, as far as it is known before pulling."""
    use = images.service(name)
    if use is None:
        return UNKNOWN_IMAGE
    if use.image_id is not None:
        return use.image_id
    if not use.pull:
        return control.driver.image_id(use.target) or UNPULLED_IMAGE
    if recorded is not None and "@" in use.target and recorded[0] == use.target:
        return recorded[1]  # the registry still serves the digest the service runs
    return UNPULLED_IMAGE
