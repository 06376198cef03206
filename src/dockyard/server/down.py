"""Taking a project down: its containers, ingress routes, secrets, network and (asked for)
volumes, each outcome noted in the deployment's log."""

from __future__ import annotations

import logging
import threading

from dockyard.errors import DockyardError
from dockyard.lifecycle import ServiceState
from dockyard.runtime.driver import ContainerInfo
from dockyard.runtime.specs import network_name, project_labels
from dockyard.server.control import ControlPlane
from dockyard.server.legacy import is_legacy, remove_legacy_network
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
    containers = control.driver.containers(owner, detail=False)  # one engine call
    services = sorted({c.service for c in containers} |
                      {s.service for s in control.store.statuses(account, project)})
    control.ingress.forget(account.name, project)
    control.secret_files.remove_project(placement)
    for info in containers:
        control.expect_stop(info.id)
    threads = [threading.Thread(target=_stop_remove, args=(control, info))
               for info in containers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for service in services:
        control.record(account, deployment, service, S.DEPLOYMENT_SCALED_IN,
                       "removed by `down`")
    notes: list[str] = []
    complete = True
    try:
        control.driver.remove_network(network_name(placement), owner)
    except DockyardError as exc:  # still in use (another server's containers): keep it
        log.warning("network %s kept: %s", network_name(placement), exc.message)
        notes.append(f"network kept: {scrub_engine_text(exc.message, control.settings.data)}")
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


def _stop_remove(control: ControlPlane, info: ContainerInfo) -> None:
    control.driver.stop(info.id)
    control.driver.remove(info.id)


