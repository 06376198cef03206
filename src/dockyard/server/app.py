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
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from dockyard import __version__
from dockyard.api_errors import NotFound
from dockyard.build.safety import UnsafeArchive
from dockyard.errors import DockyardError, ProjectInvalid
from dockyard.runtime.errors import EngineError, EngineUnavailable
from dockyard.secrets.crypto import ConfigKeyError
from dockyard.server import registry_auth, streams
from dockyard.server.auth import PUBLIC_PATHS, Unauthorized, account, account_of
from dockyard.server.body_limit import BodyLimit
from dockyard.server.configs import ConfigInvalid, ConfigNotFound
from dockyard.server.contexts import ContextError, ContextTooLarge
from dockyard.server.control import ControlPlane, DeploymentInProgress
from dockyard.server.registry_access import RegistryNotAllowed
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

# The first kind an error is an instance of decides (a subclass before its base).
_STATUS = {ProjectInvalid: 422, UnsafeArchive: 422, ContextTooLarge: 413, ContextError: 422,
           DeploymentInProgress: 409, NotFound: 404, Unauthorized: 401,
           EngineUnavailable: 503, ConfigNotFound: 404, ConfigInvalid: 422,
           ConfigKeyError: 500, streams.TooManyFollows: 429,
           registry_auth.RegistryCredentialInvalid: 422, registry_auth.RegistryLoginRefused: 400,
           registry_auth.RegistryUnreachable: 502, registry_auth.RegistryLoginBusy: 429,
           RegistryNotAllowed: 403}


def _status_of(exc: DockyardError) -> int:
    for kind, status in _STATUS.items():
        if isinstance(exc, kind):
            return status
    return 400


def error_body(exc: DockyardError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": exc.message, "hint": exc.hint, "kind": type(exc).__name__}
    if isinstance(exc, ProjectInvalid):
        body["diagnostics"] = [
            {"severity": d.severity.value, "code": d.code, "message": d.message,
             "file": d.location.file, "line": d.location.line, "path": d.location.path,
             "hint": d.hint} for d in exc.diagnostics]
    return body


def create_app(control: ControlPlane) -> FastAPI:
    app = FastAPI(title="Dockyard", version=__version__,
                  description="The Dockyard control plane.", openapi_url="/v1/openapi.json",
                  docs_url="/v1/docs", redoc_url=None)
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

    @app.middleware("http")
    async def _authenticate(request: Request, call_next: Any) -> Any:
        # The token is checked before anything else, the body included: a request without a
        # valid token learns nothing (not even that its body is malformed).
        if request.url.path not in PUBLIC_PATHS:
            try:
                request.state.account = await run_in_threadpool(
                    account_of, control, request.headers.get("authorization"))
            except Unauthorized as exc:
                return JSONResponse(error_body(exc), status_code=401)
        return await call_next(request)

    @app.exception_handler(DockyardError)
    async def _dockyard_error(_request: Request, exc: DockyardError) -> JSONResponse:
        body = error_body(exc)
        if isinstance(exc, EngineError):  # the engine's words are for its owner, not a tenant
            body["error"] = scrub_engine_text(str(body["error"]), control.settings.data)
        return JSONResponse(body, status_code=_status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default body echoes the input, which may hold a config's value: say where
        # and what is wrong, never what was sent.
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""),
                    "type": e.get("type", "")} for e in exc.errors()]
        return JSONResponse({"error": "the request is invalid", "hint": None,
                             "kind": "RequestInvalid", "detail": details}, status_code=422)

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
    return app


__all__ = ["Unauthorized", "account", "create_app", "error_body"]
