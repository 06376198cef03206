"""Containment: a tenant's containers cannot exhaust the server nor reach the host (issue 10).

One real `dockyard server --mode playground` for the module, run as its operator would (as root:
restricted egress is the playground default), with small bounds so each attack is quick:
`--max-pids 64 --log-max-size 64k --log-max-files 2`, one host port allowed to bob
(`--allow-host-ports bob=<P>-<P>`, P a free port) and `--allow-image 'dockyard/busybox:*'`.
The tenant, bob, works through the raw HTTP API (what a hostile client sends, not what the CLI
would). Each attack and what holds:

- a service printing as fast as it can (and asking for `max-size: 1g`): the engine's json log
  file is rotated at the server's 64k, two files at most, while the service wrote far more;
  a service asking for a smaller size (16k) gets it;
- a fork bomb (`while :; do sleep 100 & done`): the container's cgroup stops it at 64
  processes, and the server keeps answering;
- pids over the limit, `-1` (unlimited), a logging driver the engine cannot read back, host
  ports outside bob's range (a port, a range, a UDP port): refused with 422 and the
  diagnostic's code and key path, and nothing starts; the allowed host port works;
- from bob's container, a TCP listener on the host (0.0.0.0, reached through the network's
  gateway and docker0's address) and a metadata service at 169.254.169.254 (in a network
  namespace of the test, routed through a veth pair as a cloud's is) do not answer, while the
  same listeners answer a container of a plain Docker network (so the test can fail), the
  ingress serves bob's web, and bob's service names resolve; the server's iptables rules
  carry its id and go with the network at `down`, stale ones too;
- a playground server that cannot set the rules (no iptables on its PATH) refuses to start;
- builds (`--build-timeout 15`, a second account alice): a build step cannot reach the host
  listener through its network's gateway, docker0's or the host's addresses (the same probe
  built on the engine's default bridge, as before the fix, does reach it), and it sees the
  embedded DNS and the account's memory limit; bob's second build waits for his first while
  alice's build proceeds; a build past the timeout fails its service with the reason, and no
  build container is left.

Cleanup: the server is stopped, everything labelled with its id is removed, its iptables rules
(by their comment), the metadata namespace and its veth, and the control network.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.runtime.egress import CHAINS, comment, parse_rules, run_iptables
from tests.engine.playground import playground_server
from tests.support.deployments import docker, eventually, free_port
from tests.support.engine import engine_ready
from tests.support.tenants import (
    DOCKYARD,
    clean_env,
)

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1 (run scripts/setup "
                       "as root)"),
    pytest.mark.skipif(not os.environ.get("CI") and os.geteuid() != 0,
                       reason="a playground server restricts egress with iptables: root"),
]

IMAGE = "dockyard/busybox:1"
ZONE = "prod1a.localhost"
MAX_PIDS = 64
LOG_MAX_SIZE = 64 * 1024
LOG_MAX_FILES = 2
METADATA = "169.254.169.254"
LINE = "x" * 200  # what the chatty service prints, after its line number
BUILD_TIMEOUT = 15  # seconds a build may take here (--build-timeout)
MEMORY = 1 << 30  # the account's memory limit (--max-memory's default), builds' too


# -- the host's listeners ----------------------------------------------------------------------
class Listener:
    """A TCP server on the host that answers `secret` to whoever connects, and counts them."""

    def __init__(self, host: str, secret: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.secret = secret
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            with conn:
                try:
                    conn.sendall(self.secret.encode() + b"\n")
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


# -- the server --------------------------------------------------------------------------------
@dataclass
class Server:
    url: str
    data: Path
    log: Path
    server_id: str
    token: str
    http_port: int
    host_port: int
    run: str
    alice_token: str = ""  # a second tenant (builds)
    refused: dict[str, httpx.Response] = field(default_factory=dict)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)

    def server_log(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(self.url + path, json=body, headers=self.auth, timeout=30)

    def deploy(self, project: str, services: dict[str, Any]) -> httpx.Response:
        """The raw request: a Compose project as JSON, no CLI in between."""
        return self.post(f"/v1/projects/{project}/deployments",
                         {"project": {"name": project, "services": services}})

    def finished(self, deployment: str, timeout: float = 90) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            found: dict[str, Any] = httpx.get(f"{self.url}/v1/deployments/{deployment}",
                                              headers=self.auth, timeout=10).json()
            return found if found.get("status") not in (None, "running", "pending") else None

        return eventually(done, f"deployment {deployment} to finish", timeout=timeout)

    def finished_as(self, deployment: str, token: str, timeout: float = 90) -> dict[str, Any]:
        """`finished`, as the account of `token`."""
        own = self.token
        self.token = token
        try:
            return self.finished(deployment, timeout)
        finally:
            self.token = own


def project_containers(project: str) -> list[dict[str, Any]]:
    ids = docker("ps", "-aq", "--filter", "label=dockyard.account=bob",
                 "--filter", f"label=dockyard.project={project}").stdout.split()
    found: list[dict[str, Any]] = json.loads(docker("inspect", *ids).stdout) if ids else []
    return found


def the_container(project: str, service: str) -> dict[str, Any]:
    found = [c for c in project_containers(project)
             if c["Config"]["Labels"].get("dockyard.service") == service]
    assert len(found) == 1, f"{project}/{service}: {len(found)} containers"
    return found[0]


def our_rules(server_id: str) -> list[str]:
    return [f"{rule.chain} {rule.bridge}" for chain in CHAINS
            for rule in parse_rules(chain, run_iptables(["-S", chain]), server_id)]


def server_options(host_port: int) -> list[str]:
    return ["--http-port", "0", "--https-port", "0", "--ingress-host", "127.0.0.1",
            "--max-projects", "6", "--build-timeout", str(BUILD_TIMEOUT),
            "--max-pids", str(MAX_PIDS), "--log-max-size", "64k",
            "--log-max-files", str(LOG_MAX_FILES),
            "--allow-host-ports", f"bob={host_port}-{host_port}",
            "--allow-image", "dockyard/busybox:*"]


LOGS_PROJECT = {
    # As fast as it can, and asking for a log far larger than the server allows.
    "chatty": {"image": IMAGE, "stop_grace_period": "1s",
               "command": ["sh", "-c", f"i=0; while :; do i=$$((i+1)); echo $$i {LINE}; done"],
               "logging": {"driver": "json-file", "options": {"max-size": "1g",
                                                              "max-file": "50"}},
               "deploy": {"resources": {"limits": {"cpus": "0.5"}}}},
    # A smaller log than the server's: honoured.
    "small": {"image": IMAGE, "command": ["sleep", "3600"], "stop_grace_period": "1s",
              "logging": {"options": {"max-size": "16k"}}},
    # The fork bomb; when fork fails the outer shell needs no fork to keep the container up.
    "bomb": {"image": IMAGE, "stop_grace_period": "1s",
             "command": ["sh", "-c", "sh -c 'while :; do sleep 100 & done'; exec sleep 3600"],
             "deploy": {"resources": {"limits": {"cpus": "0.25"}}}},
}


def egress_project(host_port: int) -> dict[str, Any]:
    return {
        "db": {"image": IMAGE, "command": ["nc", "-ll", "-p", "5432", "-e", "echo", "db-of-bob"],
               "stop_grace_period": "1s"},
        "web": {"image": IMAGE, "stop_grace_period": "1s",
                "command": ["sh", "-c", "mkdir -p /www && echo web-of-bob > /www/index.html "
                            "&& exec httpd -f -p 8080 -h /www"],
                "ports": ["8080", {"target": 8080, "published": str(host_port),
                                   "mode": "host"}]},
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("containment")
    host_port = free_port()
    with playground_server(root, *server_options(host_port),
                           accounts=("bob", "alice")) as running:
        state = json.loads((running.data / "server.json").read_text())
        srv = Server(url=running.url, data=running.data, log=running.log,
                     server_id=running.server_id, token=running.tokens["bob"],
                     http_port=int(state["http_port"]), host_port=host_port,
                     run=uuid.uuid4().hex[:6], alice_token=running.tokens["alice"])
        for name, services in (("logs", LOGS_PROJECT),
                               ("egress", egress_project(host_port))):
            project = f"ct-{srv.run}-{name}"
            answer = srv.deploy(project, services)
            assert answer.status_code == 202, f"{name}: {answer.text}"
            srv.deployments[name] = srv.finished(answer.json()["deployment"])
            srv.deployments[name]["project"] = project
        yield srv


def deployed(srv: Server, name: str) -> str:
    record = srv.deployments[name]
    assert record["status"] == "succeeded", f"{record}\n--- server log\n{srv.server_log()}"
    return str(record["project"])


# -- logs --------------------------------------------------------------------------------------
def test_a_chatty_service_is_rotated_at_the_servers_bound(server: Server) -> None:
    project = deployed(server, "logs")
    chatty = the_container(project, "chatty")
    config = chatty["HostConfig"]["LogConfig"]
    assert config == {"Type": "json-file", "Config": {"max-size": str(LOG_MAX_SIZE),
                                                      "max-file": str(LOG_MAX_FILES)}}
    small = the_container(project, "small")["HostConfig"]["LogConfig"]
    assert small["Config"]["max-size"] == str(16 * 1024)  # smaller than the server's: honoured
    path = Path(chatty["LogPath"])
    eventually(lambda: Path(f"{path}.1").exists(), "the chatty log to be rotated")

    def written() -> int:
        """Bytes printed so far, from the last line's number ($$ is Compose's escaped $)."""
        try:
            text = path.read_text(errors="replace")
        except FileNotFoundError:
            return 0  # caught between json-file's rename and its new file: ask again
        for line in reversed(text.splitlines()):
            try:
                return int(json.loads(line)["log"].split()[0]) * (len(LINE) + 2)
            except (ValueError, KeyError, IndexError):
                continue  # the line being written
        return 0

    # It keeps writing: far more than the bound, and the files stay within it.
    eventually(lambda: written() > 20 * LOG_MAX_SIZE * LOG_MAX_FILES,
               "the chatty service to print 20 times the log bound")
    sizes = eventually(lambda: log_sizes(path), "the log files to hold still while listed")
    slack = 4096  # json-file rotates once a write has passed max-size: one line over at most
    assert len(sizes) <= LOG_MAX_FILES, sizes
    assert all(size <= LOG_MAX_SIZE + slack for size in sizes.values()), sizes
    assert sum(sizes.values()) <= LOG_MAX_SIZE * LOG_MAX_FILES + slack, sizes


def log_sizes(path: Path) -> dict[str, int] | None:
    """Each of a container's log files and its size; None when one rotated away while listed."""
    try:
        return {f.name: f.stat().st_size for f in sorted(path.parent.glob(path.name + "*"))}
    except FileNotFoundError:
        return None


