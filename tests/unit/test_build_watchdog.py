"""Which containers a timed-out build's watchdog may kill (`runtime.docker_engine`): only a
running step container of that build, whatever ids the build's (tenant's) output names."""

from __future__ import annotations

from typing import Any

from dockyard.runtime.docker_engine import _epoch, _is_build_step

NET = "dy-bob-shop-0123456789"
SINCE = _epoch("2026-12-01T13:00:00.5Z")


def step(**changes: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"Name": "/eager_turing", "Created": "2026-12-01T13:00:03.25Z",
                             "HostConfig": {"NetworkMode": NET}, "State": {"Running": True}}
    found.update(changes)
    return found


def test_epoch_reads_dockers_nanosecond_times() -> None:
    assert _epoch("2026-12-01T13:00:03.250000000Z") - _epoch("2026-12-01T13:00:00Z") == 3.25
    assert _epoch("0001-01-01T00:00:00Z") < SINCE
    assert _epoch("not a time") == 0.0


def test_a_step_container_of_the_build_is_killed() -> None:
    assert _is_build_step(step(), NET, SINCE)
    assert _is_build_step(step(HostConfig={"NetworkMode": "default"}), None, SINCE)


def test_containers_that_are_not_this_builds_steps_are_spared() -> None:
    assert not _is_build_step(step(HostConfig={"NetworkMode": "bridge"}), NET, SINCE)
    assert not _is_build_step(step(HostConfig={"NetworkMode": "other"}), NET, SINCE)
    assert not _is_build_step(step(Name=f"/{NET}-web-1-abcdef"), NET, SINCE)  # a service's
    assert not _is_build_step(step(Name="/dy-alice-web-1"), None, SINCE)
    assert not _is_build_step(step(Created="2026-12-01T12:59:00Z"), NET, SINCE)  # older
    assert not _is_build_step(step(State={"Running": False}), NET, SINCE)
    assert not _is_build_step({}, NET, SINCE)
