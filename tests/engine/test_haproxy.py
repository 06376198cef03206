"""The HAProxy driver against a real HAProxy, with Python HTTP servers as replicas (no Docker).

Routing by Host, 404 for unknown hosts, balancing, replicas moved by the runtime API with no
failed request, a new route by seamless reload, a killed proxy started again with its routes,
and a port in use refused with a clear error.
"""

from __future__ import annotations

import http.client
import http.server
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.ingress.haproxy import HAProxy, IngressError, bind_listener, refusals
from dockyard.ingress.routes import Check, Route, Upstream

pytestmark = [
    pytest.mark.proxy,
    pytest.mark.skipif(shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists(),
                       reason="haproxy is not installed (scripts/setup installs it)"),
]


class Replica:
    """An HTTP server answering its own name, counting requests."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hits = 0
        replica = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                replica.hits += 1
                body = replica.name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

            def handle(self) -> None:
                try:
                    super().handle()
                except ConnectionError:  # health checks hang up early
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def upstream(self) -> Upstream:
        return Upstream("127.0.0.1", self.port, self.name)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def replicas() -> Iterator[list[Replica]]:
    made = [Replica(f"r{i}") for i in range(3)]
    yield made
    for replica in made:
        replica.close()


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[HAProxy]:
    http_sock = bind_listener("127.0.0.1", 0, flag="--http-port")
    made = HAProxy(tmp_path / "ingress", http_sock, None)
    yield made
    made.stop()
    http_sock.close()


def get(proxy: HAProxy, host: str, path: str = "/") -> tuple[int, str]:
    port = proxy._http.getsockname()[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def route(*up: Replica, resting: tuple[Replica, ...] = (), host: str = "web.test",
          key: str = "a/p/web/80") -> dict[str, Route]:
    base = Route(key, (host,), Check.HTTP)
    return {key: base.with_upstreams([r.upstream for r in up], [r.upstream for r in resting])}


def wait_up(proxy: HAProxy, key: str, *up: Replica) -> None:
    deadline = time.monotonic() + 10
    while not proxy.in_rotation(key, [r.upstream.endpoint for r in up]):
        assert time.monotonic() < deadline, proxy.server_states(key)
        time.sleep(0.05)


def test_routes_by_host_and_answers_404_to_unknown_hosts(proxy: HAProxy,
                                                         replicas: list[Replica]) -> None:
    proxy.start(route(replicas[0]))
    assert get(proxy, "web.test") == (200, "r0")
    assert get(proxy, "WEB.test:8080") == (200, "r0")  # case and port do not matter
    status, body = get(proxy, "other.test")
    assert status == 404 and "no service" in body


def test_balances_over_replicas_in_rotation_only(proxy: HAProxy,
                                                 replicas: list[Replica]) -> None:
    a, b, c = replicas
    proxy.start(route(a, b, resting=(c,)))
    bodies = {get(proxy, "web.test")[1] for _ in range(12)}
    assert bodies == {"r0", "r1"}
    assert c.hits == 0


def test_replicas_move_through_the_runtime_api_without_a_failed_request(
        proxy: HAProxy, replicas: list[Replica]) -> None:
    a, b, _ = replicas
    proxy.start(route(a))
    pid = proxy._worker_pid()
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                status, _ = get(proxy, "web.test")
                if status != 200:
                    failures.append(str(status))
            except OSError as exc:
                failures.append(repr(exc))

    worker = threading.Thread(target=load)
    worker.start()
    try:
        for _ in range(3):
            proxy.apply(route(a, b))          # the new one joins
            wait_up(proxy, "a/p/web/80", a, b)
            proxy.apply(route(b, resting=(a,)))  # the old one drains
            proxy.apply(route(b))             # and goes
            a, b = b, a
    finally:
        stop.set()
        worker.join()
    assert failures == []
    assert proxy._worker_pid() == pid  # never reloaded


def test_a_new_route_takes_a_spare_backend_without_a_reload(proxy: HAProxy,
                                                            replicas: list[Replica]) -> None:
    a, b, c = replicas
    proxy.start(route(a))
    pid = proxy._worker_pid()
    both = {**route(a), **route(b, host="api.test", key="a/p/api/80")}
    proxy.apply(both)
    wait_up(proxy, "a/p/api/80", b)
    assert get(proxy, "api.test") == (200, "r1")
    assert get(proxy, "web.test") == (200, "r0")
    proxy.apply(route(a))  # the route goes: its host answers 404, its backend is a spare
    assert get(proxy, "api.test")[0] == 404
    proxy.apply({**route(a), **route(c, host="new.test", key="a/p/new/80")})
    wait_up(proxy, "a/p/new/80", c)
    assert get(proxy, "new.test") == (200, "r2")
    assert proxy._worker_pid() == pid  # never reloaded
    assert (proxy.paths.hosts_map.read_text()
            == f"new.test {proxy._layout.backends['a/p/new/80'].name}\n"
               f"web.test {proxy._layout.backends['a/p/web/80'].name}\n")


def test_a_runtime_update_is_sent_in_batches_and_a_refusal_in_one_is_seen(
        proxy: HAProxy, replicas: list[Replica], monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, _ = replicas
    proxy.start(route(a))
    pid = proxy._worker_pid()
    sent: list[str] = []
    command = proxy.command

    def counted(line: str, *, master: bool = False) -> str:
        if not line.startswith("show "):  # not the state reads of `wait_up`
            sent.append(line)
        return command(line, master=master)

    monkeypatch.setattr(proxy, "command", counted)
    many = {**route(a)}
    for i in range(12):  # 12 new routes: their slots and hosts in one or two lines
        many.update(route(b, host=f"h{i}.test", key=f"a/p/h{i}/80"))
    proxy.apply(many)
    assert len(sent) <= 2 and sum(line.count(";") + 1 for line in sent) > 12
    for i in range(12):
        wait_up(proxy, f"a/p/h{i}/80", b)
        assert get(proxy, f"h{i}.test") == (200, "r1")
    proxy.apply(route(a))  # all 12 leave in one line, their hosts answer 404
    assert len(sent) <= 3 and get(proxy, "h5.test")[0] == 404
    assert proxy._worker_pid() == pid  # never reloaded
    hosts = proxy.paths.hosts_map
    refused = command(f"add map {hosts} x.test y;set server nowhere/s0 state ready;"
                      f"del map {hosts} x.test")
    assert len(refusals(refused)) == 1  # the one command of three HAProxy refused
    assert refusals(command(f"add map {hosts} z.test y;"
                            f"del map {hosts} z.test")) == []


def test_changed_hosts_are_loaded_by_a_seamless_reload(proxy: HAProxy,
                                                       replicas: list[Replica]) -> None:
    a, _, _ = replicas
    proxy.start(route(a))
    pid = proxy._worker_pid()
    proxy.apply(route(a, host="www.test"))
    assert proxy._worker_pid() != pid
    assert get(proxy, "www.test") == (200, "r0")
    assert get(proxy, "web.test")[0] == 404


def test_replica_states_are_read_while_reloads_hand_the_socket_over(
        proxy: HAProxy, replicas: list[Replica]) -> None:
    """Deployer threads ask whether their replicas are in rotation while other services'
    new routes reload the proxy: no question may meet a socket between two workers (a
    fresh-clone benchmark once failed a service on "Connection refused")."""
    a, b, _ = replicas
    proxy.start(route(a))
    failures: list[str] = []
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            try:
                proxy.in_rotation("a/p/web/80", [a.upstream.endpoint])
            except Exception as exc:  # any failure counts
                failures.append(repr(exc))

    askers = [threading.Thread(target=ask) for _ in range(4)]
    for asker in askers:
        asker.start()
    pid = proxy._worker_pid()
    try:
        for index in range(8):  # other hosts each time: a reload each time
            proxy.apply({**route(a), **route(b, host=f"s{index}.test", key="a/p/s/80")})
    finally:
        stop.set()
        for asker in askers:
            asker.join()
    assert failures == []
    assert proxy._worker_pid() != pid
    assert get(proxy, "s7.test") == (200, "r1")


def test_a_killed_proxy_is_started_again_with_every_route(proxy: HAProxy,
                                                          replicas: list[Replica]) -> None:
    a, b, _ = replicas
    proxy.start(route(a))
    proxy.apply(route(a, b))  # a runtime change: must survive the restart too
    assert proxy.pid is not None
    os.kill(proxy.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while proxy.alive():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert proxy.ensure_running()
    assert {get(proxy, "web.test")[1] for _ in range(8)} == {"r0", "r1"}
    assert not proxy.ensure_running()  # running: nothing to do


def test_acme_challenges_are_answered_on_http(proxy: HAProxy, replicas: list[Replica]) -> None:
    proxy.start(route(replicas[0]))
    proxy.set_acme_token("tok123", "tok123.thumbprint")
    assert get(proxy, "anything.example.com", "/.well-known/acme-challenge/tok123") == (
        200, "tok123.thumbprint")
    proxy.clear_acme_token("tok123")
    assert get(proxy, "anything.example.com", "/.well-known/acme-challenge/tok123")[0] == 404


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        with pytest.raises(IngressError) as caught:
            bind_listener("127.0.0.1", port, flag="--http-port")
    assert f"127.0.0.1:{port}" in caught.value.message
    assert "in use" in caught.value.message
    assert caught.value.hint is not None and "--http-port" in caught.value.hint


def test_a_socket_between_two_workers_is_waited_for(tmp_path: Path) -> None:
    """HAProxy's admin socket refused for a moment (bound, not listening yet), then served."""
    from dockyard.ingress.haproxy import _connect

    path = str(tmp_path / "admin.sock")
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.bind(path)  # a socket file nobody accepts on: connections are refused

    def serve_later() -> None:
        time.sleep(0.3)
        silent.close()
        os.unlink(path)
        listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listening.bind(path)
        listening.listen(1)
        connection, _ = listening.accept()
        connection.close()
        listening.close()

    server = threading.Thread(target=serve_later)
    server.start()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        _connect(client, path)
    server.join()
