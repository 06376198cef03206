"""`GET /v1/projects/<project>/logs` as Server-Sent Events, bounded in memory and threads.

Without `follow`, the answer is the newest `limit` lines (default 10,000, at most 50,000, and
at most `log_window.MAX_BYTES` of text) of every container, merged by time. The engine is
asked for `limit + 1` lines per container (its `tail`), so at most that many lines per
container are read, and one window of `limit` lines is held. When lines were left out the
`end` event says `{"truncated": true, "before": <time of the oldest line sent>}`: asking again
with `until=<before>` pages further back (the engine's `until` is inclusive, so that line comes
again). With `until`, the engine cannot be asked for a tail (Docker applies `tail` before
`until`), so every line up to `until` is read through the window, still holding at most
`limit` lines.

With `follow`, each container's engine stream is read by a thread of its own that hands lines to
the event loop (`EngineFeed`), at most FEED_CAPACITY lines ahead of a slow client. A follow
starts with at most `limit` lines per container, not the whole history. When the client goes
away the feed closes every engine stream, so its threads and engine connections end at once.

Config values are masked in each `LogEntry` (`redacted`) before it is encoded as an event:
a follow's pump threads mask the lines they read, so the event loop only encodes.

`filter` (`log_sources.line_filter`) keeps only the lines that contain a text, matched once the
line is masked, here on the server so that only those lines are sent. Without follow the engine
is then asked for no tail (the newest lines may not match): every line goes through the window
(or the per-container `tail` the user gave), so `limit` and `tail` count lines that match.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Literal

from fastapi.concurrency import run_in_threadpool

from dockyard.api_errors import NotFound
from dockyard.errors import DockyardError
from dockyard.lifecycle import BUILD_STATES, ServiceState
from dockyard.runtime.driver import ContainerInfo, Driver, StreamStop
from dockyard.server.control import ControlPlane
from dockyard.server.log_sources import LogEntry, line_filter, run_containers
from dockyard.server.log_window import NewestLines
from dockyard.server.streams import KEEPALIVE, KEEPALIVE_SECONDS, SSE_WAIT_SECONDS, Changes, sse
from dockyard.store.store import Account

FEED_CAPACITY = 256  # lines a follow reads ahead of its client at most (16 KiB each at most)
FOLLOW_BATCH = 500  # lines of a burst a follow sends in one write
SEND_BATCH = 64 * 1024  # characters of events sent in one write (a whole answer at once)
Redact = Callable[[str], str]  # a project's config values masked in a text (configs.RedactText)


@dataclass(frozen=True, slots=True)
class LogQuery:
    services: list[str]
    follow: bool
    since: datetime | None
    until: datetime | None
    kind: str  # all, build or run
    deployment: str | None  # the deployment whose logs (None: the latest `up`)
    only_that_deployment: bool  # an id was given: only its containers and build output
    tail: int | None  # lines per container (the user's --tail)
    limit: int  # lines of the whole answer at most
    filter: str | None = None  # only lines containing this, ignoring case (log_sources)


@dataclass(frozen=True, slots=True)
class EnginePlan:
    tail: int | None  # what the engine is asked for per container
    keep: int | None  # lines to keep per container when the engine cannot tail (until)


def engine_plan(tail: int | None, limit: int, until: datetime | None,
                filtered: bool = False) -> EnginePlan:
    """How many lines to ask each container for, so that at most `limit` are ever held.

    One line more than `limit` tells a longer log from one of exactly `limit` lines. A user
    tail within the limit is the engine's tail itself, and the lines it leaves out were not
    asked for. With `until` the engine's tail would be taken before `until`, and with a filter
    before the filter: no tail then (the tail is kept per container as lines come).
    """
    asked = tail if tail is not None and tail <= limit else None
    if until is not None or filtered:
        return EnginePlan(None, asked)
    return EnginePlan(limit + 1 if asked is None else asked, None)


def engine_until(until: datetime | None) -> datetime | None:
    """`until` for the engine: a microsecond later. The engine compares nanoseconds, times
    here have microseconds: the line at `until` itself (as sent in `before`) must come again,
    and lines later within that microsecond are dropped by the caller."""
    return None if until is None else until + timedelta(microseconds=1)


def follow_tail(tail: int | None, limit: int) -> int:
    """Lines a follow starts with per container: the user's tail, at most `limit`."""
    return limit if tail is None else min(tail, limit)


def resolve(control: ControlPlane, who: Account, project: str,
            deployment: str | None) -> tuple[str | None, bool]:
    """(the deployment whose logs, whether an id was given); 404 for an unknown project or
    deployment of this account, exactly as for one that does not exist."""
    history = control.store.deployments(who, project, limit=50)
    if not history:
        raise NotFound(f"project {project!r} has no deployment")
    if deployment in (None, "latest"):
        ups = [r for r in history if r.action == "up"]
        return (ups[0].id if ups else None), False
    record = control.store.deployment(who, str(deployment))
    if record is None:
        raise NotFound(f"no deployment {deployment!r}",
                       hint="`dockyard deployments` lists them")
    return record.id, True


