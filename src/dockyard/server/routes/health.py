"""`GET /v1/health`: public, for load balancers and `dockyard` itself."""

from __future__ import annotations

from fastapi import APIRouter

from dockyard import __version__
from dockyard.wire_models import Health


def add_routes(api: APIRouter) -> None:
    @api.get("/v1/health")
    async def health() -> Health:
        """On the event loop: answers at once however busy the worker threads are."""
        return Health(status="ok", version=__version__)

