"""Getting into the dashboard and out of it.

- `POST /v1/dashboard/links` (the API, with a bearer token): a one-time login link for that
  token; `dockyard dashboard` opens it in the browser (`Client.dashboard_link`).
- `GET /login/<code>`: the link itself; it opens a session once, then goes to `/`.
- `GET|POST /login`: a form for an API token (a shared server's accounts log in so). The form
  carries its own CSRF value, paired with a cookie, since there is no session yet.
- `POST /logout`: ends the session.

The session cookie is HttpOnly and SameSite=Strict (Secure when the page came over HTTPS).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from dockyard.server.auth import Who
from dockyard.server.control import ControlPlane
from dockyard.server.dashboard.sessions import (
    CSRF_FIELD,
    LINK_SECONDS,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Session,
    new_secret,
    same,
)
from dockyard.server.dashboard.web import (
    Refused,
    book,
    changing,
    check_origin,
    guarded,
    read_form,
    render,
    see_other,
    viewer,
)
from dockyard.wire_models import DashboardLink


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path of this server only (never `//host`)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _with_session(request: Request, response: Response, session: Session) -> Response:
    response.set_cookie(SESSION_COOKIE, session.id, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


def add_login(router: APIRouter, control: ControlPlane) -> None:
    @router.post("/v1/dashboard/links")
    def dashboard_link(request: Request, who: Who) -> DashboardLink:
        """A one-time login link to the dashboard for the request's token (`dockyard
        dashboard`): valid once, for `expires_in` seconds."""
        token = (request.headers.get("authorization") or "").partition(" ")[2].strip()
        code = request.app.state.dashboard_sessions.link(token)
        return DashboardLink(path=f"/login/{code}", expires_in=LINK_SECONDS)

    @router.get("/login/{code}", include_in_schema=False)
    @guarded
    async def redeem(request: Request, code: str) -> Response:
        token = book(request).redeem(code)
        account = None if token is None else await run_in_threadpool(
            control.store.account_for_token, token)
        if token is None or account is None:
            raise Refused(401, "this login link is not valid: it was used already, it "
                          "expired, or its token was revoked",
                          "run `dockyard dashboard` again for a new link")
        session = book(request).open(token, account.id)
        # A page of this origin goes on to `/` (not a redirect): the SameSite=Strict cookie
        # is then sent however the browser was given the link.
        page = render(request, "entered.html", target="/", account=account.name)
        return _with_session(request, page, session)

    @router.get("/login", include_in_schema=False)
    @guarded
    async def login_form(request: Request, next: str = "/") -> Response:
        if await viewer(request) is not None:
            return see_other(safe_next(next))
        value = new_secret()
        page = render(request, "login.html", next=safe_next(next), login_csrf=value,
                      error="")
        page.set_cookie(LOGIN_COOKIE, value, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/login")
        return page

    @router.post("/login", include_in_schema=False)
    @guarded
    async def login(request: Request) -> Response:
        check_origin(request)
        form = await read_form(request)
        if not same(form.get(CSRF_FIELD), request.cookies.get(LOGIN_COOKIE) or ""):
            raise Refused(403, "the login form's CSRF value is missing or does not match",
                          "open /login again and log in from there")
        token = form.get("token", "").strip()
        account = await run_in_threadpool(control.store.account_for_token, token) \
            if token else None
        if account is None:
            page = render(request, "login.html", status=401, next=safe_next(form.get("next")),
                          login_csrf=request.cookies.get(LOGIN_COOKIE, ""),
                          error="this API token is not valid (unknown or revoked)")
            return page
        session = book(request).open(token, account.id)
        return _with_session(request, see_other(safe_next(form.get("next"))), session)

    @router.post("/logout", include_in_schema=False)
    @guarded
    async def logout(request: Request) -> Response:
        who, _ = await changing(request)
        book(request).close(who.session.id)
        response = see_other("/login")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