# -- processes ---------------------------------------------------------------------------------
def pids_of(container: dict[str, Any]) -> tuple[int, str]:
    """(processes now, the cgroup's pids.max), from the container's cgroup on the host."""
    cid = str(container["Id"])
    for directory in (f"/sys/fs/cgroup/pids/docker/{cid}",  # cgroup v1, cgroupfs
                      f"/sys/fs/cgroup/pids/system.slice/docker-{cid}.scope",
                      f"/sys/fs/cgroup/system.slice/docker-{cid}.scope",  # v2, systemd
                      f"/sys/fs/cgroup/docker/{cid}"):  # v2, cgroupfs
        base = Path(directory)
        if (base / "pids.max").exists():
            return (int((base / "pids.current").read_text()),
                    (base / "pids.max").read_text().strip())
    raise AssertionError(f"no pids cgroup found for {cid}")


def test_a_fork_bomb_stops_at_the_pids_limit(server: Server) -> None:
    project = deployed(server, "logs")
    bomb = the_container(project, "bomb")
    assert bomb["HostConfig"]["PidsLimit"] == MAX_PIDS
    assert pids_of(bomb)[1] == str(MAX_PIDS)
    # It forks until the cgroup refuses, and never past it.
    eventually(lambda: pids_of(bomb)[0] >= MAX_PIDS - 2, "the fork bomb to reach the limit")
    for _ in range(5):
        assert pids_of(bomb)[0] <= MAX_PIDS
    assert httpx.get(server.url + "/v1/health", timeout=5).status_code == 200
    # Every other service got the same limit (none asked for one).
    chatty = the_container(project, "chatty")
    assert chatty["HostConfig"]["PidsLimit"] == MAX_PIDS


