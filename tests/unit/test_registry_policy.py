"""`pull_policy` (`registry.policy`): the values compose-go takes, and when an image is pulled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.registry.policy import (
    DEFAULT,
    PullKind,
    PullPolicy,
    must_pull,
    parse_pull_policy,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.mark.parametrize(("text", "kind", "interval"), [
    ("always", PullKind.ALWAYS, None), ("never", PullKind.NEVER, None),
    ("missing", PullKind.MISSING, None), ("if_not_present", PullKind.MISSING, None),
    ("refresh", PullKind.MISSING, None), ("build", PullKind.BUILD, None),
    ("daily", PullKind.REFRESH, 24 * H), ("weekly", PullKind.REFRESH, 7 * 24 * H),
    ("every_12h", PullKind.REFRESH, 12 * H), ("every_1h30m", PullKind.REFRESH, 1.5 * H),
    ("every_2d", PullKind.REFRESH, 48 * H), ("every_1w", PullKind.REFRESH, 168 * H),
    ("every_90s", PullKind.REFRESH, timedelta(seconds=90)),
    ("every_5ms", PullKind.REFRESH, timedelta(milliseconds=5)),
    ("every_1h0.5m", PullKind.REFRESH, H + timedelta(seconds=30)),
    ("every_1d12h", PullKind.REFRESH, 36 * H), ("every_0s", PullKind.REFRESH, timedelta(0)),
    ("every_1h1.m", PullKind.REFRESH, H + timedelta(minutes=1)),
])
def test_the_values_compose_takes(text: str, kind: PullKind,
                                  interval: timedelta | None) -> None:
    assert parse_pull_policy(text) == PullPolicy(kind, interval)


@pytest.mark.parametrize("text", [
    "", "Always", "ALWAYS", "bogus", "every_", "every_10", "every_1.5h", "every_-1h",
    "every_+1h", "every_1h never", "xalwaysx", "always ", "every_1x", "every_5ns",
    "every_1h.", "every_1h10", "every_" + "9" * 30 + "w", "every_1y", "daily_", "every 1h",
])
def test_anything_else_is_refused_listing_the_valid_values(text: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_pull_policy(text)
    message = str(raised.value)
    for value in ("always", "never", "missing", "build", "daily", "weekly", "every_"):
        assert value in message


ALWAYS, NEVER, BUILD = (PullPolicy(k) for k in (PullKind.ALWAYS, PullKind.NEVER,
                                                PullKind.BUILD))
DAILY = parse_pull_policy("daily")


@pytest.mark.parametrize(("policy", "present", "last", "override", "pull"), [
    (DEFAULT, False, None, None, True),
    (DEFAULT, True, None, None, False),
    (DEFAULT, True, NOW - 1000 * H, None, False),
    (ALWAYS, True, NOW, None, True),
    (ALWAYS, False, None, None, True),
    (NEVER, False, None, None, False),
    (NEVER, True, None, None, False),
    (BUILD, False, None, None, False),
    (BUILD, True, None, None, False),
    (DAILY, False, None, None, True),
    (DAILY, True, None, None, True),  # on the engine, but no pull recorded: stale
    (DAILY, True, NOW - 23 * H, None, False),
    (DAILY, True, NOW - 24 * H, None, False),  # exactly at the interval: not yet after it
    (DAILY, True, NOW - 25 * H, None, True),
    # `up --pull` replaces the service's policy...
    (NEVER, True, None, "always", True),
    (DEFAULT, True, None, "always", True),
    (ALWAYS, True, None, "never", False),
    (ALWAYS, False, None, "never", False),
    (ALWAYS, True, None, "missing", False),
    (ALWAYS, False, None, "missing", True),
    (DAILY, True, NOW - 25 * H, "missing", False),
    (NEVER, False, None, "if_not_present", True),
    # ...but a built service is built, whatever the flag
    (BUILD, False, None, "always", False),
    (BUILD, False, None, "missing", False),
])
def test_must_pull(policy: PullPolicy, present: bool, last: datetime | None,
                   override: str | None, pull: bool) -> None:
    assert must_pull(policy, present=present, last_pulled=last, now=NOW,
                     override=override) is pull


@pytest.mark.parametrize("override", ["build", "Always", "", "daily"])
def test_an_unknown_override_is_refused(override: str) -> None:
    with pytest.raises(ValueError, match="always, missing, never"):
        must_pull(DEFAULT, present=True, last_pulled=None, now=NOW, override=override)


@given(st.integers(min_value=0, max_value=10**4), st.sampled_from("wdhms"),
       st.integers(min_value=0, max_value=10**6))
def test_every_duration_is_its_sum(first: int, unit: str, seconds: int) -> None:
    policy = parse_pull_policy(f"every_{first}{unit}{seconds}s")
    size = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}[unit]
    assert policy == PullPolicy(PullKind.REFRESH, timedelta(seconds=first * size + seconds))


@given(st.text(max_size=20))
def test_parse_either_answers_or_says_what_is_valid(text: str) -> None:
    try:
        policy = parse_pull_policy(text)
    except ValueError as exc:
        assert "every_" in str(exc)
        return
    assert (policy.interval is not None) == (policy.kind is PullKind.REFRESH)
