"""Previews that expire (`compose up --ttl 2h`): reading a TTL, and saying when a deadline is.

Pure: the CLI reads `--ttl` with `parse_ttl` and sends seconds; the server checks them with
`check_ttl`, keeps the deadline and carries it out (`dockyard.server.expiry`); `ps` and
`compose ls` say it with `deadline_text`.

A TTL is written as Compose writes durations (`pull_policy: every_12h`): Go's syntax with days
and weeks added (`30s`, `10m`, `2h`, `1h30m`, `1d`, `1w`), starting with a whole number. It is
at least one second and at most `MAX_TTL_SECONDS` (a year): a preview that should outlive that
is deployed without `--ttl`.
"""

from __future__ import annotations

from datetime import UTC, datetime

MAX_TTL_SECONDS = 366 * 86400
_EXAMPLES = "like 30s, 10m, 2h, 1h30m or 1d"


def parse_ttl(text: str) -> int:
    """The whole seconds of `text` (`2h` -> 7200). Raises ValueError saying what to write."""
    from dockyard.registry.policy import duration_ns  # `ps` shows expiry without parsing any

    nanoseconds = duration_ns(text.strip())
    if nanoseconds is None:
        raise ValueError(f"--ttl {text!r} is not a duration: write one {_EXAMPLES}")
    seconds = nanoseconds // 10**9
    problem = ttl_problem(seconds)
    if problem:
        raise ValueError(f"--ttl {text!r}: {problem}")
    return seconds


def ttl_problem(seconds: float) -> str | None:
    """Why `seconds` is no TTL (None: it is one); the server asks the same of what it gets."""
    if not seconds >= 1:  # NaN too
        return "a TTL is at least 1s (to take the project down now, use `compose down`)"
    if seconds > MAX_TTL_SECONDS:
        return "a TTL is at most 366d (deploy without --ttl to keep the project)"
    return None


def span(seconds: float) -> str:
    """A compact length of time, its two largest units: `45s`, `9m05s`, `1h59m`, `2d03h`."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def deadline_text(expires_at: str, now: datetime | None = None) -> str:
    """`expires in 1h59m (at 2026-12-01T19:30:00Z)`, or `expired 5s ago (at ...)` while the
    server takes it down; `expires_at` is the ISO time the server sent."""
    when = datetime.fromisoformat(expires_at)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    left = (when - (now or datetime.now(UTC))).total_seconds()
    at = when.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    if left > 0:
        return f"expires in {span(left)} (at {at})"
    return f"expired {span(-left)} ago (at {at}): being taken down"
