"""`/v1/projects`: the account's projects, deploying one (`up`, its `--dry-run` plan), taking
it down, and its services (`ps`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from dockyard.server import deployments, expiry, ps
from dockyard.server.auth import Who
from dockyard.server.control import ControlPlane
from dockyard.server.deploy_request import BuildInput
from dockyard.server.preview import preview
from dockyard.server.restart import start_restart
from dockyard.server.routes.common import PROJECT_NAME, project_exists
from dockyard.store.store import ProjectOverview
from dockyard.wire_models import (
    BuildBody,
    DeployBody,
    DeploymentStarted,
    DownBody,
    PlanAnswer,
    PlannedService,
    ProjectSummary,
    RestartBody,
    ServiceStatus,
)

__all__ = ["BuildBody", "DeployBody", "DownBody", "add_routes"]


def _builds(body: DeployBody) -> dict[str, BuildInput]:
    return {name: BuildInput(b.digest, b.dockerfile, dict(b.args), b.target, b.pull)
            for name, b in body.builds.items()}


def add_routes(api: APIRouter, control: ControlPlane) -> None:
    store = control.store

    @api.get("/v1/projects")
    def projects(who: Who) -> list[ProjectSummary]:
        """`compose ls`: each project's latest deployment, services by state, deadline."""
        return [_summary(item) for item in store.project_overviews(who)]

    @api.post("/v1/projects/{project}/deployments", status_code=202)
    def deploy(project: Annotated[str, Path(pattern=PROJECT_NAME, max_length=253)],
               body: DeployBody, who: Who) -> DeploymentStarted:
        expiry.check_ttl(body.ttl)
        deployment = deployments.start_deployment(
            control, who, project, body.project, _builds(body), force=body.force,
            rebuild=body.build, pull=body.pull, origin=body.origin,
            rollback_on_failure=body.rollback_on_failure, services=body.services)
        expiry.after_up(control, who, project, deployment, body.ttl, body.ttl_volumes)
        return DeploymentStarted(deployment=deployment, project=project)

    @api.post("/v1/projects/{project}/plan")
    def plan_deployment(project: Annotated[str, Path(pattern=PROJECT_NAME, max_length=253)],
                        body: DeployBody, who: Who) -> PlanAnswer:
        """`up --dry-run`: what a deployment with this body would do; nothing changes."""
        found = preview(control, who, project, body.project, _builds(body), force=body.force,
                        rebuild=body.build, pull=body.pull, services=body.services)
        return PlanAnswer(project=found.project, builds=list(found.builds),
                          pulls=list(found.pulls),
                          services=[PlannedService.from_json(a.to_json()) for a in found.plan])

    @api.post("/v1/projects/{project}/down", status_code=202)
    def down(project: str, body: DownBody, who: Who) -> DeploymentStarted:
        deployment = deployments.start_down(control, who, project, volumes=body.volumes,
                                            services=body.services, force=body.force)
        if not body.services:
            expiry.clear_deadline(control, who, project)  # taken down: nothing left to expire
        return DeploymentStarted(deployment=deployment, project=project)

    @api.post("/v1/projects/{project}/restart", status_code=202)
    def restart(project: str, body: RestartBody, who: Who) -> DeploymentStarted:
        """`compose restart`: replicas one at a time through the ingress (`server.restart`)."""
        deployment = start_restart(control, who, project, body.services)
        return DeploymentStarted(deployment=deployment, project=project)

    @api.get("/v1/projects/{project}/services")
    def services(project: str, who: Who) -> list[ServiceStatus]:
        project_exists(control, who, project)
        rows = [row.to_wire() for row in ps.services(control, who, project)]
        deadline = store.expiry(who, project)
        for row in rows:  # the project's, on each row: `ps --json` stays a list of services
            row.expires_at = deadline.expires_at.isoformat() if deadline else None
        return rows


def _summary(item: ProjectOverview) -> ProjectSummary:
    latest, deadline = item.latest, item.expiry
    return ProjectSummary(
        name=item.name, deployment=latest.id if latest else None,
        action=latest.action if latest else None, status=latest.status if latest else None,
        created_at=latest.created_at.isoformat() if latest else None,
        services={state.name: count for state, count in sorted(item.states.items())},
        expires_at=deadline[0].isoformat() if deadline else None,
        expire_volumes=deadline[1] if deadline else False)
