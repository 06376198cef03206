"""The HTTP API (FastAPI): JSON under `/v1`, Server-Sent Events for what streams.

This module assembles the app: the token check (`server.auth`), the request size limit, the
routers of each resource (`server.routes`), and the error handlers. Every route but
`/v1/health` needs `Authorization: Bearer <token>`; every query is scoped to the token's
account, so another account's project answers 404 exactly like a missing one. Errors are JSON
`{"error", "hint", "kind", "diagnostics"}`; the client turns them back into the project's own
exceptions.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from dockyard import __version__
from dockyard.api_errors import RequestInvalid, Unauthorized
from dockyard.errors import DockyardError
from dockyard.runtime.errors import EngineError
from dockyard.server import dashboard, streams
from dockyard.server.auth import PUBLIC_PATHS, TokenCheck, account
from dockyard.server.body_limit import BodyLimit
from dockyard.server.control import ControlPlane
from dockyard.server.routes import (
    accounts,
    configs,
    contexts,
    deployments,
    health,
    ingress,
    logs,
    projects,
    registries,
)
from dockyard.server.scrub import scrub_engine_text
from dockyard.wire_models import ErrorBody

# Every route may answer an error (`ErrorBody`), with the status of the error's class.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "Refused: `kind` names the error's class"},
    "5XX": {"model": ErrorBody, "description": "The server or its engine failed"},
}


def error_body(exc: DockyardError) -> dict[str, Any]:
    """The JSON answer for `exc` (`DockyardError.to_wire`); its status is the class's."""
    return exc.to_wire()


def create_app(control: ControlPlane) -> FastAPI:
    app = FastAPI(title="Dockyard", version=__version__,
                  description="The Dockyard control plane.", openapi_url="/v1/openapi.json",
                  docs_url="/v1/docs", redoc_url=None, responses=ERROR_RESPONSES)
    app.state.control = control

    # Inside the token check (added first, so it runs second): a request without a valid
    # token is refused before its body is even counted.
    app.add_middleware(BodyLimit, max_bytes=control.settings.max_request_bytes)
    limits = control.settings.limits
    follows = streams.FollowSlots(limits.follows if limits is not None else 0)
    app.state.follows = follows
    # Deployment event streams are counted apart (a `compose up` watches one while a `tail`
    # follows logs), with the same cap: each open stream costs the server a store query per
    # change.
    watches = streams.FollowSlots(
        limits.follows if limits is not None else 0, noun="deployment event streams",
        hint="stop another `dockyard compose up` that is watching, or watch with `ps` instead")
    app.state.watches = watches

    # The token is checked before anything else, the body included: a request without a
    # valid token learns nothing (not even that its body is malformed). The dashboard's
    # pages check their own session cookie (`server.dashboard`).
    app.add_middleware(TokenCheck, control=control,
                       public=lambda path: path in PUBLIC_PATHS or dashboard.serves(path))

    @app.exception_handler(DockyardError)
    async def _dockyard_error(_request: Request, exc: DockyardError) -> JSONResponse:
        body = error_body(exc)
        if isinstance(exc, EngineError):  # the engine's words are for its owner, not a tenant
            body["error"] = scrub_engine_text(str(body["error"]), control.settings.data)
        return JSONResponse(body, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default body echoes the input, which may hold a config's value: say where
        # and what is wrong, never what was sent.
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""),
                    "type": e.get("type", "")} for e in exc.errors()]
        refused = RequestInvalid("the request is invalid")
        return JSONResponse(error_body(refused) | {"detail": details},
                            status_code=refused.status)

    api = app.router
    health.add_routes(api)
    accounts.add_routes(api, control)
    ingress.add_routes(api, control)
    contexts.add_routes(api, control)
    projects.add_routes(api, control)
    configs.add_routes(api, control)
    registries.add_routes(api, control)
    deployments.add_routes(api, control, watches)
    logs.add_routes(api, control, follows)
    dashboard.add_dashboard(app, control, follows, watches)
    return app


__all__ = ["Unauthorized", "account", "create_app", "error_body"]
