"""Server-Sent Events that hold no thread while they wait.

A synchronous streaming generator runs in anyio's worker pool (40 threads), the same pool the
synchronous routes use, and keeps its thread for as long as the stream is open: 40 idle
`logs --follow` made `whoami` wait seconds. Every stream here is an async generator instead:
it waits on the event loop (an asyncio event woken from other threads with
`loop.call_soon_threadsafe`, with a timeout) and borrows a worker thread only for a short
store query. When the client goes away, Starlette cancels the generator at its `await`; its
`finally` releases what it held (see `SSEResponse` and `log_stream.EngineFeed`).

Log follows are also counted per account (`FollowSlots`): each holds engine connections and
a reading thread per container, so an account may follow at most `limits.follows` at once.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from fastapi.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from dockyard.api_errors import TooManyFollows as TooManyFollows
from dockyard.server.control import ControlPlane
from dockyard.store.store import Account

SSE_WAIT_SECONDS = 1.0  # a stream re-checks the store at least this often
KEEPALIVE_SECONDS = 15.0  # an idle stream sends a comment this often (proxies, dead peers)
KEEPALIVE = ": keep-alive\n\n"


def sse(kind: str, data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n"


class FollowSlots:
    """How many log streams each account follows now; `take` refuses one over `cap` (0: none)."""

    def __init__(self, cap: int, noun: str = "log streams",
                 hint: str = "stop another `dockyard tail` or `dockyard logs --follow` first, "
                 "or read the logs without --follow") -> None:
        self.cap = cap
        self.noun, self.hint = noun, hint
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}

    def take(self, account: str) -> Callable[[], None]:
        """Count one more follow of `account`; returns its release (safe to call twice)."""
        with self._lock:
            count = self._open.get(account, 0)
            if self.cap and count >= self.cap:
                raise TooManyFollows(
                    f"account {account!r} already follows {count} {self.noun}, the most this "
                    "server allows at once", hint=self.hint)
            self._open[account] = count + 1
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if released:
                    return
                released = True
                left = self._open.get(account, 1) - 1
                if left > 0:
                    self._open[account] = left
                else:
                    self._open.pop(account, None)
        return release

    def open(self, account: str) -> int:
        with self._lock:
            return self._open.get(account, 0)


class SSEResponse(StreamingResponse):
    """An event stream that always ends its generator and runs `on_close`, however it ends:
    finished, client gone (Starlette cancels the stream on `http.disconnect`), or failed."""

    def __init__(self, content: AsyncIterator[str],
                 on_close: Callable[[], None] | None = None) -> None:
        super().__init__(content, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._content = content
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                aclose = getattr(self._content, "aclose", None)
                if aclose is not None:
                    with anyio.CancelScope(shield=True):
                        await aclose()
            finally:
                if self._on_close is not None:
                    self._on_close()


class Changes:
    """Wakes a coroutine when the control plane records something, without a waiting thread.

    Clear before reading the store, then `wait`: a change in between is not lost.
    """

    def __init__(self, control: ControlPlane) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self._remove = control.on_change(self._wake)

    def _wake(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._event.set)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    def clear(self) -> None:
        self._event.clear()

    async def wait(self, timeout: float) -> bool:
        """True when something changed, False after `timeout` seconds of quiet."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self._remove()


async def deployment_events(control: ControlPlane, who: Account, deployment: str,
                            after: int) -> AsyncIterator[str]:
    """A deployment's state events after event `after`, as they are recorded; then `end`."""
    store = control.store

    def read(last: int) -> tuple[str | None, list[tuple[int, dict[str, Any]]]]:
        record = store.deployment(who, deployment)  # first: events before its end are seen
        items = [(e.id, e.event.to_json() | {"id": e.id})
                 for e in store.events_since(who, deployment, last)]
        return (record.status if record else None), items

    changes = Changes(control)
    try:
        last, quiet = after, 0.0
        while True:
            changes.clear()
            status, items = await run_in_threadpool(read, last)
            # What one read found goes out in one write: a chunk costs the event loop a pass
            # through every ASGI layer, and a no-op `up` of 100 services records 100 events.
            out = [sse("state", data) for _, data in items]
            if items:
                last = items[-1][0]
            if status != "running":
                yield "".join([*out, sse("end", {"status": status or "gone"})])
                return
            if out:
                yield "".join(out)
            if items or await changes.wait(SSE_WAIT_SECONDS):
                quiet = 0.0
            else:
                quiet += SSE_WAIT_SECONDS
                if quiet >= KEEPALIVE_SECONDS:
                    quiet = 0.0
                    yield KEEPALIVE
    finally:
        changes.close()
