"""An httpx transport over the standard library's `http.client`, for plain-HTTP servers.

httpx's own transport imports httpcore on first use (30-40 ms measured here), a quarter of the
`dockyard compose ps` budget; `http.client` is already loaded by httpx. This one opens a
connection per request (the server is usually on this machine), streams the response body
as it arrives (Server-Sent Events included), and raises httpx's own transport errors, so the
client above it cannot tell the difference. HTTPS keeps httpx's transport.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator

from dockyard.client._http import httpx


class _Body(httpx.SyncByteStream):
    def __init__(self, response: http.client.HTTPResponse,
                 connection: http.client.HTTPConnection, request: httpx.Request) -> None:
        self.response = response
        self.connection = connection
        self.request = request

    def __iter__(self) -> Iterator[bytes]:
        try:
            while True:
                chunk = self.response.read1(65536)
                if not chunk:
                    return
                yield chunk
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc), request=self.request) from None
        except (OSError, http.client.HTTPException) as exc:
            raise httpx.ReadError(str(exc), request=self.request) from None

    def close(self) -> None:
        self.response.close()
        self.connection.close()


class PlainHTTPTransport(httpx.BaseTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout") or {}
        connect_timeout = timeouts.get("connect")
        read_timeout = timeouts.get("read")
        url = request.url
        connection = http.client.HTTPConnection(url.host, url.port or 80,
                                                timeout=connect_timeout)
        body = request.read()
        try:
            connection.connect()
            if connection.sock is not None:
                connection.sock.settimeout(read_timeout)
            connection.request(request.method, url.raw_path.decode("ascii"), body=body or None,
                               headers=dict(request.headers.multi_items()))
            response = connection.getresponse()
        except TimeoutError as exc:
            connection.close()
            raise httpx.TimeoutException(str(exc), request=request) from None
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from None
        return httpx.Response(response.status, headers=response.getheaders(),
                              stream=_Body(response, connection, request), request=request)
