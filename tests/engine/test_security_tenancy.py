"""Tenants attack each other through the files, names and volumes of a shared server, and fail.

One real `dockyard server --mode playground` for the module, with four accounts: alice (a
project with a named volume and a secret), bob (the attacker), bob-smith (whose engine names
used to read exactly like bob's) and racer (four projects at once against a limit of one).
Attacks go through the raw HTTP API wherever the CLI would have sanitized them.

Held here:
- the server never opens a path a tenant names: `env_file` of the server's key file, of
  `/etc/os-release` and of `/proc/self/environ`, `include` and `extends` of server paths are
  refused with 422 `server-path`, with the same answer whether the path exists or not, and
  nothing of those files appears in any answer or log bob can read;
- account `bob` with project `smith-<p>` and account `bob-smith` with project `<p>` get
  different networks, volumes and secret files: bob's `db` never answers bob-smith's lookups,
  and bob's `down` leaves bob-smith's secret file in place;
- an `external` volume naming alice's volume is refused (`external-refused`), and alice's
  `down --volumes` says which volume it removed, and did;
- four projects sent at once by one account against a limit of one: exactly one is admitted;
- values an engine takes oddly (negative CPUs and replicas) are refused with 422;
- `cap_add` beyond the engine's defaults and `ipc: host` are refused before anything runs;
  the other privilege keys (`privileged`, `pid`, `security_opt`, `sysctls`) stay ignored: the
  container runs without them.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engine.playground import playground_server
from tests.support.deployments import docker, labelled
from tests.support.engine import engine_ready
from tests.support.tenants import User, the_container

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1 (run scripts/setup "
                       "as root)"),
]

ACCOUNTS = ("alice", "bob", "bob-smith", "racer")


@dataclass
class Shared:
    url: str
    data: Path
    log: Path
    root: Path
    run: str
    users: dict[str, User]
    pid: int

    def post(self, who: str, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(self.url + path, json=body, timeout=30,
                          headers={"Authorization": f"Bearer {self.users[who].token}"})

    def deploy_raw(self, who: str, project: dict[str, Any]) -> httpx.Response:
        return self.post(who, f"/v1/projects/{project['name']}/deployments",
                         {"project": project, "builds": {}})

    def project(self, name: str, compose: str) -> Path:
        directory = self.root / "projects" / name
        directory.mkdir(parents=True)
        (directory / "compose.yaml").write_text(compose)
        return directory


def _listener(answer: str) -> dict[str, Any]:
    return {"image": "dockyard/busybox:1", "stop_grace_period": "1s",
            "command": ["nc", "-ll", "-p", "5432", "-e", "echo", answer]}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    root = tmp_path_factory.mktemp("security-tenancy")
    with playground_server(root, "--http-port", "0", "--https-port", "0",
                           "--ingress-host", "127.0.0.1", "--allow-image", "dockyard/busybox:*",
                           accounts=ACCOUNTS) as server:
        users = {name: server.user(name) for name in ACCOUNTS}
        yield Shared(server.url, server.data, server.log, root, uuid.uuid4().hex[:6], users,
                     server.pid)


# -- 1. the server's files -----------------------------------------------------------------
def test_the_server_opens_no_path_a_tenant_names(shared: Shared) -> None:
    key_file = shared.data / "config.key"
    key = key_file.read_bytes().strip().decode()
    attempts: list[dict[str, Any]] = [
        {"env_file": [str(key_file), "/etc/os-release"]},
        {"env_file": ["/proc/self/environ"]},
        {"label_file": [str(key_file)]},
        {"extends": {"file": str(key_file), "service": "x"}},
    ]
    answers = []
    for index, extra in enumerate(attempts):
        project = {"name": f"leak{index}-{shared.run}",
                   "services": {"web": {**_listener("x"), **extra}}}
        response = shared.deploy_raw("bob", project)
        assert response.status_code == 422, response.text
        codes = {d["code"] for d in response.json()["diagnostics"]}
        assert codes == {"server-path"}, response.text
        answers.append(response.text)
    # include: the same answer whether the path exists or not (nothing learned about files).
    exists, missing = (shared.deploy_raw("bob", {
        "name": f"inc-{shared.run}", "include": [path], "services": {"web": _listener("x")}})
        for path in ("/etc/passwd", "/nonexistent/compose.yaml"))
    assert exists.status_code == missing.status_code == 422
    assert exists.json()["diagnostics"][0]["code"] == "server-path"
    assert exists.text.replace("/etc/passwd", "P") == \
        missing.text.replace("/nonexistent/compose.yaml", "P")
    server_environment = Path(f"/proc/{shared.pid}/environ").read_bytes()
    for text in [*answers, exists.text]:
        assert key not in text and "PRETTY_NAME" not in text
        for item in server_environment.split(b"\0"):
            value = item.decode(errors="replace").partition("=")[2]
            assert len(value) < 12 or value not in text
    assert not any(d["project"].startswith("leak") for d in _deployments(shared, "bob"))


def _deployments(shared: Shared, who: str) -> list[dict[str, Any]]:
    response = httpx.get(shared.url + "/v1/deployments", timeout=10,
                         headers={"Authorization": f"Bearer {shared.users[who].token}"})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


# -- 2 and 3. volumes and names --------------------------------------------------------------
def test_names_that_read_alike_never_meet_and_down_removes_only_its_own(shared: Shared) -> None:
    bob, smith = shared.users["bob"], shared.users["bob-smith"]
    site = f"site{shared.run}"
    stored = smith.remote("config", "set", "TOKEN", "-p", site, stdin="smith-token")
    assert stored.code == 0, str(stored)
    smith_dir = shared.project(f"smith-{site}", """
