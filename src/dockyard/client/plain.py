"""Plain-HTTP calls over a socket, without httpx or `http.client`.

Every `dockyard` command talks to its server, usually the local one over `http://127.0.0.1`.
Importing httpx costs about 100 ms of CPU per command (its cookie jar, IDNA tables, URL parser
and httpcore), and `http.client` still 40 ms (the `email` package it parses headers with, and
`ssl`): together more than the rest of `dockyard compose ps`. An HTTP/1.1 exchange with
`Connection: close` needs neither: a request line and headers out; a status line, headers and
a body framed by Content-Length, chunks or the end of the connection back (RFC 9112, 6.3).

`PlainSession` has the few methods of `httpx.Client` that `dockyard.client.Client` uses, with
the same meaning (query values as httpx writes them, JSON bodies as httpx encodes them,
per-request timeouts, bodies streamed as they arrive for Server-Sent Events). HTTPS keeps
httpx and its certificate handling. Each request has its own connection, so a stream read in
one thread never holds up a request made in another.
"""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

_UNSET: Any = object()  # "the session's default timeout", as httpx's USE_CLIENT_DEFAULT
ParamValue = str | int | float | bool | None
Params = Mapping[str, ParamValue | Sequence[ParamValue]]
MAX_LINE = 65536  # the longest status or header line read
MAX_HEADERS = 200


class TransportFailure(Exception):
    """The server could not be reached, the connection broke, or the answer was not HTTP:
    what httpx calls a `TransportError`."""


class PlainResponse:
    """An answer: its status and headers, and its body read whole (`read`, `json`) or as it
    arrives (`iter_lines`)."""

    def __init__(self, status: int, headers: dict[str, str], body: Iterator[bytes],
                 connection: socket.socket, stream: io.BufferedReader) -> None:
        self.status_code = status
        self.headers = headers
        self._body = body
        self._connection = connection
        self._stream = stream
        self._content: bytes | None = None

    def read(self) -> bytes:
        if self._content is None:
            try:
                self._content = b"".join(self._chunks())
            finally:
                self.close()
        return self._content

    def json(self) -> Any:
        return json.loads(self.read())

    def iter_lines(self) -> Iterator[str]:
        """The body's lines as they arrive, without their ends (\\n, \\r\\n or \\r)."""
        pending = ""
        for chunk in self._chunks():
            pending += chunk.decode("utf-8", errors="replace")
            lines = pending.splitlines(keepends=True)
            pending = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
            for line in lines:
                yield line.rstrip("\r\n")
        if pending:
            yield pending

    def close(self) -> None:
        self._stream.close()
        self._connection.close()

    def _chunks(self) -> Iterator[bytes]:
        try:
            yield from self._body
        except (OSError, ValueError) as exc:
            raise TransportFailure(str(exc) or type(exc).__name__) from None


class PlainSession:
    """The methods of `httpx.Client` that `dockyard.client.Client` calls, for `http://` URLs."""

    def __init__(self, base_url: str, *, headers: Mapping[str, str],
                 timeout: float | None) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.authority = parts.netloc.rpartition("@")[2]
        self.prefix = parts.path.rstrip("/")
        self.headers = dict(headers)
        self.timeout = timeout

    def request(self, method: str, url: str, *, params: Params | None = None,
                json: Any = None, content: bytes | None = None,
                headers: Mapping[str, str] | None = None,
                timeout: float | None = _UNSET) -> PlainResponse:
        response = self._send(method, url, params, json, content, headers, timeout)
        response.read()
        return response

    def head(self, url: str) -> PlainResponse:
        return self.request("HEAD", url)

    @contextmanager
    def stream(self, method: str, url: str, *, params: Params | None = None,
               timeout: float | None = _UNSET) -> Iterator[PlainResponse]:
        response = self._send(method, url, params, None, None, None, timeout)
        try:
            yield response
        finally:
            response.close()

    def close(self) -> None:
        """Nothing is kept open between requests."""

    def _send(self, method: str, url: str, params: Params | None, body_json: Any,
              content: bytes | None, headers: Mapping[str, str] | None,
              timeout: float | None) -> PlainResponse:
        if timeout is _UNSET:
            timeout = self.timeout
        if body_json is not None:  # as httpx encodes it
            content = json.dumps(body_json, ensure_ascii=False, separators=(",", ":"),
                                 allow_nan=False).encode()
        sent = {"Host": self.authority, "Accept": "*/*", **self.headers,
                **({"Content-Type": "application/json"} if body_json is not None else {}),
                **(headers or {}), "Connection": "close"}
        if content is not None or method in ("POST", "PUT", "PATCH"):
            sent["Content-Length"] = str(len(content or b""))
        target = quote(self.prefix + url, safe="/%:@!$&'()*+,;=-._~")  # as httpx sends it
        if params:
            target += ("&" if "?" in target else "?") + urlencode(_query(params), doseq=True)
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in sent.items()) + "\r\n"
        try:
            connection = socket.create_connection((self.host, self.port), timeout=timeout)
        except OSError as exc:
            raise TransportFailure(str(exc) or type(exc).__name__) from None
        stream = connection.makefile("rb")
        unsent: OSError | None = None
        try:
            connection.sendall(head.encode("latin-1") + (content or b""))
        except OSError as exc:  # the server may have answered already (a body too large)
            unsent = exc
        try:
            status, answer = _status_and_headers(stream)
        except (OSError, ValueError, UnicodeError) as exc:
            stream.close()
            connection.close()
            failure = unsent or exc
            raise TransportFailure(str(failure) or type(failure).__name__) from None
        return PlainResponse(status, answer, _body(stream, method, status, answer),
                             connection, stream)


def _line(stream: io.BufferedReader) -> bytes:
    line = stream.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise ValueError("the server's answer has a line too long for HTTP")
    if not line:
        raise ValueError("the server closed the connection without answering")
    return line


def _status_and_headers(stream: io.BufferedReader) -> tuple[int, dict[str, str]]:
    """The final status (informational 1xx answers skipped) and its headers, names in lower
    case (a repeated header's values joined by commas)."""
    while True:
        version, _, rest = _line(stream).decode("latin-1").partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(f"the server did not answer in HTTP/1.x ({version[:20]!r})")
        status = int(rest[:3])
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            line = _line(stream).decode("latin-1").rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers \
                else value.strip()
        else:
            raise ValueError("the server's answer has too many headers")
        if not 100 <= status < 200:
            return status, headers


def _body(stream: io.BufferedReader, method: str, status: int,
          headers: Mapping[str, str]) -> Iterator[bytes]:
    """The body, as it arrives, framed as RFC 9112 (6.3) says."""
    if method == "HEAD" or status in (204, 304):
        return
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size = int(_line(stream).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while _line(stream) not in (b"\r\n", b"\n"):  # trailers
                    pass
                return
            data = stream.read(size)
            if len(data) < size:
                raise ValueError("the connection closed in the middle of the answer")
            _line(stream)  # the chunk's line end
            yield data
    elif "content-length" in headers:
        left = int(headers["content-length"])
        while left > 0:
            data = stream.read1(min(left, 65536))
            if not data:
                raise ValueError("the connection closed in the middle of the answer")
            left -= len(data)
            yield data
    else:
        while data := stream.read1(65536):
            yield data


def _query(params: Params) -> dict[str, list[str]]:
    """Query values written as httpx writes them: true/false, nothing for None."""
    written: dict[str, list[str]] = {}
    for key, value in params.items():
        values = value if isinstance(value, list | tuple) else [value]
        written[key] = [_text(v) for v in values]
    return written


def _text(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "" if value is None else str(value)
