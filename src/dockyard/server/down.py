"""Taking a project down: its containers, ingress routes, secrets, network and (asked for)
volumes, each outcome noted in the deployment's log; or only some of its services
(`down SERVICE...`: `services_to_take_down`, `take_down_services`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from dockyard.api_errors import DependentsRunning
from dockyard.errors import DockyardError, UsageError
from dockyard.lifecycle import ServiceState, can_transition
from dockyard.runtime.driver import ContainerInfo
from dockyard.runtime.specs import network_name, project_labels
from dockyard.selection import blockers, blockers_text, check_known
from dockyard.server.control import ControlPlane
from dockyard.server.legacy import is_legacy, remove_legacy_network
from dockyard.server.ps import deployed_model
from dockyard.server.scrub import scrub_engine_text
from dockyard.store.store import Account

S = ServiceState
log = logging.getLogger("dockyard.server")

DOWN_NOTES = ""  # the deployment log's project-level "service": what `down` did beyond services


def take_down(control: ControlPlane, account: Account, project: str, deployment: str,
              volumes: bool) -> bool:
    """Take the project down; False when something asked for could not be removed.

    What happened to the network and to each volume is written to the deployment's log under
    the project-level name (`DOWN_NOTES`), so `down` says truthfully what it removed and what
    it kept. Only objects carrying this server's, account's and project's labels are touched.
    """
    placement = control.placement(account, project)
    owner = project_labels(placement)
    containers = control.driver.containers(owner, detail=False, fresh=True)  # one call
    services = sorted({c.service for c in containers} |
                      {s.service for s in control.store.statuses(account, project)})
    control.ingress.forget(account.name, project)
    control.secret_files.remove_project(placement)
    _remove_all(control, account, project, deployment, containers, services)
    control.project_files.remove_project(placement)
    notes: list[str] = []
    complete = True
    # The project's own network and each of its Compose networks (all carry its labels).
    for network in sorted({network_name(placement), *control.driver.labelled_networks(owner)}):
        try:
            control.driver.remove_network(network, owner)
        except DockyardError as exc:  # still in use (another server's containers): keep it
            log.warning("network %s kept: %s", network, exc.message)
            notes.append(f"network kept: "
                         f"{scrub_engine_text(exc.message, control.settings.data)}")
    control.egress.forget()  # a removed network's egress rules go with it
    if any(is_legacy(placement, c) for c in containers):
        remove_legacy_network(control.driver, placement)
    if volumes:
        found = control.driver.volumes(owner)
        for volume in found:
            try:
                control.driver.remove_volume(volume)
            except DockyardError as exc:
                complete = False
                notes.append(f"volume {volume} kept: "
                             f"{scrub_engine_text(exc.message, control.settings.data)}")
            else:
                notes.append(f"volume {volume} removed")
        if not found:
            notes.append("no volume to remove")
    if notes:
        control.store.append_build_log(account, deployment, DOWN_NOTES, notes)
    control.store.forget_services(account, project, services)
    return complete


def services_to_take_down(control: ControlPlane, account: Account, project: str,
                          services: Sequence[str], *, force: bool,
                          volumes: bool) -> tuple[str, ...]:
    """`down SERVICE...`, checked before anything is recorded: the services to take down, or
    () for the whole project (no names, or every service named).

    Refused: a name the project does not have (UsageError, listing its services), `--volumes`
    (volumes belong to the project, and may be shared), and, unless `force`, a running service
    that stays and depends on one of them (`DependentsRunning`, saying which on which)."""
    if not services:
        return ()
    containers = control.driver.containers(project_labels(control.placement(account, project)),
                                           detail=False, fresh=True)
    statuses = control.store.statuses(account, project)
    known = {c.service for c in containers} | {s.service for s in statuses}
    check_known(services, known, project)
    if known <= set(services):
        return ()  # all of it: a whole `down` (the network too)
    if volumes:
        raise UsageError("--volumes takes the project's volumes away, and they may be shared "
                         "by the services that stay", hint="run `down` with service names and "
                         "without --volumes, or `down --volumes` with no names for all of it")
    running = {c.service for c in containers if c.status in ("running", "restarting")}
    depends: dict[str, tuple[str, ...]] = {}
    for status in statuses:
        model = deployed_model(control, account, project, status.deployment)
        service = model.services.get(status.service) if model is not None else None
        depends[status.service] = tuple(service.depends_on) if service is not None else ()
    found = blockers(depends, set(services), running)
    if found and not force:
        staying = sorted({dependent for dependent, _ in found})
        raise DependentsRunning(
            f"cannot take down {', '.join(sorted(set(services)))} of project {project!r}: "
            f"{blockers_text(found)}, and {'it keeps' if len(staying) == 1 else 'they keep'} "
            "running", hint=f"take {'it' if len(staying) == 1 else 'them'} down too "
            f"(`dockyard compose down {' '.join(sorted({*services, *staying}))}`), or use "
            "--force to take the dependencies away anyway")
    return tuple(dict.fromkeys(services))


def take_down_services(control: ControlPlane, account: Account, project: str, deployment: str,
                       services: Sequence[str]) -> bool:
    """Take only `services` down: their containers, ingress routes, secret files and states.
    The rest of the project, its network and volumes stay as they are."""
    placement = control.placement(account, project)
    chosen = set(services)
    containers = [c for c in control.driver.containers(project_labels(placement), detail=False,
                                                       fresh=True)
                  if c.service in chosen]
    for service in sorted(chosen):
        control.ingress.forget(account.name, project, service)
    _remove_all(control, account, project, deployment, containers, sorted(chosen))
    control.secret_files.remove_services(placement, sorted(chosen))
    control.project_files.remove_services(placement, sorted(chosen))
    control.store.forget_services(account, project, sorted(chosen))
    return True


def _remove_all(control: ControlPlane, account: Account, project: str, deployment: str,
                containers: list[ContainerInfo], services: Sequence[str]) -> None:
    """Stop and remove `containers` in parallel, then record `services` taken down."""
    for info in containers:
        control.expect_stop(info.id)
    threads = [threading.Thread(target=_stop_remove, args=(control, info))
               for info in containers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _record_removed(control, account, project, deployment, services)


def _record_removed(control: ControlPlane, account: Account, project: str, deployment: str,
                    services: Sequence[str]) -> None:
    """Each of `services` DEPLOYMENT_SCALED_IN, in one write for those the table lets move
    there as they stand (a project's size costs no more writes); the others one at a time
    through `record` (a service left PENDING by another deployment is superseded first, a
    forbidden move logged and not recorded)."""
    reason = "removed by `down`"
    states = {s.service: s.state for s in control.store.statuses(account, project)}
    direct = {service for service in services
              if can_transition(states.get(service, S.NOT_SPECIFIED), S.DEPLOYMENT_SCALED_IN)
              or states.get(service) is S.DEPLOYMENT_SCALED_IN}
    control.record_all(account, deployment, project,
                       [(service, S.DEPLOYMENT_SCALED_IN, reason) for service in services
                        if service in direct])
    for service in services:
        if service not in direct:
            control.record(account, deployment, service, S.DEPLOYMENT_SCALED_IN, reason)


def _stop_remove(control: ControlPlane, info: ContainerInfo) -> None:
    control.driver.stop(info.id)
    control.driver.remove(info.id)