def redacted(entry: LogEntry, redact: Redact) -> LogEntry:
    """`entry` with the project's config values masked in its line: what may be encoded."""
    text = redact(entry.text)
    return entry if text == entry.text else replace(entry, text=text)


def encode(entry: LogEntry) -> str:
    """One `log` event; `entry` was `redacted` already."""
    return sse("log", entry.to_json())


async def log_events(control: ControlPlane, who: Account, project: str, query: LogQuery,
                     redact: Redact) -> AsyncIterator[str]:
    """The log as SSE: `log` events (config values redacted), then `end` unless following."""
    keep = line_filter(query.filter)
    async for entry in _build_lines(control, who, project, query):
        entry = redacted(entry, redact)
        if keep is None or keep(entry.text):
            yield encode(entry)
    if query.kind == "build":
        yield sse("end", {})
        return
    containers = await run_in_threadpool(
        run_containers, control, who, project, query.services,
        query.deployment if query.only_that_deployment else None)
    if not query.follow:
        window = await _newest(control.driver, containers, query, redact)
        before: str | None = None
        batch: list[str] = []
        size = 0
        for entry in window.drain():
            if before is None and entry.at is not None:
                before = entry.at.isoformat()
            batch.append(encode(redacted(entry, redact)))
            size += len(batch[-1])
            if size >= SEND_BATCH:  # one write per batch, not per line
                yield "".join(batch)
                batch, size = [], 0
        if batch:
            yield "".join(batch)
        truncated = window.dropped > 0
        yield sse("end", {"truncated": truncated, "before": before if truncated else None,
                          "limit": query.limit})
        return
    feed = EngineFeed(FEED_CAPACITY, redact, keep)
    try:
        for info in containers:
            feed.follow(control.driver, info, follow_tail(query.tail, query.limit),
                        query.since, query.until)
        while True:
            item = await feed.get(KEEPALIVE_SECONDS)
            if item == "idle":
                yield KEEPALIVE
                continue
            ready = [item, *feed.ready(FOLLOW_BATCH)]  # a burst goes out in one write
            out = "".join(encode(e) for e in ready if isinstance(e, LogEntry))
            if out:
                yield out
    finally:
        feed.close()


async def _build_lines(control: ControlPlane, who: Account, project: str,
                       query: LogQuery) -> AsyncIterator[LogEntry]:
    store = control.store
    if query.kind not in ("all", "build"):
        return
    if not query.follow and not query.only_that_deployment:
        # The latest build of each service, whichever deployment built it (the store keeps at
        # most max_build_log_bytes of each).
        built = await run_in_threadpool(store.last_build_deployments, who, project)
        for service, built_by in sorted(built.items()):
            if not query.services or service in query.services:
                for line in await run_in_threadpool(store.build_log, who, built_by, service):
                    yield LogEntry(service, "build", line, None)
        return
    deployment = query.deployment
    if not deployment:
        return

    def read(last: int) -> tuple[list[tuple[int, str, str]], bool]:
        lines = store.build_log_since(who, deployment, last)
        record = store.deployment(who, deployment)
        over = (record is None or record.status != "running" or
                _builds_over(control, who, project, deployment))
        return lines, over

    # Build output from the store; with follow, new lines until the builds are over.
    changes = Changes(control)
    try:
        last = 0
        while True:
            changes.clear()
            lines, over = await run_in_threadpool(read, last)
            for line_id, service, line in lines:
                last = line_id
                if not query.services or service in query.services:
                    yield LogEntry(service, "build", line, None)
            if not query.follow or over:
                return
            await changes.wait(SSE_WAIT_SECONDS)
    finally:
        changes.close()


def _builds_over(control: ControlPlane, who: Account, project: str, deployment: str) -> bool:
    return not any(s.deployment == deployment and (s.state in BUILD_STATES or
                                                   s.state is ServiceState.NOT_SPECIFIED)
                   for s in control.store.statuses(who, project))


