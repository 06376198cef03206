"""Kept container listings: only while covered by a followed stream, dropped by any change."""

from __future__ import annotations

import time

from dockyard.runtime.driver import ContainerInfo
from dockyard.runtime.listing_cache import MAX_AGE, ListingCache

SERVER = {"dockyard.server": "s1"}
PROJECT = {**SERVER, "dockyard.project": "shop"}
OTHER = {**SERVER, "dockyard.project": "blog"}


def _info(name: str, labels: dict[str, str]) -> ContainerInfo:
    return ContainerInfo(id=name, name=name, labels=labels, status="running", exit_code=0,
                         health=None, restart_count=0, ip_address=None, started_at=None)


def test_nothing_is_kept_without_a_followed_stream() -> None:
    cache = ListingCache()
    cache.store(PROJECT, cache.generation(), [_info("a", PROJECT)])
    assert cache.lookup(PROJECT) is None
    assert not cache.covers(PROJECT)


def test_a_covered_listing_is_kept_until_one_of_its_containers_changes() -> None:
    cache = ListingCache()
    with cache.following(SERVER):
        cache.store(PROJECT, cache.generation(), [_info("a", PROJECT)])
        cache.store(OTHER, cache.generation(), [_info("b", OTHER)])
        assert [c.name for c in cache.lookup(PROJECT) or []] == ["a"]
        cache.changed({**OTHER, "name": "b", "exitCode": "0"})  # an event's attributes
        assert cache.lookup(OTHER) is None
        assert cache.lookup(PROJECT) is not None  # another project's change keeps it
        cache.changed()  # the driver changed a container: which listing, unknown
        assert cache.lookup(PROJECT) is None


def test_a_listing_asked_before_a_change_is_not_kept() -> None:
    cache = ListingCache()
    with cache.following(SERVER):
        asked = cache.generation()
        cache.changed(PROJECT)  # came while the engine answered
        cache.store(PROJECT, asked, [_info("a", PROJECT)])
        assert cache.lookup(PROJECT) is None


def test_a_listing_asked_before_the_stream_began_is_not_kept() -> None:
    cache = ListingCache()
    asked = cache.generation()
    with cache.following(SERVER):
        cache.store(PROJECT, asked, [_info("a", PROJECT)])
        assert cache.lookup(PROJECT) is None


def test_a_stream_covers_only_listings_narrower_than_its_filter() -> None:
    cache = ListingCache()
    with cache.following(PROJECT):
        assert cache.covers({**PROJECT, "dockyard.service": "web"})
        assert not cache.covers(SERVER)  # holds other projects' containers too
    with cache.following({}):  # every managed container: no label value to cover by
        assert not cache.covers(PROJECT)


def test_listings_are_dropped_when_the_stream_stops() -> None:
    cache = ListingCache()
    with cache.following(SERVER):
        cache.store(PROJECT, cache.generation(), [_info("a", PROJECT)])
        with cache.following(SERVER):  # a second follower of the same events
            pass
        assert cache.lookup(PROJECT) is not None  # the first still follows
    assert cache.lookup(PROJECT) is None
    cache.store(PROJECT, cache.generation(), [_info("a", PROJECT)])
    assert cache.lookup(PROJECT) is None


def test_a_kept_listing_is_a_copy() -> None:
    cache = ListingCache()
    with cache.following(SERVER):
        cache.store(PROJECT, cache.generation(), [_info("a", PROJECT)])
        first = cache.lookup(PROJECT)
        assert first is not None
        first.clear()
        assert cache.lookup(PROJECT) is not None and len(cache.lookup(PROJECT) or []) == 1


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_listing_is_kept_at_most_max_age() -> None:
    clock = Clock()
    cache = ListingCache(clock)
    with cache.following(SERVER):
        cache.store(PROJECT, cache.generation(), [_info("a", PROJECT)])
        clock.now = MAX_AGE - 0.1
        assert cache.lookup(PROJECT) is not None
        clock.now = MAX_AGE + 0.1  # a change no event tells (a restart that failed to start)
        assert cache.lookup(PROJECT) is None


def test_a_stream_covers_only_after_its_grace() -> None:
    cache = ListingCache()
    with cache.following(SERVER, grace=0.2):
        asked = cache.generation()  # asked while the engine may not have subscribed it yet
        assert not cache.covers(PROJECT)
        deadline = time.monotonic() + 5
        while not cache.covers(PROJECT):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        cache.store(PROJECT, asked, [_info("a", PROJECT)])
        assert cache.lookup(PROJECT) is None  # asked before it covered
        cache.store(PROJECT, cache.generation(), [_info("a", PROJECT)])
        assert cache.lookup(PROJECT) is not None


def test_a_stream_stopped_within_its_grace_never_covers() -> None:
    cache = ListingCache()
    with cache.following(SERVER, grace=0.05):
        pass
    time.sleep(0.2)
    assert not cache.covers(PROJECT)