services:
  db:
    image: dockyard/busybox:1
    command: ["nc", "-ll", "-p", "5432", "-e", "echo", "db-of-bob-smith"]
    stop_grace_period: 1s
  web:
    image: dockyard/busybox:1
    command: ["sleep", "1d"]
    secrets: [TOKEN]
    volumes: [{type: volume, source: data, target: /data}]
    stop_grace_period: 1s
volumes: {data: {}}
secrets: {TOKEN: {external: true}}
""")
    bob_dir = shared.project(f"bob-smith-{site}", """
services:
  db:
    image: dockyard/busybox:1
    command: ["nc", "-ll", "-p", "5432", "-e", "echo", "db-of-bob"]
    stop_grace_period: 1s
    volumes: [{type: volume, source: data, target: /data}]
volumes: {data: {}}
""")
    up = smith.up(smith_dir, site)
    assert up.code == 0, str(up)
    up = bob.up(bob_dir, f"smith-{site}")
    assert up.code == 0, str(up)

    smith_net, bob_net = labelled("network", site, "bob-smith"), \
        labelled("network", f"smith-{site}", "bob")
    assert len(smith_net) == len(bob_net) == 1 and smith_net != bob_net
    smith_vol, bob_vol = labelled("volume", site, "bob-smith"), \
        labelled("volume", f"smith-{site}", "bob")
    assert len(smith_vol) == len(bob_vol) == 1 and smith_vol != bob_vol
    web = the_container("bob-smith", site, "web")
    bob_db = the_container("bob", f"smith-{site}", "db")
    assert set(bob_db["NetworkSettings"]["Networks"]) == set(bob_net)
    for host in ("db", f"db.{site}.internal", "bob-smith-db"):
        reply = docker("exec", web["Id"], "nc", "-w", "2", host, "5432", check=False)
        assert reply.stdout.strip() == "db-of-bob-smith", (host, reply)

    down = bob.remote("compose", "down", "--volumes", "-p", f"smith-{site}")
    assert down.code == 0, str(down)
    assert f"volume {bob_vol[0]} removed" in down.err, str(down)
    assert labelled("volume", site, "bob-smith") == smith_vol
    secret = docker("exec", web["Id"], "cat", "/run/secrets/TOKEN", check=False)
    assert secret.stdout == "smith-token", secret
    assert the_container("bob-smith", site, "web")["State"]["Status"] == "running"


def test_an_external_volume_cannot_reach_another_tenants_data(shared: Shared) -> None:
    alice = shared.users["alice"]
    vault = f"vault{shared.run}"
    # Keys that would reach the host: cap_add beyond the defaults and ipc: host are refused
    # before anything runs; the others are ignored (the container gets none of them).
    reaching = shared.deploy_raw("alice", {"name": vault, "services": {"vault": {
        **_listener("x"), "cap_add": ["ALL"], "ipc": "host"}}})
    assert reaching.status_code == 422, reaching.text
    codes = {d["code"] for d in reaching.json()["diagnostics"]}
    assert {"capability-refused", "network-mode-refused"} <= codes, reaching.text
    directory = shared.project(vault, """
services:
  vault:
    image: dockyard/busybox:1
    command: ["sh", "-c", "echo alice-rows > /data/rows && exec sleep 1d"]
    volumes: [{type: volume, source: data, target: /data}]
    stop_grace_period: 1s
    privileged: true
    pid: host
    security_opt: ["apparmor=unconfined"]
    sysctls: {net.ipv4.ip_forward: 1}
