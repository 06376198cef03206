"""The HTTP API (FastAPI): JSON under `/v1`, Server-Sent Events for what streams.

Every route but `/v1/health` needs `Authorization: Bearer <token>`; every query is scoped to the
token's account, so another account's project answers 404 exactly like a missing one. Errors
are JSON `{"error", "hint", "kind", "diagnostics"}`; the client turns them back into the
project's own exceptions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from dockyard import __version__
from dockyard.build.safety import UnsafeArchive
from dockyard.errors import DockyardError, ProjectInvalid
from dockyard.runtime.errors import EngineError, EngineUnavailable
from dockyard.secrets.crypto import ConfigKeyError
from dockyard.server import log_stream, operations, registry_auth, streams
from dockyard.server.body_limit import BodyLimit
from dockyard.server.configs import ConfigInvalid, ConfigNotFound
from dockyard.server.contexts import ContextError, ContextTooLarge
from dockyard.server.control import ControlPlane, DeploymentInProgress
from dockyard.server.deploy_request import BuildInput
from dockyard.server.log_window import MAX_LINES, clamp_lines
from dockyard.server.preview import preview
from dockyard.server.registry_access import RegistryNotAllowed, check_login_registry
from dockyard.server.scrub import scrub_engine_text
from dockyard.server.streams import SSEResponse
from dockyard.store.store import Account

MAX_QUERY_INT = 2**62  # an integer query parameter beyond any id or count (422 above)
UPLOAD_BATCH = 1 << 20  # bytes of a context upload held in memory at most
PROJECT_NAME = r"^[a-z0-9][a-z0-9_-]*$"


class Unauthorized(DockyardError):
    """No token, or a token the server does not know."""


class BuildBody(BaseModel):
    digest: str
    dockerfile: str = "Dockerfile"
    args: dict[str, str] = Field(default_factory=dict)
    target: str | None = None
    pull: bool = False  # build.pull: refresh the base images


class DeployBody(BaseModel):
    project: dict[str, Any]
    builds: dict[str, BuildBody] = Field(default_factory=dict)
    force: bool = False
    build: bool = False
    pull: Literal["always", "missing", "never"] | None = None  # `up --pull`: every policy


class RedeployBody(BaseModel):
    pull: Literal["always", "missing", "never"] | None = None


class DownBody(BaseModel):
    volumes: bool = False


class ConfigBody(BaseModel):
    value: str = Field(repr=False)  # never in a repr, a log or a validation error
    if_not_set: bool = False


class RegistryLoginBody(BaseModel):
    username: str
    password: str = Field(repr=False)  # never in a repr, a log or a validation error


# The first kind an error is an instance of decides (a subclass before its base).
_STATUS = {ProjectInvalid: 422, UnsafeArchive: 422, ContextTooLarge: 413, ContextError: 422,
           DeploymentInProgress: 409, operations.NotFound: 404, Unauthorized: 401,
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


PUBLIC_PATHS = frozenset({"/v1/health", "/v1/openapi.json", "/v1/docs",
                          "/v1/docs/oauth2-redirect"})


def account(request: Request,
            authorization: Annotated[str | None, Header()] = None) -> Account:
    """The account of the request's bearer token, or 401."""
    cached = getattr(request.state, "account", None)
    if isinstance(cached, Account):
        return cached
    return _account_of(request.app.state.control, authorization)


def _account_of(control: ControlPlane, authorization: str | None) -> Account:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("this request has no API token",
                           hint="send `Authorization: Bearer <token>`")
    found = control.store.account_for_token(token.strip())
    if found is None:
        raise Unauthorized("the API token is not valid (unknown or revoked)",
                           hint="log in again")
    return found


Who = Annotated[Account, Depends(account)]
ProjectName = Annotated[str, Path(pattern=PROJECT_NAME, max_length=253)]


