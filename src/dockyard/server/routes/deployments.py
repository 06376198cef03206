"""`/v1/deployments`: the account's deployment history, one deployment's detail and its
state events (SSE), and redeploying one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from dockyard.server import streams
from dockyard.server.auth import Who
from dockyard.server.control import ControlPlane
from dockyard.server.deployments import start_redeploy
from dockyard.server.down import DOWN_NOTES
from dockyard.server.routes.common import MAX_QUERY_INT, deployment_of
from dockyard.server.streams import FollowSlots, SSEResponse
from dockyard.wire_models import (
    DeploymentDetail,
    DeploymentImage,
    DeploymentStarted,
    DeploymentSummary,
    RedeployBody,
    StateEvent,
)

__all__ = ["RedeployBody", "add_routes"]


def add_routes(api: APIRouter, control: ControlPlane, watches: FollowSlots) -> None:
    """`watches` counts the open event streams per account."""
    store = control.store

    @api.get("/v1/deployments")
    def deployments(who: Who, project: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 50
                    ) -> list[DeploymentSummary]:
        out = []
        for record in store.deployments(who, project, limit=limit):
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
        started = start_redeploy(control, who, deployment, pull=body.pull)
        return DeploymentStarted(deployment=started, project=record.project)

    @api.get("/v1/deployments/{deployment}")
    def deployment_detail(deployment: str, who: Who) -> DeploymentDetail:
        record = deployment_of(control, who, deployment)
        images = store.deployment_images(who, deployment)
        return DeploymentDetail(
            id=record.id, project=record.project, action=record.action,
            status=record.status, created_at=record.created_at.isoformat(),
            images={service: DeploymentImage(reference=reference, digest=digest,
                                             image_id=image_id)
                    for service, (reference, digest, image_id) in sorted(images.items())},
            events=[StateEvent.from_json(e.event.to_json() | {"id": e.id})
                    for e in store.events_since(who, deployment)],
            notes=store.build_log(who, deployment, DOWN_NOTES))

    @api.get("/v1/deployments/{deployment}/events", response_model=None)
    async def deployment_events(
            deployment: str, who: Who,
            after: Annotated[int, Query(ge=0, le=MAX_QUERY_INT)] = 0) -> SSEResponse:
        """State events as they are recorded (async: an open stream holds no worker thread)."""
        await run_in_threadpool(deployment_of, control, who, deployment)
        release = watches.take(who.name)  # TooManyFollows: 429
        return SSEResponse(streams.deployment_events(control, who, deployment, after),
                           on_close=release)

