"""The real `dockyard` CLI against a real local server and Docker Engine, as the engine tests
drive it: the `Dockyard` helper and fixture (its own DOCKYARD_HOME, its server stopped and
everything its projects left on the engine removed afterwards), `docker` and what it reports of
containers, polling with a deadline, free ports, and the test projects under
tests/engine/projects."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.support.engine import DOCKER
from tests.support.tmpfs import release_secrets_dir

DOCKYARD = Path(sys.executable).parent / "dockyard"
PROJECTS = Path(__file__).parent.parent / "engine" / "projects"
RUN = uuid.uuid4().hex[:8]
USER = "alice"
COMPLETED = "SERVICE_DEPLOYMENT_COMPLETED"
PENDING = "SERVICE_DEPLOYMENT_PENDING"
FAILED = "SERVICE_DEPLOYMENT_FAILED"
BUILD_FAILED = "BUILD_FAILED"
SCALED_IN = "DEPLOYMENT_SCALED_IN"
SERVER_ENV = {"DOCKYARD_STABILIZATION": "1", "DOCKYARD_DEPLOY_TIMEOUT": "30",
              "DOCKYARD_HTTP_PORT": "0", "DOCKYARD_HTTPS_PORT": "0",
              "DOCKYARD_INGRESS_HOST": "127.0.0.1",
              "DOCKYARD_STRICT_TRANSITIONS": "1"}  # a forbidden state move fails (control.py)
_TERMINAL_VARIABLES = frozenset({"FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE",
                                 "CLICOLOR_FORCE", "COLUMNS", "LINES"})

T = TypeVar("T")


# -- Docker ------------------------------------------------------------------------------------
def docker(*args: str, check: bool = True, timeout: float = 120
           ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout,
                            check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}: "
                             f"{result.stderr.strip()}")
    return result


def containers(project: str, user: str = USER, **labels: str) -> list[dict[str, Any]]:
    """`docker inspect` of every container (running or not) of `project`, optionally only those
    with `dockyard.<key>=<value>` labels."""
    filters = [f"label=dockyard.account={user}", f"label=dockyard.project={project}",
               *(f"label=dockyard.{key}={value}" for key, value in labels.items())]
    ids = docker("ps", "-aq", *(a for f in filters for a in ("--filter", f))).stdout.split()
    if not ids:
        return []
    # A container removed between the two calls is left out (inspect still prints the rest).
    found: list[dict[str, Any]] = json.loads(docker("inspect", *ids, check=False).stdout or "[]")
    return found


def label(container: dict[str, Any], key: str) -> str:
    return str((container["Config"].get("Labels") or {}).get(f"dockyard.{key}", ""))


def by_service(found: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for container in found:
        out.setdefault(label(container, "service"), []).append(container)
    return out


def ids_of(found: list[dict[str, Any]]) -> set[str]:
    return {str(c["Id"]) for c in found}


def is_running(container: dict[str, Any]) -> bool:
    return bool(container["State"]["Status"] == "running")


def env_of(container: dict[str, Any]) -> dict[str, str]:
    pairs = (item.partition("=") for item in container["Config"].get("Env") or [])
    return {key: value for key, _, value in pairs}


def docker_exec(container: dict[str, Any], script: str) -> subprocess.CompletedProcess[str]:
    return docker("exec", str(container["Id"]), "sh", "-c", script, check=False, timeout=30)


def labelled(kind: str, project: str, user: str = USER) -> list[str]:
    """The names of the networks or volumes (`kind`) that carry `user`'s `project` labels."""
    out = docker(kind, "ls", "--filter", f"label=dockyard.account={user}",
                 "--filter", f"label=dockyard.project={project}", "--format", "{{.Name}}")
    return sorted(out.stdout.split())


def remove_project(project: str, user: str = USER) -> None:
    """Everything `project` may have left on the engine, by label and by name."""
    filters = ["--filter", f"label=dockyard.account={user}",
               "--filter", f"label=dockyard.project={project}"]
    ids = docker("ps", "-aq", *filters).stdout.split()
    if ids:
        docker("rm", "-f", *ids, check=False)
    for network in labelled("network", project, user):
        docker("network", "rm", network, check=False)
    volumes = docker("volume", "ls", "-q", *filters).stdout.split()
    if volumes:
        docker("volume", "rm", "-f", *volumes, check=False)
    images = docker("images", "-q", *filters).stdout.split()
    if images:
        docker("rmi", "-f", *sorted(set(images)), check=False)


