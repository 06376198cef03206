"""`/v1/projects/<project>/configs`: a project's configs (secrets); values go in, never out."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from dockyard.server.auth import Who
from dockyard.server.control import ControlPlane
from dockyard.server.routes.common import ProjectName, project_exists
from dockyard.wire_models import ConfigBody, ConfigItem, ConfigWritten

__all__ = ["ConfigBody", "add_routes"]


def add_routes(api: APIRouter, control: ControlPlane) -> None:
    @api.get("/v1/projects/{project}/configs")
    def configs(project: ProjectName, who: Who) -> list[ConfigItem]:
        """The project's config names and when each was set: never their values."""
        project_exists(control, who, project)
        return [ConfigItem(name=name, updated_at=at.isoformat())
                for name, at in control.configs.names(who, project)]

    @api.put("/v1/projects/{project}/configs/{name}")
    def set_config(project: ProjectName, name: str, body: ConfigBody,
                   who: Who) -> ConfigWritten:
        written, at = control.configs.set(who, project, name, body.value,
                                          if_not_set=body.if_not_set)
        return ConfigWritten(name=name, set=written,
                             updated_at=at.isoformat() if at else None)

    @api.delete("/v1/projects/{project}/configs/{name}", status_code=204)
    def remove_config(project: ProjectName, name: str, who: Who) -> Response:
        control.configs.remove(who, project, [name])
        return Response(status_code=204)
