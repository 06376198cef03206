"""`compose up --ttl`: reading a TTL, checking it, and saying when a deadline is (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dockyard.cli.commands.projects import expires_text, expiry_line, services_text
from dockyard.ttl import MAX_TTL_SECONDS, deadline_text, parse_ttl, span, ttl_problem
from dockyard.wire_models import ServiceStatus

NOW = datetime(2026, 12, 1, 17, 30, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1w", 7 * 86400),
    ("1h30m", 5400), ("90m", 5400), (" 2h ", 7200), ("1m0.5s", 60), ("366d", MAX_TTL_SECONDS),
])
def test_a_ttl_is_written_as_compose_writes_durations(text: str, seconds: int) -> None:
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize(("text", "problem"), [
    ("soon", "not a duration"), ("2", "not a duration"), ("h", "not a duration"),
    ("-1h", "not a duration"), ("1.5h", "not a duration"), ("", "not a duration"),
    ("0s", "at least 1s"), ("500ms", "at least 1s"), ("367d", "at most 366d"),
    ("99999h", "at most 366d"), ("99999999h", "not a duration"),  # past Go's limit
])
def test_a_ttl_that_is_no_ttl_says_what_to_write(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        parse_ttl(text)
    assert f"--ttl {text!r}" in str(caught.value)


def test_the_server_checks_seconds_as_the_cli_does() -> None:
    assert ttl_problem(1) is None and ttl_problem(MAX_TTL_SECONDS) is None
    for bad in (0, -1, 0.99, MAX_TTL_SECONDS + 1, float("nan")):
        assert ttl_problem(bad), bad


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (45, "45s"), (60, "1m00s"), (545, "9m05s"), (7199.9, "1h59m"), (7200, "2h00m"),
    (86400 + 3 * 3600 + 59, "1d03h"), (-5, "0s"),
])
def test_a_span_shows_its_two_largest_units(seconds: float, text: str) -> None:
    assert span(seconds) == text


def test_a_deadline_is_said_from_now() -> None:
    assert deadline_text("2026-12-01T19:29:30.500000+00:00", NOW) == \
        "expires in 1h59m (at 2026-12-01T19:29:30Z)"
    assert deadline_text("2026-12-01T17:29:55+00:00", NOW) == \
        "expired 5s ago (at 2026-12-01T17:29:55Z): being taken down"
    assert deadline_text("2026-12-01T18:30:00", NOW).startswith("expires in 1h00m")  # naive: UTC


def test_ps_says_when_the_project_expires_under_its_table() -> None:
    rows = [ServiceStatus(service="web", deployment="a", state="BUILD_RUNNING",
                          expires_at="2026-12-01T19:30:00+00:00")]
    assert expiry_line(rows, NOW) == (
        "Expires in 2h00m (at 2026-12-01T19:30:00Z); the server takes it down then "
        "(`compose up` without --ttl keeps it)\n")
    assert expiry_line([ServiceStatus(service="web", deployment="a", state="x")], NOW) == ""
    assert expiry_line([], NOW) == ""


def test_ls_cells() -> None:
    assert services_text({}) == "-"
    assert services_text({"SERVICE_DEPLOYMENT_COMPLETED": 2, "SERVICE_DEPLOYMENT_FAILED": 1,
                          "DEPLOYMENT_SCALED_IN": 1, "BUILD_RUNNING": 1}) == \
        "2 COMPLETED, 1 FAILED, 1 SCALED_IN, 1 BUILD_RUNNING"
    assert expires_text(None, False, NOW) == "-"
    assert expires_text("2026-12-01T18:00:00+00:00", True, NOW) == \
        "2026-12-01 18:00:00 (in 30m00s, volumes too)"
    assert expires_text("2026-12-01T17:00:00+00:00", False, NOW) == \
        "2026-12-01 17:00:00 (expired 30m00s ago)"