# -- refused before anything starts ------------------------------------------------------------
def refused(srv: Server, name: str, service: dict[str, Any]) -> list[dict[str, Any]]:
    project = f"ct-{srv.run}-{name}"
    answer = srv.deploy(project, {"x": {"image": IMAGE, "command": ["sleep", "60"], **service}})
    assert answer.status_code == 422, f"{name}: {answer.status_code} {answer.text}"
    assert project_containers(project) == []
    diagnostics: list[dict[str, Any]] = answer.json()["diagnostics"]
    assert all(d["hint"] for d in diagnostics), diagnostics
    return diagnostics


def codes(diagnostics: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(str(d["code"]), str(d["path"])) for d in diagnostics}


def test_pids_over_the_limit_or_unlimited_are_refused(server: Server) -> None:
    path = "services.x.deploy.resources.limits.pids"
    for name, pids in (("pids-high", 100000), ("pids-unlimited", -1)):
        found = refused(server, name, {"deploy": {"resources": {"limits": {"pids": pids}}}})
        assert codes(found) == {("limit-exceeded", path)}, found
    negative = refused(server, "pids-negative",
                       {"deploy": {"resources": {"limits": {"pids": -5}}}})
    assert {path} == {d["path"] for d in negative}, negative


def test_a_logging_driver_the_engine_cannot_read_back_is_refused(server: Server) -> None:
    found = refused(server, "syslog", {"logging": {
        "driver": "syslog", "options": {"syslog-address": "udp://203.0.113.1:514"}}})
    assert codes(found) == {("logging-driver", "services.x.logging.driver")}, found


