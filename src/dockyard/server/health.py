"""Whether newly started containers are healthy, by watching the engine.

What "healthy" means is in docs/architecture.md, The state machine:

- A one-off job is settled when it exits: exit 0 is success, anything else a failure.
- A service with a Compose healthcheck is healthy when every container's check passes; a failing
  check is a failure.
- Otherwise a public service is healthy when an HTTP GET of `/` on its first ingress port
  answers below 500 on every replica (from the server, which sits on the ingress side), and any
  other service when its containers keep running through the stabilization window.
- In every case a container that exits or restarts before it is healthy is a failure, reported
  with its exit code and its last log lines. Nothing is healthy after the timeout.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from dockyard.runtime.driver import ContainerInfo, Driver
from dockyard.server.engine_events import EngineEvents

POLL_SECONDS = 0.1
EVENT_POLL_SECONDS = 1.0  # how long a waiter woken by engine events sleeps at most
# The same, for a health check or a job: every change that settles them (health status, exit,
# restart) is an engine event, so looking by itself is only the fallback for an event the
# watcher missed (it also wakes every waiter when its stream is interrupted, and the server
# at shutdown). Each look is an inspect per container, which the engine answers under the
# container's lock, beside the starts of a large deployment.
EVENT_FALLBACK_SECONDS = 5.0
LAST_LINES = 5


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    reason: str


def last_lines(driver: Driver, container_id: str, count: int = LAST_LINES) -> list[str]:
    return [line.text for line in driver.logs(container_id, tail=count)]


def _failure(driver: Driver, info: ContainerInfo, what: str) -> Outcome:
    lines = last_lines(driver, info.id)
    tail = ("; last lines: " + " | ".join(lines)) if lines else "; it printed nothing"
    return Outcome(False, f"{what}{tail}")


@functools.cache
def _prober() -> httpx.Client:
    """The one HTTP client of `GET /` checks, shared by every deployment thread.

    A client per check (`httpx.get`) read the environment's proxy settings and built a TLS
    context each time: 35 ms of CPU per check against 0.3 ms here. A proxy named in the
    server's environment must not carry a check to a container's private address anyway. No
    connection is kept alive: a check opens one and closes it, as a user's first request would.
    """
    return httpx.Client(trust_env=False, timeout=1.0,
                        limits=httpx.Limits(max_keepalive_connections=0))


def _http_ok(address: str | None, port: int) -> bool:
    if not address:
        return False
    try:
        response = _prober().get(f"http://{address}:{port}/")
    except httpx.HTTPError:
        return False
    return response.status_code < 500


def wait_healthy(driver: Driver, container_ids: Sequence[str], *, job: bool,
                 has_healthcheck: bool, http_port: int | None, stabilization: float,
                 timeout: float, cancelled: Callable[[], bool] = lambda: False,
                 events: EngineEvents | None = None) -> Outcome:
    """Watch `container_ids` until they are healthy, fail, or `timeout` seconds pass.

    With `events` (the server's engine events), it looks again when the engine reports
    something about one of them, and at least every `EVENT_POLL_SECONDS`
    (`EVENT_FALLBACK_SECONDS` for a health check or a job, which events settle); without,
    every `POLL_SECONDS`."""
    started = time.monotonic()
    deadline = started + timeout
    http_ok: set[str] = set()
    while True:
        mark = events.mark(container_ids) if events is not None else None
        infos = [driver.inspect(cid) for cid in container_ids]
        now = time.monotonic()
        if any(info is None for info in infos):
            return Outcome(False, "a container was removed while it started")
        present = [info for info in infos if info is not None]
        if job:
            done = [i for i in present if i.status in ("exited", "dead")]
            failed = [i for i in done if i.exit_code != 0]
            if failed:
                return _failure(driver, failed[0], f"the job exited with code "
                                f"{failed[0].exit_code}")
            if len(done) == len(present):
                return Outcome(True, "the job exited with code 0")
        else:
            for info in present:
                if info.status in ("exited", "dead") or info.restart_count > 0:
                    what = (f"container {info.name} exited with code {info.exit_code}"
                            if info.restart_count == 0 else
                            f"container {info.name} is crash-looping (restarted "
                            f"{info.restart_count} times, last exit code {info.exit_code})")
                    return _failure(driver, info, what)
                if info.health == "unhealthy":
                    said = f" ({info.health_output})" if info.health_output else ""
                    return _failure(driver, info, f"the health check of {info.name} "
                                    f"failed{said}")
            if has_healthcheck:
                if all(i.health == "healthy" for i in present):
                    return Outcome(True, "the health check passes")
            elif now - started >= stabilization and all(i.status == "running" for i in present):
                if http_port is None:
                    return Outcome(True, f"running for {stabilization:g}s without a restart")
                for info in present:
                    reach = info.reach(http_port)  # a Swarm: the node's picked port
                    if info.id not in http_ok and _http_ok(info.ip_address, reach):
                        http_ok.add(info.id)
                if len(http_ok) == len(present):
                    return Outcome(True, f"GET / on port {http_port} answers")
        if now >= deadline:
            waiting = ("the health check" if has_healthcheck else
                       f"GET / on port {http_port}" if http_port else "the containers")
            return Outcome(False, f"not healthy after {timeout:g}s (waiting for {waiting})")
        if cancelled():
            return Outcome(False, "cancelled")
        if events is None or mark is None:
            time.sleep(POLL_SECONDS)
        else:
            left = max(0.0, deadline - time.monotonic())
            wake = EVENT_FALLBACK_SECONDS if has_healthcheck or job else EVENT_POLL_SECONDS
            if not has_healthcheck and not job and now - started < stabilization:
                wake = min(wake, stabilization - (now - started) + 0.01)
            elif not has_healthcheck and not job and http_port is not None:
                wake = POLL_SECONDS * 2  # GET / is the check: nothing tells when it answers
            events.wait(mark, min(wake, left))
