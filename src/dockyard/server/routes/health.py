"""`GET /v1/health`: public, for load balancers and `dockyard` itself."""

from __future__ import annotations

from fastapi import APIRouter

from dockyard import __version__


def add_routes(api: APIRouter) -> None:
    @api.get("/v1/health")
    async def health() -> dict[str, str]:
        """On the event loop: answers at once however busy the worker threads are."""
        return {"status": "ok", "version": __version__}

