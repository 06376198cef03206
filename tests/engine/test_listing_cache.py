"""Kept container listings on a real engine: a change made by anyone shows in the next listing
(marked `docker`; cleans up by label)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from typing import Any, cast

import pytest

from dockyard.runtime.docker_engine import DockerEngine
from dockyard.runtime.driver import ContainerInfo, EngineEvent
from dockyard.runtime.listing_cache import MAX_AGE
from tests.support.engine import LABEL, engine_ready

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1"),
]
IMAGE = "dockyard/busybox:1"
WAIT = 30.0  # seconds an engine change may take to show (it takes milliseconds)


class Followed:
    """A `DockerEngine` whose events one thread follows, as the server's watcher does, and
    which counts the listings it asks the engine."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.driver = DockerEngine()
        self.labels = labels
        self.asked = 0
        self.events: list[EngineEvent] = []
        self.stop_on = ""  # the follower stops at an event of this container
        self.hold = threading.Event()  # set: the follower blocks after each event ...
        self.release = threading.Event()  # ... until this is set (a watcher busy handling)
        api: Any = self.driver.client.api
        real = api.containers

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.asked += 1
            return real(*args, **kwargs)

        api.containers = counted
        self.stream = self.driver.events(labels)
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()
        until(lambda: self.driver._listings.covers(labels))

    def _follow(self) -> None:
        try:
            for event in self.stream:
                self.events.append(event)
                if event.container_id == self.stop_on:
                    break
                if self.hold.is_set():
                    self.release.wait()
            cast(Generator[EngineEvent, None, None], self.stream).close()  # a generator
        except Exception:  # the engine connection closed at the end of the test
            return

    def listing(self) -> list[ContainerInfo]:
        return self.driver.containers(self.labels, detail=False)

    def close(self) -> None:
        self.driver.close()  # ends the stream


def until(check: Callable[[], bool], wait: float = WAIT) -> None:
    deadline = time.monotonic() + wait
    while not check():
        assert time.monotonic() < deadline, "the engine's change never showed"
        time.sleep(0.02)


@pytest.fixture
def followed() -> Iterator[Followed]:
    run_id = uuid.uuid4().hex[:12]
    found = Followed({LABEL: run_id})
    yield found
    client = found.driver.client
    for container in client.containers.list(all=True, filters={"label": f"{LABEL}={run_id}"}):
        container.remove(force=True)
    found.close()


def _start(followed: Followed, name: str, **extra: Any) -> str:
    """A container started behind the driver's back (as an operator's `docker run`)."""
    container = followed.driver.client.containers.run(
        IMAGE, ["sleep", "300"], name=f"{name}-{followed.labels[LABEL]}", detach=True,
        labels=followed.labels, stop_signal="SIGKILL", **extra)
    found = str(container.id)
    until(lambda: any(e.action == "start" and e.container_id == found
                      for e in followed.events))  # its last event, so nothing is in flight
    return found


def test_a_listing_is_kept_while_nothing_changes(followed: Followed) -> None:
    _start(followed, "a")
    until(lambda: len(followed.listing()) == 1)
    asked = followed.asked
    for _ in range(5):
        assert [c.status for c in followed.listing()] == ["running"]
    assert followed.asked == asked


def test_changes_made_behind_the_drivers_back_show(followed: Followed) -> None:
    first = _start(followed, "a")
    until(lambda: len(followed.listing()) == 1)
    second = _start(followed, "b")  # created and started: events drop the kept listing
    until(lambda: len(followed.listing()) == 2)
    followed.driver.client.api.kill(first)
    until(lambda: {c.id: c.status for c in followed.listing()}[first] == "exited")
    followed.driver.client.api.rename(second, f"renamed-{followed.labels[LABEL]}")
    until(lambda: any(c.name.startswith("renamed-") for c in followed.listing()))
    followed.driver.client.api.remove_container(second, force=True)
    until(lambda: [c.id for c in followed.listing()] == [first])


def test_a_container_created_and_not_started_shows(followed: Followed) -> None:
    _start(followed, "a")
    until(lambda: len(followed.listing()) == 1)
    asked = followed.asked
    followed.listing()
    assert followed.asked == asked  # kept
    followed.driver.client.api.create_container(  # only its `create` event tells
        IMAGE, ["sleep", "300"], name=f"made-{followed.labels[LABEL]}", labels=followed.labels)
    until(lambda: sorted(c.status for c in followed.listing()) == ["created", "running"],
          wait=MAX_AGE / 2)


def test_a_change_shows_while_the_events_consumer_is_busy(followed: Followed) -> None:
    """The server's watcher handles one event at a time (an inspect, a proxy reload): kept
    listings are dropped by the engine's events as they arrive, not when it asks for more."""
    first = _start(followed, "a")
    until(lambda: len(followed.listing()) == 1)
    followed.hold.set()
    second = _start(followed, "b")  # the follower takes its start event, then blocks
    until(lambda: len(followed.listing()) == 2)
    asked = followed.asked
    followed.listing()
    assert followed.asked == asked  # kept: nothing changed since
    followed.driver.client.api.kill(first)
    try:
        # sooner than MAX_AGE, after which a kept listing goes anyway
        until(lambda: {c.id: c.status for c in followed.listing()}
              == {first: "exited", second: "running"}, wait=MAX_AGE / 2)
        assert not followed.release.is_set() and followed.events[-1].container_id == second
    finally:
        followed.release.set()


def test_a_health_change_shows(followed: Followed) -> None:
    healthy = {"test": ["CMD", "true"], "interval": 200_000_000, "retries": 3}
    _start(followed, "h", healthcheck=healthy)
    until(lambda: [c.health for c in followed.listing()] == ["healthy"])


def test_the_drivers_own_changes_show_at_once(followed: Followed) -> None:
    container = _start(followed, "a")
    until(lambda: len(followed.listing()) == 1)
    followed.driver.stop(container, timeout=0)
    assert [c.status for c in followed.listing()] == ["exited"]  # no wait for the event
    followed.driver.remove(container)
    assert followed.listing() == []


def test_nothing_is_kept_once_the_stream_stops(followed: Followed) -> None:
    first = _start(followed, "a")
    until(lambda: len(followed.listing()) == 1)
    followed.stop_on = first
    followed.driver.client.api.kill(first)
    until(lambda: not followed.driver._listings.covers(followed.labels))
    asked = followed.asked
    followed.listing()
    followed.listing()
    assert followed.asked == asked + 2
