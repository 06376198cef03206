"""Durations and sizes, parsed and printed exactly as Compose v2 (Go) does."""

from __future__ import annotations

import re

_UNITS_NS = {
    "ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
    "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_SIZE_MULTIPLIERS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_duration(text: str) -> int:
    """Go's `time.ParseDuration` (`1m30s`, `500ms`, `2h`, `-1.5h`) to nanoseconds.

    Raises ValueError with a message a user can act on.
    """
    s = text.strip()
    if s in ("0", "+0", "-0"):
        return 0
    sign = 1
    if s and s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    pos = 0
    total = 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            raise ValueError(
                f"invalid duration {text!r}: use a number with a unit, like 10s, 1m30s or 500ms"
            )
        total += float(m.group(1)) * _UNITS_NS[m.group(2)]
        pos = m.end()
    if total > 2**63 - 1:  # Go's time.Duration is an int64 of nanoseconds
        raise ValueError(f"invalid duration {text!r}: too long")
    return sign * int(round(total))


def format_duration(ns: int) -> str:
    """Go's `time.Duration.String()`: `1m30s`, `500ms`, `2h0m0s`, `0s`."""
    if ns == 0:
        return "0s"
    neg = ns < 0
    u = -ns if neg else ns
    sign = "-" if neg else ""
    if u < 1_000_000_000:
        if u < 1_000:
            return f"{sign}{u}ns"
        if u < 1_000_000:
            return f"{sign}{_frac(u, 1_000)}µs"
        return f"{sign}{_frac(u, 1_000_000)}ms"
    seconds_ns = u % 60_000_000_000
    minutes = (u // 60_000_000_000) % 60
    hours = u // 3_600_000_000_000
    out = f"{_frac(seconds_ns, 1_000_000_000)}s"
    if hours or minutes:
        out = f"{minutes}m{out}"
    if hours:
        out = f"{hours}h{out}"
    return sign + out


def _frac(value: int, unit: int) -> str:
    whole, rest = divmod(value, unit)
    if not rest:
        return str(whole)
    digits = str(rest).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def parse_bytes(value: str | int | float) -> int:
    """Docker's `RAMInBytes`: `512M`, `1g`, `1.5gb`, `64k`, `2GiB` or a number of bytes."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r}")
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"invalid size {value!r}")
        return int(value)
    m = _SIZE.match(value.strip())
    if m is None:
        raise ValueError(
            f"invalid size {value!r}: use a number with an optional unit, like 512m or 1.5g"
        )
    number = float(m.group(1)) if m.group(1).count(".") <= 1 else None
    if number is None:
        raise ValueError(f"invalid size {value!r}")
    size = number * _SIZE_MULTIPLIERS[(m.group(2) or "").lower()]
    if size > 2**63 - 1:  # Docker sizes are int64 bytes
        raise ValueError(f"invalid size {value!r}: too large")
    return int(size)