async def _newest(driver: Driver, containers: list[ContainerInfo],
                  query: LogQuery, redact: Redact) -> NewestLines[LogEntry]:
    """Read every container (a thread each, none from the request pool) into one window."""
    keep = line_filter(query.filter)
    plan = engine_plan(query.tail, query.limit, query.until, keep is not None)
    window: NewestLines[LogEntry] = NewestLines(query.limit)
    lock = threading.Lock()
    stop = StreamStop()

    until = query.until

    def read(info: ContainerInfo) -> None:
        kept: deque[LogEntry] | None = deque(maxlen=plan.keep) if plan.keep else None
        try:
            for line in driver.logs(info.id, tail=plan.tail, since=query.since,
                                    until=engine_until(until), follow=False, stop=stop):
                if until is not None and line.at is not None and line.at > until:
                    continue
                entry = LogEntry(info.service, "run", line.text, line.at, info.name)
                if keep is not None:
                    entry = redacted(entry, redact)
                    if not keep(entry.text):
                        continue
                if kept is not None:
                    kept.append(entry)
                else:
                    with lock:
                        window.add(_time(entry), len(entry.text), entry)
        except DockyardError:
            pass  # a container removed meanwhile has no more lines
        for entry in kept or ():
            with lock:
                window.add(_time(entry), len(entry.text), entry)

    try:
        await _in_threads([partial(read, info) for info in containers])
    finally:
        stop.stop()  # the client left (cancelled): end the reads now
    return window


def _time(entry: LogEntry) -> float:
    return entry.at.timestamp() if entry.at else 0.0


async def _in_threads(jobs: list[Callable[[], None]]) -> None:
    """Run each job in a thread of its own; wait, on the event loop, until all are done."""
    if not jobs:
        return
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    left = len(jobs)
    lock = threading.Lock()

    def finished() -> None:
        if not done.done():
            done.set_result(None)

    def run(job: Callable[[], None]) -> None:
        nonlocal left
        try:
            job()
        finally:
            with lock:
                left -= 1
                last = left == 0
            if last:
                try:
                    loop.call_soon_threadsafe(finished)
                except RuntimeError:
                    pass  # the loop is gone: nobody waits

    for job in jobs:
        threading.Thread(target=run, args=(job,), daemon=True, name="dockyard-logs").start()
    await done


Idle = Literal["idle"]


class EngineFeed:
    """Lines of several engine log streams, each read by a thread, handed to the event loop.

    A thread (a pump, named `dockyard-follow-<container>`) redacts each line it reads and hands
    the entry over with `loop.call_soon_threadsafe` once it holds a credit; the reader gives the
    credit back when it takes the entry, so at most `capacity` lines wait for a slow client.
    `close()` stops every engine stream (see `StreamStop`): the pumps end, whether they wait on
    the engine or for a credit.
    """

    def __init__(self, capacity: int, redact: Redact,
                 keep: Callable[[str], bool] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[LogEntry | None] = asyncio.Queue()
        self._credits = threading.Semaphore(capacity)
        self._redact = redact
        self._keep = keep  # a filter, matched against the masked line
        self.stop = StreamStop()

    def follow(self, driver: Driver, info: ContainerInfo, tail: int, since: datetime | None,
               until: datetime | None) -> None:
        threading.Thread(target=self._pump, args=(driver, info, tail, since, until),
                         daemon=True, name=f"dockyard-follow-{info.name}").start()

    def _pump(self, driver: Driver, info: ContainerInfo, tail: int, since: datetime | None,
              until: datetime | None) -> None:
        lines = driver.logs(info.id, tail=tail, since=since, until=engine_until(until),
                            follow=True, stop=self.stop)
        try:
            for line in lines:
                if until is not None and line.at is not None and line.at > until:
                    continue
                entry = redacted(LogEntry(info.service, "run", line.text, line.at, info.name),
                                 self._redact)
                if self._keep is not None and not self._keep(entry.text):
                    continue
                if not self._hand_over(entry):
                    return
        except DockyardError:
            pass  # the container went away: its stream is over
        finally:
            close = getattr(lines, "close", None)
            if close is not None:
                close()  # a pump stopped mid-stream ends its engine stream now, not at GC
            self._post(None)

    def _hand_over(self, entry: LogEntry) -> bool:
        while not self.stop.stopped.is_set():
            if self._credits.acquire(timeout=0.5):
                return self._post(entry)
        return False

    def _post(self, item: LogEntry | None) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody reads any more
            self.stop.stop()
            return False
        return True

    def ready(self, most: int) -> list[LogEntry | None]:
        """What already waits, without waiting (at most `most` items)."""
        out: list[LogEntry | None] = []
        while len(out) < most and not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                self._credits.release()
            out.append(item)
        return out

    async def get(self, timeout: float) -> LogEntry | None | Idle:
        """The next line; None when one stream ended; "idle" after `timeout` of quiet."""
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return "idle"
        if item is not None:
            self._credits.release()
        return item

    def close(self) -> None:
        self.stop.stop()


def utc(at: datetime | None) -> datetime | None:
    """A time without a zone is taken as UTC (the engine's clock)."""
    return at if at is None or at.tzinfo is not None else at.replace(tzinfo=UTC)
