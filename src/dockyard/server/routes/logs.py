"""`GET /v1/projects/<project>/logs`: build and run output as Server-Sent Events
(`server.log_stream`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from dockyard.errors import DockyardError
from dockyard.server import log_stream
from dockyard.server.auth import Who
from dockyard.server.control import ControlPlane
from dockyard.server.log_sources import MAX_FILTER
from dockyard.server.log_window import MAX_LINES, clamp_lines
from dockyard.server.model_endpoint import with_model_key
from dockyard.server.streams import FollowSlots, SSEResponse
from dockyard.store.store import Account


def add_routes(api: APIRouter, control: ControlPlane, follows: FollowSlots) -> None:
    """`follows` counts the open follows per account."""

    @api.get("/v1/projects/{project}/logs", response_model=None)
    async def logs(project: str, who: Who, service: Annotated[list[str] | None, Query()] = None,
                   follow: bool = False, since: datetime | None = None,
                   until: datetime | None = None, type: str = "all",
                   deployment: str | None = None,
                   tail: Annotated[int | None, Query(ge=0, le=MAX_LINES)] = None,
                   limit: Annotated[int | None, Query(ge=1, le=MAX_LINES)] = None,
                   text: Annotated[str | None, Query(alias="filter",
                                                     max_length=MAX_FILTER)] = None,
                   ) -> SSEResponse:
        """The log as SSE (log_stream): bounded without follow, counted per account with it;
        `filter` keeps the lines containing a text, ignoring case, after masking."""
        return await log_response(control, follows, who, project, list(service or []),
                                  follow=follow, since=since, until=until, kind=type,
                                  deployment=deployment, tail=tail, limit=limit, text=text)


async def log_response(control: ControlPlane, follows: FollowSlots, who: Account, project: str,
                       services: list[str], *, follow: bool = False,
                       since: datetime | None = None, until: datetime | None = None,
                       kind: str = "all", deployment: str | None = None,
                       tail: int | None = None, limit: int | None = None,
                       text: str | None = None) -> SSEResponse:
    """A project's log as SSE, config values masked: the API's answer, and the dashboard's."""
    if kind not in ("all", "build", "run"):
        raise DockyardError(f"unknown log type {kind!r}", hint="use build, run or all")
    chosen, only = await run_in_threadpool(log_stream.resolve, control, who, project,
                                           deployment)
    redact = with_model_key(control.settings, await run_in_threadpool(
        control.configs.redactor, who, project))
    query = log_stream.LogQuery(
        services=services, follow=follow, since=log_stream.utc(since),
        until=log_stream.utc(until), kind=kind, deployment=chosen,
        only_that_deployment=only, tail=tail, limit=clamp_lines(limit), filter=text)
    release = follows.take(who.name) if follow else None  # TooManyFollows: 429
    return SSEResponse(log_stream.log_events(control, who, project, query, redact),
                       on_close=release)

