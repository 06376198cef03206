"""What the dashboard changes (POST, each CSRF-checked): set and remove a config, roll a
project back to a deployment, take it down. The last two ask first: a confirmation page whose
form must be sent back with the project's name typed in.

Each calls the function the API route calls (`Configs.set`/`remove`,
`rollback.start_rollback`, `deployments.start_down`), as the viewer's account.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from dockyard import __version__
from dockyard.server import deployments, expiry
from dockyard.server.control import ControlPlane
from dockyard.server.dashboard.web import (
    Refused,
    Viewer,
    changing,
    guarded,
    render,
    require,
    see_other,
)
from dockyard.server.rollback import preview_rollback, start_rollback
from dockyard.server.routes.common import ProjectName, project_exists
from dockyard.wire_models import DeployOrigin


def origin(who: Viewer) -> DeployOrigin:
    """What a deployment started here records as its origin."""
    return DeployOrigin(client_version=f"dashboard {__version__}", user=who.account.name)


def confirmed(form: dict[str, str], project: str) -> None:
    if form.get("confirm", "").strip() != project:
        raise Refused(400, f"type the project's name, {project}, to confirm",
                      "nothing was changed")


def add_actions(router: APIRouter, control: ControlPlane) -> None:
    configs = control.configs

    @router.post("/projects/{project}/configs", include_in_schema=False)
    @guarded
    async def set_config(request: Request, project: ProjectName) -> Response:
        who, form = await changing(request)
        name = form.get("name", "").strip()
        await run_in_threadpool(configs.set, who.account, project, name, form.get("value", ""))
        return see_other(f"/projects/{project}/configs")

    @router.post("/projects/{project}/configs/remove", include_in_schema=False)
    @guarded
    async def remove_config(request: Request, project: ProjectName) -> Response:
        who, form = await changing(request)
        await run_in_threadpool(configs.remove, who.account, project, [form.get("name", "")])
        return see_other(f"/projects/{project}/configs")

    @router.get("/projects/{project}/rollback", include_in_schema=False)
    @guarded
    async def rollback_confirm(request: Request, project: ProjectName,
                               deployment: str | None = None) -> Response:
        who = await require(request)
        found, target = await run_in_threadpool(preview_rollback, control, who.account,
                                                project, deployment or None)
        return render(request, "confirm.html", who=who, project=project, action="rollback",
                      target=target, plan=[a.to_json() for a in found.plan])

    @router.post("/projects/{project}/rollback", include_in_schema=False)
    @guarded
    async def rollback(request: Request, project: ProjectName) -> Response:
        who, form = await changing(request)
        confirmed(form, project)
        started, _ = await run_in_threadpool(
            lambda: start_rollback(control, who.account, project,
                                   form.get("deployment") or None, origin=origin(who)))
        return see_other(f"/projects/{project}/deployments/{started}")

    @router.get("/projects/{project}/down", include_in_schema=False)
    @guarded
    async def down_confirm(request: Request, project: ProjectName) -> Response:
        who = await require(request)
        await run_in_threadpool(project_exists, control, who.account, project)
        return render(request, "confirm.html", who=who, project=project, action="down",
                      target=None, plan=[])

    @router.post("/projects/{project}/down", include_in_schema=False)
    @guarded
    async def down(request: Request, project: ProjectName) -> Response:
        who, form = await changing(request)
        confirmed(form, project)
        volumes = form.get("volumes") == "on"

        def take_down() -> str:
            started = deployments.start_down(control, who.account, project, volumes=volumes)
            expiry.clear_deadline(control, who.account, project)  # as the API's `down`
            return started

        started = await run_in_threadpool(take_down)
        return see_other(f"/projects/{project}/deployments/{started}")
