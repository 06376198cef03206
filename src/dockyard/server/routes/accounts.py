"""`GET /v1/whoami`: the account of the token, and the server's mode and zone."""

from __future__ import annotations

from fastapi import APIRouter

from dockyard import __version__
from dockyard.server.auth import Who
from dockyard.server.control import ControlPlane
from dockyard.wire_models import WhoAmI


def add_routes(api: APIRouter, control: ControlPlane) -> None:

    @api.get("/v1/whoami")
    def whoami(who: Who) -> WhoAmI:
        return WhoAmI(account=who.name, mode=control.settings.mode.value,
                      zone=control.settings.zone, version=__version__)

