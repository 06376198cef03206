"""Measure the ingress (HAProxy): redeploys under load, and throughput and p99 beside direct.

    .venv/bin/python bench/ingress_bench.py [--redeploys N] [--duration S] [--runs N]
                                            [--threads N] [--connections N] [--no-drain]
                                            [--ab] [--logs DIR] [--json]

A generated project in a temp dir: one public service `web` built from the local base image
`dockyard/busybox:1`, busybox httpd serving a small static page on 8080, a Compose healthcheck
every second, `stop_grace_period: 1s`. Requests go to the ingress at 127.0.0.1:<http_port> with
the service's domain in the Host header (`web--8080.<project>.bench.localhost`, byoc mode).
- **redeploys under load**: 2 replicas; `wrk --latency` runs against the domain while the page
  is changed and `dockyard compose up` redeploys it `--redeploys` times (a new image each time,
  so a start-first replacement; every `up` must exit 0); wrk is stopped (SIGINT: it prints its
  results) once the last `up` returned. Reported: requests, socket errors (connect, read, write,
  timeout), non-2xx or 3xx responses, the `up` durations, and whether the last version is what
  is served. wrk counts a keep-alive connection the server closes as a read error, so when wrk
  reports any socket error (or with `--ab`) the same redeploys are run again under `ab -k`,
  and both results are printed.
- **through the ingress against direct**: the service scaled to 1 replica (so both measures
  reach the same single container), then `wrk` for `--duration` seconds against the ingress
  and directly against the container's IP:8080, in pairs (ingress, then direct) `--runs` times
  after an untimed warm-up; medians of requests/s and of the 99th percentile. Before each pair
  the run waits (at most 75 s) until the TIME_WAIT sockets towards the replica have drained
  (`--no-drain` skips it), see below.
Goals (issue 4): 0 failed requests and 0 non-2xx during redeploys; throughput through the
ingress at least 0.8 of direct; p99 added by the ingress under 1 ms.

Dockyard runs with a temporary `DOCKYARD_HOME` (account `bench`); its local server is started
by the first (untimed) CLI command with the ingress on 127.0.0.1 and free ports (read back from
`data/server/server.json`), and is stopped at the end. The project name is unique per run, and
only what it created (containers, network, images) is removed at the end, also after a
failure. The package is byte-compiled first and PYTHONDONTWRITEBYTECODE is removed from the
children's environment. wrk, HAProxy, the containers and the server share the machine's CPUs:
keep `--threads` and `--connections` moderate on a small machine.

Why 8 connections: busybox httpd forks a process per connection, closes every connection after
its response, and listens with a queue of 9 (`listen(fd, 9)`). Beyond about 9 connections at
once the queue overflows, the kernel drops the SYN and the client retries it 1 s later. wrk
starts a request's clock once it is connected, so direct to the container those seconds are
invisible in its latency; through the ingress, wrk keeps its connections to HAProxy open and
HAProxy's connection to the replica is inside each request, so the same drops show as a p99 of
about 1 s. The steady part reports the replica's listen-queue drops (ListenOverflows) to show
whether that happened.

Why the drain: busybox closes every connection, so each request is a new connection from this
machine to the replica. wrk closes its end first and leaves a socket in TIME_WAIT (60 s) for
every request; HAProxy's connections leave none (observed). Once about 14,000 of them point at
the one replica address, the kernel's search for a free source port in connect() takes most of
the CPU (`__inet_hash_connect`, `__inet_check_established`) and both paths fall from about
3,000 to about 400 requests/s, so a run would measure the previous run's leftovers. Hence
pairs that start drained, ingress first (it leaves nothing for the direct run), and short runs
(5 s: wrk reaches the cliff after about 8 s at 3,000 requests/s); each run prints the count
before and after.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCKYARD = Path(sys.executable).parent / "dockyard"
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
AB = shutil.which("ab") or "/usr/bin/ab"
ACCOUNT = "bench"
PROJECT = f"ingbench-{secrets.token_hex(3)}"  # unique: the engine may be shared
SERVICE = "web"
PORT = 8080
LOAD_CAP_SECONDS = 900  # the background load's own limit; it is stopped long before
AB_REQUESTS = 3_000_000  # ab sizes an array by -n (32 bytes a request)
DRAIN_BELOW = 500  # TIME_WAIT sockets towards the replica before a steady pair starts
DRAIN_TIMEOUT = 75.0  # seconds; TIME_WAIT lasts 60 s on Linux

COMPOSE = """\
name: {project}
services:
  web:
    build: ./web
    ports:
      - "{port}"
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:{port}/"]
      interval: 1s
      timeout: 2s
      retries: 3
    deploy:
      replicas: {replicas}
    stop_grace_period: 1s
