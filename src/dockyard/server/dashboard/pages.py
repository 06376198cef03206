"""The dashboard's pages (GET): projects, a project, its deployments, logs and configs, and
the two live streams. Each reads through the server's own functions as the viewer's account,
so another account's project answers 404 exactly as one that does not exist."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from dockyard.server.control import ControlPlane
from dockyard.server.dashboard import live, views
from dockyard.server.dashboard.web import book, guarded, render, require
from dockyard.server.log_sources import MAX_FILTER
from dockyard.server.log_window import MAX_LINES
from dockyard.server.routes.common import ProjectName, project_exists
from dockyard.server.routes.logs import log_response
from dockyard.server.streams import FollowSlots, SSEResponse


def add_pages(router: APIRouter, control: ControlPlane, follows: FollowSlots,
              watches: FollowSlots) -> None:
    store = control.store

    @router.get("/", include_in_schema=False)
    @guarded
    async def projects(request: Request) -> Response:
        who = await require(request)
        rows = await run_in_threadpool(views.projects, control, who.account)
        return render(request, "projects.html", who=who, projects=rows, tone=views.tone)

    @router.get("/projects/{project}", include_in_schema=False)
    @guarded
    async def project(request: Request, project: ProjectName) -> Response:
        who = await require(request)
        view = await run_in_threadpool(views.project, control, who.account, project)
        return render(request, "project.html", who=who, project=project, tab="services",
                      view=view)

    @router.get("/projects/{project}/services/stream", include_in_schema=False,
                response_model=None)
    @guarded
    async def services_stream(request: Request, project: ProjectName) -> Response:
        who = await require(request)
        await run_in_threadpool(project_exists, control, who.account, project)
        release = watches.take(who.account.name)  # TooManyFollows: 429, as the API's
        return SSEResponse(live.services_events(control, book(request), who, project),
                           on_close=release)

    @router.get("/projects/{project}/deployments", include_in_schema=False)
    @guarded
    async def deployments(request: Request, project: ProjectName) -> Response:
        who = await require(request)
        rows = await run_in_threadpool(views.history, control, who.account, project)
        return render(request, "deployments.html", who=who, project=project,
                      tab="deployments", deployments=rows, tone=views.tone)

    @router.get("/projects/{project}/deployments/{deployment}", include_in_schema=False)
    @guarded
    async def deployment(request: Request, project: ProjectName,
                         deployment: str) -> Response:
        who = await require(request)
        found = await run_in_threadpool(views.deployment, control, who.account, project,
                                        deployment)
        return render(request, "deployment.html", who=who, project=project,
                      tab="deployments", d=found, tone=views.tone)

    @router.get("/projects/{project}/logs", include_in_schema=False)
    @guarded
    async def logs(request: Request, project: ProjectName, service: str = "",
                   type: str = "all",
                   text: Annotated[str, Query(alias="filter", max_length=MAX_FILTER)] = ""
                   ) -> Response:
        who = await require(request)

        def names() -> list[str]:
            project_exists(control, who.account, project)
            return sorted({s.service for s in store.statuses(who.account, project)})

        services = await run_in_threadpool(names)
        kind = type if type in ("all", "build", "run") else "all"
        # As the CLI: run logs are followed (`tail`); build logs are the last build of each
        # service (`logs --type build`), followed while a deployment builds.
        follow = kind != "build" or control.is_deploying(who.account.name, project)
        return render(request, "logs.html", who=who, project=project, tab="logs",
                      services=services, service=service if service in services else "",
                      kind=kind, follow=follow, text=text)

    @router.get("/projects/{project}/logs/stream", include_in_schema=False,
                response_model=None)
    @guarded
    async def logs_stream(request: Request, project: ProjectName,
                          service: Annotated[list[str] | None, Query()] = None,
                          type: str = "all", follow: bool = False,
                          tail: Annotated[int | None, Query(ge=0, le=MAX_LINES)] = None,
                          text: Annotated[str | None, Query(alias="filter",
                                                            max_length=MAX_FILTER)] = None,
                          ) -> Response:
        who = await require(request)
        stream: SSEResponse = await log_response(
            control, follows, who.account, project, [s for s in service or [] if s],
            follow=follow, kind=type, tail=tail, text=text)
        return stream

    @router.get("/projects/{project}/configs", include_in_schema=False)
    @guarded
    async def configs(request: Request, project: ProjectName) -> Response:
        who = await require(request)
        names = await run_in_threadpool(views.config_names, control, who.account, project)
        return render(request, "configs.html", who=who, project=project, tab="configs",
                      configs=names)
