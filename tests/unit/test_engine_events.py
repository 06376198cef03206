"""Engine events wake the waiters of their containers, and only them."""

from __future__ import annotations

import threading

from dockyard.server import engine_events
from dockyard.server.engine_events import EngineEvents


def test_an_event_wakes_a_waiter_on_that_container() -> None:
    board = EngineEvents()
    mark = board.mark(["a", "b"])
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(board.wait(mark, 30.0)))
    waiter.start()
    board.saw("other")
    board.saw("b")
    waiter.join(30.0)
    assert woke == [True]


def test_no_event_for_its_containers_is_a_timeout() -> None:
    board = EngineEvents()
    mark = board.mark(["a"])
    board.saw("other")
    assert board.wait(mark, 0.01) is False
    board.saw("a")
    assert board.wait(mark, 0.01) is True  # seen since the mark: no wait at all


def test_it_remembers_a_bounded_number_of_containers() -> None:
    board = EngineEvents()
    for index in range(engine_events.REMEMBERED + 5):
        board.saw(f"c{index}")
    assert board.mark(["c0"]) == {"c0": 0}  # the oldest were forgotten
    assert board.mark([f"c{engine_events.REMEMBERED + 4}"]) == {
        f"c{engine_events.REMEMBERED + 4}": 1}


def test_wake_all_wakes_every_waiter_and_a_wait_on_an_earlier_mark() -> None:
    board = EngineEvents()
    before = board.mark(["a"])
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(board.wait(board.mark(["b"]), 30.0)))
    waiter.start()
    board.wake_all()
    waiter.join(30.0)
    assert woke == [True]
    assert board.wait(before, 0.01) is True  # woken since that mark: no wait at all
    assert board.wait(board.mark(["a"]), 0.01) is False  # a mark after it waits as before
