"""Which local server the CLI trusts without asking (`client.local.running_server`): the one
it started for this data directory, known by its command line; any other live pid must answer
a health check, and a dead one is never trusted."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.client.local import running_server, server_dir


def _closed_url() -> str:
    """A local URL where nothing listens: trusting it proves no health check was made."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"DOCKYARD_HOME": str(tmp_path / "home")}


@pytest.fixture
def started(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A process with the command line of the server `ensure_local_server` starts."""
    directory = server_dir(env)
    directory.mkdir(parents=True)
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                                "dockyard.server", "--data", str(directory)])
    yield process
    process.kill()
    process.wait()


def _record(env: dict[str, str], url: str, pid: int) -> None:
    (server_dir(env) / "server.json").write_text(json.dumps({"url": url, "pid": pid}))


def test_the_server_started_for_this_directory_is_trusted_without_a_round_trip(
        env: dict[str, str], started: subprocess.Popen[bytes]) -> None:
    url = _closed_url()
    _record(env, url, started.pid)
    assert running_server(env) == (url, started.pid)


def test_another_live_process_must_answer_and_a_dead_one_is_not_trusted(
        env: dict[str, str], started: subprocess.Popen[bytes], tmp_path: Path) -> None:
    other = {"DOCKYARD_HOME": str(tmp_path / "other")}
    server_dir(other).mkdir(parents=True)
    _record(other, _closed_url(), started.pid)  # a server, but of another data directory
    assert running_server(other) is None
    _record(env, _closed_url(), started.pid)
    started.kill()
    started.wait()
    assert running_server(env) is None
