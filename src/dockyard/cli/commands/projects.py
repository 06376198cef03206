"""`dockyard compose ls` (the account's projects), and the line that says when a project
expires (`ps`, and the end of `up`). The renderings are pure, so goldens can pin them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dockyard.cli.render import note, write_stdout
from dockyard.cli.tables import table
from dockyard.ttl import deadline_text, span

if TYPE_CHECKING:
    from dockyard.client.api import Client
    from dockyard.wire_models import ProjectSummary, ServiceStatus


def run_ls(client_factory: Any, *, as_json: bool) -> None:
    client: Client = client_factory()
    with client:
        items = client.projects()
    if as_json:
        write_stdout(json.dumps([item.to_json() for item in items], indent=2))
    elif not items:
        note("no projects yet: `dockyard compose up` deploys the one in this directory")
    else:
        write_stdout(projects_table(items))


def projects_table(items: Sequence[ProjectSummary], now: datetime | None = None) -> str:
    """PROJECT DEPLOYMENT ACTION STATUS SERVICES TIME (UTC) EXPIRES, one row per project."""
    now = now or datetime.now(UTC)
    rows = [[p.name, p.deployment or "-", p.action or "-", p.status or "-",
             services_text(p.services), _time(p.created_at) if p.created_at else "-",
             expires_text(p.expires_at, p.expire_volumes, now)] for p in items]
    return table(["PROJECT", "DEPLOYMENT", "ACTION", "STATUS", "SERVICES", "TIME (UTC)",
                  "EXPIRES"], rows)


def services_text(counts: dict[str, int]) -> str:
    """`2 COMPLETED, 1 FAILED`: each state without Defang's `SERVICE_DEPLOYMENT_` prefix."""
    if not counts:
        return "-"
    return ", ".join(f"{n} {_short_state(state)}" for state, n in counts.items())


def _short_state(state: str) -> str:
    return state.removeprefix("SERVICE_DEPLOYMENT_").removeprefix("DEPLOYMENT_")


def expires_text(expires_at: str | None, volumes: bool, now: datetime) -> str:
    """`2026-11-28 12:00:00 (in 1h59m)`, `... (in 1h59m, volumes too)`, or `-`."""
    if not expires_at:
        return "-"
    when = datetime.fromisoformat(expires_at)
    left = (when - now).total_seconds()
    relative = f"in {span(left)}" if left > 0 else f"expired {span(-left)} ago"
    return f"{_time(expires_at)} ({relative}{', volumes too' if volumes else ''})"


def expiry_line(rows: Sequence[ServiceStatus], now: datetime | None = None) -> str:
    """Under the `ps` table, when the project has a deadline: `Expires in 1h59m (at ...Z):
    the server takes it down then.`"""
    deadline = next((r.expires_at for r in rows if r.expires_at), None)
    if deadline is None:
        return ""
    text = deadline_text(deadline, now)
    return (text[0].upper() + text[1:] + ("; the server takes it down then "
            "(`compose up` without --ttl keeps it)" if text.startswith("expires") else "")
            + "\n")


def _time(iso: str) -> str:
    return iso[:19].replace("T", " ")
