"""The client's plain-HTTP session (`dockyard.client.plain`): it sends what httpx would send,
reads every framing of an HTTP/1.1 answer, streams bodies as they arrive, and reports a
broken connection as the transport failure the client turns into `ServerUnreachable`.

A one-connection socket server answers canned bytes, so each framing is exactly the one
under test."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from dockyard.client.api import Client, ServerUnreachable
from dockyard.client.plain import Params, PlainSession, TransportFailure

Answer = Callable[[socket.socket, bytes], None]


class OneShot:
    """Accepts one connection, keeps the request it read, and lets `answer` reply."""

    def __init__(self, answer: Answer) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.request = b""
        self.thread = threading.Thread(target=self._serve, args=(answer,), daemon=True)
        self.thread.start()

    def _serve(self, answer: Answer) -> None:
        connection, _ = self.listener.accept()
        with connection:
            data = b""
            while b"\r\n\r\n" not in data:
                data += connection.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(body) < length:
                body += connection.recv(65536)
            self.request = head + b"\r\n\r\n" + body
            answer(connection, self.request)
        self.listener.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def replying(raw: bytes) -> Answer:
    def answer(connection: socket.socket, _request: bytes) -> None:
        connection.sendall(raw)
    return answer


@pytest.fixture
def served() -> Iterator[Callable[[Answer], tuple[OneShot, PlainSession]]]:
    servers: list[OneShot] = []

    def make(answer: Answer) -> tuple[OneShot, PlainSession]:
        server = OneShot(answer)
        servers.append(server)
        return server, PlainSession(server.url, headers={"Authorization": "Bearer t"},
                                    timeout=10.0)

    yield make
    for server in servers:
        server.thread.join(timeout=10)


def test_a_request_carries_what_httpx_would_send(served: Callable[..., tuple[OneShot, PlainSession]]
                                                 ) -> None:
    server, session = served(replying(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
    body = {"project": {"name": "café"}, "force": False}
    params: Params = {"service": ["web", "api"], "follow": False, "tail": 5, "since": None}
    response = session.request("POST", "/v1/projects/shop/logs", params=params, json=body)
    assert response.status_code == 200 and response.json() == {}
    expected = httpx.Request("POST", f"{server.url}/v1/projects/shop/logs", params=params,
                             json=body)
    head, _, sent = server.request.partition(b"\r\n\r\n")
    request_line, *header_lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    assert request_line == f"POST {expected.url.raw_path.decode()} HTTP/1.1"
    assert sent == expected.read()
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(sent))
    assert headers["authorization"] == "Bearer t"
    assert headers["host"] == f"127.0.0.1:{server.port}"
    assert headers["connection"] == "close"


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=1\r\n world\r\n"
    b"0\r\nTrailer: yes\r\n\r\n",
    b"HTTP/1.0 200 OK\r\n\r\nhello world",  # ends with the connection
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
], ids=["content-length", "chunked", "until-closed", "after-100-continue"])
def test_every_framing_of_a_body_is_read(served: Callable[..., tuple[OneShot, PlainSession]],
                                         raw: bytes) -> None:
    _, session = served(replying(raw))
    response = session.request("GET", "/x")
    assert (response.status_code, response.read()) == (200, b"hello world")


def test_a_head_answer_has_no_body_whatever_its_length_says(
        served: Callable[..., tuple[OneShot, PlainSession]]) -> None:
    _, session = served(replying(b"HTTP/1.1 404 Not Found\r\nContent-Length: 30\r\n\r\n"))
    assert session.head("/v1/contexts/sha256:00").status_code == 404


def test_a_stream_yields_each_line_as_it_arrives(
        served: Callable[..., tuple[OneShot, PlainSession]]) -> None:
    sent_second = threading.Event()

    def answer(connection: socket.socket, _request: bytes) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        first = b"event: state\r\ndata: {\"a\": 1}\n\nda"
        connection.sendall(b"%x\r\n%s\r\n" % (len(first), first))
        assert sent_second.wait(10)  # the client saw the first lines before the rest exists
        rest = b"ta: 2\n\n"
        connection.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))

    _, session = served(answer)
    lines = []
    with session.stream("GET", "/v1/deployments/x/events", params={"after": 0},
                        timeout=None) as response:
        for line in response.iter_lines():
            lines.append(line)
            if line == "":
                sent_second.set()
    assert lines == ["event: state", 'data: {"a": 1}', "", "data: 2", ""]


def test_a_connection_closed_mid_answer_is_a_transport_failure(
        served: Callable[..., tuple[OneShot, PlainSession]]) -> None:
    _, session = served(replying(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"))
    with pytest.raises(TransportFailure, match="closed in the middle"):
        session.request("GET", "/x")


def test_an_answer_that_is_not_http_is_a_transport_failure(
        served: Callable[..., tuple[OneShot, PlainSession]]) -> None:
    _, session = served(replying(b"SSH-2.0-OpenSSH_9.6\r\n"))
    with pytest.raises(TransportFailure, match="HTTP/1.x"):
        session.request("GET", "/x")


def test_the_client_says_a_server_it_cannot_reach_is_unreachable() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    client = Client(f"http://127.0.0.1:{port}", "t")
    assert isinstance(client.http, PlainSession)
    with pytest.raises(ServerUnreachable, match="cannot reach the Dockyard server"):
        client.services("shop")


def test_the_client_reads_the_servers_errors_through_the_plain_session(
        served: Callable[..., tuple[OneShot, PlainSession]]) -> None:
    body = json.dumps({"error": "no such deployment", "kind": "not-found"}).encode()
    server, _ = served(replying(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)))
    assert Client(server.url, "t").services("shop") == []  # ps of an unknown project
