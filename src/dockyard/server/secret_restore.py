"""Secret files written again when the server starts, for the containers still there.

Secret files live on tmpfs (`server.tmpfs`): a reboot empties it, and the engine cannot start a
container whose file is gone. Before recovery looks at what runs, the server removes the
directories no container uses (also those an older Dockyard wrote on disk, in
`<data>/secrets`), and writes the files of every container of its own whose files are missing,
with the values its deployment ran:

- the config versions the deployment recorded (`deployment_configs`), when they are all kept;
- otherwise the current values, only when their keyed digest is the one the container was
  made with (its `config values` label part): a value changed since is never put under a
  container that ran with another. Such a service is left as it is; recovery marks it failed
  if it does not run, and the next `compose up` replaces it.

Containers of a service recorded as running that the engine could not start without their
files (at boot) are started again once the files are back.
"""

from __future__ import annotations

import json
import logging

from dockyard.compose.models import Project, Service
from dockyard.errors import DockyardError
from dockyard.lifecycle import ServiceState
from dockyard.plan import config_parts
from dockyard.runtime.driver import (
    LABEL_ACCOUNT,
    LABEL_CONFIG_PARTS,
    LABEL_PROJECT,
    ContainerInfo,
)
from dockyard.runtime.specs import scope, server_labels
from dockyard.secrets.resolve import secret_files, service_configs, values_digest
from dockyard.server.control import ControlPlane
from dockyard.server.ps import deployed_model
from dockyard.server.secret_files import needs_files
from dockyard.store.store import Account

log = logging.getLogger("dockyard.server")


def restore_secret_files(control: ControlPlane) -> int:
    """Remove the secret files no container uses, write the missing ones of this server's
    containers, and start again those the engine could not start without them; returns how
    many services' files were written."""
    found = control.driver.containers(server_labels(control.server_id))
    _sweep(control, found)
    groups: dict[tuple[str, str, str, str], list[ContainerInfo]] = {}
    for info in filter(needs_files, found):
        groups.setdefault((info.labels.get(LABEL_ACCOUNT, ""), info.labels.get(LABEL_PROJECT, ""),
                           info.service, info.deployment), []).append(info)
    written = 0
    for (account_name, project, name, deployment), infos in sorted(groups.items()):
        owner = control.store.account_by_name(account_name)
        model = deployed_model(control, owner, project, deployment) if owner else None
        service = model.services.get(name) if model is not None else None
        if owner is None or model is None or service is None or \
                not secret_files(model, service):
            continue
        placement = control.placement(owner, project)
        if not control.secret_files.missing(placement, model, service, deployment):
            continue
        where = f"{account_name}/{project} service {name} (deployment {deployment})"
        try:
            values = _values(control, owner, model, service, infos[0])
        except DockyardError as exc:
            log.warning("the secret files of %s cannot be written again: %s", where,
                        exc.message)
            continue
        if values is None:
            log.warning("the secret files of %s are gone and its values changed since: left "
                        "as it is, the next `compose up` replaces it", where)
            continue
        control.secret_files.write(placement, model, service, deployment, values)
        written += 1
        log.info("secret files of %s written again", where)
        _start_again(control, owner, infos)
    return written


def _start_again(control: ControlPlane, account: Account, infos: list[ContainerInfo]) -> None:
    """Containers of a service that was running (its recorded state says so) which the engine
    could not start while their files were missing (after a reboot): started now, the same
    containers, so recovery finds them running."""
    for info in infos:
        if info.is_job or info.status not in ("exited", "created"):
            continue
        if control.current_state(account, info.deployment, info.service) is \
                ServiceState.SERVICE_DEPLOYMENT_COMPLETED:
            log.info("starting container %s again (its secret files were missing)", info.name)
            try:
                control.driver.restart(info.id)
            except DockyardError as exc:
                log.warning("container %s could not start: %s", info.name, exc.message)


def _sweep(control: ControlPlane, containers: list[ContainerInfo]) -> None:
    """Directories no container uses go (their containers were removed while the server was
    stopped); those an older Dockyard wrote on disk are named while a container still uses
    them."""
    used: dict[str, set[str]] = {}
    for info in filter(needs_files, containers):
        owner = control.store.account_by_name(info.labels.get(LABEL_ACCOUNT, ""))
        if owner is not None:
            placement = control.placement(owner, info.labels.get(LABEL_PROJECT, ""))
            used.setdefault(scope(placement), set()).add(
                control.secret_files.service_dir(placement, info.service,
                                                 info.deployment).name)
    for directory in control.secret_files.sweep(used):
        log.warning("secret files on disk (written by an older Dockyard) are still used by "
                    "%s: `compose up --force` moves that project's to memory", directory)


def _values(control: ControlPlane, account: Account, project: Project, service: Service,
            info: ContainerInfo) -> dict[str, str] | None:
    """The values the container's deployment ran, as the module says; None if unknown."""
    names = [f.config for f in secret_files(project, service)]
    versions = control.store.deployment_facts(account, info.deployment).configs
    if all(name in versions for name in names):
        tokens = control.store.encrypted_config_versions(
            account, project.name, {name: versions[name] for name in names})
        if set(tokens) >= set(names):
            cipher = control.configs.cipher
            return {name: cipher.decrypt(tokens[name], name=name) for name in names}
    current = control.configs.values(account, project.name)
    digest = values_digest(control.configs.digest_key, current,
                           service_configs(project, service))
    try:
        made_with = json.loads(info.labels.get(LABEL_CONFIG_PARTS) or "{}")
    except ValueError:
        return None
    wanted = config_parts(service, None, digest).get("config values")
    return current if made_with.get("config values") == wanted else None
