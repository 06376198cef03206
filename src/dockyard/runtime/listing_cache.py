"""Container listings answered from memory while the engine's events say nothing changed.

Why: `ps`, a no-op `up` and the endpoints an `up` prints each list a project's containers. On a
busy engine one listing of 100 containers costs dockerd more CPU and the caller more time than
everything else those commands do; yet between two of them usually nothing changed.

A listing (by labels) is kept only while an event stream is followed whose label filter covers
it: every container the listing could hold carries that stream's labels, so any change to one
(created, started, died, paused, renamed, health changed, destroyed) arrives as an event on that
stream, and the event drops every kept listing whose labels the container carries. The driver's
own changes (create, start, stop, remove) drop them too, at once, without waiting for their
event. What a kept listing can miss is a change the engine made by itself (a restart policy, a
crash) for the few milliseconds before its event arrives: the same moment a fresh listing could
have missed it.

Races are settled by a generation count: a listing read from the engine is kept only if no
event, no change and no stream start came between the moment it was asked and the moment it is
stored; a stream that stops drops every kept listing, and one that starts again begins a new
generation (events it missed meanwhile cannot leave a stale listing behind).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from dockyard.runtime.driver import ContainerInfo

Labels = frozenset[tuple[str, str]]
MAX_LISTINGS = 256  # kept listings (one per project and label set asked); past it, start over


def labels_key(labels: Mapping[str, str]) -> Labels:
    return frozenset(labels.items())


class ListingCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listings: dict[Labels, tuple[ContainerInfo, ...]] = {}
        self._streams: dict[Labels, int] = {}  # label filters of the streams followed now
        self._generation = 0

    def generation(self) -> int:
        with self._lock:
            return self._generation

    def lookup(self, labels: Mapping[str, str]) -> list[ContainerInfo] | None:
        """The kept listing of `labels`, or None: ask the engine (and `store` its answer)."""
        with self._lock:
            found = self._listings.get(labels_key(labels))
            return None if found is None else list(found)

    def store(self, labels: Mapping[str, str], generation: int,
              found: list[ContainerInfo]) -> None:
        """Keep `found`, the engine's listing of `labels` asked at `generation`, if nothing
        happened since and a followed stream covers it."""
        key = labels_key(labels)
        with self._lock:
            if generation != self._generation or not self._covered(key):
                return
            if len(self._listings) >= MAX_LISTINGS:
                self._listings.clear()
            self._listings[key] = tuple(found)

    def changed(self, labels: Mapping[str, str] | None = None) -> None:
        """A container carrying `labels` changed (None: some container, which one unknown)."""
        with self._lock:
            self._generation += 1
            if labels is None:
                self._listings.clear()
                return
            carried = labels_key(labels)
            for key in [k for k in self._listings if k <= carried]:
                del self._listings[key]

    @contextmanager
    def following(self, labels: Mapping[str, str]) -> Iterator[None]:
        """Enter once an event stream filtered by `labels` is established; leave when it
        stops. Listings it covers may be kept while it runs."""
        key = labels_key(labels)
        if not key:  # a stream of every managed container: its filter is no label's value
            yield
            return
        with self._lock:
            self._generation += 1
            self._streams[key] = self._streams.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._generation += 1
                self._streams[key] -= 1
                if not self._streams[key]:
                    del self._streams[key]
                self._listings = {k: v for k, v in self._listings.items() if self._covered(k)}

    def covers(self, labels: Mapping[str, str]) -> bool:
        """Whether a listing of `labels` may be kept now (a followed stream covers it)."""
        with self._lock:
            return self._covered(labels_key(labels))

    def _covered(self, key: Labels) -> bool:
        return any(stream <= key for stream in self._streams)
