"""A tenant cannot exhaust the server with streams, bodies or logs (issue 10), on a real engine.

One real `dockyard server --mode playground` runs for the module (no ingress, egress open:
neither is under test here), with `--max-follows 100` so one account can hold 100 streams.
Alice deploys `chatty` (prints LINES long lines, then END, then sleeps) and `idle` (sleeps).
Everything is sent with the raw HTTP API, as an attacker would, and measured on the server's
process (/proc/<pid>):

- 100 idle `logs?follow=true` streams: `/v1/health` answers in under 100 ms (the slowest of
  20 calls) and `whoami` in under 1 s; the 101st follow is refused with 429; once the clients
  leave, the server's threads and its unix-socket connections (to the engine) go back to
  their baseline within seconds;
- a 200 MiB body, with a Content-Length and chunked without one, answers 413 and the
  server's resident memory grows by less than 50 MiB;
- a log answer without follow (and one paging back with `until`, which reads every line up
  to it) holds 10,000 lines, says the older ones were left out, and the server's resident
  memory grows by less than 50 MiB.

The numbers are printed (run with `-s` to see them). Cleanup: the server is stopped, then
everything carrying its server id is removed from the engine.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.engine.playground import playground_server
from tests.support.deployments import eventually
from tests.support.engine import engine_ready
from tests.support.tenants import DOCKYARD, clean_env

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1 (run scripts/setup "
                       "as root)"),
]

FOLLOWS = 100
LINES = 300_000  # about 45 MB of text: the whole log would cost the server hundreds of MB
PAD = "x" * 140
MiB = 1 << 20
RSS_GROWTH = 50 * MiB
# What may stay once the follows are gone: anyio's idle worker threads (they leave after 10 s)
# and docker-py's pool of kept-alive engine connections (10 at most); the follows held 100 each.
SLACK = 15
COMPOSE = f"""\
services:
  chatty:
    image: dockyard/busybox:1
    command: ["sh", "-c", "yes 'chatty {PAD}' | head -n {LINES}; echo END; sleep 3600"]
  idle:
    image: dockyard/busybox:1
    command: ["sleep", "3600"]
"""


@dataclass
class Server:
    url: str
    pid: int
    token: str
    project: str
    port: int
    log: Path

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("streams")
    with playground_server(root, "--no-ingress", "--egress", "open",
                           "--allow-image", "dockyard/busybox:*", "--max-follows", str(FOLLOWS),
                           "--log-max-size", "128m", "--max-request-bytes", "2m",
                           accounts=("alice",), env={"DOCKYARD_DEPLOY_TIMEOUT": "60"}
                           ) as running:
        token = running.tokens["alice"]
        project = f"st-{uuid.uuid4().hex[:6]}"
        directory = root / "project"
        directory.mkdir()
        (directory / "compose.yaml").write_text(COMPOSE)
        up = subprocess.run(
            [str(DOCKYARD), "compose", "up", "-p", project, "--json"], cwd=directory,
            env=clean_env(root / "alice", DOCKYARD_SERVER=running.url, DOCKYARD_TOKEN=token),
            capture_output=True, text=True, check=False, timeout=300)
        assert up.returncode == 0, f"{up.stdout}\n{up.stderr}\n{running.log_text()[-3000:]}"
        port = int(running.url.rsplit(":", 1)[1])
        yield Server(running.url, running.pid, token, project, port, running.log)


# -- measuring the server's process -----------------------------------------------------------
def report(text: str) -> None:
    """The measured numbers, for the record (seen with `pytest -s`)."""
    sys.stdout.write(text + "\n")


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def unix_sockets(pid: int) -> int:
    """Unix-domain sockets the process holds: its engine connections, and a few of its own."""
    with open("/proc/net/unix") as table:
        inodes = {line.split()[6] for line in table.readlines()[1:] if len(line.split()) > 6}
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            count += 1
    return count


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def peak_growth(pid: int, action: Callable[[], None]) -> int:
    """How far above its resident memory before `action` the server went while it ran."""
    before = rss(pid)
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss(pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        action()
        time.sleep(0.3)  # what the server still does once answered
    finally:
        done.set()
        sampler.join()
    return max(peak, rss(pid)) - before


def timings(call: Callable[[], httpx.Response], times: int) -> list[float]:
    """How long each of `times` calls took, in seconds, fastest first."""
    took = []
    for _ in range(times):
        start = time.perf_counter()
        response = call()
        took.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text
    return sorted(took)


# -- raw HTTP ---------------------------------------------------------------------------------
def open_follow(server: Server) -> tuple[socket.socket, int]:
    """A follow of the idle service's log with no history: (the connection, its status)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    path = f"/v1/projects/{server.project}/logs?follow=true&type=run&service=idle&tail=0"
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}"
                 "\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, f"the server closed a follow: {head!r}"
        head += chunk
    return sock, int(head.split(b" ", 2)[1])