volumes: {data: {}}
""")
    up = alice.up(directory, vault)
    assert up.code == 0, str(up)
    (volume,) = labelled("volume", vault, "alice")
    container = the_container("alice", vault, "vault")
    host = container["HostConfig"]
    assert host["Privileged"] is False and not host.get("CapAdd")
    assert host.get("PidMode") in ("", None) and host.get("IpcMode") != "host"
    assert not host.get("SecurityOpt") and not host.get("Sysctls")

    for name in (volume, vault + "_data"):
        squat = shared.deploy_raw("bob", {
            "name": f"squat-{shared.run}", "services": {"thief": {
                **_listener("x"),
                "volumes": [{"type": "volume", "source": "loot", "target": "/loot"}]}},
            "volumes": {"loot": {"external": True, "name": name}}})
        assert squat.status_code == 422, squat.text
        codes = {d["code"] for d in squat.json()["diagnostics"]}
        assert "external-refused" in codes, squat.text
    assert docker("ps", "-aq", "--filter", "label=dockyard.account=bob",
                  "--filter", f"label=dockyard.project=squat-{shared.run}").stdout == ""

    down = alice.remote("compose", "down", "--volumes", "-p", vault)
    assert down.code == 0, str(down)
    assert f"volume {volume} removed" in down.err, str(down)
    assert docker("volume", "inspect", volume, check=False).returncode != 0


# -- 4. admission ------------------------------------------------------------------------------
def test_concurrent_projects_are_admitted_one_at_a_time(shared: Shared) -> None:
    barrier = threading.Barrier(4)
    codes: list[int] = []
    lock = threading.Lock()

    def send(index: int) -> None:
        project = {"name": f"race{index}-{shared.run}",
                   "services": {"web": _listener(f"race{index}")}}
        barrier.wait()
        response = shared.deploy_raw("racer", project)
        with lock:
            codes.append(response.status_code)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [202, 422, 422, 422], codes
    admitted = {d["project"] for d in _deployments(shared, "racer")
                if d["status"] not in ("refused",)}
    assert len(admitted) == 1, admitted


@pytest.mark.parametrize("extra", [
    {"deploy": {"resources": {"limits": {"cpus": "-1"}}}},
    {"deploy": {"replicas": -1}},
    {"environment": {"A": "x\u0000y"}},
])
def test_values_an_engine_takes_oddly_are_refused(shared: Shared, extra: dict[str, Any]) -> None:
    response = shared.deploy_raw("bob", {"name": f"odd-{shared.run}",
                                         "services": {"web": {**_listener("x"), **extra}}})
    assert response.status_code == 422, response.text
    assert json.loads(response.text)["diagnostics"], response.text


# -- what the review found right, kept -----------------------------------------------------------
def test_volume_driver_options_cannot_bind_a_host_path(shared: Shared) -> None:
    bob = shared.users["bob"]
    name = f"opts{shared.run}"
    directory = shared.project(name, """
services:
  peek:
    image: dockyard/busybox:1
    command: ["sleep", "1d"]
    volumes: [{type: volume, source: data, target: /data}]
    stop_grace_period: 1s
volumes:
  data:
    driver: local
    driver_opts: {type: none, o: bind, device: /etc}
""")
    up = bob.up(directory, name)
    assert up.code == 0, str(up)
    (volume,) = labelled("volume", name, "bob")
    options = json.loads(docker("volume", "inspect", volume).stdout)[0].get("Options")
    assert not options, options
    peek = the_container("bob", name, "peek")
    seen = docker("exec", peek["Id"], "ls", "/data").stdout
    assert "passwd" not in seen and "os-release" not in seen, seen
    down = bob.remote("compose", "down", "--volumes", "-p", name)
    assert down.code == 0, str(down)


def test_buildkit_mounts_are_unavailable_to_a_build(shared: Shared) -> None:
    bob = shared.users["bob"]
    name = f"bk{shared.run}"
    directory = shared.project(name, """
services:
  app:
    build: .
    command: ["sleep", "1d"]
""")
    (directory / "Dockerfile").write_text(
        "FROM dockyard/busybox:1\n"
        "RUN --mount=type=bind,source=/,target=/host cat /host/etc/shadow > /stolen\n")
    up = bob.up(directory, name)
    assert up.code != 0, str(up)
    assert "BUILD_FAILED" in up.out + up.err, str(up)
    assert "root:" not in up.out + up.err
    bob.remote("compose", "down", "-p", name)


def test_anonymous_volumes_go_with_their_containers(shared: Shared) -> None:
    bob = shared.users["bob"]
    name = f"anon{shared.run}"
    directory = shared.project(name, """
services:
  box:
    image: dockyard/busybox:1
    command: ["sleep", "1d"]
    volumes: [{type: volume, target: /scratch}]
    stop_grace_period: 1s
""")
    up = bob.up(directory, name)
    assert up.code == 0, str(up)
    box = the_container("bob", name, "box")
    (mount,) = [m for m in box["Mounts"] if m["Destination"] == "/scratch"]
    anonymous = mount["Name"]
    assert docker("volume", "inspect", anonymous, check=False).returncode == 0
    down = bob.remote("compose", "down", "--volumes", "-p", name)
    assert down.code == 0, str(down)
    assert docker("volume", "inspect", anonymous, check=False).returncode != 0, "leaked"
