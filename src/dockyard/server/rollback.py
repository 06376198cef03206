"""Rollback: run again exactly what a recorded deployment ran.

Exactly means its normalized project, each service's image by the digest (or local image id)
it recorded, and each config at the version it ran (values stay encrypted in the store; the
last `Store.HISTORY_KEPT` replaced values of a config are kept). The rollback is a deployment
of its own (action `rollback`): the same admission, plan, zero-downtime rotation and health
gates as `up`. What it cannot reproduce (an image gone from the engine and every registry, a
config version no longer kept) refuses it before anything changes, naming what is missing.

The stored configs are not changed: a rollback runs the recorded versions, and the next
`compose up` runs the current ones again (set the old value with `config set` to keep it).

The default target is the last deployment that completed (succeeded) before the current
one, the newest deployment of the project that ran it (`up`, `redeploy` or `rollback`, not
refused; a `restart` or `down` changes no version): after a bad deploy, the one before it,
whether the bad one failed or passed its health checks. A partial deployment (`up
SERVICE...`) is run again as partial: only its services and what they depend on.

A failed deployment rolls back by itself when `up --rollback-on-failure` asked for it or a
service sets Compose's `deploy.update_config.failure_action: rollback`: the whole
deployment goes back to the one before it, every service included, so that what runs is
again one recorded version.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockyard.api_errors import NotFound
from dockyard.compose.models import Project
from dockyard.diagnostics import Location, error
from dockyard.errors import DockyardError, ProjectInvalid
from dockyard.secrets.resolve import config_users
from dockyard.server.control import ControlPlane
from dockyard.store.store import Account
from dockyard.wire_models import DeployOrigin

if TYPE_CHECKING:
    from dockyard.server.preview import Preview

log = logging.getLogger("dockyard.server")

DEPLOYING_ACTIONS = ("up", "redeploy", "rollback")  # the actions that run a project
HISTORY_SCANNED = 1000  # how far back the default target is looked for


def rollback_target(control: ControlPlane, account: Account, project: str,
                    deployment: str | None) -> str:
    """The deployment to go back to: `deployment` when given (it must be one of the
    project's that ran it), else the last one that completed before the current one."""
    if deployment is not None:
        record = control.store.deployment(account, deployment)
        if record is None or record.project != project:
            raise NotFound(f"project {project!r} has no deployment {deployment!r}",
                           hint=f"`dockyard deployments -p {project}` lists them")
        if record.action not in DEPLOYING_ACTIONS:
            raise ProjectInvalid([error(
                "rollback-invalid", f"deployment {deployment} is a {record.action}: it ran "
                "nothing to go back to", Location(path="deployment"),
                f"name a deployment that ran the project (`dockyard deployments -p {project}`)")])
        return deployment
    history = [d for d in control.store.deployments(account, project, limit=HISTORY_SCANNED)
               if d.status != "refused" and d.action in DEPLOYING_ACTIONS]
    if not history:
        raise NotFound(f"project {project!r} has no deployment",
                       hint="`dockyard deployments` lists what was deployed")
    current = history[0]
    for earlier in history[1:]:
        if earlier.status == "succeeded" and earlier.action in DEPLOYING_ACTIONS:
            return earlier.id
    raise NotFound(f"project {project!r} has no deployment that completed before the current "
                   f"one ({current.id})", hint=f"`dockyard deployments -p {project}` lists "
                   "them; name one with `dockyard rollback DEPLOYMENT`")


@dataclass(frozen=True, slots=True)
class RollbackInputs:
    """What a rollback to a deployment runs: its project (`data`, normalized), each service's
    image (`pins`), the config versions (None for a deployment from before they were
    recorded: the current values run), and its selection (a partial `up SERVICE...` is run
    again as partial)."""

    project: str
    data: dict[str, Any]
    pins: dict[str, str]
    versions: dict[str, int] | None
    services: list[str]


def rollback_inputs(control: ControlPlane, account: Account, target: str) -> RollbackInputs:
    from dockyard.server.deployments import recorded_pins

    record, data, pins, selection = recorded_pins(control, account, target)
    versions = control.store.deployment_facts(account, target).configs
    if versions:
        kept = control.store.encrypted_config_versions(account, record.project, versions)
        gone = sorted(set(versions) - set(kept))
        if gone:
            raise ProjectInvalid([error(
                "config-version-missing", f"config {name!r} version {versions[name]}, which "
                f"deployment {target} ran, is no longer kept (a config keeps its last "
                f"{control.store.HISTORY_KEPT} replaced values)", Location(path=f"configs.{name}"),
                f"set the value again with `dockyard config set {name}` and deploy with "
                "`compose up`, or roll back to a later deployment") for name in gone])
    return RollbackInputs(record.project, data, pins, versions or None, selection)


def start_rollback(control: ControlPlane, account: Account, project: str,
                   deployment: str | None = None, *, pull: str | None = None,
                   origin: DeployOrigin | None = None) -> tuple[str, str]:
    """Start rolling `project` back; (the rollback's deployment id, the target's id)."""
    from dockyard.server.deployments import start_deployment

    target = rollback_target(control, account, project, deployment)
    run = rollback_inputs(control, account, target)
    started = start_deployment(control, account, run.project, run.data, {}, force=False,
                               rebuild=False, pull=pull, pins=run.pins, action="rollback",
                               origin=origin, config_versions=run.versions,
                               rollback_of=target, services=run.services)
    return started, target


def preview_rollback(control: ControlPlane, account: Account, project: str,
                     deployment: str | None = None, *, pull: str | None = None
                     ) -> tuple[Preview, str]:
    """What rolling back would change, and the target; nothing changes."""
    from dockyard.server.preview import preview

    target = rollback_target(control, account, project, deployment)
    run = rollback_inputs(control, account, target)
    return preview(control, account, run.project, run.data, {}, force=False, rebuild=False,
                   pull=pull, pins=run.pins, config_versions=run.versions,
                   services=run.services), target


def run_configs(control: ControlPlane, account: Account, project: Project,
                versions: Mapping[str, int] | None) -> tuple[dict[str, str], dict[str, int]]:
    """The config values a deployment runs with, decrypted, and the version of each one the
    project uses (what its record keeps): the current ones, or `versions` over them."""
    used = config_users(project)
    current = control.configs.versioned_values(account, project.name)
    values = {name: value for name, (value, _) in current.items()}
    numbers = {name: version for name, (_, version) in current.items() if name in used}
    if versions:
        values.update(control.configs.version_values(account, project.name, versions))
        numbers.update({name: v for name, v in versions.items() if name in values})
    return values, numbers


def wants_rollback(project: Project, asked: bool) -> bool:
    """Whether a failed deployment of `project` rolls back by itself."""
    if asked:
        return True
    for service in project.services.values():
        update = (service.deploy.extra.get("update_config") if service.deploy else None) or {}
        if isinstance(update, Mapping) and update.get("failure_action") == "rollback":
            return True
    return False


def rollback_after_failure(control: ControlPlane, account: Account, project: str,
                           failed: str) -> None:
    """Roll the failed deployment `failed` back to the one before it, noting in its record
    which rollback undid it (or why none could)."""
    try:
        started, target = start_rollback(control, account, project)
    except DockyardError as exc:
        log.warning("deployment %s failed and could not be rolled back: %s", failed, exc)
        control.store.note_deployment(account, failed, rollback_pending=False,
                                      rollback_refused=exc.message)
        return
    control.store.note_deployment(account, failed, rollback_pending=False,
                                  rolled_back_by=started, rolled_back_to=target)