def test_host_ports_outside_the_accounts_range_are_refused(server: Server) -> None:
    low = server.host_port
    found = refused(server, "ports", {"ports": [
        {"target": 80, "published": "81", "mode": "host"},
        {"target": 90, "published": f"{low}-{low + 99}", "mode": "host"},
        {"target": 53, "published": str(low + 1), "protocol": "udp"}]})
    assert codes(found) == {("host-port-refused", f"services.x.ports[{i}]") for i in range(3)}
    messages = " ".join(d["message"] for d in found)
    assert "'x'" in messages and "81" in messages and f"{low}-{low + 99}" in messages


def test_the_allowed_host_port_is_published(server: Server) -> None:
    deployed(server, "egress")
    answer = httpx.get(f"http://127.0.0.1:{server.host_port}/", timeout=10)
    assert answer.status_code == 200 and "web-of-bob" in answer.text, answer.text


# -- egress ------------------------------------------------------------------------------------
class MetadataService:
    """A listener on 169.254.169.254:80 in a network namespace of its own, routed from the host
    through a veth pair: where a cloud's metadata service is (the FORWARD path)."""

    SCRIPT = """
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((sys.argv[1], 80))
server.listen(16)
print("ready", flush=True)
while True:
    conn, _ = server.accept()
    with open(sys.argv[3], "a") as seen:
        seen.write("connection\\n")
    conn.sendall(sys.argv[2].encode() + b"\\n")
    conn.close()
"""

    def __init__(self, name: str, secret: str, seen: Path) -> None:
        self.namespace, self.secret, self.seen, self.port = name, secret, seen, 80
        self.host_side, inside = f"{name}h", f"{name}n"
        for command in (["ip", "netns", "add", name],
                        ["ip", "link", "add", self.host_side, "type", "veth", "peer", "name",
                         inside],
                        ["ip", "link", "set", inside, "netns", name],
                        ["ip", "addr", "add", "169.254.169.1/24", "dev", self.host_side],
                        ["ip", "link", "set", self.host_side, "up"],
                        ["ip", "netns", "exec", name, "ip", "addr", "add",
                         f"{METADATA}/24", "dev", inside],
                        ["ip", "netns", "exec", name, "ip", "link", "set", inside, "up"]):
            subprocess.run(command, check=True, capture_output=True)
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", name, sys.executable, "-c", self.SCRIPT, METADATA, secret,
             str(seen)], stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"

    @property
    def accepted(self) -> int:
        return len(self.seen.read_text().splitlines()) if self.seen.exists() else 0

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        subprocess.run(["ip", "link", "del", self.host_side], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", self.namespace], check=False, capture_output=True)


@pytest.fixture(scope="module")
def listeners(server: Server, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[dict[str, Listener | MetadataService]]:
    """A listener on the host's 0.0.0.0, and a metadata service at 169.254.169.254."""
    host = Listener("0.0.0.0", f"host-secret-{server.run}")
    metadata: MetadataService | None = None
    try:
        metadata = MetadataService(f"dyct{server.run}", f"metadata-secret-{server.run}",
                                   tmp_path_factory.mktemp("metadata") / "seen")
        yield {"host": host, "metadata": metadata}
    finally:
        host.close()
        if metadata is not None:
            metadata.close()
        else:  # half made
            subprocess.run(["ip", "link", "del", f"dyct{server.run}h"], check=False,
                           capture_output=True)
            subprocess.run(["ip", "netns", "del", f"dyct{server.run}"], check=False,
                           capture_output=True)


def nc(container: str, host: str, port: int) -> str:
    result = docker("exec", container, "nc", "-w", "2", host, str(port), check=False,
                    timeout=30)
    return result.stdout.strip() if result.returncode == 0 else ""


def gateway_of(network: str) -> str:
    found = json.loads(docker("network", "inspect", network).stdout)[0]
    return str(found["IPAM"]["Config"][0]["Gateway"])


def lan_addresses() -> list[str]:
    """The host's own IPv4 addresses outside Docker's bridges (eth0's ...)."""
    listing = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                             capture_output=True, text=True, check=True).stdout
    return [parts[3].split("/")[0] for parts in (line.split() for line in listing.splitlines())
            if not parts[1].startswith(("br-", "docker", "veth", "dyct"))]


def test_tenant_containers_cannot_reach_the_host_nor_link_local(
        server: Server, listeners: dict[str, Listener | MetadataService]) -> None:
    project = deployed(server, "egress")
    web = the_container(project, "web")
    (network,) = web["NetworkSettings"]["Networks"]
    targets = [("host", gateway_of(network)), *(("host", a) for a in lan_addresses()),
               ("metadata", METADATA)]

    # The control: a container of a plain Docker network reaches every listener.
    plain = f"dyct-plain-{server.run}"
    docker("network", "create", "--label", f"dockyard.test=containment-{server.run}", plain)
    try:
        for kind, address in [("host", gateway_of(plain)), ("metadata", METADATA)]:
            seen = docker("run", "--rm", "--network", plain, IMAGE, "nc", "-w", "2", address,
                          str(listeners[kind].port), check=False, timeout=60).stdout.strip()
            assert seen == listeners[kind].secret, f"control {kind} at {address}: {seen!r}"
    finally:
        docker("network", "rm", plain, check=False)

    # bob's container: none of them, and none of the listeners even saw a connection.
    before = {kind: listener.accepted for kind, listener in listeners.items()}
    for kind, address in targets:
        assert nc(str(web["Id"]), address, listeners[kind].port) == "", (kind, address)
    assert {kind: listener.accepted for kind, listener in listeners.items()} == before

    # What must keep working: its own services by name, and the ingress into it.
    assert nc(str(web["Id"]), "db", 5432) == "db-of-bob"
    looked_up = docker("exec", str(web["Id"]), "nslookup", "db", check=False, timeout=30)
    assert looked_up.returncode == 0, looked_up.stdout + looked_up.stderr
    answer = httpx.get(f"http://127.0.0.1:{server.http_port}/",
                       headers={"Host": f"bob-web--8080.{ZONE}"}, timeout=10)
    assert answer.status_code == 200 and "web-of-bob" in answer.text, answer.text

    bridge = f"br-{json.loads(docker('network', 'inspect', network).stdout)[0]['Id'][:12]}"
    assert {f"DOCKER-USER {bridge}", f"INPUT {bridge}"} <= set(our_rules(server.server_id))


def test_down_removes_the_networks_rules_and_stale_ones(server: Server) -> None:
    project = deployed(server, "egress")
    (network,) = the_container(project, "web")["NetworkSettings"]["Networks"]
    bridge = f"br-{json.loads(docker('network', 'inspect', network).stdout)[0]['Id'][:12]}"
    stale = "br-0000dead0000"  # a network removed while the server was away
    run_iptables(["-I", "INPUT", "1", "-i", stale, "-m", "comment", "--comment",
                  comment(server.server_id), "-j", "DROP"])
    assert f"INPUT {stale}" in our_rules(server.server_id)
    answer = server.post(f"/v1/projects/{project}/down", {"volumes": False})
    assert answer.status_code == 202, answer.text
    server.finished(answer.json()["deployment"])
    left = our_rules(server.server_id)
    assert not [r for r in left if r.endswith((bridge, stale))], left
    # The other project's network keeps its fence.
    (other,) = the_container(deployed(server, "logs"), "bomb")["NetworkSettings"]["Networks"]
    other_bridge = f"br-{json.loads(docker('network', 'inspect', other).stdout)[0]['Id'][:12]}"
    assert f"INPUT {other_bridge}" in left and f"DOCKER-USER {other_bridge}" in left


def test_a_playground_server_that_cannot_fence_tenants_does_not_start(
        tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home", PATH=os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if "sbin" not in p))
    started = subprocess.run(
        [str(DOCKYARD), "server", "--mode", "playground", "--listen",
         f"127.0.0.1:{free_port()}", "--data", str(tmp_path / "data"), "--no-ingress"],
        env=env, capture_output=True, text=True, timeout=60, check=False)
    assert started.returncode != 0, started.stdout + started.stderr
    assert "cannot restrict tenant containers' egress: iptables is not installed" in \
        started.stderr, started.stderr
    assert "apt-get install iptables" in started.stderr and "--egress open" in started.stderr


# -- builds ------------------------------------------------------------------------------------
def build_context(dockerfile: str) -> tuple[bytes, str]:
    """A build context holding only `dockerfile`: (its tar, its digest)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    content = buffer.getvalue()
    return content, "sha256:" + hashlib.sha256(content).hexdigest()


def deploy_builds(srv: Server, project: str, dockerfiles: dict[str, str],
                  token: str | None = None) -> str:
    """Upload each service's context and deploy them as builds (raw API); the deployment id."""
    auth = {"Authorization": f"Bearer {token or srv.token}"}
    builds: dict[str, Any] = {}
    for service, dockerfile in dockerfiles.items():
        content, digest = build_context(dockerfile)
        put = httpx.put(f"{srv.url}/v1/contexts/{digest}", content=content, headers=auth,
                        timeout=30)
        assert put.status_code in (200, 201), put.text
        builds[service] = {"digest": digest}
    services = {name: {"build": {"context": "."}, "command": ["sleep", "3600"],
                       "stop_grace_period": "1s"} for name in dockerfiles}
    answer = httpx.post(f"{srv.url}/v1/projects/{project}/deployments", headers=auth,
                        json={"project": {"name": project, "services": services},
                              "builds": builds}, timeout=30)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["deployment"])


def deployment(srv: Server, deployment_id: str, token: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(
        f"{srv.url}/v1/deployments/{deployment_id}",
        headers={"Authorization": f"Bearer {token or srv.token}"}, timeout=10).json()
    return found


def states(record: dict[str, Any], service: str) -> list[tuple[str, str]]:
    return [(str(e["state"]), str(e["reason"])) for e in record["events"]
            if e["service"] == service]


def probe_dockerfile(run: str, port: int, addresses: list[str], fenced: bool) -> str:
    """A build step that connects to the host listener through its network's gateway and each
    of `addresses`, and fails if any answered; on a fenced build it also checks that names are
    resolved by Docker's embedded DNS (as in containers) and that the memory limit holds."""
    checks = ""
    if fenced:
        checks = (
            "grep -q '^nameserver 127.0.0.11' /etc/resolv.conf || "
            "{ echo 'not the embedded DNS'; cat /etc/resolv.conf; exit 3; }; "
            "limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null "
            "|| cat /sys/fs/cgroup/memory.max); "
            f"[ \"$limit\" = {MEMORY} ] || {{ echo \"memory limit $limit\"; exit 5; }}; ")
    targets = " ".join(addresses)
    return (f"FROM {IMAGE}\n"
            f"RUN echo probe-{run}-{fenced}; "
            "gw=$(ip route | awk '/^default/ {print $3}'); "
            f"for a in $gw {targets}; do out=$(nc -w 2 $a {port}); "
            "if [ -n \"$out\" ]; then echo \"reached $a: $out\"; exit 4; fi; done; "
            "echo contained\n" + (f"RUN {checks}echo checked\n" if checks else ""))


def docker0_address() -> str:
    listing = subprocess.run(["ip", "-4", "-o", "addr", "show", "docker0"], capture_output=True,
                             text=True, check=True).stdout
    return listing.split()[3].split("/")[0]


def test_a_build_step_cannot_reach_the_host(
        server: Server, listeners: dict[str, Listener | MetadataService],
        tmp_path: Path) -> None:
    host = listeners["host"]
    addresses = [docker0_address(), *lan_addresses()]
    # The control: the same probe, built as before the fix (the engine's default bridge),
    # reaches the listener, so the probe can tell.
    (tmp_path / "Dockerfile").write_text(
        probe_dockerfile(server.run, host.port, addresses, fenced=False))
    control = subprocess.run(
        ["docker", "build", "--no-cache", "--rm", "--force-rm", str(tmp_path)],
        env={**os.environ, "DOCKER_BUILDKIT": "0"}, capture_output=True, text=True,
        timeout=120, check=False)
    assert control.returncode != 0 and "reached" in control.stdout + control.stderr, control
    assert host.secret in control.stdout + control.stderr

    before = host.accepted
    project = f"ct-{server.run}-probe"
    built = server.finished(deploy_builds(server, project, {"probe": probe_dockerfile(
        server.run, host.port, addresses, fenced=True)}))
    assert built["status"] == "succeeded", states(built, "probe")
    assert host.accepted == before
    # It ran on the project's network, whose fence is in place.
    (network,) = the_container(project, "probe")["NetworkSettings"]["Networks"]
    bridge = f"br-{json.loads(docker('network', 'inspect', network).stdout)[0]['Id'][:12]}"
    assert f"INPUT {bridge}" in our_rules(server.server_id)


def test_an_accounts_second_build_waits_while_another_accounts_build_proceeds(
        server: Server) -> None:
    bob = deploy_builds(server, f"ct-{server.run}-twobuilds", {
        name: f"FROM {IMAGE}\nRUN echo {name}-{server.run} && sleep 10\n"
        for name in ("one", "two")})

    def one_of_bobs_builds_runs() -> list[str]:
        record = deployment(server, bob)
        return [s for s in ("one", "two") if ("BUILD_RUNNING", "building") in states(record, s)]

    running = eventually(one_of_bobs_builds_runs, "one of bob's builds to run")
    assert len(running) == 1, f"bob's builds ran at once: {running}"
    first = running[0]
    second = "two" if first == "one" else "one"
    alice = deploy_builds(server, f"ct-{server.run}-alice", {
        "quick": f"FROM {IMAGE}\nRUN echo quick-{server.run}\n"}, token=server.alice_token)

    def alices_image_is_built() -> bool:
        record = deployment(server, alice, server.alice_token)
        return ("UPDATE_QUEUED", "image built") in states(record, "quick")

    eventually(alices_image_is_built, "alice's build (while bob's first one runs)")
    # At that moment bob's second build has not started: it waits for his first.
    record = deployment(server, bob)
    assert record["status"] == "running", record
    waiting = states(record, second)
    assert ("BUILD_QUEUED", "waiting for this account's other build to finish (one build at "
            "a time per account)") in waiting, waiting
    assert not [s for s, _ in waiting if s == "BUILD_RUNNING"], waiting
    finished = server.finished(bob)
    assert finished["status"] == "succeeded", finished
    assert server.finished_as(alice, server.alice_token)["status"] == "succeeded"


def build_containers(marker: str) -> list[str]:
    """Containers (running or not) whose command carries `marker`: a build's step."""
    listing = docker("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Command}}").stdout
    return [line for line in listing.splitlines() if marker in line]


def test_a_build_past_the_timeout_fails_and_leaves_no_build_container(server: Server) -> None:
    marker = f"slow-{server.run}"
    # The step names another container as its own (the build's output is the tenant's): it
    # must neither be killed nor hide the real step container.
    victim = docker("run", "-d", "--rm", "--label", f"dockyard.test=containment-{server.run}",
                    IMAGE, "sleep", "300").stdout.strip()
    try:
        started = time.monotonic()
        record = server.finished(deploy_builds(server, f"ct-{server.run}-slow", {
            "slow": f"FROM {IMAGE}\nRUN echo {marker} && echo ' ---> Running in "
                    f"{victim[:12]}' && sleep 600\n"}))
        took = time.monotonic() - started
        assert docker("inspect", "-f", "{{.State.Running}}", victim).stdout.strip() == "true"
    finally:
        docker("rm", "-f", victim, check=False)
    assert record["status"] == "failed", record
    failed = [reason for state, reason in states(record, "slow") if state == "BUILD_FAILED"]
    assert len(failed) == 1 and f"build timeout ({BUILD_TIMEOUT} s) and was stopped" in \
        failed[0], failed
    assert "RUN echo " + marker in failed[0]
    assert took >= BUILD_TIMEOUT, took  # it ran until the bound, and no further: see below
    assert build_containers(marker) == []
    assert project_containers(f"ct-{server.run}-slow") == []