"""

DOCKERFILE = f"""\
FROM dockyard/busybox:1
COPY index.html /www/index.html
EXPOSE {PORT}
CMD ["httpd", "-f", "-p", "{PORT}", "-h", "/www"]
"""


def page(version: int) -> str:
    """The page of `version`: every version has the same length (ab checks lengths)."""
    return f"<p>dockyard ingress bench, version {version:03d}</p>\n"


def write_project(directory: Path, version: int, replicas: int) -> None:
    (directory / "web").mkdir(parents=True, exist_ok=True)
    (directory / "compose.yaml").write_text(
        COMPOSE.format(project=PROJECT, port=PORT, replicas=replicas))
    (directory / "web" / "Dockerfile").write_text(DOCKERFILE)
    (directory / "web" / "index.html").write_text(page(version))


def child_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COMPOSE_", "DOCKYARD_")) and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(DOCKYARD_HOME=str(home), DOCKYARD_USER=ACCOUNT, DOCKYARD_INGRESS_HOST="127.0.0.1",
               DOCKYARD_HTTP_PORT="0", DOCKYARD_HTTPS_PORT="0",
               DOCKER_HOST="unix:///var/run/docker.sock")
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr}")
    return elapsed


def dockyard(project: Path, env: dict[str, str], *args: str) -> float:
    return run([str(DOCKYARD), "compose", *args, "-p", PROJECT], project, env)


def docker_lines(*args: str) -> list[str]:
    out = subprocess.run([DOCKER, *args], capture_output=True, text=True).stdout
    return [line for line in out.split() if line]


def ours() -> list[str]:
    """`--filter` arguments selecting what this run's project created, and nothing else."""
    return ["--filter", f"label=dockyard.account={ACCOUNT}",
            "--filter", f"label=dockyard.project={PROJECT}"]


def remove_images(repository_prefix: str) -> None:
    refs = [f"{repo}:{tag}" for repo, tag in
            (line.split("\t") for line in subprocess.run(
                [DOCKER, "images", "--format", "{{.Repository}}\t{{.Tag}}"],
                capture_output=True, text=True).stdout.splitlines() if "\t" in line)
            if repo.startswith(repository_prefix)]
    if refs:
        subprocess.run([DOCKER, "rmi", "-f", *refs], capture_output=True)


def server_state(home: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((home / "data" / "server" / "server.json").read_text())
    return state


def get(port: int, host: str, address: str = "127.0.0.1") -> tuple[int, str]:
    connection = http.client.HTTPConnection(address, port, timeout=5.0)
    try:
        connection.request("GET", "/", headers={"Host": host, "Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def served_versions(port: int, host: str, address: str = "127.0.0.1",
                    tries: int = 10) -> list[tuple[int, str]]:
    """(status, body) of `tries` requests: several, so every replica answers at least once."""
    return [get(port, host, address) for _ in range(tries)]


# -- load generators ---------------------------------------------------------------------------
class Load:
    """A load generator running in the background until stopped; SIGINT makes wrk and ab stop
    and print their results."""

    def __init__(self, cmd: list[str]) -> None:
        self.cmd = cmd
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, text=True)
        self.started = time.perf_counter()

    def stop(self) -> tuple[str, float]:
        """The load's output, and how long it ran."""
        if self.process.poll() is not None:
            out = self.process.communicate()[0]
            raise RuntimeError(f"the load ended before it was stopped: {' '.join(self.cmd)}"
                               f"\n{out}")
        self.process.send_signal(signal.SIGINT)
        out = self.process.communicate(timeout=60)[0]
        return out, time.perf_counter() - self.started

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def wrk_cmd(url: str, host: str, threads: int, connections: int, seconds: int) -> list[str]:
    return [WRK, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
            "-H", f"Host: {host}", url]


def ab_cmd(url: str, host: str, connections: int) -> list[str]:
    return [AB, "-k", "-q", "-c", str(connections), "-t", str(LOAD_CAP_SECONDS),
            "-n", str(AB_REQUESTS), "-H", f"Host: {host}", url]


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds_of(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    """Requests, requests/s, p99 (seconds), socket errors and non-2xx-or-3xx of wrk's output."""
    requests = re.search(r"^\s*(\d+) requests in ([\d.]+\w+)", out, re.M)
    rate = re.search(r"^Requests/sec:\s*([\d.]+)", out, re.M)
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.M)
    if requests is None or rate is None or p99 is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    errors = dict.fromkeys(("connect", "read", "write", "timeout"), 0)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                              r"timeout (\d+)", out)
    if socket_errors is not None:
        errors = dict(zip(errors, map(int, socket_errors.groups()), strict=True))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": int(requests.group(1)), "seconds": seconds_of(requests.group(2)),
            "rps": float(rate.group(1)), "p99_s": seconds_of(p99.group(1)),
            "errors": errors, "failed": sum(errors.values()),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0}


