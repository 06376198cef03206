"""Time a pull through Dockyard against `docker pull` of the same image, same registry, one run.

    .venv/bin/python bench/pull_bench.py [--runs N] [--size MB] [--json]

A real local registry (Debian's `docker-registry`, plain HTTP on 127.0.0.1 at a free port:
the engine treats 127.0.0.0/8 as insecure) holds `bench/big:1`: the local base image
`dockyard/busybox:1` plus one layer of `--size` MB (default 10) of random bytes, so nothing of
it compresses or is shared with other images. Each round, both tools in turn (the order
alternates from round to round: docker pull, Dockyard, API pull, then the reverse), with the
image removed from the engine before each pull:
- **docker pull**: `/usr/bin/docker pull -q 127.0.0.1:PORT/bench/big:1`, the whole process;
- **engine API pull**: the same pull through docker-py (`POST /images/create`, its progress
  stream read to the end), for reference: what is left without the CLI's start-up;
- **dockyard up (pull)**: `dockyard compose up` of a one-service project (`image:` that
  reference, `pull_policy: always`, `command: sleep 3600`, `stop_grace_period: 1s`), timed
  until it returns, that is until the deployment is SERVICE_DEPLOYMENT_COMPLETED;
- **dockyard up (present)**: after `down`, the same `up` with `pull_policy: missing` and the
  image present: the deployment without the pull.
The pull through Dockyard is `up (pull)` minus `up (present)` of the same round. Reported: the
median of each, the median of the per-round differences, and the ratio of that to the median
`docker pull` (goal, issue 11: within 1.2x). Most of an `up` is the server's stabilization
window (1 s by default), the same with and without the pull, which the subtraction removes;
what remains is noisy at this size, so look at every round (`--json`) before trusting a ratio.

Dockyard runs with a temporary `DOCKYARD_HOME` (account `bench`, project `pullbench-<hex>`);
its local server is started before anything is timed (an untimed `ps`) and stopped at the
end. The registry, the project's containers and network, and the image (by ID: its random
layer makes it unique) are removed at the end, also after a failure. The registry fixture
code is the engine tests' (`tests/engine/registry.py`). Needs scripts/setup (as root: the
engine, `dockyard/busybox:1`, docker-registry).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.engine.registry: the same registry as the tests

sys.path.insert(0, str(ROOT / "bench"))  # the helpers the other benchmarks share

from deploy_bench import run, stats, stop_server  # noqa: E402
from tests.engine.registry import Images, Registry, RegistryError, running_registry  # noqa: E402

DOCKYARD = Path(sys.executable).parent / "dockyard"
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"
ACCOUNT = "bench"
PROJECT = f"pullbench-{secrets.token_hex(3)}"
REPO_TAG = "bench/big:1"
MEASURES = ("docker_pull", "api_pull", "dockyard_up_pull", "dockyard_up_present",
            "dockyard_pull")
COMPOSE = """\
services:
  big:
    image: {image}
    pull_policy: {policy}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
"""


def child_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COMPOSE_", "DOCKYARD_")) and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(DOCKYARD_HOME=str(home), DOCKYARD_USER=ACCOUNT, DOCKYARD_INGRESS_HOST="127.0.0.1",
               DOCKYARD_HTTP_PORT="0", DOCKYARD_HTTPS_PORT="0",
               DOCKER_HOST="unix:///var/run/docker.sock")
    return env


class Bench:
    """The registry, the image, the project, and one timing of each measure."""

    def __init__(self, reg: Registry, image_id: str, project: Path, env: dict[str, str]) -> None:
        self.reg, self.image_id, self.project, self.env = reg, image_id, project, env
        self.ref = reg.ref(REPO_TAG)

    def dockyard(self, *args: str) -> float:
        return run([str(DOCKYARD), "compose", *args, "-p", PROJECT], self.project, self.env)

    def write_project(self, policy: str) -> None:
        self.project.mkdir(parents=True, exist_ok=True)
        (self.project / "compose.yaml").write_text(COMPOSE.format(image=self.ref, policy=policy))

    def remove_image(self) -> None:
        """The image gone from the engine (every tag and digest), so the next pull downloads
        its layer; the base layer stays, for both tools alike."""
        subprocess.run([DOCKER, "rmi", "-f", self.image_id], capture_output=True, text=True)
        self.reg.clean_engine()
        if subprocess.run([DOCKER, "image", "inspect", self.image_id],
                          capture_output=True).returncode == 0:
            raise RuntimeError(f"image {self.image_id} is still on the engine after rmi: "
                               "a container holds it?")

    def docker_pull(self) -> float:
        self.remove_image()
        return run([DOCKER, "pull", "-q", self.ref], self.project, self.env)

    def api_pull(self) -> float:
        """The same pull through the engine API (docker-py), without the CLI's start-up."""
        self.remove_image()
        start = time.perf_counter()
        self.reg.pull(self.ref)
        return time.perf_counter() - start

    def dockyard_pair(self) -> tuple[float, float]:
        """`up` pulling the image, then (after `down`) `up` with it present; down at the end."""
        self.remove_image()
        self.write_project("always")
        with_pull = self.dockyard("up")
        if subprocess.run([DOCKER, "image", "inspect", self.image_id],
                          capture_output=True).returncode != 0:
            raise RuntimeError(f"`up` with pull_policy: always passed, but {self.ref} is not on"
                               " the engine: what did it run?")
        self.dockyard("down")
        self.write_project("missing")
        present = self.dockyard("up")
        self.dockyard("down")
        return with_pull, present


