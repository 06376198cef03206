"""What every dashboard route does: find the viewer (its session and account), check the CSRF
token of a state-changing request, read a form, render a template, answer an error as a page.

A request without a live session is sent to the login page (a page) or refused with 401 (a
stream or a form post); a state-changing request without the session's CSRF token, or sent
from another origin, is refused with 403 before it does anything.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from dockyard import __version__
from dockyard.errors import DockyardError, ProjectInvalid
from dockyard.runtime.errors import EngineError
from dockyard.server.control import ControlPlane
from dockyard.server.dashboard.sessions import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    Session,
    SessionBook,
    same,
)
from dockyard.server.dashboard.timefmt import when
from dockyard.server.scrub import scrub_engine_text
from dockyard.store.store import Account

HERE = Path(__file__).parent
TEMPLATES = Environment(loader=FileSystemLoader(HERE / "templates"),
                        autoescape=select_autoescape(default=True, default_for_string=True),
                        trim_blocks=True, lstrip_blocks=True)
TEMPLATES.filters["when"] = when
TEMPLATES.globals["version"] = __version__
MAX_FORM_BYTES = 256 * 1024  # a config value is at most 64 KiB (server.configs)
SECURITY_HEADERS = {
    # Scripts and styles only from the server itself (the vendored files): no inline script.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class Refused(Exception):
    """A dashboard request refused before it did anything: its status and what to say."""

    def __init__(self, status: int, message: str, hint: str = "", *,
                 log_in: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.hint = status, message, hint
        self.log_in = log_in  # no session: a page goes to the login page instead


@dataclass(frozen=True)
class Viewer:
    """Who looks: the session and the account of its token."""

    session: Session
    account: Account
    mode: str

    @property
    def csrf(self) -> str:
        return self.session.csrf


def book(request: Request) -> SessionBook:
    found: SessionBook = request.app.state.dashboard_sessions
    return found


def control_of(request: Request) -> ControlPlane:
    found: ControlPlane = request.app.state.control
    return found


async def viewer(request: Request) -> Viewer | None:
    """The request's session and its account, or None (no cookie, an unknown or idle session,
    or a token revoked since: that session is closed)."""
    sessions = book(request)
    session = sessions.find(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    control = control_of(request)
    account = await run_in_threadpool(control.store.account_for_token, session.token)
    if account is None or account.id != session.account_id:
        sessions.close(session.id)
        return None
    return Viewer(session, account, control.settings.mode.value)


async def require(request: Request) -> Viewer:
    """The viewer of a request that needs one; Refused(401) without a session."""
    found = await viewer(request)
    if found is None:
        raise Refused(401, "you are not logged in to this dashboard (or the session ended)",
                      "log in with an API token at /login, or run `dockyard dashboard`",
                      log_in=True)
    return found


def check_origin(request: Request) -> None:
    """A state-changing request sent by a page of another origin is refused (a browser always
    sends Origin on a cross-origin POST; SameSite=Strict already keeps the cookie away)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        if origin == "null":
            raise Refused(403, "this request came from an opaque origin",
                          "use the dashboard's own forms")
        return
    host = request.headers.get("host", "")
    if urlsplit(origin).netloc != host:
        raise Refused(403, "this request came from another site's page",
                      "use the dashboard's own forms")


async def read_form(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body (the dashboard's forms); the last value of
    a repeated field wins."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Refused(413, f"the form is over {MAX_FORM_BYTES // 1024} KiB")
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if body and kind != "application/x-www-form-urlencoded":
        raise Refused(415, "the dashboard takes forms only")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise Refused(400, "the form is not UTF-8") from None


async def changing(request: Request) -> tuple[Viewer, dict[str, str]]:
    """The viewer and form of a state-changing request, once its origin and CSRF token are
    checked: Refused(401) without a session, Refused(403) for a missing or forged token."""
    check_origin(request)
    who = await require(request)
    form = await read_form(request)
    given = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
    if not same(given, who.csrf):
        raise Refused(403, "the form's CSRF token is missing or does not match this session",
                      "reload the page and try again")
    return who, form


def render(request: Request, template: str, status: int = 200,
           who: Viewer | None = None, **context: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(template).render(request=request, who=who, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def fragment(template: str, **context: Any) -> str:
    """A template's HTML on its own (what a live stream sends)."""
    return TEMPLATES.get_template(template).render(**context)


def see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303, headers=SECURITY_HEADERS)


def to_login(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return see_other("/login?next=" + quote(here, safe=""))


def refused_page(request: Request, exc: Refused | DockyardError,
                 who: Viewer | None = None) -> Response:
    """An error as a page, with the status and words the API would answer it with (the
    engine's words scrubbed as for the API, a refused project's problems listed)."""
    message, hint = exc.message, exc.hint or ""
    if isinstance(exc, EngineError):
        message = scrub_engine_text(message, control_of(request).settings.data)
    problems = [d.render() for d in exc.errors] if isinstance(exc, ProjectInvalid) else []
    return render(request, "error.html", status=exc.status, who=who, message=message,
                  hint=hint, problems=problems)


Handler = Callable[..., Awaitable[Response]]


def guarded(handler: Handler) -> Handler:
    """A route whose refusals and errors answer as pages: a page asked for without a session
    goes to the login page, anything else refused gets the error page with its status."""

    @functools.wraps(handler)
    async def run(*args: Any, **kwargs: Any) -> Response:
        request: Request = kwargs["request"]
        try:
            return await handler(*args, **kwargs)
        except Refused as exc:
            if exc.log_in and request.method == "GET" and \
                    "text/html" in request.headers.get("accept", ""):
                return to_login(request)
            return refused_page(request, exc)
        except DockyardError as exc:
            return refused_page(request, exc)

    return run