def create_app(control: ControlPlane) -> FastAPI:
    app = FastAPI(title="Dockyard", version=__version__,
                  description="The Dockyard control plane.", openapi_url="/v1/openapi.json",
                  docs_url="/v1/docs", redoc_url=None)
    app.state.control = control
    store = control.store

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
                    _account_of, control, request.headers.get("authorization"))
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

    def _project_exists(who: Account, project: str) -> None:
        """404 for a project this account does not have, as for one nobody has."""
        if project not in store.projects(who):
            raise operations.NotFound(f"project {project!r} not found",
                                      hint="`dockyard deployments --all` lists your projects")

    @app.get("/v1/health")
    async def health() -> dict[str, str]:
        """On the event loop: answers at once however busy the worker threads are."""
        return {"status": "ok", "version": __version__}

    @app.get("/v1/whoami")
    def whoami(who: Who) -> dict[str, str]:
        return {"account": who.name, "mode": control.settings.mode.value,
                "zone": control.settings.zone, "version": __version__}

    @app.get("/v1/ingress")
    def ingress(_who: Who) -> dict[str, Any]:
        """Where the ingress listens, and the local CA certificate its HTTPS names chain to."""
        settings = control.settings
        enabled = control.ingress.enabled
        return {"enabled": enabled,
                "http_port": settings.http_port if enabled else None,
                "https_port": settings.https_port if enabled else None,
                "ca_certificate": control.ingress.ca_certificate_pem()}

    @app.head("/v1/contexts/{digest}")
    def has_context(digest: str, who: Who) -> Response:
        return Response(status_code=200 if control.contexts.has(digest, str(who.id)) else 404)

    @app.put("/v1/contexts/{digest}", status_code=201)
    async def put_context(digest: str, request: Request, who: Who) -> dict[str, str]:
        """Stream the body to a temporary file of the context store, at most UPLOAD_BATCH
        bytes in memory; 413 at the first chunk over the size limit or the account's quota."""
        limits = control.settings.limits
        quota = limits.context_bytes if limits is not None else 0
        upload = await run_in_threadpool(control.contexts.begin, digest, str(who.id), quota)
        try:
            declared = request.headers.get("content-length", "")
            if declared.isdigit():
                upload.expect(int(declared))
            batch = bytearray()
            async for chunk in request.stream():
                batch += chunk
                if len(batch) >= UPLOAD_BATCH:
                    await run_in_threadpool(upload.write, bytes(batch))
                    batch.clear()
            await run_in_threadpool(upload.write, bytes(batch))
            await run_in_threadpool(upload.finish)
        finally:
            await run_in_threadpool(upload.close)
        return {"digest": digest}

    @app.get("/v1/projects")
    def projects(who: Who) -> list[str]:
        return store.projects(who)

    @app.post("/v1/projects/{project}/deployments", status_code=202)
    def deploy(project: Annotated[str, Path(pattern=PROJECT_NAME, max_length=253)],
               body: DeployBody, who: Who) -> dict[str, Any]:
        builds = {name: BuildInput(b.digest, b.dockerfile, dict(b.args), b.target, b.pull)
                  for name, b in body.builds.items()}
        deployment = operations.start_deployment(control, who, project, body.project, builds,
                                                 force=body.force, rebuild=body.build,
                                                 pull=body.pull)
        return {"deployment": deployment, "project": project}

    @app.post("/v1/projects/{project}/plan")
    def plan_deployment(project: Annotated[str, Path(pattern=PROJECT_NAME, max_length=253)],
                        body: DeployBody, who: Who) -> dict[str, Any]:
        """`up --dry-run`: what a deployment with this body would do; nothing changes."""
        builds = {name: BuildInput(b.digest, b.dockerfile, dict(b.args), b.target, b.pull)
                  for name, b in body.builds.items()}
        return preview(control, who, project, body.project, builds, force=body.force,
                       rebuild=body.build, pull=body.pull).to_json()

    @app.post("/v1/projects/{project}/down", status_code=202)
    def down(project: str, body: DownBody, who: Who) -> dict[str, Any]:
        deployment = operations.start_down(control, who, project, volumes=body.volumes)
        return {"deployment": deployment, "project": project}

    @app.get("/v1/projects/{project}/configs")
    def configs(project: ProjectName, who: Who) -> list[dict[str, Any]]:
        """The project's config names and when each was set: never their values."""
        _project_exists(who, project)
        return [{"name": name, "updated_at": at.isoformat()}
                for name, at in control.configs.names(who, project)]

    @app.put("/v1/projects/{project}/configs/{name}")
    def set_config(project: ProjectName, name: str, body: ConfigBody,
                   who: Who) -> dict[str, Any]:
        written, at = control.configs.set(who, project, name, body.value,
                                          if_not_set=body.if_not_set)
        return {"name": name, "set": written, "updated_at": at.isoformat() if at else None}

    @app.delete("/v1/projects/{project}/configs/{name}", status_code=204)
    def remove_config(project: ProjectName, name: str, who: Who) -> Response:
        control.configs.remove(who, project, [name])
        return Response(status_code=204)

    @app.get("/v1/registries")
    def registries(who: Who) -> list[dict[str, Any]]:
        """The account's registry logins (host, user, when): never their passwords."""
        return [{"host": r.host, "username": r.username, "updated_at": r.updated_at.isoformat()}
                for r in control.registries.list(who)]

    @app.put("/v1/registries/{host}")
    def registry_login(host: Annotated[str, Path(max_length=1024)], body: RegistryLoginBody,
                       who: Who) -> dict[str, Any]:
        """Check the login against the registry, then keep it for this account's pulls."""
        if control.settings.playground:
            check_login_registry(registry_auth.host_key(host),
                                 patterns=control.settings.allow_registries)
        stored = control.registries.login(who, host, body.username, body.password)
        return {"host": stored, "username": body.username}

    @app.delete("/v1/registries/{host}")
    def registry_logout(host: Annotated[str, Path(max_length=1024)],
                        who: Who) -> dict[str, Any]:
        if not control.registries.logout(who, host):
            raise operations.NotFound(f"no login for registry {registry_auth.host_key(host)}",
                                      hint="`dockyard registry ls` lists your logins")
        return {"host": registry_auth.host_key(host)}

    @app.get("/v1/projects/{project}/services")
    def services(project: str, who: Who) -> list[dict[str, Any]]:
        _project_exists(who, project)
        return [row.to_json() for row in operations.services(control, who, project)]

    @app.get("/v1/deployments")
    def deployments(who: Who, project: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict[str, Any]]:
        out = []
        for record in store.deployments(who, project, limit=limit):
            data = store.deployed_project(who, record.id) or {}
            out.append({"id": record.id, "project": record.project, "action": record.action,
                        "status": record.status, "created_at": record.created_at.isoformat(),
                        "finished_at": (record.finished_at.isoformat()
                                        if record.finished_at else None),
                        "services": sorted((data.get("services") or {}).keys())})
        return out

    def _deployment(who: Account, deployment: str) -> Any:
        record = store.deployment(who, deployment)
        if record is None:
            raise operations.NotFound(f"no deployment {deployment!r}",
                                      hint="`dockyard deployments` lists them")
        return record

    @app.post("/v1/deployments/{deployment}/redeploy", status_code=202)
    def redeploy(deployment: str, body: RedeployBody, who: Who) -> dict[str, Any]:
        """Deploy again exactly the images `deployment` ran (pinned by digest)."""
        record = _deployment(who, deployment)
        started = operations.start_redeploy(control, who, deployment, pull=body.pull)
        return {"deployment": started, "project": record.project}

    @app.get("/v1/deployments/{deployment}")
    def deployment_detail(deployment: str, who: Who) -> dict[str, Any]:
        record = _deployment(who, deployment)
        images = store.deployment_images(who, deployment)
        return {"id": record.id, "project": record.project, "action": record.action,
                "status": record.status, "created_at": record.created_at.isoformat(),
                "images": {service: {"reference": reference, "digest": digest,
                                     "image_id": image_id}
                           for service, (reference, digest, image_id) in sorted(images.items())},
                "events": [e.event.to_json() | {"id": e.id}
                           for e in store.events_since(who, deployment)],
                "notes": store.build_log(who, deployment, operations.DOWN_NOTES)}

    @app.get("/v1/deployments/{deployment}/events", response_model=None)
    async def deployment_events(
            deployment: str, who: Who,
            after: Annotated[int, Query(ge=0, le=MAX_QUERY_INT)] = 0) -> SSEResponse:
        """State events as they are recorded (async: an open stream holds no worker thread)."""
        await run_in_threadpool(_deployment, who, deployment)
        release = watches.take(who.name)  # TooManyFollows: 429
        return SSEResponse(streams.deployment_events(control, who, deployment, after),
                           on_close=release)

    @app.get("/v1/projects/{project}/logs", response_model=None)
    async def logs(project: str, who: Who, service: Annotated[list[str] | None, Query()] = None,
                   follow: bool = False, since: datetime | None = None,
                   until: datetime | None = None, type: str = "all",
                   deployment: str | None = None,
                   tail: Annotated[int | None, Query(ge=0, le=MAX_LINES)] = None,
                   limit: Annotated[int | None, Query(ge=1, le=MAX_LINES)] = None,
                   ) -> SSEResponse:
        """The log as SSE (log_stream): bounded without follow, counted per account with it."""
        if type not in ("all", "build", "run"):
            raise DockyardError(f"unknown log type {type!r}", hint="use build, run or all")
        chosen, only = await run_in_threadpool(log_stream.resolve, control, who, project,
                                               deployment)
        redact = await run_in_threadpool(control.configs.redactor, who, project)
        query = log_stream.LogQuery(
            services=list(service or []), follow=follow, since=log_stream.utc(since),
            until=log_stream.utc(until), kind=type, deployment=chosen,
            only_that_deployment=only, tail=tail, limit=clamp_lines(limit))
        release = follows.take(who.name) if follow else None  # TooManyFollows: 429
        return SSEResponse(log_stream.log_events(control, who, project, query, redact),
                           on_close=release)

    return app