def parse_ab(out: str) -> dict[str, Any]:
    """Requests, failures (by kind), non-2xx and keep-alive requests of ab's output."""
    complete = re.search(r"^Complete requests:\s*(\d+)", out, re.M)
    failed = re.search(r"^Failed requests:\s*(\d+)", out, re.M)
    rate = re.search(r"^Requests per second:\s*([\d.]+)", out, re.M)
    p99 = re.search(r"^\s*99%\s+(\d+)", out, re.M)  # whole milliseconds
    if complete is None or failed is None or rate is None or p99 is None:
        raise RuntimeError(f"unexpected ab output:\n{out}")
    kinds = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)",
                      out)
    errors = dict.fromkeys(("connect", "receive", "length", "exceptions"), 0)
    if kinds is not None:
        errors = dict(zip(errors, map(int, kinds.groups()), strict=True))
    non2xx = re.search(r"^Non-2xx responses:\s*(\d+)", out, re.M)
    keep_alive = re.search(r"^Keep-Alive requests:\s*(\d+)", out, re.M)
    return {"requests": int(complete.group(1)), "rps": float(rate.group(1)),
            "p99_s": int(p99.group(1)) / 1000,
            "errors": errors, "failed": int(failed.group(1)),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "keep_alive": int(keep_alive.group(1)) if keep_alive else 0}


# -- the two parts ---------------------------------------------------------------------------
def redeploys_under(load_cmd: list[str], project: Path, env: dict[str, str], first: int,
                    count: int) -> tuple[str, float, list[float]]:
    """Versions first..first+count-1 deployed while `load_cmd` runs: (its output, how long it
    ran, each `up`'s duration)."""
    durations: list[float] = []
    load = Load(load_cmd)
    try:
        time.sleep(1.0)  # the load is going before the first change
        for version in range(first, first + count):
            (project / "web" / "index.html").write_text(page(version))
            durations.append(dockyard(project, env, "up"))
        time.sleep(1.0)
        out, elapsed = load.stop()
    finally:
        load.kill()
    return out, elapsed, durations


def the_replica() -> tuple[str, str]:
    """(id, IP address) of the project's one running replica."""
    ids = docker_lines("ps", "-q", *ours(), "--filter", f"label=dockyard.service={SERVICE}",
                       "--filter", "status=running")
    if len(ids) != 1:
        raise RuntimeError(f"expected 1 running replica after scaling to 1, found {len(ids)}")
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"
    addresses = docker_lines("inspect", "-f", fmt, ids[0])
    if not addresses:
        raise RuntimeError(f"container {ids[0]} has no IP address")
    return ids[0], addresses[0]


def listen_overflows(container: str) -> int:
    """The kernel's count of connections dropped because the listen queue was full, in the
    container's network namespace (TcpExt ListenOverflows of /proc/net/netstat)."""
    out = subprocess.run([DOCKER, "exec", container, "cat", "/proc/net/netstat"],
                         capture_output=True, text=True).stdout.splitlines()
    for names, values in zip(out[::2], out[1::2], strict=False):
        if names.startswith("TcpExt:"):
            fields = dict(zip(names.split(), values.split(), strict=False))
            return int(fields.get("ListenOverflows", 0))
    return 0


def time_wait_to(address: str, port: int) -> int:
    """TCP sockets of this machine in TIME_WAIT towards `address`:`port` (/proc/net/tcp)."""
    raw = socket.inet_aton(address)
    if sys.byteorder == "little":
        raw = raw[::-1]
    target = f"{raw.hex().upper()}:{port:04X}"
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return 0
    return sum(1 for line in lines
               if (fields := line.split())[3] == "06" and fields[2] == target)


