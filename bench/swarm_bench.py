"""Dockyard's Swarm driver on a simulated 3-node Swarm, against `docker stack deploy`, one run.

    .venv/bin/python bench/swarm_bench.py [--nodes N] [--json]        (as root)

`scripts/cluster up N` first, `down` at the end (also after a failure). Measured:
- **up**: `examples/shop` with its images built and in the cluster's registry, no service
  running: `dockyard compose up` (the server started with `--driver swarm`; it returns when
  every service is SERVICE_DEPLOYMENT_COMPLETED) against `docker stack deploy` of the same
  project (the same images by digest, `endpoint_mode: dnsrr`, host-mode ports, the database on
  the manager) plus waiting until every task runs (and is healthy: Swarm holds a task in
  `starting` until its check passes) and the job completed. Goal (issue 15): within 1.3x.
- **node loss**: a worker running an API replica is killed (`scripts/cluster kill`); the time
  until every service is COMPLETED again, and the requests through the ingress that failed
  meanwhile (a client asking the API every 20 ms).
- **rolling update**: the web front replaced (a changed environment value) while a client asks
  it the same way; the requests that failed (one replica: with no other replica to serve
  meanwhile, the start-first replacement alone keeps it answering).
Timings are never asserted in tests; this prints them, and the ratio dockyard/stack.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCKYARD = Path(sys.executable).parent / "dockyard"
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
CLUSTER = ROOT / "scripts" / "cluster"
OURS, THEIRS = "dyswarm", "stswarm"


def sh(*args: str, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


class Bench:
    def __init__(self, work: Path, nodes: int) -> None:
        self.work = work
        self.nodes = nodes
        env = dict(line.split("=", 1) for line in sh(str(CLUSTER), "env").split())
        self.host = env["DOCKYARD_CLUSTER_HOST"]
        self.registry = env["DOCKYARD_CLUSTER_REGISTRY"]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env.update(DOCKYARD_HOME=str(work / "home"), DOCKYARD_USER="bench",
                        DOCKER_HOST=self.host, DOCKYARD_DRIVER="swarm",
                        DOCKYARD_REGISTRY=self.registry, DOCKYARD_HTTP_PORT="0",
                        DOCKYARD_HTTPS_PORT="0", DOCKYARD_INGRESS_HOST="127.0.0.1",
                        DOCKYARD_DEPLOY_TIMEOUT="180", NO_COLOR="1")
        self.shop = work / "shop"
        shutil.copytree(ROOT / "examples" / "shop", self.shop)

    def dy(self, *args: str, timeout: float = 900) -> str:
        return sh(str(DOCKYARD), *args, timeout=timeout, env=self.env)

    def docker(self, *args: str, timeout: float = 600) -> str:
        return sh(DOCKER, "-H", self.host, *args, timeout=timeout)

    def ps(self) -> dict[str, dict[str, Any]]:
        rows = json.loads(self.dy("compose", "ps", "--json", "-p", OURS))
        return {str(r["service"]): r for r in rows}

    # -- up ----------------------------------------------------------------------------------
    def dockyard_up(self) -> float:
        self.dy("compose", "up", "-C", str(self.shop), "-p", OURS)  # builds and pushes
        self.dy("compose", "down", "-p", OURS)
        start = time.perf_counter()
        self.dy("compose", "up", "-C", str(self.shop), "-p", OURS)
        return time.perf_counter() - start

    def stack_file(self) -> Path:
        images = {}
        for name in ("web", "api", "db"):
            ref = f"{self.registry}/stack/{name}:1"
            self.docker("build", "-q", "-t", ref, str(self.shop / name))
            self.docker("push", ref)
            digest = self.docker("image", "inspect", "--format", "{{index .RepoDigests 0}}",
                                 ref).strip()
            images[name] = digest
        check = {"interval": "5s", "timeout": "3s", "retries": 5}
        service: dict[str, Any] = {"deploy": {"endpoint_mode": "dnsrr"}, "networks": ["n"],
                                   "stop_grace_period": "1s"}
        stack = {"version": "3.9", "networks": {"n": {"driver": "overlay"}},
                 "volumes": {"data": {}}, "services": {
            "web": {**service, "image": images["web"],
                    "ports": [{"target": 8080, "published": 8080, "mode": "host"}],
                    "environment": {"API_URL": "http://api:8000"},
                    "healthcheck": {"test": ["CMD", "wget", "-q", "-O-",
                                             "http://127.0.0.1:8080/"], **check}},
            "api": {**service, "image": images["api"],
                    "deploy": {"endpoint_mode": "dnsrr", "replicas": 2,
                               "resources": {"limits": {"cpus": "0.5", "memory": "128M"}}},
                    "ports": [{"target": 8000, "published": 8000, "mode": "host"}],
                    "environment": {"DATABASE_HOST": "db", "DATABASE_NAME": "shop"},
                    "healthcheck": {"test": ["CMD-SHELL", "nc -w 2 db 5432 </dev/null | grep "
                                             "-q ok && wget -q -O- http://127.0.0.1:8000/health"],
                                    **check}},
            "db": {**service, "image": images["db"], "volumes": ["data:/var/lib/db"],
                   "deploy": {"endpoint_mode": "dnsrr",
                              "placement": {"constraints": ["node.role==manager"]}},
                   "healthcheck": {"test": ["CMD-SHELL", "nc -w 2 127.0.0.1 5432 </dev/null "
                                            "| grep -q ok"], "interval": "2s", "retries": 10}},
            "migrate": {**service, "image": images["db"],
                        "command": ["sh", "-c", "echo migrating; sleep 1; echo done"],
                        "deploy": {"endpoint_mode": "dnsrr",
                                   "restart_policy": {"condition": "none"}}},
            "metrics": {**service, "image": images["web"],
                        "command": ["httpd", "-f", "-p", "9100", "-h", "/www"],
                        "ports": [{"target": 9100, "published": 9100, "mode": "host"}]},
        }}
        path = self.work / "stack.json"
        path.write_text(json.dumps(stack))
        return path

    def stack_up(self, stack: Path) -> float:
        start = time.perf_counter()
        self.docker("stack", "deploy", "--resolve-image", "never", "-c", str(stack), THEIRS)
        wanted = {"web": 1, "api": 2, "db": 1, "metrics": 1}
        while True:
            states = self.docker("stack", "ps", THEIRS, "--filter", "desired-state=running",
                                 "--format", "{{.Name}} {{.CurrentState}}").splitlines()
            done = self.docker("stack", "ps", THEIRS, "--format",
                               "{{.Name}} {{.CurrentState}}").splitlines()
            running: dict[str, int] = {}
            for line in states:
                name, state = line.split(" ", 1)
                if state.startswith("Running"):
                    service = name.split(".")[0].removeprefix(f"{THEIRS}_")
                    running[service] = running.get(service, 0) + 1
            migrated = any(line.startswith(f"{THEIRS}_migrate.") and "Complete" in line
                           for line in done)
            if all(running.get(s, 0) >= n for s, n in wanted.items()) and migrated:
                return time.perf_counter() - start
            if time.perf_counter() - start > 600:
                raise SystemExit("the stack did not come up within 600 s")
            time.sleep(0.2)

    # -- requests through the ingress -----------------------------------------------------------
    def load(self, service: str, stop: threading.Event, counts: dict[str, int]) -> None:
        endpoint = self.ps()[service]["endpoint"]
        host, port = endpoint.removeprefix("https://").rsplit(":", 1)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        while not stop.is_set():
            try:
                sock = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
                with context.wrap_socket(sock, server_hostname=host) as tls:
                    tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n"
                                "Connection: close\r\n\r\n".encode())
                    response = http.client.HTTPResponse(tls)
                    response.begin()
                    ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
            counts["ok" if ok else "failed"] += 1
            time.sleep(0.02)

    def under_load(self, service: str, action: Any) -> tuple[Any, dict[str, int]]:
        stop = threading.Event()
        counts = {"ok": 0, "failed": 0}
        thread = threading.Thread(target=self.load, args=(service, stop, counts), daemon=True)
        thread.start()
        time.sleep(1)
        try:
            result = action()
        finally:
            time.sleep(1)
            stop.set()
            thread.join()
        return result, counts

    def node_loss(self) -> float:
        victim = next(n for n in sorted(self.ps()["api"]["nodes"], reverse=True) if n != "n1")
        sh(str(CLUSTER), "kill", victim)
        start = time.perf_counter()
        seen_pending = False
        while True:
            rows = self.ps()
            states = {r["state"] for r in rows.values()}
            seen_pending = seen_pending or states != {"SERVICE_DEPLOYMENT_COMPLETED"}
            if seen_pending and states == {"SERVICE_DEPLOYMENT_COMPLETED"} \
                    and rows["api"]["running"] == 2:
                elapsed = time.perf_counter() - start
                sh(str(CLUSTER), "start", victim)
                return elapsed
            if time.perf_counter() - start > 300:
                raise SystemExit("the services did not come back within 300 s")
            time.sleep(0.2)

    def rolling_update(self) -> float:
        compose = self.shop / "compose.yaml"
        compose.write_text(compose.read_text().replace(
            "      API_URL: http://api:8000\n",
            "      API_URL: http://api:8000\n      RELEASE: two\n"))
        start = time.perf_counter()
        self.dy("compose", "up", "-C", str(self.shop), "-p", OURS)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("scripts/cluster needs root")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="swarm-bench-") as tmp:
        sh(str(CLUSTER), "up", str(options.nodes), timeout=300)
        bench = Bench(Path(tmp), options.nodes)
        try:
            stack = bench.stack_file()
            results["stack_up_s"] = bench.stack_up(stack)
            bench.docker("stack", "rm", THEIRS)
            time.sleep(10)  # the stack's tasks leave their nodes' ports
            results["dockyard_up_s"] = bench.dockyard_up()
            results["up_ratio"] = results["dockyard_up_s"] / results["stack_up_s"]
            elapsed, counts = bench.under_load("web", bench.rolling_update)
            results["rolling_update_s"] = elapsed
            results["rolling_update_failed_requests"] = counts["failed"]
            results["rolling_update_requests"] = counts["ok"] + counts["failed"]
            elapsed, counts = bench.under_load("api", bench.node_loss)
            results["node_loss_recovery_s"] = elapsed
            results["node_loss_failed_requests"] = counts["failed"]
            results["node_loss_requests"] = counts["ok"] + counts["failed"]
        finally:
            subprocess.run([str(DOCKYARD), "compose", "down", "--volumes", "-p", OURS],
                           env=bench.env, capture_output=True, timeout=300, check=False)
            server = Path(tmp) / "home" / "data" / "server" / "server.json"
            if server.exists():
                try:
                    os.kill(int(json.loads(server.read_text())["pid"]), 15)
                except (OSError, ValueError, KeyError):
                    pass
            subprocess.run([str(CLUSTER), "down"], capture_output=True, timeout=300,
                           check=False)
    if options.json:
        print(json.dumps(results, indent=2))
        return
    print(f"up, 3 nodes: dockyard {results['dockyard_up_s']:.1f} s, docker stack deploy + "
          f"wait {results['stack_up_s']:.1f} s, ratio {results['up_ratio']:.2f} (goal 1.3)")
    print(f"rolling update: {results['rolling_update_failed_requests']} of "
          f"{results['rolling_update_requests']} requests failed "
          f"({results['rolling_update_s']:.1f} s)")
    print(f"node loss: every service COMPLETED again after {results['node_loss_recovery_s']:.1f} "
          f"s; {results['node_loss_failed_requests']} of {results['node_loss_requests']} "
          "requests failed")


if __name__ == "__main__":
    main()
