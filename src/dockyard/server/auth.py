"""Who a request is: the account of its bearer token.

Every route but the public ones needs `Authorization: Bearer <token>`. The app's middleware
checks the token before anything else (the body included) and keeps the account on the request;
routes take it through the `Who` dependency.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

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
