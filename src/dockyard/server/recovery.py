"""What the server does when it starts: settle what a crash interrupted, match the engine.

0. The secret files of this server's containers that are missing (a reboot emptied the tmpfs
   they live on) are written again (`secret_restore`), before anything is checked.
1. Every deployment still marked running was interrupted (the server died): its services that
   had not settled are marked failed with that reason, and the deployment is failed.
2. Containers are matched with the store: a container whose deployment the store does not know
   is an orphan and is removed; containers of an interrupted deployment that never ran are
   removed.
3. A service the interrupted deployment was replacing (`_half_done`) keeps what serves: of
   the replicas that deployment asks for, each place goes first to a previous replica still
   running (or restarting), then to a new replica that runs, healthy ones first. So a batched
   update keeps the batches it finished (their old replicas are gone) and drops the batch it
   was in (its old replicas still serve); a new replica still starting is kept only where no
   old one is left to serve (stop-first: its old one went first); one reported unhealthy
   never. Previous replicas that no longer run go when new ones are kept (they were being
   retired). Unless what stays is the new version alone, complete and healthy (the update
   was done), the service is FAILED in the interrupted deployment, saying what runs: "the
   server stopped during the update: 2 of 3 replicas run the new version, 1 the previous
   one; `dockyard compose up` finishes it, ..." (the next `up` plans mixed versions as a
   replacement). The ingress is filled afterwards from what runs (`restore_ingress`): it
   serves exactly what is kept, a replica not healthy yet resting until it is.
4. Each service's recorded state is checked against what runs: COMPLETED with nothing running
   becomes FAILED, FAILED or PENDING with every container running one version (its
   configuration hash) becomes COMPLETED.
"""

from __future__ import annotations

import logging

from dockyard.lifecycle import ServiceState
from dockyard.plan import desired_replicas
from dockyard.runtime.driver import LABEL_ACCOUNT, LABEL_PROJECT, LABEL_REPLICA, ContainerInfo
from dockyard.runtime.specs import placement_fields, project_labels, server_labels
from dockyard.server.control import ControlPlane
from dockyard.server.ps import deployed_model
from dockyard.server.secret_restore import restore_secret_files
from dockyard.server.settle import settle_unfinished
from dockyard.store.store import Account

S = ServiceState
log = logging.getLogger("dockyard.server")
SERVING = ("running", "restarting")  # a previous replica in these holds its place


def recover(control: ControlPlane) -> list[str]:
    """Run the steps; returns the ids of the deployments found interrupted."""
    store = control.store
    restore_secret_files(control)  # first: a reboot emptied the tmpfs they live on
    interrupted: dict[str, Account] = {}
    cut: dict[tuple[str, str, str], str] = {}  # (account, project, service) -> deployment
    for account, record in store.unfinished_deployments():
        interrupted[record.id] = account
        for service in settle_unfinished(
                control, account, record.project, record.id,
                f"interrupted: the server stopped during deployment {record.id}"):
            cut[(account.name, record.project, service)] = record.id
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
        if owner is None:
            continue
        deployment = cut.get((account_name, project, service))
        if deployment is not None and keep and not keep[0].is_job and \
                any(i.deployment == deployment for i in keep):
            keep, reason = _half_done(control, owner, project, deployment, keep)
            if reason:
                control.record(owner, deployment, service, S.SERVICE_DEPLOYMENT_FAILED, reason)
                continue
        _reconcile(control, owner, project, service, keep)
    _reconcile_empty(control)
    return sorted(interrupted)


def _half_done(control: ControlPlane, account: Account, project: str, deployment: str,
               containers: list[ContainerInfo]) -> tuple[list[ContainerInfo], str]:
    """What stays of a service `deployment` was replacing when the server stopped (the
    module's step 3), and why it is FAILED ("" when what stays is one version, complete or
    the previous one: the state check after it says)."""
    new = [i for i in containers if i.deployment == deployment]
    old = [i for i in containers if i.deployment != deployment]
    serving = [i for i in old if i.status in SERVING]
    places = _replicas(control, account, project, deployment, new[0].service,
                       fallback=len(serving) or len(new))
    free = max(places - len(serving), 0)
    healthy = sorted((i for i in new if i.health in (None, "healthy")), key=_replica)
    starting = sorted((i for i in new if i.health == "starting"), key=_replica)
    kept = (healthy + starting)[:free]  # a starting one only where healthy ones leave room
    ids = {i.id for i in kept}
    for info in new:
        if info.id not in ids:
            _remove(control, info, f"its batch of deployment {deployment} was cut short")
    if not kept:
        return old, ""
    for info in old:
        if info.status not in SERVING:
            _remove(control, info, "a previous replica being retired")
    waiting = len([i for i in kept if i.health == "starting"])
    if not serving and not waiting and len(kept) >= places:
        return kept, ""
    reason = (f"the server stopped during the update: {len(kept)} of {places} replicas run "
              f"the new version" + (f", {len(serving)} the previous one" if serving else "") +
              (f" ({waiting} not healthy yet)" if waiting else "") +
              "; `dockyard compose up` finishes it, `dockyard rollback` goes back to the "
              "previous deployment")
    return serving + kept, reason


def _replicas(control: ControlPlane, account: Account, project: str, deployment: str,
              service: str, fallback: int) -> int:
    """How many replicas `deployment` runs of `service` (`fallback` when its project is not
    known: an older store)."""
    model = deployed_model(control, account, project, deployment)
    found = model.services.get(service) if model is not None else None
    if found is None:
        return fallback
    nodes = control.driver.global_replicas(placement_fields(found)[0]) \
        if found.deploy is not None and found.deploy.mode == "global" else 1
    return desired_replicas(found, nodes)


def _replica(info: ContainerInfo) -> int:
    return int(info.labels.get(LABEL_REPLICA, "0") or 0)


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
    # Mixed versions (an update paused or cut short) are not the COMPLETED of any deployment.
    one_version = len({c.config_hash for c in containers}) == 1
    # What runs belongs to the deployment that started it (after a rolled-back replacement,
    # not the interrupted one): the corrected state is recorded there.
    owner = containers[0].deployment
    if control.store.deployment(account, owner) is None:
        owner = status.deployment
    if running and one_version and status.state in (S.SERVICE_DEPLOYMENT_FAILED,
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
    replicas = []
    for info in control.driver.containers(server_labels(control.server_id)):
        owner = control.store.account_by_name(info.labels.get(LABEL_ACCOUNT, ""))
        project = info.labels.get(LABEL_PROJECT, "")
        model = deployed_model(control, owner, project, info.deployment) if owner else None
        if model is not None and owner is not None:
            record = control.store.deployment(owner, info.deployment)
            replicas.append((record.created_at.timestamp() if record else 0.0, info, model))
    # Newest deployment first: a service left on two versions (an interrupted rolling update)
    # is routed as its newest version says (`Ingress.restore` takes a service's routes from
    # the first replica it meets).
    replicas.sort(key=lambda found: -found[0])
    control.ingress.restore([(info, model) for _, info, model in replicas])
    return len(replicas)
