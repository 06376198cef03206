"""Pulls, carried out for deployments: bounded, observable, and stopped when they run away.

One `Puller` serves the whole server. A pull waits for a slot of its registry (at most
`PER_REGISTRY` at once: a registry that answers slowly holds only its own slots) and then for
one of the server's `--pull-concurrency` slots, so pulls for other registries and every other
server task go on. Each pull reports its progress (`registry.progress`) as it goes, and is
stopped, failing only its own services, when it downloads more than `--max-pull-size` or runs
past `--pull-timeout`. Stopping closes the engine's stream; the engine then cancels the pull.

Credentials: the caller passes the account's own (`server.registry_auth`), or none. The
driver never falls back to the server's ~/.docker credentials.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from dockyard.registry.progress import PullProgress
from dockyard.runtime.driver import Driver, PullMessage, StreamStop
from dockyard.runtime.errors import PullFailed

PER_REGISTRY = 2  # pulls at once from one registry


class Puller:
    def __init__(self, driver: Driver, *, concurrency: int, timeout: float,
                 max_bytes: int) -> None:
        self.driver = driver
        self.timeout = timeout  # seconds; 0: none
        self.max_bytes = max_bytes  # 0: none
        self._slots = threading.BoundedSemaphore(max(1, concurrency))
        self._registries = KeyedSemaphores(PER_REGISTRY)

    def pull(self, reference: str, *, registry: str, auth: Mapping[str, str] | None,
             label: str, on_progress: Callable[[str], None] | None = None) -> str:
        """Pull `reference` (shown as `label`); return the image id. `on_progress` gets
        `pulling LABEL (34/80 MiB)` at most twice a second. Raises `PullFailed`."""
        with self._registries.hold(registry), self._slots:
            return self._pull(reference, auth, label, on_progress)

    def _pull(self, reference: str, auth: Mapping[str, str] | None, label: str,
              on_progress: Callable[[str], None] | None) -> str:
        progress = PullProgress()
        stop = StreamStop()
        why: list[tuple[str, str]] = []  # (reason, limit) of the first limit passed

        def halt(reason: str, limit: str) -> None:
            if not why:
                why.append((reason, limit))
            stop.stop()

        timer = None
        if self.timeout:
            timer = threading.Timer(self.timeout, halt, [
                f"the pull of {label} took longer than the server's pull timeout "
                f"({self.timeout:g} s) and was stopped", "timeout"])
            timer.daemon = True
            timer.start()

        def on_message(message: PullMessage) -> None:
            progress.feed(message)
            if self.max_bytes and progress.total > self.max_bytes:
                halt(f"the image {label} is larger than the server allows for one pull "
                     f"({_mib(progress.total)} of at most {_mib(self.max_bytes)})",
                     "too-large")
            if on_progress is not None and progress.should_report(time.monotonic()):
                on_progress(progress.text(label))

        if on_progress is not None:
            on_progress(f"pulling {label}")
        try:
            image_id = self.driver.pull(reference, auth=auth, on_progress=on_message, stop=stop)
        except PullFailed:
            if why:
                raise PullStopped(*why[0]) from None
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if why:  # stopped at the very end: the image may be whole, but the limit was passed
            raise PullStopped(*why[0])
        return image_id


class PullStopped(PullFailed):
    """A pull the server stopped: too large, or too slow (`limit`: too-large or timeout)."""

    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message, message)
        self.limit = limit


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.0f} MiB" if size >= 10 << 20 else f"{size / (1 << 20):.1f} MiB"


class KeyedSemaphores:
    """At most `size` holders per key (a registry host), made on first use."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._guard = threading.Lock()
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            semaphore = self._semaphores.setdefault(key, threading.BoundedSemaphore(self._size))
        with semaphore:
            yield
