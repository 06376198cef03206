"""Deployments and downs as background jobs: each is admitted (`admission`) and recorded
while the request waits, then carried out by a thread of its own; the request answers with the
deployment's id at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from dockyard.api_errors import NotFound
from dockyard.diagnostics import Location, error
from dockyard.errors import DockyardError, ProjectInvalid
from dockyard.runtime.specs import network_name, project_labels
from dockyard.selection import closure, narrowed
from dockyard.server import retention
from dockyard.server.admission import check_request, load_submitted
from dockyard.server.control import ControlPlane
from dockyard.server.deploy_request import BuildInput, DeployRequest
from dockyard.server.deployer import Deployer
from dockyard.server.deployment_record import deployment_record
from dockyard.server.domain_reports import claim_project_domains
from dockyard.server.down import (
    DOWN_NOTES,
    services_to_take_down,
    take_down,
    take_down_services,
)
from dockyard.server.project_files import project_digests
from dockyard.server.project_size import check_project_size
from dockyard.server.ps import remember_model
from dockyard.server.rollback import (
    DEPLOYING_ACTIONS,
    rollback_after_failure,
    run_configs,
    wants_rollback,
)
from dockyard.server.scrub import scrub_engine_text
from dockyard.server.settle import settle_unfinished
from dockyard.store.store import Account, DeploymentRecord
from dockyard.wire_models import DeployOrigin

log = logging.getLogger("dockyard.server")


def start_deployment(control: ControlPlane, account: Account, project_name: str,
                     project_data: Mapping[str, Any], builds: Mapping[str, BuildInput], *,
                     force: bool, rebuild: bool, pull: str | None = None,
                     pins: Mapping[str, str] | None = None, action: str = "up",
                     origin: DeployOrigin | None = None,
                     config_versions: Mapping[str, int] | None = None,
                     rollback_on_failure: bool = False,
                     rollback_of: str | None = None,
                     services: Sequence[str] = ()) -> str:
    """Admit and start a deployment; its id. `config_versions` runs those versions of the
    project's configs instead of the current ones (a rollback); `rollback_on_failure` rolls
    a failed deployment back to the one before it (`rollback.rollback_after_failure`).
    `services` (`up SERVICE...`) deploys only those and what they depend on: the rest of the
    project is neither admitted again nor touched (`selection`)."""
    check_project_size(project_data, control.settings.max_project_bytes)
    project = whole = load_submitted(project_name, project_data)
    if services:
        project = narrowed(whole, closure(whole, services))
        builds = {name: b for name, b in builds.items() if name in project.services}
    configs, versions = run_configs(control, account, project, config_versions)
    record = deployment_record(account.name, origin, rollback_of=rollback_of, options={
        "force": force, "build": rebuild, "pull": pull,
        "rollback_on_failure": rollback_on_failure, "services": list(services)})
    # Admission is atomic per account: checking the limits and taking the project's slot
    # happen under one lock, so concurrent requests cannot all pass a limit of one.
    with control.admission(account.name):
        images = check_request(control, project, builds, configs, account.name, pull=pull,
                               rebuild=rebuild, pins=pins, whole=whole)
        # Playground: a custom domain is served once proven to point here. Proofs start only
        # for an admitted request, before its deployment is recorded (they note their outcome
        # in the reason of the deployment after the latest one), and run beside it.
        claim_project_domains(control, account.name, project)
        # The project's network first: refused here, before a deployment is recorded, when
        # the name is taken by an object this server, account and project did not make.
        placement = control.placement(account, project.name)
        control.driver.ensure_network(network_name(placement), project_labels(placement))
        deployment = control.store.create_deployment(account, project.name, action,
                                                     dict(project_data),
                                                     [b.digest for b in builds.values()]
                                                     + project_digests(project),
                                                     record=record, configs=versions)
        try:
            control.begin(account, project.name, deployment)
        except DockyardError:
            control.store.finish_deployment(account, deployment, "refused")
            raise
    remember_model(control, account, deployment, whole)  # what `ps` reads: loaded already
    request = DeployRequest(project=project, builds=builds, force=force, rebuild=rebuild,
                            configs=configs, images=images, pins=dict(pins or {}),
                            services=tuple(services),
                            ensured_networks=frozenset({network_name(placement)}))

    def work() -> None:
        status = "failed"
        try:
            status = Deployer(control, account, deployment, request).run()
        except Exception as exc:  # the engine failed under the deployment: settle every service
            reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            log.exception("deployment %s failed", deployment)
            settle_unfinished(control, account, project.name, deployment, str(reason))
        finally:
            # A rollback that fails is not rolled back again (it would go back to itself).
            undo = status == "failed" and action != "rollback" and \
                wants_rollback(project, rollback_on_failure)
            if undo:  # before it ends: whoever follows it knows a rollback is coming
                control.store.note_deployment(account, deployment, rollback_pending=True)
            control.store.finish_deployment(account, deployment, status)
            control.end(account, project.name)
            retention.after_deployment(control, account, project.name)
        if undo:
            rollback_after_failure(control, account, project.name, deployment)

    threading.Thread(target=work, name=f"deployment-{deployment}", daemon=True).start()
    return deployment


def start_redeploy(control: ControlPlane, account: Account, deployment_id: str, *,
                   pull: str | None = None, origin: DeployOrigin | None = None) -> str:
    """Deploy again exactly what a recorded deployment ran: its project, and each service's
    image by the digest (or local image id) it recorded, never by a tag that may have moved
    since. Builds are not run again. Refused before anything changes when the deployment
    recorded no image for a service, or an image is gone (not on the engine, in no registry).
    The configs are the current ones (`rollback` runs the recorded versions too).
    """
    record, data, pins, selection = recorded_pins(control, account, deployment_id)
    return start_deployment(control, account, record.project, data, {}, force=False,
                            rebuild=False, pull=pull, pins=pins, action="redeploy",
                            origin=origin, rollback_of=deployment_id, services=selection)


def recorded_pins(control: ControlPlane, account: Account, deployment_id: str
                  ) -> tuple[DeploymentRecord, dict[str, Any], dict[str, str], list[str]]:
    """A recorded deployment's project, per service the digest (or local image id) it ran,
    and the services it was asked for (`up SERVICE...`; empty: all of them, and a partial
    deployment is run again as partial: only those and what they depend on). Refused
    (NotFound, ProjectInvalid naming each service) when it cannot be run again exactly."""
    record = control.store.deployment(account, deployment_id)
    data = control.store.deployed_project(account, deployment_id) if record else None
    if record is None or data is None:
        raise NotFound(f"no deployment {deployment_id!r}",
                       hint="`dockyard deployments` lists them")
    recorded = control.store.deployment_images(account, deployment_id)
    options = control.store.deployment_facts(account, deployment_id).record.get("options")
    selection = [str(s) for s in (options or {}).get("services") or []]
    services = sorted((data.get("services") or {}).keys())
    if selection:
        services = sorted(closure(load_submitted(record.project, data), selection))
    missing = [name for name in services if name not in recorded]
    if missing:
        raise ProjectInvalid([error(
            "image-missing", f"deployment {deployment_id} recorded no image for service "
            f"{name} (it never got that far), so it cannot be run again exactly",
            Location(path=f"services.{name}.image"),
            "choose a deployment that succeeded (`dockyard deployments --status succeeded`)")
            for name in missing])
    return record, data, {name: recorded[name][1] for name in services}, selection


def start_down(control: ControlPlane, account: Account, project_name: str, *,
               volumes: bool, services: Sequence[str] = (), force: bool = False) -> str:
    """Take the project down, or only `services` (`down.services_to_take_down` says when
    that is refused)."""
    latest = _latest_project(control, account, project_name)
    if latest is None and not control.driver.containers(
            project_labels(control.placement(account, project_name))):
        raise NotFound(f"project {project_name!r} has no deployment",
                       hint="`dockyard deployments` lists what was deployed")
    only = services_to_take_down(control, account, project_name, services, force=force,
                                 volumes=volumes)
    # A down records which services it took down, not another copy of the project; a down
    # refused because a deployment runs is finished as refused at once (never left running).
    outline = {"name": project_name,
               "services": {name: {} for name in only or (latest or {}).get("services") or {}}}
    with control.admission(account.name):
        deployment = control.store.create_deployment(account, project_name, "down", outline)
        try:
            control.begin(account, project_name, deployment)
        except DockyardError:
            control.store.finish_deployment(account, deployment, "refused")
            raise

    def work() -> None:
        status = "failed"
        try:
            done = take_down_services(control, account, project_name, deployment, only) \
                if only else take_down(control, account, project_name, deployment, volumes)
            status = "succeeded" if done else "failed"
        except DockyardError as exc:  # the engine stopped answering...: `down` says so
            why = scrub_engine_text(exc.message, control.settings.data)
            log.warning("down %s of %s/%s stopped: %s", deployment, account.name, project_name,
                        why)
            control.store.append_build_log(account, deployment, DOWN_NOTES, [f"stopped: {why}"])
        finally:
            control.store.finish_deployment(account, deployment, status)
            control.end(account, project_name)
            retention.after_deployment(control, account, project_name)

    threading.Thread(target=work, name=f"down-{deployment}", daemon=True).start()
    return deployment


def _latest_project(control: ControlPlane, account: Account,
                    project: str) -> dict[str, Any] | None:
    for record in control.store.deployments(account, project, limit=20):
        if record.action in DEPLOYING_ACTIONS:
            return control.store.deployed_project(account, record.id)
    return None
