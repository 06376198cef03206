"""Who a request is: the account of its bearer token.

Every route but the public ones needs `Authorization: Bearer <token>`. `TokenCheck`, the
outermost middleware, checks the token before anything else (the body included) and keeps the
account on the request; routes take it through the `Who` dependency.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard.api_errors import Unauthorized as Unauthorized
from dockyard.server.control import ControlPlane
from dockyard.store.store import Account

PUBLIC_PATHS = frozenset({"/v1/health", "/v1/openapi.json", "/v1/docs",
                          "/v1/docs/oauth2-redirect"})


def account(request: Request,
            authorization: Annotated[str | None, Header()] = None) -> Account:
    """The account of the request's bearer token, or 401."""
    cached = getattr(request.state, "account", None)
    if isinstance(cached, Account):
        return cached
    return account_of(request.app.state.control, authorization)


def account_of(control: ControlPlane, authorization: str | None) -> Account:
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


class TokenCheck:
    """ASGI middleware: refuse a request without a valid token (401) before the app sees it,
    and keep the token's account in the request's state for `account`.

    A plain ASGI class, not Starlette's `BaseHTTPMiddleware`: that one passes every chunk of
    every response through a memory stream and a task of its own, which cost the event loop
    more than the routes themselves on event streams (profiled on a no-op `up` of 100
    services). `public(path)` says which paths check their own way (health, docs, the
    dashboard's session cookie).
    """

    def __init__(self, app: ASGIApp, control: ControlPlane,
                 public: Callable[[str], bool]) -> None:
        self.app = app
        self.control = control
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.public(str(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        header = next((value.decode("latin-1") for name, value in scope.get("headers", ())
                       if name.lower() == b"authorization"), None)
        try:
            found = await run_in_threadpool(account_of, self.control, header)
        except Unauthorized as exc:
            await JSONResponse(exc.to_wire(), status_code=exc.status)(scope, receive, send)
            return
        scope.setdefault("state", {})["account"] = found
        await self.app(scope, receive, send)