# -- processes ---------------------------------------------------------------------------------
def process_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """Poll `probe` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g}s waiting for {what}")
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def copy_project(name: str, destination: Path) -> Path:
    target = destination / name
    shutil.copytree(PROJECTS / name, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path} has no {old!r}"
    path.write_text(text.replace(old, new))


# -- the CLI -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit code {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines() if line.startswith("{")]

    @property
    def deployment(self) -> str:
        """The deployment id an `up --json` or `down --json` printed."""
        for item in self.json_lines():
            if item.get("event") in ("deployment", "down"):
                return str(item["deployment"])
        raise AssertionError(f"no deployment id in the output:\n{self}")


def cli_env(home: Path, user: str, extra: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("COMPOSE_", "DOCKYARD_")) and key not in _TERMINAL_VARIABLES}
    env.update(DOCKYARD_HOME=str(home), DOCKYARD_USER=user, NO_COLOR="1", TERM="dumb",
               COLUMNS="200", **SERVER_ENV)
    env.update(extra)
    return env


@dataclass
class Dockyard:
    """The CLI of one DOCKYARD_HOME (so of one local server), and what it deployed."""

    home: Path
    user: str = USER
    env: dict[str, str] = field(default_factory=dict)
    projects: list[str] = field(default_factory=list)
    pids: set[int] = field(default_factory=set)

    @property
    def data(self) -> Path:
        return self.home / "data" / "server"

    def name(self, what: str) -> str:
        """A project name unique to this run, removed from the engine at teardown."""
        project = f"t-{RUN}-{what}-{uuid.uuid4().hex[:4]}"
        self.projects.append(project)
        return project

    def cli(self, *args: str, timeout: float = 180, **extra_env: str) -> Result:
        proc = subprocess.run([str(DOCKYARD), *args], env=cli_env(self.home, self.user,
                                                                  {**self.env, **extra_env}),
                              cwd=self.home.parent, capture_output=True, text=True,
                              timeout=timeout, check=False)
        self.server()  # remember the pid of a server the command started
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def background(self, *args: str, output: Path) -> subprocess.Popen[str]:
        """A CLI command left running; its stdout and stderr go to `output`."""
        with open(output, "w") as sink:
            return subprocess.Popen([str(DOCKYARD), *args],
                                    env=cli_env(self.home, self.user, self.env),
                                    cwd=self.home.parent, stdin=subprocess.DEVNULL,
                                    stdout=sink, stderr=subprocess.STDOUT, text=True)

    def up(self, directory: Path, project: str, *options: str) -> Result:
        return self.cli("compose", "up", "-C", str(directory), "-p", project, "--json",
                        *options)

    def ps(self, project: str) -> dict[str, dict[str, Any]]:
        result = self.cli("compose", "ps", "--json", "-p", project)
        assert result.code == 0, str(result)
        return {str(row["service"]): row for row in json.loads(result.out)}

    def deployments(self, project: str) -> list[dict[str, Any]]:
        result = self.cli("deployments", "--json", "-p", project)
        assert result.code == 0, str(result)
        found: list[dict[str, Any]] = json.loads(result.out)
        return found

    # -- the server ----------------------------------------------------------------------------
    def server(self) -> tuple[str, int] | None:
        """(url, pid) of the local server as server.json tells, when there is one."""
        try:
            state = json.loads((self.data / "server.json").read_text())
        except (OSError, ValueError):
            return None
        url, pid = str(state["url"]), int(state["pid"])
        self.pids.add(pid)
        return url, pid

    def _ours(self, pid: int) -> bool:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return b"dockyard.server" in argv and str(self.data).encode() in argv

    def api(self, path: str, **params: Any) -> Any:
        found = self.server()
        assert found is not None, "no local server runs"
        token = (self.data / "local-token").read_text().strip()
        response = httpx.get(found[0] + path, params=params, timeout=10,
                             headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()
        return response.json()

    def events(self, deployment: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.api(f"/v1/deployments/{deployment}")["events"]
        return found

    def kill_server(self, sig: signal.Signals = signal.SIGKILL) -> int:
        found = self.server()
        assert found is not None, "no local server runs"
        pid = found[1]
        assert self._ours(pid), f"pid {pid} is not this test's server"
        os.kill(pid, sig)
        eventually(lambda: not process_alive(pid), f"the server (pid {pid}) to end")
        return pid

    def close(self) -> None:
        """Stop every server this home started, then remove what its projects left."""
        self.server()
        live = [pid for pid in self.pids if process_alive(pid) and self._ours(pid)]
        for pid in live:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while any(process_alive(pid) for pid in live) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in live:
            if process_alive(pid) and self._ours(pid):
                os.kill(pid, signal.SIGKILL)
        for project in self.projects:
            remove_project(project, self.user)
        release_secrets_dir(self.data)


@pytest.fixture
def dockyard(dockyard_home: Path) -> Iterator[Dockyard]:
    """The CLI with this test's DOCKYARD_HOME; its server and projects are gone afterwards."""
    dy = Dockyard(dockyard_home)
    try:
        yield dy
    finally:
        dy.close()


def last_events(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each service's last event."""
    return {str(e["service"]): e for e in events}
