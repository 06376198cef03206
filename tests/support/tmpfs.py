"""The tmpfs a test's server mounted for its secret files (`dockyard.server.tmpfs`): unmounted
when the test is done, so test runs leave no mounts behind."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from dockyard.server.tmpfs import RUN_ROOT


def mounted_secrets_dir(data: Path) -> Path | None:
    """The server's own tmpfs (`/run/dockyard/<server-id>`) when it is mounted."""
    try:
        server_id = (data / "server-id").read_text().strip()
    except OSError:
        return None
    path = RUN_ROOT / server_id
    return path if server_id and path.is_mount() else None


def release_secrets_dir(data: Path) -> None:
    """Unmount (lazily: a container may still hold it) and remove the server's tmpfs."""
    path = mounted_secrets_dir(data)
    if path is None:
        return
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)
    with contextlib.suppress(OSError):
        path.rmdir()
