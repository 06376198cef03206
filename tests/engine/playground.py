"""A real playground server for an engine test module: started as its operator starts it.

`playground_server` runs `dockyard server --mode playground` as a subprocess (a free API port,
a data directory of its own, the test's options), waits until it answers, creates the
accounts, and on the way out stops it and removes, by its server id, every container,
network, volume, image and iptables rule it made. Each module keeps its own scenario; this is
only the set-up they share.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.deployments import docker, eventually, free_port
from tests.support.tenants import (
    DOCKYARD,
    User,
    clean_env,
    remove_server_objects,
    stop_server,
)
from tests.support.tmpfs import release_secrets_dir

SERVER_ENV = {"DOCKYARD_STABILIZATION": "1", "DOCKYARD_DEPLOY_TIMEOUT": "30",
              "DOCKYARD_STRICT_TRANSITIONS": "1"}  # a forbidden state move fails (control.py)


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    url: str
    root: Path
    data: Path
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)  # account -> its first token
    transcript: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def server_id(self) -> str:
        return (self.data / "server-id").read_text().strip()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def user(self, name: str) -> User:
        """The CLI of account `name`, logged in to this server with its token."""
        user = User(name, self.root / name, self.url, self.transcript, self.tokens[name])
        login = user.cli("login", "--server", self.url, stdin=user.token + "\n")
        assert login.code == 0, str(login)
        return user


@contextmanager
def playground_server(root: Path, *options: str, accounts: Sequence[str] = (),
                      env: Mapping[str, str] | None = None) -> Iterator[RunningServer]:
    """A playground server with `options` and `accounts` (see the module's docstring)."""
    data, log, port = root / "server", root / "server.log", free_port()
    environment = clean_env(root / "operator", **{**SERVER_ENV, **(env or {})})
    with open(log, "ab") as sink:
        process = subprocess.Popen(
            [str(DOCKYARD), "server", "--mode", "playground", "--listen", f"127.0.0.1:{port}",
             "--data", str(data), *options],
            env=environment, cwd=root, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink,
            start_new_session=True)
    server = RunningServer(process, f"http://127.0.0.1:{port}", root, data, log)
    try:
        def healthy() -> bool:
            assert process.poll() is None, (
                f"the server exited {process.returncode}:\n{server.log_text()}")
            try:
                return httpx.get(server.url + "/v1/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        eventually(healthy, "the playground server to answer /v1/health")
        for name in accounts:
            added = subprocess.run([str(DOCKYARD), "server", "accounts", "add", name,
                                    "--data", str(data)], env=environment, cwd=root,
                                   capture_output=True, text=True, timeout=60, check=False)
            assert added.returncode == 0, added.stderr
            server.tokens[name] = added.stdout.strip().splitlines()[-1]
        yield server
    finally:
        stop_server(process)
        if (data / "server-id").exists():
            server_id = server.server_id
            remove_server_objects(server_id, tuple(accounts))
            images = docker("images", "-q", "--no-trunc", "--filter",
                            f"label=dockyard.server={server_id}").stdout.split()
            if images:
                docker("rmi", "-f", *sorted(set(images)), check=False)
        release_secrets_dir(data)
