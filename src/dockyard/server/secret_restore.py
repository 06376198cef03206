"""Secret files written again when the server starts, for the containers still there.

Secret files live on tmpfs (`server.tmpfs`): a reboot empties it, and the engine cannot start a
container whose file is gone. Before recovery looks at what runs, the server writes the files
of every container of its own whose files are missing, with the values its deployment ran:

- the config versions the deployment recorded (`deployment_configs`), when they are all kept;
- otherwise the current values, only when their keyed digest is the one the container was
  made with (its `config values` label part): a value changed since is never put under a
  container that ran with another. Such a service is left as it is; recovery marks it failed
  if it does not run, and the next `compose up` replaces it.
"""

from __future__ import annotations

import json
import logging

from dockyard.compose.models import Project, Service
from dockyard.errors import DockyardError
from dockyard.plan import config_parts
from dockyard.runtime.driver import (
    LABEL_ACCOUNT,
    LABEL_CONFIG_PARTS,
    LABEL_PROJECT,
    ContainerInfo,
)
from dockyard.runtime.specs import server_labels
from dockyard.secrets.resolve import secret_files, service_configs, values_digest
from dockyard.server.control import ControlPlane
from dockyard.server.ps import deployed_model
from dockyard.store.store import Account

log = logging.getLogger("dockyard.server")


def restore_secret_files(control: ControlPlane) -> int:
    """Write the missing secret files of this server's containers; returns how many services'
    files were written."""
    done: set[tuple[str, str, str, str]] = set()
    written = 0
    for info in control.driver.containers(server_labels(control.server_id)):
        account_name, project = info.labels.get(LABEL_ACCOUNT, ""), \
            info.labels.get(LABEL_PROJECT, "")
        key = (account_name, project, info.service, info.deployment)
        owner = control.store.account_by_name(account_name)
        if key in done or owner is None:
            continue
        done.add(key)
        model = deployed_model(control, owner, project, info.deployment)
        service = model.services.get(info.service) if model is not None else None
        if model is None or service is None or not secret_files(model, service):
            continue
        placement = control.placement(owner, project)
        if not control.secret_files.missing(placement, model, service, info.deployment):
            continue
        try:
            values = _values(control, owner, model, service, info)
        except DockyardError as exc:
            values = None
            log.warning("secret files of %s/%s/%s: %s", account_name, project, info.service,
                        exc.message)
        if values is None:
            log.warning("the secret files of %s/%s service %s (deployment %s) are gone and "
                        "its values changed since: left as it is, the next `compose up` "
                        "replaces it", account_name, project, info.service, info.deployment)
            continue
        control.secret_files.write(placement, model, service, info.deployment, values)
        written += 1
        log.info("secret files of %s/%s service %s written again", account_name, project,
                 info.service)
    return written


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
