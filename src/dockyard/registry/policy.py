"""Compose's `pull_policy`, and whether a service's image must be pulled now.

Values, as compose-go reads them (`ServiceConfig.GetPullPolicy`):

- `always`: pull on every deployment; `never`: use the engine's copy, never pull;
- `missing` (and its older spelling `if_not_present`): pull only when the engine lacks it;
  this is also the default when no `pull_policy` is written;
- `build`: the service is built; its image is never pulled;
- `daily`, `weekly`, `every_<duration>`: pull when missing, or when the last pull is older
  than the interval (24 h, 7 days, or the duration: Go's syntax with `d` and `w` added, such
  as `every_12h`, `every_1h30m`, `every_2d`, `every_1w`).

Decisions where Compose is loose or Dockyard differs:

- Compose's schema pattern is not anchored, so it takes any text that merely contains a valid
  value (`xalwaysx`, `every_1h never`) and then runs it as `missing` or fails at `up`. Dockyard
  refuses such text at load time: it is a typo, and the user should learn it then.
- `every_<duration>` must start with whole units of weeks, days, hours, minutes or seconds (as
  Compose's schema asks: `every_1.5h` is refused by both); later parts may be any unit of the
  duration syntax (`every_1h0.5m`).
- `refresh` is accepted because Compose's schema accepts it; compose-go runs it as `missing`,
  and so does Dockyard.
- `up --pull always|missing|never` replaces every service's policy, as in Compose, except a
  `build` policy: in Dockyard a built service is always built, and `--pull` with `--build`
  refreshes the base images of its build instead (`build.pull`). Compose would pull such a
  service's image rather than build it, which in Dockyard's model would run a stranger's image
  under a built service's name.
- The interval is measured from the last pull Dockyard recorded for the image; an image on the
  engine with no recorded pull counts as stale, like compose-go's zero `LastTagTime`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

VALID_VALUES = ("always", "never", "missing", "if_not_present", "build", "daily", "weekly",
                "every_<duration>")
OVERRIDES = ("always", "missing", "never")


class PullKind(enum.Enum):
    ALWAYS = "always"
    NEVER = "never"
    MISSING = "missing"
    BUILD = "build"
    REFRESH = "refresh"  # missing, or older than `interval`


@dataclass(frozen=True, slots=True)
class PullPolicy:
    kind: PullKind
    interval: timedelta | None = None  # REFRESH only


DEFAULT = PullPolicy(PullKind.MISSING)

_KEYWORDS = {
    "always": PullPolicy(PullKind.ALWAYS), "never": PullPolicy(PullKind.NEVER),
    "missing": DEFAULT, "if_not_present": DEFAULT, "refresh": DEFAULT,
    "build": PullPolicy(PullKind.BUILD),
    "daily": PullPolicy(PullKind.REFRESH, timedelta(days=1)),
    "weekly": PullPolicy(PullKind.REFRESH, timedelta(weeks=1)),
}
_NANOSECONDS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
                "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9,
                "w": 7 * 86400 * 10**9}
_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")
_SCHEMA_START = re.compile(r"[0-9]+[wdhms]")  # Compose's schema: every_([0-9]+[wdhms])+
_GO_DURATION_MAX = 2**63 - 1  # nanoseconds; longer durations overflow in Compose


def parse_pull_policy(text: str) -> PullPolicy:
    """The policy `text` names. Raises ValueError with a message listing the valid values."""
    known = _KEYWORDS.get(text)
    if known is not None:
        return known
    if text.startswith("every_"):
        nanoseconds = duration_ns(text.removeprefix("every_"))
        if nanoseconds is not None:
            return PullPolicy(PullKind.REFRESH, timedelta(microseconds=nanoseconds // 1000))
    raise ValueError(f"pull_policy {text!r} is not one of {', '.join(VALID_VALUES)} (a "
                     "duration is written like every_12h, every_1h30m, every_2d)")


def duration_ns(text: str) -> int | None:
    """A duration in nanoseconds as compose-go's str2duration reads it (Go's syntax plus `d`
    and `w`), but unsigned and starting as Compose's schema asks; None when it is not one.
    Also what `compose up --ttl` reads (`dockyard.ttl`)."""
    if _SCHEMA_START.match(text) is None:
        return None
    total, rest = 0, text
    while rest:
        found = _PART.match(rest)
        assert found is not None  # the pattern matches any text, if only emptily
        whole, fraction, unit = found.groups()
        if (not whole and not fraction) or unit not in _NANOSECONDS or found.end() == 0:
            return None
        scale = _NANOSECONDS[unit]
        total += int(whole or "0") * scale
        if fraction:
            total += int(int(fraction) * scale / 10 ** len(fraction))
        if total > _GO_DURATION_MAX:
            return None
        rest = rest[found.end():]
    return total


def must_pull(policy: PullPolicy, *, present: bool, last_pulled: datetime | None,
              now: datetime, override: str | None = None) -> bool:
    """Whether the service's image is pulled before this deployment.

    `present`: the engine has the image; `last_pulled`: when Dockyard last pulled it (None:
    never, or not recorded); `override`: `up --pull` (always, missing or never), which replaces
    the service's policy unless the service is built. `now` and `last_pulled` must both be
    aware (or both naive) datetimes. Raises ValueError for an unknown override."""
    if override is not None:
        if override not in (*OVERRIDES, "if_not_present"):
            raise ValueError(f"--pull {override!r} is not one of {', '.join(OVERRIDES)}")
        if policy.kind is not PullKind.BUILD:
            policy = _KEYWORDS[override]
    if policy.kind is PullKind.ALWAYS:
        return True
    if policy.kind in (PullKind.NEVER, PullKind.BUILD):
        return False
    if not present:
        return True
    if policy.kind is PullKind.REFRESH:
        interval = policy.interval or timedelta(0)
        return last_pulled is None or now > last_pulled + interval
    return False
