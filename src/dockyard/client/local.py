"""The embedded default: find the local server, or start one in the background.

The local server keeps its state under `$DOCKYARD_HOME` (`data/server/`): `server.json` (pid and
URL, written once it listens), `server.log`, `local-token` (the single-user account's token,
mode 0600). It listens on 127.0.0.1 on a free port the operating system picks, so a port in use
never stops it. A `server.json` whose pid is dead, or whose server does not answer, is stale:
a new server is started. A lock file keeps two CLIs from starting two servers at once.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from dockyard.home import config_dir, data_dir

START_TIMEOUT = 30.0


def server_dir(env: Mapping[str, str]) -> Path:
    return data_dir(env) / "server"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answers(url: str) -> bool:
    """Whether a Dockyard server answers its health check at `url` (a local http URL)."""
    from dockyard.client.plain import PlainSession, TransportFailure

    try:
        return PlainSession(url, headers={}, timeout=2.0).request(
            "GET", "/v1/health").status_code == 200
    except TransportFailure:
        return False


def _started_here(pid: int, directory: Path) -> bool:
    """Whether process `pid` is the server `ensure_local_server` starts for `directory`, by its
    command line (`/proc`; False where there is none, or for any other process: a pid
    reused after a crash, or a server started by hand)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    data = str(directory).encode()
    return b"dockyard.server" in args and any(
        flag == b"--data" and value == data for flag, value in itertools.pairwise(args))


def running_server(env: Mapping[str, str]) -> tuple[str, int] | None:
    """(url, pid) of a live local server, or None.

    The server writes `server.json` once it listens. When its pid is the server this module
    started for this directory, that is trusted as it is; any other live pid must answer a
    health check first. The check was a round trip more on every command, and on a loaded
    machine each round trip waits for the server's process to be scheduled.
    """
    directory = server_dir(env)
    try:
        state = json.loads((directory / "server.json").read_text())
        url, pid = str(state["url"]), int(state["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _alive(pid) or not (_started_here(pid, directory) or _answers(url)):
        return None
    return url, pid


def _token(env: Mapping[str, str]) -> str:
    return (server_dir(env) / "local-token").read_text().strip()


def ensure_local_server(env: Mapping[str, str],
                        announce: Callable[[str], None] | None = None) -> tuple[str, str]:
    """(url, token) of the local server, starting it first when none answers."""
    from dockyard.client.api import ServerUnreachable
    from dockyard.exit_codes import ExitCode
    from dockyard.runtime.errors import EngineUnavailable

    found = running_server(env)
    if found is not None:
        return found[0], _token(env)
    directory = server_dir(env)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = running_server(env)  # another CLI may have started it meanwhile
        if found is not None:
            return found[0], _token(env)
        (directory / "server.json").unlink(missing_ok=True)
        log_path = directory / "server.log"
        import subprocess  # only when a server is started, not on every command

        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "dockyard.server", "--listen", "127.0.0.1:0",
                 "--data", str(directory)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                env=dict(env), close_fds=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            found = running_server(env)
            if found is not None and found[1] == process.pid:
                if announce is not None:
                    announce(f"started a local Dockyard server at {found[0]} (pid "
                             f"{process.pid}, log {log_path})")
                return found[0], _token(env)
            if process.poll() is not None:
                if process.returncode == int(ExitCode.ENGINE_UNAVAILABLE):
                    raise EngineUnavailable(
                        "the local Dockyard server could not start: "
                        + _error_line(log_path),
                        hint="is dockerd running? start it (scripts/setup does) or set "
                        "DOCKER_HOST")
                raise ServerUnreachable(
                    f"the local Dockyard server stopped as it started (exit code "
                    f"{process.returncode})", hint=f"its log says why: {_tail(log_path)}")
            time.sleep(0.05)
        process.kill()
        raise ServerUnreachable("the local Dockyard server did not answer within "
                                f"{START_TIMEOUT:g}s", hint=f"see its log: {log_path}")


def _error_line(path: Path) -> str:
    """The last `error:` line the server wrote to its log, without the prefix."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "see " + str(path)
    found = [line for line in lines if line.startswith("error: ")]
    return found[-1][len("error: "):] if found else "see " + str(path)


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return str(path)
    return " | ".join(text[-lines:]) or str(path)


def stored_token(url: str, env: Mapping[str, str]) -> str | None:
    """A token saved by `dockyard login` for `url` (`dockyard.client.credentials`)."""
    path = config_dir(env) / "credentials.json"
    try:
        tokens = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    value = tokens.get(url.rstrip("/")) if isinstance(tokens, dict) else None
    return str(value) if value else None
