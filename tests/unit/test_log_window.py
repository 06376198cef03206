"""What one log request may hold (log_window), what it asks the engine (log_stream's plan),
the per-account follow count (streams.FollowSlots) and stopping a stream from another thread."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from dockyard.runtime.driver import StreamStop
from dockyard.server.log_stream import engine_plan, follow_tail
from dockyard.server.log_window import DEFAULT_LINES, MAX_LINES, NewestLines, clamp_lines
from dockyard.server.streams import FollowSlots, TooManyFollows


def test_the_window_keeps_the_newest_lines_in_time_order_and_counts_the_others() -> None:
    window: NewestLines[str] = NewestLines(3)
    for at, text in [(5.0, "e"), (1.0, "a"), (4.0, "d"), (2.0, "b"), (3.0, "c")]:
        window.add(at, 1, text)
    assert len(window) == 3 and window.dropped == 2 and window.oldest == 3.0
    assert list(window.drain()) == ["c", "d", "e"]
    assert len(window) == 0


def test_equal_times_keep_their_arrival_order_and_the_latest_arrivals() -> None:
    window: NewestLines[str] = NewestLines(2)
    for text in "abc":
        window.add(1.0, 1, text)
    assert list(window.drain()) == ["b", "c"] and window.dropped == 1


def test_the_byte_budget_drops_the_oldest_but_keeps_at_least_one_line() -> None:
    window: NewestLines[str] = NewestLines(100, max_bytes=10)
    for i in range(5):
        window.add(float(i), 4, str(i))
    assert list(window.drain()) == ["3", "4"] and window.dropped == 3
    window.add(9.0, 50, "huge")  # over the budget alone: still answered, not lost silently
    assert list(window.drain()) == ["huge"]


def test_a_window_never_holds_more_than_its_lines_however_many_come() -> None:
    window: NewestLines[int] = NewestLines(10)
    biggest = 0
    for i in range(10_000):
        window.add(float(i % 977), 1, i)
        biggest = max(biggest, len(window))
    assert biggest == 10 and window.dropped == 9_990


def test_an_empty_window_is_refused() -> None:
    with pytest.raises(ValueError):
        NewestLines(0)


def test_the_line_budget_of_a_request() -> None:
    assert clamp_lines(None) == DEFAULT_LINES == 10_000
    assert clamp_lines(5) == 5 and clamp_lines(10**9) == MAX_LINES and clamp_lines(0) == 1


def test_the_engine_is_asked_for_one_line_more_than_the_limit_unless_a_tail_is_given() -> None:
    assert engine_plan(None, 100, None) == engine_plan(500, 100, None)
    assert engine_plan(None, 100, None).tail == 101
    assert engine_plan(7, 100, None).tail == 7 and engine_plan(7, 100, None).keep is None


def test_with_until_the_engine_gets_no_tail_and_the_server_keeps_the_users_tail() -> None:
    until = datetime(2026, 1, 1, tzinfo=UTC)
    assert engine_plan(None, 100, until).tail is None
    assert engine_plan(None, 100, until).keep is None
    assert engine_plan(7, 100, until).keep == 7
    assert engine_plan(500, 100, until).keep is None  # the window's limit cuts it


def test_a_follow_starts_with_at_most_limit_lines() -> None:
    assert follow_tail(None, 10_000) == 10_000 and follow_tail(5, 100) == 5
    assert follow_tail(10**6, 100) == 100


def test_follow_slots_are_counted_per_account_and_released_once() -> None:
    slots = FollowSlots(2)
    first, _second = slots.take("alice"), slots.take("alice")
    with pytest.raises(TooManyFollows) as refused:
        slots.take("alice")
    assert "2" in refused.value.message and refused.value.hint
    bob = slots.take("bob")
    first()
    first()  # twice: counted once
    assert slots.open("alice") == 1
    slots.take("alice")
    bob()
    assert slots.open("bob") == 0


def test_no_cap_means_no_limit() -> None:
    slots = FollowSlots(0)
    for _ in range(1000):
        slots.take("alice")
    assert slots.open("alice") == 1000


def test_a_stream_stop_closes_what_is_attached_and_what_comes_after() -> None:
    closed: list[str] = []
    stop = StreamStop()
    stop.attach(lambda: closed.append("a"))
    waiter = threading.Thread(target=stop.stop)
    waiter.start()
    waiter.join()
    assert closed == ["a"] and stop.stopped.is_set()
    stop.attach(lambda: closed.append("b"))  # a stream opened after the stop closes at once

    def broken() -> None:
        raise OSError("already closed")

    stop.attach(broken)  # a failing close does not escape
    stop.stop()
    assert closed == ["a", "b"]
