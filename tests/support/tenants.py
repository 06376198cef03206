"""Accounts on a real playground server, as the engine tests drive it: each user's CLI with its
own DOCKYARD_HOME (`User`), the server started as a subprocess and stopped, what the engine
shows of a user's containers, and the removal of everything a server made."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.deployments import (
    PROJECTS,
    Result,
    docker,
    edit,
)

DOCKYARD = Path(sys.executable).parent / "dockyard"
ZONE = "prod1a.localhost"
SERVER_ENV = {"DOCKYARD_STABILIZATION": "1", "DOCKYARD_DEPLOY_TIMEOUT": "30"}
_DROPPED = frozenset({"FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "CLICOLOR_FORCE",
                      "COLUMNS", "LINES"})


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("COMPOSE_", "DOCKYARD_")) and key not in _DROPPED}
    env.update(DOCKYARD_HOME=str(home), NO_COLOR="1", TERM="dumb", COLUMNS="200", **extra)
    return env


# -- the users ---------------------------------------------------------------------------------
@dataclass
class User:
    """The CLI of one person: their own DOCKYARD_HOME, every command kept in `transcript`."""

    name: str
    home: Path
    url: str
    transcript: list[str]
    token: str = ""

    def cli(self, *args: str, stdin: str = "", timeout: float = 120) -> Result:
        self.home.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([str(DOCKYARD), *args], env=clean_env(self.home),
                              cwd=self.home, input=stdin, capture_output=True, text=True,
                              timeout=timeout, check=False)
        result = Result(proc.returncode, proc.stdout, proc.stderr)
        self.transcript.append(f"$ dockyard {' '.join(args)}    (as {self.name})\n{result}")
        return result

    def remote(self, *args: str, stdin: str = "") -> Result:
        """A command against the playground server (`--server URL`)."""
        return self.cli(*args, "--server", self.url, stdin=stdin)

    def up(self, directory: Path, project: str) -> Result:
        return self.remote("compose", "up", "-C", str(directory), "-p", project, "--json")

    def ps(self, project: str) -> dict[str, dict[str, Any]]:
        result = self.remote("compose", "ps", "--json", "-p", project)
        assert result.code == 0, str(result)
        return {str(row["service"]): row for row in json.loads(result.out)}

    def deployments(self) -> list[dict[str, Any]]:
        result = self.remote("deployments", "--all", "--json")
        assert result.code == 0, str(result)
        found: list[dict[str, Any]] = json.loads(result.out)
        return found

    def api(self, path: str, **params: Any) -> httpx.Response:
        """A GET of the API with this user's token; the answer is kept in the transcript."""
        response = httpx.get(self.url + path, params=params, timeout=10,
                             headers={"Authorization": f"Bearer {self.token}"})
        self.transcript.append(f"GET {path} {params}    (as {self.name})\n"
                               f"{response.status_code} {response.text}")
        return response


# -- the engine --------------------------------------------------------------------------------
def inspect_all(*filters: str) -> list[dict[str, Any]]:
    ids = docker("ps", "-aq", *(a for f in filters for a in ("--filter", f))).stdout.split()
    if not ids:
        return []
    found: list[dict[str, Any]] = json.loads(docker("inspect", *ids, check=False).stdout or "[]")
    return found


def project_containers(user: str, project: str) -> list[dict[str, Any]]:
    return inspect_all(f"label=dockyard.account={user}", f"label=dockyard.project={project}")


def the_container(user: str, project: str, service: str) -> dict[str, Any]:
    found = inspect_all(f"label=dockyard.account={user}", f"label=dockyard.project={project}",
                        f"label=dockyard.service={service}")
    assert len(found) == 1, f"{user}'s {project}/{service}: {len(found)} containers"
    return found[0]


def ip_of(container: dict[str, Any]) -> str:
    networks = container["NetworkSettings"]["Networks"]
    (network,) = networks.values()
    address = str(network["IPAddress"])
    assert address, f"container {container['Name']} has no IP address: {networks}"
    return address


def probe(container: dict[str, Any], host: str) -> subprocess.CompletedProcess[str]:
    """`nc` from inside `container` to port 5432 of `host` (2 seconds at most)."""
    return docker("exec", str(container["Id"]), "nc", "-w", "2", host, "5432",
                  check=False, timeout=30)


def answer(container: dict[str, Any], host: str) -> str:
    result = probe(container, host)
    return result.stdout.strip() if result.returncode == 0 else ""


def snapshot(found: list[dict[str, Any]]) -> dict[str, tuple[str, bool]]:
    """Each container's id and whether it runs, by service."""
    return {str(c["Config"]["Labels"]["dockyard.service"]): (str(c["Id"]),
                                                            c["State"]["Status"] == "running")
            for c in found}


# -- the server --------------------------------------------------------------------------------
@dataclass
class Playground:
    root: Path
    url: str
    data: Path
    log: Path
    server_id: str
    operator: User
    alice: User
    bob: User
    run: str
    transcript: list[str] = field(default_factory=list)
    canary: str = ""
    projects: dict[str, str] = field(default_factory=dict)
    ups: dict[str, Result] = field(default_factory=dict)

    def server_log(self) -> str:
        return self.log.read_text(errors="replace")

    def project_dir(self, name: str, **owner: str) -> Path:
        target = self.root / f"{name}-{len(list(self.root.glob(name + '-*')))}"
        shutil.copytree(PROJECTS / name, target)
        for old, new in owner.items():
            edit(target / "compose.yaml", f"{old}: nobody", f"{old}: {new}")
        return target


def start_server(root: Path, port: int, data: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as sink:
        return subprocess.Popen(
            [str(DOCKYARD), "server", "--mode", "playground", "--listen", f"127.0.0.1:{port}",
             "--data", str(data), "--http-port", "0", "--https-port", "0",
             "--ingress-host", "127.0.0.1", "--max-projects", "2",
             "--allow-image", "dockyard/busybox:*"],
            env=clean_env(root / "operator", **SERVER_ENV), cwd=root,
            stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, start_new_session=True)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: this server and its proxy
            process.wait(timeout=20)


def remove_server_objects(server_id: str, accounts: tuple[str, ...]) -> None:
    """What this server created on the engine, by its id (and by the test's accounts)."""
    by_server = f"label=dockyard.server={server_id}"
    ids = docker("ps", "-aq", "--filter", by_server).stdout.split()
    for account in accounts:
        ids += docker("ps", "-aq", "--filter", by_server,
                      "--filter", f"label=dockyard.account={account}").stdout.split()
    if ids:
        docker("rm", "-f", *sorted(set(ids)), check=False)
    networks = docker("network", "ls", "-q", "--filter", by_server).stdout.split()
    if networks:
        docker("network", "rm", *networks, check=False)
    volumes = docker("volume", "ls", "-q", "--filter", by_server).stdout.split()
    if volumes:
        docker("volume", "rm", "-f", *volumes, check=False)
    remove_egress_rules(server_id)


def remove_egress_rules(server_id: str) -> None:
    """The server's iptables rules (playground egress), by their comment: its networks are
    removed after it stopped, so it could not remove them itself."""
    from dockyard.runtime.egress import EgressError, EgressGuard

    try:
        EgressGuard(server_id, None).clear()
    except EgressError:
        pass  # no iptables, or not root: the server could not have made any
