"""What several routers share: path parameters, and the 404s of a project or deployment the
account does not have."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from dockyard.api_errors import NotFound
from dockyard.server.control import ControlPlane
from dockyard.store.store import Account, DeploymentRecord

MAX_QUERY_INT = 2**62  # an integer query parameter beyond any id or count (422 above)
PROJECT_NAME = r"^[a-z0-9][a-z0-9_-]*$"

ProjectName = Annotated[str, Path(pattern=PROJECT_NAME, max_length=253)]


def project_exists(control: ControlPlane, who: Account, project: str) -> None:
    """404 for a project this account does not have, as for one nobody has."""
    if project not in control.store.projects(who):
        raise NotFound(f"project {project!r} not found",
                       hint="`dockyard deployments --all` lists your projects")


def deployment_of(control: ControlPlane, who: Account, deployment: str) -> DeploymentRecord:
    """The account's deployment `deployment`, or 404."""
    record = control.store.deployment(who, deployment)
    if record is None:
        raise NotFound(f"no deployment {deployment!r}",
                       hint="`dockyard deployments` lists them")
    return record
