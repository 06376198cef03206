"""`/v1/projects`: the account's projects, deploying one (`up`, its `--dry-run` plan), taking
it down, and its services (`ps`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from dockyard.server import deployments, ps
from dockyard.server.auth import Who
from dockyard.server.control import ControlPlane
from dockyard.server.deploy_request import BuildInput
from dockyard.server.preview import preview
from dockyard.server.routes.common import PROJECT_NAME, project_exists
from dockyard.wire_models import (
    BuildBody,
    DeployBody,
    DeploymentStarted,
    DownBody,
    PlanAnswer,
    PlannedService,
    ServiceStatus,
)

__all__ = ["BuildBody", "DeployBody", "DownBody", "add_routes"]


def _builds(body: DeployBody) -> dict[str, BuildInput]:
    return {name: BuildInput(b.digest, b.dockerfile, dict(b.args), b.target, b.pull)
            for name, b in body.builds.items()}


def add_routes(api: APIRouter, control: ControlPlane) -> None:
    store = control.store

    @api.get("/v1/projects")
    def projects(who: Who) -> list[str]:
        return store.projects(who)

    @api.post("/v1/projects/{project}/deployments", status_code=202)
    def deploy(project: Annotated[str, Path(pattern=PROJECT_NAME, max_length=253)],
               body: DeployBody, who: Who) -> DeploymentStarted:
        deployment = deployments.start_deployment(control, who, project, body.project,
                                                  _builds(body), force=body.force,
                                                  rebuild=body.build, pull=body.pull)
        return DeploymentStarted(deployment=deployment, project=project)

    @api.post("/v1/projects/{project}/plan")
    def plan_deployment(project: Annotated[str, Path(pattern=PROJECT_NAME, max_length=253)],
                        body: DeployBody, who: Who) -> PlanAnswer:
        """`up --dry-run`: what a deployment with this body would do; nothing changes."""
        found = preview(control, who, project, body.project, _builds(body), force=body.force,
                        rebuild=body.build, pull=body.pull)
        return PlanAnswer(project=found.project, builds=list(found.builds),
                          pulls=list(found.pulls),
                          services=[PlannedService.from_json(a.to_json()) for a in found.plan])

    @api.post("/v1/projects/{project}/down", status_code=202)
    def down(project: str, body: DownBody, who: Who) -> DeploymentStarted:
        deployment = deployments.start_down(control, who, project, volumes=body.volumes)
        return DeploymentStarted(deployment=deployment, project=project)

    @api.get("/v1/projects/{project}/services")
    def services(project: str, who: Who) -> list[ServiceStatus]:
        project_exists(control, who, project)
        return [row.to_wire() for row in ps.services(control, who, project)]