def post_huge(server: Server, *, chunked: bool, total: int = 200 * MiB) -> tuple[int, int]:
    """POST a `total`-byte JSON body 1 MiB at a time, stopping when the server answers:
    (the status it answered, the bytes sent before)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    sock.sendall(f"POST /v1/projects/{server.project}/deployments HTTP/1.1\r\nHost: x\r\n"
                 f"Authorization: Bearer {server.token}\r\nContent-Type: application/json\r\n"
                 f"{framing}\r\n\r\n".encode())
    block = b'{"project": "' + b"a" * (MiB - 13)
    sent = 0
    answer = b""
    try:
        while sent < total:
            if select.select([sock], [], [], 0.02)[0]:
                break
            data = block if sent == 0 else b"a" * MiB
            sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data)
            sent += len(data)
        while b"\r\n\r\n" not in answer or not _complete(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 "), f"no answer after {sent} bytes: {answer!r}"
    body = answer.split(b"\r\n\r\n", 1)[1]
    if answer.split(b" ", 2)[1] == b"413":
        assert json.loads(body)["kind"] == "RequestTooLarge"
    return int(answer.split(b" ", 2)[1]), sent


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def read_logs(server: Server, **params: str) -> tuple[list[dict[str, object]], dict[str, object]]:
    """A non-follow log answer: (its log events, its end event)."""
    lines: list[dict[str, object]] = []
    end: dict[str, object] = {}
    kind = ""
    with httpx.stream("GET", f"{server.url}/v1/projects/{server.project}/logs",
                      params={"type": "run", "service": "chatty", **params},
                      headers=server.auth, timeout=120) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                if kind == "log":
                    lines.append(data)
                elif kind == "end":
                    end = data
    return lines, end


# -- the tests ----------------------------------------------------------------------------------
def test_idle_follows_neither_slow_the_server_nor_outlive_their_clients(server: Server) -> None:
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=30) as client:
        for _ in range(5):
            client.get("/v1/whoami")
        time.sleep(1)
        base_threads, base_sockets = threads(server.pid), unix_sockets(server.pid)
        follows: list[socket.socket] = []
        try:
            for _ in range(FOLLOWS):
                sock, status = open_follow(server)
                follows.append(sock)
                assert status == 200
            extra, status = open_follow(server)
            extra.close()
            assert status == 429, "the 101st follow of one account was not refused"
            time.sleep(1)
            open_threads, open_sockets = threads(server.pid), unix_sockets(server.pid)
            healths = timings(lambda: client.get("/v1/health"), 20)
            whoamis = timings(lambda: client.get("/v1/whoami"), 10)
            health, whoami = healths[-1], whoamis[-1]
        finally:
            for sock in follows:
                sock.close()
        closed_at = time.monotonic()

        def back_to_baseline() -> bool:
            return (threads(server.pid) <= base_threads + SLACK and
                    unix_sockets(server.pid) <= base_sockets + SLACK)

        eventually(back_to_baseline, "threads and engine connections back to the baseline",
                   timeout=10)
        settled = time.monotonic() - closed_at
        report(f"\n[streams] {FOLLOWS} idle follows: health slowest {health * 1000:.1f} ms "
               f"(median {healths[10] * 1000:.1f}), whoami slowest {whoami * 1000:.1f} ms "
               f"(median {whoamis[5] * 1000:.1f}); threads {base_threads} -> "
               f"{open_threads} -> {threads(server.pid)}, unix sockets {base_sockets} -> "
               f"{open_sockets} -> {unix_sockets(server.pid)} ({settled:.1f}s after closing)")
        assert health < 0.1, f"/v1/health took {health * 1000:.0f} ms with {FOLLOWS} follows"
        assert whoami < 1.0, f"whoami took {whoami * 1000:.0f} ms with {FOLLOWS} follows"
        # And one more follow is accepted again: the slots were given back.
        sock, status = open_follow(server)
        sock.close()
        assert status == 200


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_huge_body_is_refused_before_it_is_read(server: Server, chunked: bool) -> None:
    answer: list[tuple[int, int]] = []
    growth = peak_growth(server.pid, lambda: answer.append(post_huge(server, chunked=chunked)))
    (status, sent), = answer
    report(f"\n[streams] 200 MiB body ({'chunked' if chunked else 'content-length'}): "
          f"{status} after {sent / MiB:.0f} MiB sent; server RSS grew {growth / MiB:.1f} MiB")
    assert status == 413
    assert sent <= 16 * MiB, f"the server read {sent / MiB:.0f} MiB before answering"
    assert growth < RSS_GROWTH, f"the server grew {growth / MiB:.0f} MiB for a refused body"


def test_a_log_answer_is_bounded_and_says_older_lines_were_left_out(server: Server) -> None:
    def printed_all() -> bool:
        tail = subprocess.run(
            ["docker", "ps", "-q", "--filter", f"label=dockyard.project={server.project}",
             "--filter", "label=dockyard.service=chatty"], capture_output=True, text=True,
            check=False).stdout.split()
        return bool(tail) and "END" in subprocess.run(
            ["docker", "logs", "--tail", "1", tail[0]], capture_output=True, text=True,
            check=False).stdout

    eventually(printed_all, "chatty to print its lines", timeout=120)
    answers: list[tuple[list[dict[str, object]], dict[str, object]]] = []
    growth = peak_growth(server.pid, lambda: answers.append(read_logs(server)))
    lines, end = answers[0]
    report(f"\n[streams] logs of {LINES} lines: {len(lines)} sent, end {end}; server RSS grew "
          f"{growth / MiB:.1f} MiB")
    assert len(lines) == 10_000 and lines[-1]["line"] == "END"
    assert end["truncated"] is True and end["before"] == lines[0]["at"]
    assert growth < RSS_GROWTH, f"the server grew {growth / MiB:.0f} MiB for one log answer"
    # Paging back: the engine cannot tail before `until`, so every line up to it is read.
    answers.clear()
    growth = peak_growth(server.pid, lambda: answers.append(
        read_logs(server, until=str(end["before"]))))
    older, older_end = answers[0]
    report(f"[streams] the page before it: {len(older)} sent; server RSS grew "
          f"{growth / MiB:.1f} MiB")
    assert len(older) == 10_000 and older[-1]["at"] == end["before"]
    assert older_end["truncated"] is True
    assert growth < RSS_GROWTH, f"the server grew {growth / MiB:.0f} MiB paging back"
