"""`/v1/deployments`: the account's deployment history, one deployment's detail (all it
recorded) and its state events (SSE), redeploying one, and rolling a project back to one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool

from dockyard.server import streams
from dockyard.server.auth import Who
from dockyard.server.control import ControlPlane
from dockyard.server.deployments import start_redeploy
from dockyard.server.down import DOWN_NOTES
from dockyard.server.rollback import preview_rollback, start_rollback
from dockyard.server.routes.common import MAX_QUERY_INT, PROJECT_NAME, deployment_of
from dockyard.server.streams import FollowSlots, SSEResponse
from dockyard.wire_models import (
    DeploymentDetail,
    DeploymentImage,
    DeploymentRecordBody,
    DeploymentStarted,
    DeploymentSummary,
    PlanAnswer,
    PlannedService,
    RedeployBody,
    RollbackBody,
    StateEvent,
)

__all__ = ["RedeployBody", "RollbackBody", "add_routes"]

STATUSES = "^(running|succeeded|failed|refused)$"  # a deployment's status


def add_routes(api: APIRouter, control: ControlPlane, watches: FollowSlots) -> None:
    """`watches` counts the open event streams per account."""
    store = control.store

    @api.get("/v1/deployments")
    def deployments(who: Who, project: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                    status: Annotated[str | None, Query(pattern=STATUSES)] = None
                    ) -> list[DeploymentSummary]:
        out = []
        for record in store.deployments(who, project, limit=limit, status=status):
            data = store.deployed_project(who, record.id) or {}
            out.append(DeploymentSummary(
                id=record.id, project=record.project, action=record.action,
                status=record.status, created_at=record.created_at.isoformat(),
                finished_at=record.finished_at.isoformat() if record.finished_at else None,
                services=sorted((data.get("services") or {}).keys())))
        return out

    @api.post("/v1/deployments/{deployment}/redeploy", status_code=202)
    def redeploy(deployment: str, body: RedeployBody, who: Who) -> DeploymentStarted:
        """Deploy again exactly the images `deployment` ran (pinned by digest)."""
        record = deployment_of(control, who, deployment)
        started = start_redeploy(control, who, deployment, pull=body.pull, origin=body.origin)
        return DeploymentStarted(deployment=started, project=record.project,
                                 rollback_of=deployment)

    @api.post("/v1/projects/{project}/rollback", status_code=202)
    def rollback(project: Annotated[str, Path(pattern=PROJECT_NAME, max_length=253)],
                 body: RollbackBody, who: Who) -> DeploymentStarted:
        """Run again exactly what `body.deployment` (by default the last deployment that
        completed before the current one) ran: images, configs and project."""
        started, target = start_rollback(control, who, project, body.deployment,
                                         pull=body.pull, origin=body.origin)
        return DeploymentStarted(deployment=started, project=project, rollback_of=target)

    @api.post("/v1/projects/{project}/rollback/plan")
    def rollback_plan(project: Annotated[str, Path(pattern=PROJECT_NAME, max_length=253)],
                      body: RollbackBody, who: Who) -> PlanAnswer:
        """What `rollback` with this body would change; nothing changes."""
        found, target = preview_rollback(control, who, project, body.deployment,
                                         pull=body.pull)
        return PlanAnswer(project=found.project, builds=list(found.builds),
                          pulls=list(found.pulls), rollback_of=target,
                          services=[PlannedService.from_json(a.to_json()) for a in found.plan])

    @api.get("/v1/deployments/{deployment}")
    def deployment_detail(deployment: str, who: Who) -> DeploymentDetail:
        record = deployment_of(control, who, deployment)
        images = store.deployment_images(who, deployment)
        facts = store.deployment_facts(who, deployment)
        events = [StateEvent.from_json(e.event.to_json() | {"id": e.id})
                  for e in store.events_since(who, deployment)]
        return DeploymentDetail(
            id=record.id, project=record.project, action=record.action,
            status=record.status, created_at=record.created_at.isoformat(),
            finished_at=record.finished_at.isoformat() if record.finished_at else None,
            images={service: DeploymentImage(reference=reference, digest=digest,
                                             image_id=image_id)
                    for service, (reference, digest, image_id) in sorted(images.items())},
            events=events, notes=store.build_log(who, deployment, DOWN_NOTES),
            record=DeploymentRecordBody.from_json(facts.record), configs=facts.configs,
            plan=None if facts.plan is None else [PlannedService.from_json(item)
                                                  for item in facts.plan],
            outcome={event.service: event.state for event in events},  # the last of each
            compose=store.deployed_project(who, deployment) or {})

    @api.get("/v1/deployments/{deployment}/events", response_model=None)
    async def deployment_events(
            deployment: str, who: Who,
            after: Annotated[int, Query(ge=0, le=MAX_QUERY_INT)] = 0) -> SSEResponse:
        """State events as they are recorded (async: an open stream holds no worker thread)."""
        await run_in_threadpool(deployment_of, control, who, deployment)
        release = watches.take(who.name)  # TooManyFollows: 429
        return SSEResponse(streams.deployment_events(control, who, deployment, after),
                           on_close=release)