def clean_project() -> None:
    """Remove what this run's project created: containers, network, volumes."""
    ours = ["--filter", f"label=dockyard.account={ACCOUNT}",
            "--filter", f"label=dockyard.project={PROJECT}"]
    for kind, listing in (("container", ["ps", "-aq"]), ("network", ["network", "ls", "-q"]),
                          ("volume", ["volume", "ls", "-q"])):
        names = subprocess.run([DOCKER, *listing, *ours], capture_output=True,
                               text=True).stdout.split()
        if names:
            subprocess.run([DOCKER, kind, "rm", "-f", *names], capture_output=True)


def bench(args: argparse.Namespace, tmp: Path, client: docker.DockerClient) -> dict[str, Any]:
    samples: dict[str, list[float]] = {m: [] for m in MEASURES}
    results: dict[str, Any] = {"size_mb": args.size, "samples": samples}
    images = Images(client, run_id=PROJECT)
    with running_registry(tmp / "registry", client=client) as reg:
        try:
            local = images.make(args.size * 1_000_000, name=f"dockyard-bench/big:{PROJECT}")
            image_id = str(client.images.get(local).id)
            results["image"] = f"{reg.ref(REPO_TAG)}@{reg.push(local, REPO_TAG)}"
            client.images.remove(local)
            home = tmp / "home"
            run_ = Bench(reg, image_id, tmp / "project", child_env(home))
            run_.write_project("always")
            run_.dockyard("ps")  # starts the local server, untimed
            try:
                run_.dockyard_pair()  # warm-up, untimed: the first deployment creates more
                for round_ in range(args.runs):
                    if round_ % 2 == 0:
                        samples["docker_pull"].append(run_.docker_pull())
                        pair = run_.dockyard_pair()
                        samples["api_pull"].append(run_.api_pull())
                    else:
                        samples["api_pull"].append(run_.api_pull())
                        pair = run_.dockyard_pair()
                        samples["docker_pull"].append(run_.docker_pull())
                    samples["dockyard_up_pull"].append(pair[0])
                    samples["dockyard_up_present"].append(pair[1])
                    samples["dockyard_pull"].append(pair[0] - pair[1])
            finally:
                stop_server(home)
                clean_project()
        finally:
            images.clean()
    results.update({m: stats(samples[m]) for m in MEASURES})
    ratio = results["dockyard_pull"]["median"] / results["docker_pull"]["median"]
    results["ratio"] = ratio
    results["goals"] = {"pull_within_1.2x_of_docker_pull": ratio <= 1.2}
    return results


def report(results: dict[str, Any]) -> None:
    print(f"image {results['image']} ({results['size_mb']} MB random layer over the base)")
    print(f"{'measure':<36}{'median (s)':>11}{'min':>8}{'max':>8}  runs")
    names = {"docker_pull": "docker pull", "api_pull": "engine API pull (docker-py)",
             "dockyard_up_pull": "dockyard up, pull_policy: always",
             "dockyard_up_present": "dockyard up, image present",
             "dockyard_pull": "dockyard pull (up minus present)"}
    for measure in MEASURES:
        s = results[measure]
        print(f"{names[measure]:<36}{s['median']:>11.3f}{s['min']:>8.3f}{s['max']:>8.3f}  "
              + ", ".join(f"{v:.3f}" for v in results["samples"][measure]))
    print(f"ratio dockyard pull / docker pull (medians): {results['ratio']:.2f}")
    for goal, ok in results["goals"].items():
        print(f"goal {goal}: {'met' if ok else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="rounds (each about 10 s)")
    parser.add_argument("--size", type=int, default=10, help="MB of the image's random layer")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.runs < 1 or args.size < 1:
        parser.error("--runs and --size must be at least 1")
    if not DOCKYARD.exists():
        sys.exit(f"no dockyard executable at {DOCKYARD}: run scripts/setup, then this with"
                 " .venv/bin/python")
    compileall.compile_dir(str(ROOT / "src"), quiet=1)
    client = docker.from_env()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = bench(args, Path(tmp), client)
    except (RuntimeError, RegistryError, OSError, docker.errors.DockerException) as exc:
        sys.exit(str(exc))
    finally:
        client.close()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        report(results)


if __name__ == "__main__":
    main()
