"""Plain-text tables (Defang's `ps` layout: columns padded by two spaces, headers upper-case,
no trailing spaces). Pure, so goldens can pin them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [list(headers), *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def ps_table(services: Sequence[Mapping[str, Any]], *, long: bool = False) -> str:
    headers = ["SERVICE", "DEPLOYMENT", "STATE", "FQDN", "ENDPOINT"]
    if long:
        headers += ["REPLICAS", "SINCE", "IMAGE", "REASON"]
    rows = []
    for s in services:
        endpoints = s.get("endpoints") or ([s["endpoint"]] if s.get("endpoint") else [])
        row = [str(s["service"]), str(s["deployment"]), str(s["state"]), str(s["fqdn"]),
               " ".join(endpoints)]
        if long:
            row += [f"{s.get('running', 0)}/{s.get('replicas', 0)}",
                    str(s.get("since", ""))[:19].replace("T", " "),
                    _short_image(str(s.get("image") or "")), str(s.get("reason", ""))]
        rows.append(row)
    return table(headers, rows)


def _short_image(image: str) -> str:
    """`repo@sha256:` and 12 hex of the digest (as `docker images --digests` shortens ids)."""
    head, at, digest = image.partition("@sha256:")
    if at:
        return f"{head}@sha256:{digest[:12]}"
    return image.removeprefix("sha256:")[:12]


def plan_table(services: Sequence[Mapping[str, Any]]) -> str:
    """`up --dry-run`: SERVICE ACTION REPLICAS WHY, in the order the plan carries them out."""
    rows = [[str(s["service"]), str(s["action"]), str(s.get("replicas", "")),
             ", ".join(str(r) for r in s.get("reasons") or [])] for s in services]
    return table(["SERVICE", "ACTION", "REPLICAS", "WHY"], rows)


def endpoints_text(services: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for s in services:
        for endpoint in s.get("endpoints") or []:
            lines.append(f"  {s['service']}: {endpoint}")
    return ("Endpoints:\n" + "\n".join(lines) + "\n") if lines else ""


def deployments_table(items: Sequence[Mapping[str, Any]]) -> str:
    rows = [[str(d["id"]), str(d["created_at"])[:19].replace("T", " "), str(d["project"]),
             str(d["action"]), str(d["status"]), ",".join(d.get("services") or [])]
            for d in items]
    return table(["DEPLOYMENT", "TIME (UTC)", "PROJECT", "ACTION", "STATUS", "SERVICES"], rows)


def elapsed(since: str, now: datetime | None = None) -> str:
    """How long ago an ISO time was, as `12s` or `3m04s`."""
    try:
        then = datetime.fromisoformat(since)
    except ValueError:
        return ""
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    return f"{seconds}s" if seconds < 60 else f"{seconds // 60}m{seconds % 60:02d}s"
