"""`/v1/registries`: the account's registry logins (checked, then kept encrypted for its
pulls); passwords go in, never out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from dockyard.api_errors import NotFound
from dockyard.server import registry_auth
from dockyard.server.auth import Who
from dockyard.server.control import ControlPlane
from dockyard.server.registry_access import check_login_registry
from dockyard.wire_models import RegistryItem, RegistryLoginBody, RegistryRemoved, RegistryStored

__all__ = ["RegistryLoginBody", "add_routes"]


def add_routes(api: APIRouter, control: ControlPlane) -> None:
    @api.get("/v1/registries")
    def registries(who: Who) -> list[RegistryItem]:
        """The account's registry logins (host, user, when): never their passwords."""
        return [RegistryItem(host=r.host, username=r.username,
                             updated_at=r.updated_at.isoformat())
                for r in control.registries.list(who)]

    @api.put("/v1/registries/{host}")
    def registry_login(host: Annotated[str, Path(max_length=1024)], body: RegistryLoginBody,
                       who: Who) -> RegistryStored:
        """Check the login against the registry, then keep it for this account's pulls."""
        if control.settings.playground:
            check_login_registry(registry_auth.host_key(host),
                                 patterns=control.settings.allow_registries)
        stored = control.registries.login(who, host, body.username, body.password)
        return RegistryStored(host=stored, username=body.username)

    @api.delete("/v1/registries/{host}")
    def registry_logout(host: Annotated[str, Path(max_length=1024)],
                        who: Who) -> RegistryRemoved:
        if not control.registries.logout(who, host):
            raise NotFound(f"no login for registry {registry_auth.host_key(host)}",
                           hint="`dockyard registry ls` lists your logins")
        return RegistryRemoved(host=registry_auth.host_key(host))
