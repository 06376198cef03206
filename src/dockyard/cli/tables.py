"""Plain-text tables (Defang's `ps` layout: columns padded by two spaces, headers upper-case,
no trailing spaces). Pure, so goldens can pin them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockyard.wire_models import DeploymentSummary, PlannedService, ServiceStatus


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


def ps_table(services: Sequence[ServiceStatus], *, long: bool = False) -> str:
    headers = ["SERVICE", "DEPLOYMENT", "STATE", "FQDN", "ENDPOINT"]
    # On a Swarm (`--driver swarm`), where the replicas run, and a volume's pinned node.
    nodes = long and any(s.nodes or s.pinned_node for s in services)
    if long:
        headers += ["REPLICAS", "SINCE", "IMAGE", *(["NODES"] if nodes else []), "REASON"]
    rows = []
    for s in services:
        endpoints = s.endpoints or ([s.endpoint] if s.endpoint else [])
        row = [s.service, s.deployment, s.state, s.fqdn, " ".join(endpoints)]
        if long:
            row += [f"{s.running}/{s.replicas}", s.since[:19].replace("T", " "),
                    _short_image(s.image)]
            if nodes:
                pin = f" (pinned to {s.pinned_node})" if s.pinned_node else ""
                row.append(",".join(s.nodes) + pin)
            row.append(s.reason)
        rows.append(row)
    return table(headers, rows)


def _short_image(image: str) -> str:
    """`repo@sha256:` and 12 hex of the digest (as `docker images --digests` shortens ids)."""
    head, at, digest = image.partition("@sha256:")
    if at:
        return f"{head}@sha256:{digest[:12]}"
    return image.removeprefix("sha256:")[:12]


def plan_table(services: Sequence[PlannedService]) -> str:
    """`up --dry-run`: SERVICE ACTION REPLICAS WHY, in the order the plan carries them out."""
    rows = [[s.service, s.action, str(s.replicas), ", ".join(s.reasons)] for s in services]
    return table(["SERVICE", "ACTION", "REPLICAS", "WHY"], rows)


def endpoints_text(services: Sequence[ServiceStatus]) -> str:
    lines = []
    for s in services:
        for endpoint in s.endpoints:
            lines.append(f"  {s.service}: {endpoint}")
    return ("Endpoints:\n" + "\n".join(lines) + "\n") if lines else ""


def deployments_table(items: Sequence[DeploymentSummary]) -> str:
    rows = [[d.id, d.created_at[:19].replace("T", " "), d.project, d.action, d.status,
             ",".join(d.services)] for d in items]
    return table(["DEPLOYMENT", "TIME (UTC)", "PROJECT", "ACTION", "STATUS", "SERVICES"], rows)


def elapsed(since: str, now: datetime | None = None) -> str:
    """How long ago an ISO time was, as `12s` or `3m04s`."""
    try:
        then = datetime.fromisoformat(since)
    except ValueError:
        return ""
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    return f"{seconds}s" if seconds < 60 else f"{seconds // 60}m{seconds % 60:02d}s"
