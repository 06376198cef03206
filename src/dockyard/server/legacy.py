"""Projects deployed before engine names were injective, carried over without losing data.

Older servers named a project's objects `dy-<account>-<project>` (`specs.legacy_scope`), which
two accounts could share; names now end in a hash of (server, account, project). Docker cannot
rename a volume, and a database must not come up on an empty one, so on the first deployment
after an upgrade:

- a named volume whose new name does not exist yet but whose old name does, *with this
  server's, account's and project's labels*, keeps its old name (`Placement.volume_names`);
  an old-named volume with anyone else's labels is never adopted;
- containers whose names do not carry the new prefix are replaced (once), so that every
  service joins the project's new network;
- the old network is removed once nothing uses it, if its labels say it is this project's.
"""

from __future__ import annotations

import dataclasses

from dockyard.compose.models import Project
from dockyard.errors import DockyardError
from dockyard.runtime.driver import ContainerInfo, Driver
from dockyard.runtime.specs import Placement, legacy_scope, project_labels, scope


def with_legacy_volumes(driver: Driver, placement: Placement, project: Project) -> Placement:
    """`placement`, keeping the old name of each volume that exists only under it."""
    owned = set(driver.volumes(project_labels(placement)))
    kept: dict[str, str] = {}
    for volume, resource in project.volumes.items():
        if resource.external:
            continue
        new, old = f"{scope(placement)}_{volume}", f"{legacy_scope(placement)}_{volume}"
        if new not in owned and old in owned:
            kept[volume] = old
    return dataclasses.replace(placement, volume_names=kept) if kept else placement


def is_legacy(placement: Placement, container: ContainerInfo) -> bool:
    """Whether `container` was named by an older server (so it is on the old network)."""
    return not container.name.startswith(scope(placement) + "-")


def remove_legacy_network(driver: Driver, placement: Placement) -> None:
    """The project's old network, if it is this project's and nothing uses it any more."""
    try:
        driver.remove_network(legacy_scope(placement), project_labels(placement))
    except DockyardError:
        pass  # still in use, or not ours: kept
