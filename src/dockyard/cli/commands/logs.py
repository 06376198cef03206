"""`dockyard logs`, `dockyard tail` and `dockyard compose logs`: lines prefixed by service."""

from __future__ import annotations

import json
import sys
from typing import Any

from dockyard.client.api import Client


def run_logs(project: str, client_factory: Any, *, services: list[str], follow: bool,
             since: str | None, until: str | None, kind: str, deployment: str | None,
             tail: int | None, as_json: bool, text: str | None = None) -> None:
    client: Client = client_factory()
    ends: list[dict[str, Any]] = []
    with client:
        entries = client.logs(project, services=services, follow=follow, since=since,
                              until=until, kind=kind, deployment=deployment, tail=tail,
                              filter=text, on_end=ends.append)
        width = max((len(s) for s in services), default=0)
        for entry in entries:
            if as_json:
                sys.stdout.write(json.dumps(entry) + "\n")
            else:
                label = entry["service"] + (" (build)" if entry["type"] == "build" else "")
                width = max(width, len(label))
                sys.stdout.write(f"{label.ljust(width)} | {entry['line']}\n")
            sys.stdout.flush()
    for end in ends:
        note = left_out_note(end)
        if note:
            sys.stderr.write(note + "\n")


def left_out_note(end: dict[str, Any]) -> str | None:
    """What to say when the server left older lines out of its answer (its line limit)."""
    if not end.get("truncated"):
        return None
    limit = end.get("limit")
    shown = f"the newest {limit} lines are shown" if limit else "only the newest lines are shown"
    before = end.get("before")
    more = (f"; to see earlier ones, add --until {before} (that line comes again)"
            if before else "")
    return f"dockyard: older lines were left out ({shown}){more}"


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_when(text: str | None, option: str) -> str | None:
    """`10m`, `1h30m`, `45s` (that long ago) or an RFC 3339 time, as an ISO time in UTC."""
    if text is None:
        return None
    import re
    from datetime import UTC, datetime, timedelta

    from dockyard.errors import UsageError

    if re.fullmatch(r"(\d+[smhd])+", text):
        seconds = sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)([smhd])", text))
        return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option} {text!r} is neither a duration nor a time",
                         hint="use a duration like 10m or 1h30m, or a time like "
                         "2026-11-28T10:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat()
