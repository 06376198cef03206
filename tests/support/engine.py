"""The local Docker Engine the engine tests drive: its CLI, whether it is ready, the example
project, and the label tests put on what they create."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

DOCKER = "/usr/bin/docker"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shop"
LABEL = "dockyard.test"


def engine_ready() -> bool:
    """The Docker Engine answers and holds `dockyard/busybox:1` (scripts/setup builds it)."""
    if not shutil.which(DOCKER):
        return False
    result = subprocess.run([DOCKER, "image", "inspect", "dockyard/busybox:1"],
                            capture_output=True, timeout=30)
    return result.returncode == 0
