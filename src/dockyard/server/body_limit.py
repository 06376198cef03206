"""A cap on request bodies, enforced before the body is read (ASGI middleware).

FastAPI reads a whole JSON body into memory before any route can look at its size, so a 500 MiB
body costs the server 500 MiB (and more while it is parsed). This middleware answers 413 from
the `Content-Length` header alone, before reading anything, and for a body without one
(chunked) it counts bytes as they arrive and answers 413 at the first chunk over the cap: the
server never holds more than the cap of one body. The answer closes the connection, since the
rest of the body is never read.

Context uploads (`PUT /v1/contexts/<digest>`) are exempt: that route streams to disk and has its
own cap (`max_context_bytes` and the account's quota).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.api_errors import RequestTooLarge

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def exempt(method: str, path: str) -> bool:
    """Routes with a cap of their own: context uploads stream to disk."""
    return method == "PUT" and path.startswith("/v1/contexts/")


def too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"the request body is over the server's limit of {limit} bytes",
                           hint="send a smaller request (the server's --max-request-bytes sets "
                           "the limit)")


class BodyLimit:
    """Refuse any request body over `max_bytes` with 413, reading at most `max_bytes` of it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = str(scope.get("method", ""))
        if scope["type"] != "http" or method not in BODY_METHODS or \
                exempt(method, str(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _refuse(send, self.max_bytes)
            return
        # Read the body here, counting: the app then gets it back as one message.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nothing to answer
                return
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > self.max_bytes:
                chunks.clear()
                await _refuse(send, self.max_bytes)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives `body` once, then what the client sends (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replay


async def _refuse(send: Send, limit: int) -> None:
    refused = too_large(limit)
    payload = json.dumps(refused.to_wire()).encode()
    await send({"type": "http.response.start", "status": refused.status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload, "more_body": False})
