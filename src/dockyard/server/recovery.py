"""What the server does when it starts: settle what a crash interrupted, match the engine.

0. The secret files of this server's containers that are missing (a reboot emptied the tmpfs
   they live on) are written again (`secret_restore`), before anything is checked.
1. Every deployment still marked running was interrupted (the server died): its services that
   had not settled are marked failed with that reason, and the deployment is failed.
2. Containers are matched with the store: a container whose deployment the store does not know
   is an orphan and is removed; where an interrupted deployment left a service with two versions,
   the previous one (still serving) is kept and the interrupted one removed; containers of an
   interrupted deployment that never ran are removed.
3. Each service's recorded state is checked against what runs: COMPLETED with nothing running
   becomes FAILED, FAILED or PENDING with every container running becomes COMPLETED.
"""

from __future__ import annotations

import logging

from dockyard.lifecycle import ServiceState
from dockyard.runtime.driver import LABEL_ACCOUNT, LABEL_PROJECT, ContainerInfo
from dockyard.runtime.specs import project_labels, server_labels
from dockyard.server.control import ControlPlane
from dockyard.server.secret_restore import restore_secret_files
from dockyard.server.settle import settle_unfinished
from dockyard.store.store import Account

S = ServiceState
log = logging.getLogger("dockyard.server")


def recover(control: ControlPlane) -> list[str]:
    """Run the three steps; returns the ids of the deployments found interrupted."""
    store = control.store
    restore_secret_files(control)  # first: a reboot emptied the tmpfs they live on
    interrupted: dict[str, Account] = {}
    for account, record in store.unfinished_deployments():
        interrupted[record.id] = account
        settle_unfinished(control, account, record.project, record.id,
                          f"interrupted: the server stopped during deployment {record.id}")
        store.finish_deployment(account, record.id, "failed")
        log.warning("deployment %s of %s/%s was interrupted; marked failed", record.id,
                    account.name, record.project)
    # Only this server's containers: other servers may share the engine.
    containers = control.driver.containers(server_labels(control.server_id))
    groups: dict[tuple[str, str, str], list[ContainerInfo]] = {}
    for info in containers:
        key = (info.labels.get(LABEL_ACCOUNT, ""), info.labels.get(LABEL_PROJECT, ""),
               info.service)
        groups.setdefault(key, []).append(info)
    for (account_name, project, service), infos in sorted(groups.items()):
        owner = store.account_by_name(account_name)
        keep: list[ContainerInfo] = []
        for info in infos:
            known = owner is not None and store.deployment(owner, info.deployment) is not None
            if not known:
                _remove(control, info, "orphan: its deployment is unknown")
            elif info.deployment in interrupted and not info.is_job and \
                    info.status != "running":
                _remove(control, info, "never ran: its deployment was interrupted")
            else:
                keep.append(info)
        versions = {info.deployment for info in keep}
        if len(versions) > 1:
            old_running = [i for i in keep if i.deployment not in interrupted
                           and i.status == "running"]
            if old_running:
                for info in keep:
                    if info.deployment in interrupted:
                        _remove(control, info, "half-done replacement rolled back")
                keep = [i for i in keep if i.deployment not in interrupted]
        if owner is not None:
            _reconcile(control, owner, project, service, keep)
    _reconcile_empty(control)
    return sorted(interrupted)


def _remove(control: ControlPlane, info: ContainerInfo, why: str) -> None:
    log.warning("removing container %s (%s)", info.name, why)
    control.expect_stop(info.id)
    control.driver.remove(info.id)


def _reconcile(control: ControlPlane, account: Account, project: str, service: str,
               containers: list[ContainerInfo]) -> None:
    status = next((s for s in control.store.statuses(account, project)
                   if s.service == service), None)
    if status is None or not containers or containers[0].is_job:
        return
    running = all(c.status == "running" and c.health in (None, "healthy") for c in containers)
    # What runs belongs to the deployment that started it (after a rolled-back replacement,
    # not the interrupted one): the corrected state is recorded there.
    owner = containers[0].deployment
    if control.store.deployment(account, owner) is None:
        owner = status.deployment
    if running and status.state in (S.SERVICE_DEPLOYMENT_FAILED,
                                    S.SERVICE_DEPLOYMENT_PENDING):
        control.record(account, owner, service, S.SERVICE_DEPLOYMENT_COMPLETED,
                       "running (checked when the server started)")
    elif not running and status.state is S.SERVICE_DEPLOYMENT_COMPLETED:
        control.record(account, owner, service, S.SERVICE_DEPLOYMENT_FAILED,
                       "not running (checked when the server started)")


def _reconcile_empty(control: ControlPlane) -> None:
    """COMPLETED services whose containers are all gone: FAILED."""
    store = control.store
    for account, project in store.all_projects():
        names = {c.service for c in control.driver.containers(
            project_labels(control.placement(account, project)))}
        for status in store.statuses(account, project):
            if status.state is S.SERVICE_DEPLOYMENT_COMPLETED and status.service not in names:
                control.record(account, status.deployment, status.service,
                               S.SERVICE_DEPLOYMENT_FAILED,
                               "no container found when the server started")


def restore_ingress(control: ControlPlane) -> int:
    """Fill the ingress table from what runs (after `recover`); returns the replicas found."""
    from dockyard.server.ps import deployed_model

    replicas = []
    for info in control.driver.containers(server_labels(control.server_id)):
        owner = control.store.account_by_name(info.labels.get(LABEL_ACCOUNT, ""))
        project = info.labels.get(LABEL_PROJECT, "")
        model = deployed_model(control, owner, project, info.deployment) if owner else None
        if model is not None:
            replicas.append((info, model))
    control.ingress.restore(replicas)
    return len(replicas)
