"""How much of a build's output is stored: the first part, then one note.

A build can print without end (`RUN yes`); every line stored is kept in the database for as
long as the deployment is. So per service and deployment the store keeps the first
`max_bytes` (the part that says what was built and usually why it failed early), then one note
that says the log was truncated and how much was dropped. The end of the output is still in
the failure reason: the driver keeps the last lines of a build in memory for it.
"""

from __future__ import annotations

from collections.abc import Iterable


class BuildLogCap:
    """The budget of one service's build log in one deployment (one thread uses it)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.stored = 0  # bytes kept (a line counts its UTF-8 bytes and a newline)
        self.dropped_bytes = 0
        self.dropped_lines = 0
        self.note_id = 0  # the stored note's row, once written

    @property
    def truncated(self) -> bool:
        return self.dropped_lines > 0

    def admit(self, lines: Iterable[str]) -> list[str]:
        """The part of `lines` to store; the rest is only counted. A line that does not fit
        whole is cut to what is left of the budget; nothing after it is stored."""
        kept: list[str] = []
        for line in lines:
            data = line.encode("utf-8", "replace")
            size = len(data) + 1
            if not self.truncated and self.stored + size <= self.max_bytes:
                kept.append(line)
                self.stored += size
                continue
            room = self.max_bytes - self.stored - 1 if not self.truncated else 0
            if room > 0:
                head = data[:room].decode("utf-8", "ignore")
                kept.append(head)
                self.stored += len(head.encode()) + 1
                size -= len(head.encode()) + 1  # what is left of the line is dropped
            self.dropped_bytes += size
            self.dropped_lines += 1
        return kept

    def note(self) -> str:
        return (f"[build log truncated: the first {self.stored} bytes are stored (limit "
                f"{self.max_bytes} bytes per service and deployment); {self.dropped_bytes} "
                f"bytes in {self.dropped_lines} line{'s' if self.dropped_lines != 1 else ''} "
                "after them were dropped]")
