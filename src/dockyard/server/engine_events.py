"""Engine events, for whoever waits on a container: a deployment waiting for its new replicas
to become healthy wakes when the engine reports something about them (started, died, health
changed), instead of asking the engine about every container ten times a second.

The server's watcher (`server.watcher`) sees every event of the server's containers and calls
`saw`; `wait` returns at the first event for one of the given containers, or after `timeout`
seconds (so a waiter still looks by itself now and then: for a timer such as the stabilization
time, and in case an event was missed while the watcher reconnected).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

REMEMBERED = 10_000  # containers whose event counts are kept (the oldest are forgotten)


class EngineEvents:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        # container id -> how many events were seen for it, the most recent last
        self._seen: OrderedDict[str, int] = OrderedDict()

    def saw(self, container_id: str) -> None:
        with self._changed:
            self._seen[container_id] = self._seen.get(container_id, 0) + 1
            self._seen.move_to_end(container_id)
            while len(self._seen) > REMEMBERED:
                self._seen.popitem(last=False)
            self._changed.notify_all()

    def mark(self, container_ids: Iterable[str]) -> dict[str, int]:
        """Where the containers' event counts stand now (for `wait`)."""
        with self._changed:
            return {c: self._seen.get(c, 0) for c in container_ids}

    def wait(self, since: dict[str, int], timeout: float) -> bool:
        """Wait until a container of `since` has a new event (True), or `timeout` (False)."""
        def moved() -> bool:
            return any(self._seen.get(c, 0) != n for c, n in since.items())

        with self._changed:
            return self._changed.wait_for(moved, timeout)
