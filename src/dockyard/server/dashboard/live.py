"""The live parts of the dashboard, as Server-Sent Events.

- A project's services: the `ps` table rendered as HTML, sent on connect and again whenever
  the control plane records something (a state change, a deployment's end) or, for the health
  a container's checks report, at least every `REFRESH_SECONDS`; only when it changed. The
  page swaps it in (htmx's SSE extension). Streams are counted with the API's deployment
  event streams (`app.state.watches`), so a tenant cannot open more through the dashboard.
- Logs: the API's own stream (`routes.logs.log_response`: the same masking of config values,
  the same bounds and follow slots), which the page renders line by line.

The services stream ends when the session does (log out, token revoked); a log stream when
the page is closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi.concurrency import run_in_threadpool

from dockyard.api_errors import NotFound
from dockyard.server.control import ControlPlane
from dockyard.server.dashboard import views
from dockyard.server.dashboard.sessions import SessionBook
from dockyard.server.dashboard.web import Viewer, fragment
from dockyard.server.streams import KEEPALIVE, Changes

REFRESH_SECONDS = 3.0  # a quiet project is rendered again this often (health checks)
MIN_GAP_SECONDS = 0.25  # a burst of changes is rendered once per this


def html_event(kind: str, html: str) -> str:
    """One SSE event whose data is HTML (each of its lines a `data:` line)."""
    lines = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
    return f"event: {kind}\n{lines}\n"


def services_html(control: ControlPlane, who: Viewer, project: str) -> str | None:
    """The services table, or None once the session's token is revoked or the project is
    gone (the stream ends)."""
    if control.store.account_for_token(who.session.token) != who.account:
        return None
    try:
        view = views.project(control, who.account, project)
    except NotFound:
        return None
    return fragment("_services.html", project=project, view=view)


async def services_events(control: ControlPlane, sessions: SessionBook, who: Viewer,
                          project: str) -> AsyncIterator[str]:
    """The services table of `project`, rendered again as it changes."""
    changes = Changes(control)
    try:
        sent = ""
        while sessions.find(who.session.id) is not None:
            changes.clear()
            html = await run_in_threadpool(services_html, control, who, project)
            if html is None:
                return
            if html != sent:
                sent = html
                yield html_event("services", html)
            else:
                yield KEEPALIVE  # also how a closed page is noticed
            await changes.wait(REFRESH_SECONDS)
            await asyncio.sleep(MIN_GAP_SECONDS)  # a burst of events is rendered once
    finally:
        changes.close()
