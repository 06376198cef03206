"""Where secret files may live (`server.tmpfs`): only on a memory-backed filesystem, in a
private directory of the server's own user."""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.server import tmpfs
from dockyard.server.main import ServerStartError
from dockyard.server.tmpfs import filesystem_of, in_memory, prepare_secrets_dir

SHM = Path("/dev/shm")
needs_shm = pytest.mark.skipif(not SHM.is_dir() or filesystem_of(SHM) != "tmpfs",
                               reason="no tmpfs at /dev/shm")


@pytest.fixture
def shm_dir() -> Iterator[Path]:
    path = SHM / f"dockyard-test-{uuid.uuid4().hex[:8]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_filesystem_of_a_path_comes_from_the_mount_table() -> None:
    assert filesystem_of(Path("/proc/self")) == "proc"
    assert filesystem_of(Path(__file__)) not in (None, "tmpfs", "ramfs")


def test_a_given_directory_on_disk_is_refused(tmp_path: Path) -> None:
    disk = Path(__file__).parent / f".secrets-{uuid.uuid4().hex[:8]}"
    try:
        with pytest.raises(ServerStartError) as caught:
            prepare_secrets_dir(disk, "abc123")
        assert "is not on tmpfs" in caught.value.message and str(disk) in caught.value.message
        assert caught.value.hint and "never written to a disk" in caught.value.hint
    finally:
        shutil.rmtree(disk, ignore_errors=True)


@needs_shm
def test_a_given_directory_on_tmpfs_is_made_private(shm_dir: Path) -> None:
    found = prepare_secrets_dir(shm_dir / "secrets", "abc123")
    assert found == shm_dir / "secrets" and in_memory(found)
    assert stat.S_IMODE(found.stat().st_mode) == 0o700


@needs_shm
@pytest.mark.skipif(os.geteuid() != 0, reason="handing a directory to another user needs root")
def test_a_directory_another_user_owns_is_refused(shm_dir: Path) -> None:
    """On a shared tmpfs (/dev/shm) another user could make the directory first, to read
    what the server writes there."""
    shm_dir.mkdir(mode=0o777)
    os.chown(shm_dir, 65534, 65534)
    with pytest.raises(ServerStartError) as caught:
        prepare_secrets_dir(shm_dir, "abc123")
    assert "not a directory of this user" in caught.value.message


@needs_shm
def test_root_that_cannot_mount_uses_an_existing_tmpfs(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Root inside a container may lack the right to mount: /dev/shm then, never the disk."""
    def refused(path: Path) -> Path:
        raise ServerStartError(f"cannot mount a tmpfs at {path} for secret files: denied")

    server_id = f"test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(tmpfs, "_mounted", refused)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    found = prepare_secrets_dir(None, server_id)
    try:
        assert found == SHM / f"dockyard-{os.getuid()}" / server_id and in_memory(found)
        assert "cannot mount a tmpfs" in caplog.text
    finally:
        shutil.rmtree(found, ignore_errors=True)
