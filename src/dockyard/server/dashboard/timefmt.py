"""Times as the dashboard shows them: UTC, to the second (the same clock as the CLI's)."""

from __future__ import annotations

from datetime import UTC, datetime


def when(value: datetime | str | None) -> str:
    """`2026-12-01 17:35:49 UTC`; '' for no time."""
    if value is None or value == "":
        return ""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
