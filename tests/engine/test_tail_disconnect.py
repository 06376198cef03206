"""A `dockyard tail` killed mid-stream leaves nothing behind in the server (issue 12), on a
real engine.

One real `dockyard server --mode playground` (no ingress, egress open: neither is under test)
runs `idle`, which prints `ready` and sleeps. Nothing new is exposed to see inside the server;
both checks look from outside, through /proc:

- the engine stream: with the json-file log driver, the engine opens the container's log file
  once more for each open follow of it, so the engine's open descriptors of that file count
  the follows (the logger's own is the baseline);
- the thread: every thread the server started while the tail ran (its pump, and anyio's
  workers, which leave after 10 s idle) must be gone, by its id in /proc/<server pid>/task.

Cleanup: the server is stopped and everything carrying its server id is removed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.engine.playground import playground_server
from tests.support.deployments import docker
from tests.support.engine import engine_ready
from tests.support.tenants import DOCKYARD, clean_env

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1 (run scripts/setup "
                       "as root)"),
]

COMPOSE = """\
services:
  idle:
    image: dockyard/busybox:1
    command: ["sh", "-c", "echo ready; sleep 3600"]
"""
THREADS_GONE_SECONDS = 30.0  # anyio's idle workers leave after 10 s; a pump at once


@dataclass
class Deployed:
    pid: int  # the server's
    env: dict[str, str]  # the CLI's, logged in as alice
    project: str
    directory: Path
    container: str


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    root = tmp_path_factory.mktemp("tail")
    with playground_server(root, "--no-ingress", "--egress", "open",
                           "--allow-image", "dockyard/busybox:*",
                           accounts=("alice",)) as running:
        project = f"tl-{uuid.uuid4().hex[:6]}"
        directory = root / "project"
        directory.mkdir()
        (directory / "compose.yaml").write_text(COMPOSE)
        env = clean_env(root / "alice", DOCKYARD_SERVER=running.url,
                        DOCKYARD_TOKEN=running.tokens["alice"])
        up = subprocess.run([str(DOCKYARD), "compose", "up", "-p", project, "--json"],
                            cwd=directory, env=env, capture_output=True, text=True,
                            check=False, timeout=300)
        assert up.returncode == 0, f"{up.stdout}\n{up.stderr}\n{running.log_text()[-3000:]}"
        found = docker("ps", "-q", "--no-trunc", "--filter", f"label=dockyard.project={project}",
                       "--filter", "label=dockyard.service=idle").stdout.split()
        assert len(found) == 1, found
        yield Deployed(running.pid, env, project, directory, found[0])


def engine_pid() -> int:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == "dockerd":
                    return int(entry)
            except OSError:
                continue
    pytest.skip("no dockerd process to look into (a remote or rootless engine)")


def log_readers(engine: int, log_path: str) -> int:
    """How many times the engine has the container's log file open (the logger's is one)."""
    count = 0
    for fd in os.listdir(f"/proc/{engine}/fd"):
        try:
            if os.readlink(f"/proc/{engine}/fd/{fd}") == log_path:
                count += 1
        except OSError:
            continue
    return count


def thread_ids(pid: int) -> set[int]:
    return {int(tid) for tid in os.listdir(f"/proc/{pid}/task")}


def wait_for(check: Callable[[], bool], what: str, seconds: float) -> float:
    """Poll `check` until it holds; the seconds it took (fails after `seconds`)."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < seconds, f"waited {seconds:g}s for {what}"
        time.sleep(0.1)
    return time.monotonic() - start


def test_a_killed_tail_leaves_no_thread_and_no_engine_stream(deployed: Deployed) -> None:
    if docker("info", "--format", "{{.LoggingDriver}}").stdout.strip() != "json-file":
        pytest.skip("the engine's follows are counted by their json-file log file")
    engine = engine_pid()
    log_path = docker("inspect", "--format", "{{.LogPath}}", deployed.container).stdout.strip()
    baseline = log_readers(engine, log_path)
    before = thread_ids(deployed.pid)
    tail = subprocess.Popen([str(DOCKYARD), "tail", "-p", deployed.project, "--type", "run"],
                            cwd=deployed.directory, env=deployed.env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    printed: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert tail.stdout is not None
        for line in tail.stdout:
            printed.append(line)
            if "ready" in line:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(60), f"the tail printed no `ready`: {''.join(printed)}"
        wait_for(lambda: log_readers(engine, log_path) > baseline,
                 "the engine to open the follow", 10)
        during = thread_ids(deployed.pid) - before
        assert during, "the tail started no thread in the server"
    finally:
        tail.send_signal(signal.SIGKILL)  # mid-stream, as a closed terminal or a crash
        tail.wait(10)
        reader.join(10)
        if tail.stdout is not None:
            tail.stdout.close()
    stream_gone = wait_for(lambda: log_readers(engine, log_path) == baseline,
                           "the engine's follow of the log to be closed", 10)

    def left() -> set[int]:
        return during & thread_ids(deployed.pid)

    threads_gone = wait_for(lambda: not left(), "the threads the tail started to end "
                            f"(left: {sorted(left())})", THREADS_GONE_SECONDS)
    sys.stdout.write(f"\n[tail] killed: engine follow closed after {stream_gone:.1f}s, the "
          f"{len(during)} threads it started gone after {threads_gone:.1f}s\n")