def drain(address: str, port: int, below: int = DRAIN_BELOW,
          timeout: float = DRAIN_TIMEOUT) -> float:
    """Wait until fewer than `below` sockets are in TIME_WAIT towards the replica (they last
    60 s), at most `timeout` seconds; how long it waited."""
    start = time.perf_counter()
    while time_wait_to(address, port) >= below and time.perf_counter() - start < timeout:
        time.sleep(1.0)
    return time.perf_counter() - start


def stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": statistics.median(ordered), "min": ordered[0], "max": ordered[-1],
            "runs": len(ordered)}


def stop_server(home: Path) -> None:
    info = home / "data" / "server" / "server.json"
    try:
        pid = int(json.loads(info.read_text())["pid"])
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError, KeyError):
        return
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except OSError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def stop_proxy(home: Path) -> None:
    """Stop the server's HAProxy if it outlived the server (killed, not stopped): by its pid
    file, and only if that pid still runs our configuration."""
    directory = home / "data" / "server" / "ingress"
    try:
        pid = int((directory / "haproxy.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if str(directory / "haproxy.cfg").encode() in cmdline:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def keep_logs(home: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    server = home / "data" / "server"
    for log in (server / "server.log", server / "ingress" / "haproxy.log"):
        if log.exists():
            shutil.copy(log, target / log.name)


def clean_engine() -> None:
    """Remove what this run's project created: containers, network, volumes and images."""
    containers = docker_lines("ps", "-aq", *ours())
    if containers:
        subprocess.run([DOCKER, "rm", "-f", *containers], capture_output=True)
    for kind in ("network", "volume"):
        names = docker_lines(kind, "ls", "-q", *ours())
        if names:
            subprocess.run([DOCKER, kind, "rm", *names], capture_output=True)
    remove_images(f"dy-{ACCOUNT}-{PROJECT}-")


def bench(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    home, project = tmp / "home", tmp / "project"
    env = child_env(home)
    write_project(project, version=0, replicas=2)
    dockyard(project, env, "ps")  # starts the local server, untimed
    http_port = int(server_state(home)["http_port"])
    domain = f"{SERVICE}--{PORT}.{PROJECT}.{ACCOUNT}.localhost"
    ingress_url = f"http://127.0.0.1:{http_port}/"
    dockyard(project, env, "up")
    answers = served_versions(http_port, domain)
    if any(answer != (200, page(0)) for answer in answers):
        raise RuntimeError(f"the first version is not served at {domain}: {answers[:3]}")
    results: dict[str, Any] = {
        "project": PROJECT, "domain": domain, "http_port": http_port,
        "threads": args.threads, "connections": args.connections}

    results["load_average"] = {"start": os.getloadavg()[0]}

    # 1. redeploys under load
    version = 1
    out, elapsed, durations = redeploys_under(
        wrk_cmd(ingress_url, domain, args.threads, args.connections, LOAD_CAP_SECONDS),
        project, env, version, args.redeploys)
    version += args.redeploys
    wrk = parse_wrk(out) | {"load_seconds": elapsed, "output": out}
    redeploy: dict[str, Any] = {"count": args.redeploys, "wrk": wrk,
                                "up_seconds": stats(durations)}
    if args.ab or wrk["failed"]:
        out, elapsed, more = redeploys_under(ab_cmd(ingress_url, domain, args.connections),
                                             project, env, version, args.redeploys)
        version += args.redeploys
        durations += more
        redeploy["ab"] = parse_ab(out) | {"load_seconds": elapsed, "output": out}
        redeploy["up_seconds"] = stats(durations)
    last = page(version - 1)
    answers = served_versions(http_port, domain)
    redeploy["last_version_served"] = all(answer == (200, last) for answer in answers)
    redeploy["last_answers"] = sorted({f"{status} {body.strip()}" for status, body in answers})
    results["redeploys"] = redeploy

    # 2. through the ingress against direct, both to one replica
    write_project(project, version=version - 1, replicas=1)
    dockyard(project, env, "up")
    container, address = the_replica()
    if served_versions(PORT, domain, address, tries=1) != [(200, last)]:
        raise RuntimeError(f"the container at {address}:{PORT} does not answer")
    targets = {"ingress": ingress_url, "direct": f"http://{address}:{PORT}/"}
    # Warm-up through the ingress only: it reaches the same container and leaves no TIME_WAIT.
    subprocess.run(wrk_cmd(ingress_url, domain, args.threads, args.connections, 2),
                   capture_output=True, check=True)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    overflows = listen_overflows(container)
    drained: list[float] = []
    for _ in range(args.runs):
        if not args.no_drain:
            drained.append(drain(address, PORT))
        for name, url in targets.items():
            before = time_wait_to(address, PORT)
            result = subprocess.run(
                wrk_cmd(url, domain, args.threads, args.connections, args.duration),
                capture_output=True, text=True)
            runs[name].append(parse_wrk(result.stdout) | {
                "time_wait_before": before, "time_wait_after": time_wait_to(address, PORT)})
    steady: dict[str, Any] = {"duration": args.duration, "runs": args.runs,
                              "direct_address": address,
                              "listen_overflows": listen_overflows(container) - overflows,
                              "drain_seconds": drained}
    for name in targets:
        steady[name] = {"rps": stats([r["rps"] for r in runs[name]]),
                        "p99_ms": stats([r["p99_s"] * 1000 for r in runs[name]]),
                        "failed": sum(r["failed"] for r in runs[name]),
                        "non_2xx": sum(r["non_2xx"] for r in runs[name]),
                        "requests": sum(r["requests"] for r in runs[name]),
                        "samples": [{"rps": r["rps"], "p99_ms": r["p99_s"] * 1000,
                                     "time_wait_before": r["time_wait_before"],
                                     "time_wait_after": r["time_wait_after"]}
                                    for r in runs[name]]}
    steady["throughput_ratio"] = (steady["ingress"]["rps"]["median"]
                                  / steady["direct"]["rps"]["median"])
    steady["p99_added_ms"] = (steady["ingress"]["p99_ms"]["median"]
                              - steady["direct"]["p99_ms"]["median"])
    results["steady"] = steady
    results["load_average"]["end"] = os.getloadavg()[0]

    goals = {
        "redeploys_0_failed_wrk": wrk["failed"] == 0,
        "redeploys_0_non_2xx_wrk": wrk["non_2xx"] == 0,
    }
    if "ab" in redeploy:
        goals["redeploys_0_failed_ab"] = redeploy["ab"]["failed"] == 0
        goals["redeploys_0_non_2xx_ab"] = redeploy["ab"]["non_2xx"] == 0
    goals["last_version_served"] = redeploy["last_version_served"]
    goals["throughput_ratio_at_least_0.8"] = steady["throughput_ratio"] >= 0.8
    goals["p99_added_under_1ms"] = steady["p99_added_ms"] < 1.0
    results["goals"] = goals
    return results


def report(results: dict[str, Any]) -> None:
    redeploy, steady = results["redeploys"], results["steady"]
    load = f"-t{results['threads']} -c{results['connections']}"
    print(f"project {results['project']}: {results['domain']} via 127.0.0.1:"
          f"{results['http_port']}")
    print(f"\n1. {redeploy['count']} redeploys (start-first, new image each) under load, "
          f"2 replicas, through the ingress")
    print(f"{'load':<16}{'seconds':>9}{'requests':>11}{'req/s':>10}{'p99 (ms)':>10}"
          f"{'failed':>8}{'non-2xx':>9}  failures by kind")
    w = redeploy["wrk"]
    print(f"{'wrk ' + load:<16}{w['load_seconds']:>9.1f}{w['requests']:>11}{w['rps']:>10.0f}"
          f"{w['p99_s'] * 1000:>10.1f}{w['failed']:>8}{w['non_2xx']:>9}  "
          + ", ".join(f"{k} {v}" for k, v in w["errors"].items()))
    if "ab" in redeploy:
        a = redeploy["ab"]
        print(f"{'ab -k -c' + str(results['connections']):<16}{a['load_seconds']:>9.1f}"
              f"{a['requests']:>11}{a['rps']:>10.0f}{a['p99_s'] * 1000:>10.0f}{a['failed']:>8}"
              f"{a['non_2xx']:>9}  "
              + ", ".join(f"{k} {v}" for k, v in a["errors"].items())
              + f" (keep-alive requests {a['keep_alive']})")
    up = redeploy["up_seconds"]
    print(f"compose up: median {up['median']:.2f} s (min {up['min']:.2f}, max {up['max']:.2f},"
          f" {up['runs']} redeploys, each exit 0)")
    for part in ("wrk", "ab"):
        if part in redeploy and (redeploy[part]["failed"] or redeploy[part]["non_2xx"]):
            print(f"{part}'s output:\n{redeploy[part]['output'].rstrip()}")
    print(f"last version served: {'yes' if redeploy['last_version_served'] else 'NO'} "
          f"({'; '.join(redeploy['last_answers'])})")
    print(f"\n2. 1 replica, wrk {load} -d{steady['duration']}s --latency, {steady['runs']} pairs"
          f" (ingress, then direct: {steady['direct_address']}:{PORT})")
    print(f"{'target':<10}{'req/s median':>14}{'min':>9}{'max':>9}{'p99 median (ms)':>17}"
          f"{'min':>8}{'max':>8}{'failed':>8}{'non-2xx':>9}")
    for name in ("ingress", "direct"):
        s = steady[name]
        print(f"{name:<10}{s['rps']['median']:>14.0f}{s['rps']['min']:>9.0f}"
              f"{s['rps']['max']:>9.0f}{s['p99_ms']['median']:>17.2f}{s['p99_ms']['min']:>8.2f}"
              f"{s['p99_ms']['max']:>8.2f}{s['failed']:>8}{s['non_2xx']:>9}")
    for name in ("ingress", "direct"):
        print(f"{name} runs (req/s, p99 ms, TIME_WAIT to the replica before/after): "
              + ", ".join(f"({r['rps']:.0f}, {r['p99_ms']:.2f}, {r['time_wait_before']}/"
                          f"{r['time_wait_after']})" for r in steady[name]["samples"]))
    if steady["drain_seconds"]:
        print("waited for TIME_WAIT to drain before each pair (s): "
              + ", ".join(f"{waited:.0f}" for waited in steady["drain_seconds"]))
    print(f"throughput ingress/direct: {steady['throughput_ratio']:.2f}; p99 added by the "
          f"ingress: {steady['p99_added_ms']:+.2f} ms; connections the replica's listen queue "
          f"dropped: {steady['listen_overflows']}")
    print(f"machine load average (1 min, {os.cpu_count()} CPUs): "
          f"{results['load_average']['start']:.1f} at the start, "
          f"{results['load_average']['end']:.1f} at the end")
    print()
    for goal, ok in results["goals"].items():
        print(f"goal {goal}: {'met' if ok else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--redeploys", type=int, default=10, help="redeploys under load")
    parser.add_argument("--duration", type=int, default=5, help="seconds of each steady run")
    parser.add_argument("--runs", type=int, default=3, help="steady runs per target")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=8,
                        help="open connections (busybox httpd's listen queue holds 9)")
    parser.add_argument("--no-drain", action="store_true",
                        help="do not wait for TIME_WAIT sockets to drain between steady pairs")
    parser.add_argument("--ab", action="store_true",
                        help="also run the redeploys under ab -k, even if wrk saw no error")
    parser.add_argument("--logs", type=Path, metavar="DIR",
                        help="copy the server's and HAProxy's logs to DIR at the end")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if min(args.redeploys, args.duration, args.runs, args.threads) < 1 \
            or args.connections < args.threads:
        parser.error("--redeploys, --duration, --runs and --threads must be at least 1, and"
                     " --connections at least --threads")
    if not DOCKYARD.exists():
        sys.exit(f"no dockyard executable at {DOCKYARD}: run scripts/setup, then this with"
                 " .venv/bin/python")
    for tool in (WRK, AB):
        if not Path(tool).exists():
            sys.exit(f"{tool} is missing: scripts/setup installs wrk and apache2-utils")
    compileall.compile_dir(str(ROOT / "src"), quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        try:
            results = bench(args, Path(tmp))
        except (RuntimeError, OSError, subprocess.SubprocessError,
                http.client.HTTPException) as exc:
            sys.exit(f"{exc}\n(keep the server's and HAProxy's logs with --logs DIR)")
        finally:
            stop_server(home)
            stop_proxy(home)
            clean_engine()
            if args.logs is not None:
                keep_logs(home, args.logs)
    if args.json:
        for part in ("wrk", "ab"):
            results["redeploys"].get(part, {}).pop("output", None)
        print(json.dumps(results, indent=2))
    else:
        report(results)


if __name__ == "__main__":
    main()
