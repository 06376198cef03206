"""A simulated Swarm for engine tests: `scripts/cluster up N` at the start, `down` at the end.

The cluster's nodes are dockerds in network namespaces (the host's own engine never joins a
Swarm); `Cluster.docker(node, ...)` runs the docker CLI against one node's engine, and `env`
is what a Dockyard server needs to deploy onto the Swarm (its manager's engine, the driver and
the cluster's registry).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.engine import DOCKER

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "cluster"
UP_TIMEOUT = 240.0


def cluster_possible() -> bool:
    """Root, iproute2 and the registry: what `scripts/cluster` needs (scripts/setup installs
    the packages)."""
    return os.geteuid() == 0 and all(shutil.which(tool) for tool in
                                     ("ip", "unshare", "openssl", "docker-registry"))


@dataclass(frozen=True)
class Cluster:
    host: str  # the manager's engine (unix://...)
    registry: str  # HOST:PORT, TLS, trusted by every node
    nodes: tuple[str, ...]

    @property
    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.host, "DOCKYARD_DRIVER": "swarm",
                "DOCKYARD_REGISTRY": self.registry}

    def socket(self, node: str) -> str:
        return self.host.replace("/n1/", f"/{node}/")

    def docker(self, node: str, *args: str, check: bool = True,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([DOCKER, "-H", self.socket(node), *args], capture_output=True,
                              text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker -H {node} {' '.join(args)}: {proc.stderr.strip()}")
        return proc

    def script(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True,
                              timeout=timeout, check=False)
        assert proc.returncode == 0, f"scripts/cluster {' '.join(args)}: {proc.stderr}"
        return proc


def _main_engine_swarm() -> str:
    proc = subprocess.run([DOCKER, "info", "--format", "{{.Swarm.LocalNodeState}}"],
                          capture_output=True, text=True, timeout=60, check=False)
    return proc.stdout.strip()


@contextmanager
def running_cluster(nodes: int) -> Iterator[Cluster]:
    """An N-node cluster for the duration; the host's engine is left as it was found."""
    status = subprocess.run([str(SCRIPT), "status"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert status.returncode != 0, ("a cluster is already up (scripts/cluster status): the "
                                    "tests make their own; run scripts/cluster down first")
    before = _main_engine_swarm()
    try:
        up = subprocess.run([str(SCRIPT), "up", str(nodes)], capture_output=True, text=True,
                            timeout=UP_TIMEOUT, check=False)
        assert up.returncode == 0, f"scripts/cluster up {nodes}: {up.stderr}"
        env = dict(line.split("=", 1) for line in subprocess.run(
            [str(SCRIPT), "env"], capture_output=True, text=True, timeout=30,
            check=True).stdout.split())
        yield Cluster(host=env["DOCKYARD_CLUSTER_HOST"],
                      registry=env["DOCKYARD_CLUSTER_REGISTRY"],
                      nodes=tuple(env["DOCKYARD_CLUSTER_NODES"].split(",")))
    finally:
        down = subprocess.run([str(SCRIPT), "down"], capture_output=True, text=True,
                              timeout=UP_TIMEOUT, check=False)
        assert down.returncode == 0, f"scripts/cluster down: {down.stderr}"
        assert _main_engine_swarm() == before, "the host's engine changed its Swarm state"
