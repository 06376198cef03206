"""The web dashboard: server-rendered pages (Jinja2) at `/` of the API's own address.

It shows what the API shows, through the same server functions and as the same account:
projects (`compose ls`), a project's services live (`ps`, over SSE), deployments with their
timelines, logs (masked as for the CLI) and config names; it can set and remove configs, roll
a project back to a deployment and take it down. A browser holds a session cookie instead of
the API token (`sessions`); every state-changing request carries the session's CSRF token
(`web.changing`). The live parts use htmx and its SSE extension, vendored under `static/`
with their licences (no CDN, no build step). docs/dashboard.md shows it.
"""

from __future__ import annotations

from fastapi import FastAPI

from dockyard.server.control import ControlPlane
from dockyard.server.dashboard.actions import add_actions
from dockyard.server.dashboard.login import add_login
from dockyard.server.dashboard.pages import add_pages
from dockyard.server.dashboard.sessions import SessionBook
from dockyard.server.dashboard.static_files import add_static
from dockyard.server.dashboard.web import HERE
from dockyard.server.streams import FollowSlots

PREFIXES = ("/login", "/logout", "/projects/", "/static/")


def serves(path: str) -> bool:
    """Whether `path` is the dashboard's: it checks its own sessions, not bearer tokens."""
    return path == "/" or path.startswith(PREFIXES)


def add_dashboard(app: FastAPI, control: ControlPlane, follows: FollowSlots,
                  watches: FollowSlots) -> None:
    """Add the dashboard's routes to the app's own router (each an `APIRoute`, as the API's),
    its login-link route (`POST /v1/dashboard/links`) among them."""
    app.state.dashboard_sessions = SessionBook()
    router = app.router
    add_login(router, control)
    add_pages(router, control, follows, watches)
    add_actions(router, control)
    add_static(router, HERE / "static")


__all__ = ["add_dashboard", "serves"]
