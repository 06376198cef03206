"""The newest lines of a log within a line and a byte budget: all one request may hold.

A log request merges several containers' lines by time and answers the newest ones. Lines go
into a min-heap ordered by (time, arrival); whenever the window is over `max_lines` or
`max_bytes`, its oldest line is dropped and counted. Memory is therefore bounded whatever the
engine sends, and what was dropped is known, so the answer can say that older lines were left
out and where to page from (`oldest`: the time of the oldest line kept).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_LINES = 10_000  # lines a log request answers unless it asks for fewer or more
MAX_LINES = 50_000  # the most a log request may ask for
MAX_BYTES = 16 * 1024 * 1024  # text one log request holds at most, whatever its line count


@dataclass(order=True, slots=True)
class _Kept(Generic[T]):
    at: float
    seq: int
    size: int = field(compare=False)
    item: T = field(compare=False)


class NewestLines(Generic[T]):
    """The newest items by time, at most `max_lines` of them and `max_bytes` of text."""

    def __init__(self, max_lines: int, max_bytes: int = MAX_BYTES) -> None:
        if max_lines < 1 or max_bytes < 1:
            raise ValueError("a log window holds at least one line and one byte")
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.dropped = 0  # lines left out (older than every line kept)
        self._heap: list[_Kept[T]] = []
        self._bytes = 0
        self._seq = 0

    def add(self, at: float, size: int, item: T) -> None:
        """Keep `item` (time `at`, `size` bytes of text) unless it is the oldest over budget."""
        self._seq += 1
        heapq.heappush(self._heap, _Kept(at, self._seq, size, item))
        self._bytes += size
        while len(self._heap) > self.max_lines or (self._bytes > self.max_bytes and
                                                   len(self._heap) > 1):
            gone = heapq.heappop(self._heap)
            self._bytes -= gone.size
            self.dropped += 1

    def __len__(self) -> int:
        return len(self._heap)

    @property
    def oldest(self) -> float | None:
        """The time of the oldest line kept (None when empty)."""
        return self._heap[0].at if self._heap else None

    def drain(self) -> Iterator[T]:
        """The lines kept, oldest first (ties in arrival order), each let go once yielded."""
        while self._heap:
            gone = heapq.heappop(self._heap)
            self._bytes -= gone.size
            yield gone.item


def clamp_lines(limit: int | None) -> int:
    """A request's line budget: DEFAULT_LINES when not given (the route refuses bad values)."""
    return DEFAULT_LINES if limit is None else max(1, min(limit, MAX_LINES))
