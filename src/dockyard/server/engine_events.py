"""Engine events, for whoever waits on a container: a deployment waiting for its new replicas
to become healthy wakes when the engine reports something about them (started, died, health
changed), instead of asking the engine about every container ten times a second.

The server's watcher (`server.watcher`) sees every event of the server's containers and calls
`saw`; `wait` returns at the first event for one of the given containers, or after `timeout`
seconds (so a waiter still looks by itself now and then: for a timer such as the stabilization
time, and in case an event was missed). `wake_all` wakes every waiter at once: when the watcher's
stream was interrupted (events may have been missed) and when the server shuts down, so a waiter
that sleeps long between looks never sleeps through either.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

REMEMBERED = 10_000  # containers whose event counts are kept (the oldest are forgotten)


class Mark(dict[str, int]):
    """Where some containers' event counts stood (`EngineEvents.mark`), and the board's epoch."""

    def __init__(self, counts: dict[str, int], epoch: int) -> None:
        super().__init__(counts)
        self.epoch = epoch


class EngineEvents:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        # container id -> how many events were seen for it, the most recent last
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._epoch = 0  # bumped by `wake_all`

    def saw(self, container_id: str) -> None:
        with self._changed:
            self._seen[container_id] = self._seen.get(container_id, 0) + 1
            self._seen.move_to_end(container_id)
            while len(self._seen) > REMEMBERED:
                self._seen.popitem(last=False)
            self._changed.notify_all()

    def wake_all(self) -> None:
        """Wake every waiter, and every later `wait` on an earlier mark."""
        with self._changed:
            self._epoch += 1
            self._changed.notify_all()

    def mark(self, container_ids: Iterable[str]) -> Mark:
        """Where the containers' event counts stand now (for `wait`)."""
        with self._changed:
            return Mark({c: self._seen.get(c, 0) for c in container_ids}, self._epoch)

    def wait(self, since: Mark, timeout: float) -> bool:
        """Wait until a container of `since` has a new event or `wake_all` was called since
        the mark (True), or `timeout` (False)."""
        def moved() -> bool:
            return self._epoch != since.epoch or any(
                self._seen.get(c, 0) != n for c, n in since.items())

        with self._changed:
            return self._changed.wait_for(moved, timeout)
