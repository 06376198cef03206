"""`compose up` sends the origin of its project's checkout with the deployment (git is asked
while the project loads, in a thread of its own)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from dockyard.cli.commands.deploy import UpOptions, run_up
from dockyard.compose import LoadOptions
from dockyard.wire_models import DeployOrigin


class Recorder:
    """The few calls `run_up` makes of a client, detached: the deployment's origin kept."""

    def __init__(self) -> None:
        self.origins: list[DeployOrigin | None] = []

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def deploy(self, *_args: Any, origin: DeployOrigin | None = None, **_kwargs: Any) -> str:
        self.origins.append(origin)
        return "d1"


def git(directory: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(directory), *args], check=True,
                          capture_output=True, text=True).stdout.strip()


def test_up_sends_the_checkouts_origin(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "trunk")
    (tmp_path / "compose.yaml").write_text("services:\n  web: {image: dockyard/busybox:1}\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q",
        "-m", "one")
    client = Recorder()
    options = LoadOptions(working_dir=str(tmp_path), environ={}, project_name="shop")
    assert run_up(options, lambda: client, UpOptions(detach=True)) == 0
    (origin,) = client.origins
    assert origin is not None
    assert (origin.git_commit, origin.git_dirty, origin.git_branch) == (
        git(tmp_path, "rev-parse", "HEAD"), False, "trunk")
