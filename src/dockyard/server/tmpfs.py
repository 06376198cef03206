"""Where secret files live: a memory-backed directory (tmpfs), never the persistent disk.

Chosen once when the server starts, in this order:

1. `--secrets-dir DIR` (or `DOCKYARD_SECRETS_DIR`): it must be on tmpfs or ramfs;
2. as root, `/run/dockyard/<server-id>`: a tmpfs the server mounts there (mode 0700, nosuid,
   nodev, noexec) unless one is mounted already;
3. otherwise (not root, or root without the right to mount, as in a container)
   `$XDG_RUNTIME_DIR/dockyard/<server-id>` when that is on tmpfs, else
   `/dev/shm/dockyard-<uid>/<server-id>` (a directory of this user, 0700).

When none fits the server does not start: a secret file on disk is what this prevents. The
mount is left in place when the server stops, so containers the engine restarts meanwhile find
their files; a reboot empties it, and the next start writes the files again (`secret_files`).
Its pages can still be swapped out like any process memory: use encrypted swap, or none.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import stat
import subprocess
from pathlib import Path

from dockyard.server.main import ServerStartError

log = logging.getLogger("dockyard.server")

MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})
RUN_ROOT = Path("/run/dockyard")
MOUNT_OPTIONS = "mode=0700,size=256m,nosuid,nodev,noexec"


def filesystem_of(path: Path) -> str | None:
    """The type of the filesystem `path` (which must exist) lives on, from the mount table;
    None when it cannot be read (not Linux)."""
    target = os.path.realpath(path)
    best, kind = "", None
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if "-" not in fields:
            continue
        point = _unescape(fields[4])
        fstype = fields[fields.index("-") + 1]
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fstype
    return kind


def _unescape(text: str) -> str:
    """A mountinfo path: spaces and the like are written as octal escapes (`\\040`)."""
    return text.encode().decode("unicode_escape") if "\\" in text else text


def in_memory(path: Path) -> bool:
    return filesystem_of(path) in MEMORY_FILESYSTEMS


def prepare_secrets_dir(given: Path | None, server_id: str) -> Path:
    """The directory secret files go to (made 0700, on tmpfs), as the module says."""
    if given is not None:
        return _checked(given, "--secrets-dir")
    if os.geteuid() == 0:
        try:
            return _mounted(RUN_ROOT / server_id)
        except ServerStartError as exc:  # root without the right to mount (in a container)
            log.warning("%s; looking for an existing tmpfs instead", exc.message)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir() and in_memory(Path(runtime)):
        return _checked(Path(runtime) / "dockyard" / server_id, "$XDG_RUNTIME_DIR")
    shm = Path("/dev/shm")
    if shm.is_dir() and in_memory(shm):
        return _checked(shm / f"dockyard-{os.getuid()}" / server_id, "/dev/shm")
    raise ServerStartError(
        "no memory-backed directory for secret files (they are never written to disk)",
        hint="run the server as root (it mounts a tmpfs at /run/dockyard), or give a "
        "directory on tmpfs with --secrets-dir (or DOCKYARD_SECRETS_DIR)")


def _checked(path: Path, origin: str) -> Path:
    try:
        _make_private(path)
    except OSError as exc:
        raise ServerStartError(f"cannot make the secrets directory {path}: {exc.strerror}",
                               hint=f"check {origin}") from None
    if not in_memory(path):
        raise ServerStartError(f"the secrets directory {path} is not on tmpfs",
                               hint="secret files are never written to a disk: give a "
                               "directory on tmpfs or ramfs (`df -t tmpfs` lists them)")
    return path


def _make_private(path: Path) -> None:
    """`path` made 0700; it (and a `dockyard*` directory above it, which Dockyard made) must
    be ours and no link, so another user of a shared tmpfs (/dev/shm) cannot hand us theirs."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    for directory in (path.parent, path):
        if directory == path.parent and not directory.name.startswith("dockyard"):
            continue
        info = os.lstat(directory)
        if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid():
            raise PermissionError(errno.EPERM, "not a directory of this user", str(directory))
        os.chmod(directory, 0o700)


def _mounted(path: Path) -> Path:
    """`path` with a tmpfs of its own (mounted now unless it already is)."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ServerStartError(f"cannot make the secrets directory {path}: {exc.strerror}",
                               hint="give a directory on tmpfs with --secrets-dir") from None
    if not _is_mount_point(path):
        mount = shutil.which("mount") or "/bin/mount"
        done = subprocess.run([mount, "-t", "tmpfs", "-o", MOUNT_OPTIONS, "dockyard-secrets",
                               str(path)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServerStartError(
                f"cannot mount a tmpfs at {path} for secret files: "
                f"{done.stderr.strip() or done.returncode}",
                hint="give a directory on tmpfs with --secrets-dir (or DOCKYARD_SECRETS_DIR)")
    if not in_memory(path):  # a mount point, but of a disk
        raise ServerStartError(f"{path} is a mount point but not a tmpfs",
                               hint="unmount it, or give a directory on tmpfs with "
                               "--secrets-dir")
    os.chmod(path, 0o700)
    return path


def _is_mount_point(path: Path) -> bool:
    target = os.path.realpath(path)
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split()
            if len(fields) > 4 and _unescape(fields[4]) == target:
                return True
    return False


def release(path: Path) -> None:
    """At a clean stop: unmount the server's own tmpfs (`/run/dockyard/<id>`) when no secret
    file is left in it (no project with secret files runs), and remove the empty directory."""
    if path.parent != RUN_ROOT or not _is_mount_point(path):
        return
    if any(p.is_file() for p in path.rglob("*")):
        return
    umount = shutil.which("umount") or "/bin/umount"
    if subprocess.run([umount, str(path)], capture_output=True, check=False).returncode == 0:
        with contextlib.suppress(OSError):
            path.rmdir()
