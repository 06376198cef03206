"""Engine tests: the example project's images build on the local base and serve.

Marked `docker`: they drive the real Docker Engine (scripts/setup installs and starts it and
builds `dockyard/busybox:1`), label everything they create and remove it by label.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.support.engine import DOCKER, EXAMPLE, LABEL, engine_ready

# In CI the engine must be there (.ci/run sets it up): a missing engine fails, never skips.
pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1 (run scripts/setup "
                       "as root)"),
]


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout,
                          check=True)


@pytest.fixture
def run_id() -> Iterator[str]:
    ident = uuid.uuid4().hex[:12]
    yield ident
    containers = docker("ps", "-aq", "--filter", f"label={LABEL}={ident}").stdout.split()
    if containers:
        docker("rm", "-f", *containers)
    images = docker("images", "-q", "--filter", f"label={LABEL}={ident}").stdout.split()
    if images:
        subprocess.run([DOCKER, "rmi", "-f", *set(images)], capture_output=True, timeout=60)


@pytest.mark.parametrize("service", ["web", "api", "db"])
def test_example_image_builds(service: str, run_id: str) -> None:
    tag = f"dockyard-test/{service}:{run_id}"
    docker("build", "-q", "--label", f"{LABEL}={run_id}", "-t", tag, str(EXAMPLE / service))
    assert docker("image", "inspect", tag).returncode == 0


def test_example_web_serves_its_page(run_id: str) -> None:
    tag = f"dockyard-test/web:{run_id}"
    docker("build", "-q", "--label", f"{LABEL}={run_id}", "-t", tag, str(EXAMPLE / "web"))
    container = docker("run", "-d", "--label", f"{LABEL}={run_id}", tag).stdout.strip()
    page = ""
    for _ in range(50):
        result = subprocess.run([DOCKER, "exec", container, "wget", "-q", "-O-",
                                 "http://127.0.0.1:8080/"], capture_output=True, text=True,
                                timeout=10)
        if result.returncode == 0:
            page = result.stdout
            break
        subprocess.run(["sleep", "0.1"], check=True)
    assert "Dockyard shop" in page
