"""Container listings answered from memory while the engine's events say nothing changed.

Why: `ps` and the endpoints an `up` prints each list a project's containers. On a busy engine
one listing of 100 containers costs dockerd more CPU and the caller more time than everything
else those commands do; yet between two of them usually nothing changed.

A listing (by labels) is kept only while an event stream is followed whose label filter covers
it: every container the listing could hold carries that stream's labels, so any change to one
(created, started, died, paused, renamed, health changed, destroyed) arrives as an event on that
stream, and the event drops every kept listing whose labels the container carries. The events
are read by a thread of their own (`DockerEngine.events`), never held up by whoever handles
them. The driver's own changes (create, start, stop, remove) drop kept listings at once,
without waiting for their event.

What a kept listing can miss, and the bounds on it:
- a change before its event arrives (milliseconds: a fresh listing could miss it as well);
- a stream the engine has answered but not yet subscribed (it sends its headers first): a stream
  covers listings only `STREAM_GRACE` seconds after it opened;
- a change the engine makes with no container event (a restart policy whose start fails, a
  network connected by hand): a listing is kept at most `MAX_AGE` seconds.
Decisions that change what runs (a deployment's plan) ask the engine anyway (`fresh`).

Races are settled by a generation count: a listing read from the engine is kept only if no
event, no change and no stream start or stop came between the moment it was asked and the
moment it is stored; a stream that stops drops every kept listing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from dockyard.runtime.driver import ContainerInfo

Labels = frozenset[tuple[str, str]]
MAX_LISTINGS = 256  # kept listings (one per project and label set asked); past it, start over
MAX_AGE = 5.0  # seconds a listing is kept at most
STREAM_GRACE = 1.0  # seconds after a stream opened before it covers listings


def labels_key(labels: Mapping[str, str]) -> Labels:
    return frozenset(labels.items())


class _Stream:
    """One followed stream: whether it covers listings yet, and whether it stopped."""

    __slots__ = ("key", "covering", "closed")

    def __init__(self, key: Labels) -> None:
        self.key, self.covering, self.closed = key, False, False


class ListingCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._listings: dict[Labels, tuple[float, tuple[ContainerInfo, ...]]] = {}
        self._streams: dict[Labels, int] = {}  # label filters of the streams covering now
        self._generation = 0

    def generation(self) -> int:
        with self._lock:
            return self._generation

    def lookup(self, labels: Mapping[str, str]) -> list[ContainerInfo] | None:
        """The kept listing of `labels`, or None: ask the engine (and `store` its answer)."""
        with self._lock:
            found = self._listings.get(labels_key(labels))
            if found is None or self._clock() - found[0] > MAX_AGE:
                return None
            return list(found[1])

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
            self._listings[key] = (self._clock(), tuple(found))

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
    def following(self, labels: Mapping[str, str], grace: float = 0.0) -> Iterator[None]:
        """Enter when an event stream filtered by `labels` opens, leave when it stops: listings
        it covers may be kept from `grace` seconds after it opened until it stops."""
        stream = _Stream(labels_key(labels))
        if not stream.key:  # a stream of every managed container: its filter is no label value
            yield
            return
        timer = threading.Timer(grace, self._cover, args=(stream,)) if grace > 0 else None
        if timer is None:
            self._cover(stream)
        else:
            timer.daemon = True
            timer.start()
        try:
            yield
        finally:
            if timer is not None:
                timer.cancel()
            with self._lock:
                stream.closed = True
                self._generation += 1
                if stream.covering:
                    self._streams[stream.key] -= 1
                    if not self._streams[stream.key]:
                        del self._streams[stream.key]
                self._listings = {k: v for k, v in self._listings.items() if self._covered(k)}

    def covers(self, labels: Mapping[str, str]) -> bool:
        """Whether a listing of `labels` may be kept now (a followed stream covers it)."""
        with self._lock:
            return self._covered(labels_key(labels))

    def _cover(self, stream: _Stream) -> None:
        with self._lock:
            if stream.closed:  # stopped before its grace was over
                return
            stream.covering = True
            self._generation += 1  # nothing asked before now may be stored
            self._streams[stream.key] = self._streams.get(stream.key, 0) + 1

    def _covered(self, key: Labels) -> bool:
        return any(stream <= key for stream in self._streams)
