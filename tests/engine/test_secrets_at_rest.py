"""Secrets at rest, with the real CLI, server and Docker Engine: no config value on the server's
persistent disk (its secret files live on tmpfs), a SIGKILLed server whose tmpfs was emptied
writes them again, a wrong key is refused and changes nothing, rotation leaves the old key
useless, and a backup restored on a fresh machine with its key deploys the same values."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken

from dockyard.exit_codes import ExitCode
from dockyard.server.tmpfs import RUN_ROOT, filesystem_of
from tests.support.deployments import (
    COMPLETED,
    DOCKYARD,
    Dockyard,
    cli_env,
    containers,
    copy_project,
    docker,
    docker_exec,
    env_of,
    is_running,
)
from tests.support.engine import engine_ready
from tests.support.tmpfs import release_secrets_dir

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1 (run scripts/setup "
                       "as root)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the server mounts its tmpfs as root"),
]

TARGET = "/run/secrets/API_TOKEN"


class Deployed:
    """One deployment of tests/engine/projects/secrets-at-rest with fresh values."""

    def __init__(self, dy: Dockyard, tmp_path: Path) -> None:
        self.dy, self.project = dy, dy.name("rest")
        self.directory = copy_project("secrets-at-rest", tmp_path)
        run = uuid.uuid4().hex[:10]
        self.token, self.env = f"tok-{run}-file", f"env-{run}-environ"

    def set_and_up(self) -> None:
        for name, value in (("API_TOKEN", self.token), ("API_ENV", self.env)):
            done = self.dy.cli("config", "set", f"{name}={value}", "-p", self.project)
            assert done.code == 0, str(done)
        self.up()

    def up(self) -> None:
        done = self.dy.up(self.directory, self.project)
        assert done.code == 0, str(done)

    def app(self) -> dict[str, Any]:
        (found,) = containers(self.project, service="app")
        return found

    def source(self) -> Path:
        (mount,) = [m for m in self.app()["Mounts"] if m["Destination"] == TARGET]
        return Path(mount["Source"])

    def check_inside(self) -> None:
        """The values reach the container: the file through its mount, the other in its
        environment (the engine's container configuration)."""
        app = self.app()
        read = docker_exec(app, f"cat {TARGET}")
        assert read.stdout == self.token, read
        assert env_of(app)["API_ENV"] == self.env


@pytest.fixture
def deployed(dockyard: Dockyard, tmp_path: Path) -> Iterator[Deployed]:
    yield Deployed(dockyard, tmp_path)


def forms(value: str) -> set[bytes]:
    """How a value could sit in a file: as is, in hex, and in base64 (standard and URL-safe)
    at each of the three alignments it may start at inside a longer encoded text."""
    raw = value.encode()
    found = {raw, raw.hex().encode()}
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * shift + raw).rstrip(b"=")
            start = (8 * shift + 5) // 6  # the first character the leading bytes do not touch
            found.add(text[start:-2])  # the last ones depend on what follows
    return found


def leaks(root: Path, values: list[str], paths: Iterable[Path] = ()) -> list[str]:
    """Every file under `root` (and of `paths`) that holds a value in any of its forms."""
    wanted = {form: value for value in values for form in forms(value)}
    found = []
    for path in sorted({*root.rglob("*"), *paths}):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path}: {value}" for form, value in wanted.items() if form in data]
    return found


def written_since(start: float, pid: int) -> set[Path]:
    """Other files the server may have written on disk: those it holds open, and those under
    the temporary directory changed since `start` (not on tmpfs, at most 16 MiB)."""
    found = set()
    for link in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            found.add(Path(os.readlink(link)))
    for path in Path(tempfile.gettempdir()).rglob("*"):
        with contextlib.suppress(OSError):
            info = path.lstat()
            if stat.S_ISREG(info.st_mode) and info.st_mtime >= start and \
                    info.st_size <= 16 << 20:
                found.add(path)
    return {p for p in found if p.is_file() and filesystem_of(p) not in ("tmpfs", "proc")}


def test_no_config_value_is_written_to_persistent_disk(deployed: Deployed) -> None:
    start = time.time()
    deployed.set_and_up()
    deployed.check_inside()
    source = deployed.source()
    server_id = (deployed.dy.data / "server-id").read_text().strip()
    assert source.is_relative_to(RUN_ROOT / server_id), source
    assert filesystem_of(source) == "tmpfs" and source.read_text() == deployed.token
    assert stat.S_IMODE(source.stat().st_mode) == 0o400
    # Everything the server (and the CLI) wrote: the data directory with the store, its WAL,
    # the key, build contexts and the server's log, the CLI's own files, and whatever else the
    # server holds open or was written in the temporary directory meanwhile. The values are
    # only on the tmpfs and inside the engine.
    assert leaks(source.parent, [deployed.token])  # the search finds it where it is
    server = deployed.dy.server()
    assert server is not None
    others = written_since(start, server[1])
    assert deployed.dy.data / "dockyard.db" in others  # the store is open, so listed
    assert not leaks(deployed.dy.home, [deployed.token, deployed.env], others)
    assert not leaks(deployed.directory, [deployed.token, deployed.env])

    down = deployed.dy.cli("compose", "down", "-p", deployed.project)
    assert down.code == 0, str(down)
    assert not source.exists() and not source.parent.exists()


def test_a_sigkilled_server_writes_the_secret_files_again_and_starts_what_needs_them(
        deployed: Deployed) -> None:
    deployed.set_and_up()
    source = deployed.source()
    deployed.dy.kill_server(signal.SIGKILL)
    release_secrets_dir(deployed.dy.data)  # what a reboot does to a tmpfs: it is gone
    assert not source.exists()
    app = str(deployed.app()["Id"])
    stuck = docker("restart", "-t", "1", app, check=False)  # as the engine at boot: no file,
    assert stuck.returncode != 0 and not is_running(deployed.app()), stuck  # no container

    assert deployed.dy.ps(deployed.project)["app"]["state"] == COMPLETED  # starts the server
    assert is_running(deployed.app())  # started again once its file was back
    assert source.read_text() == deployed.token and filesystem_of(source) == "tmpfs"
    assert stat.S_IMODE(source.stat().st_mode) == 0o400
    docker("restart", "-t", "1", app)  # the engine finds its file now
    deployed.check_inside()


def _fingerprint(data: Path) -> dict[str, str]:
    """Each file of the data directory by its digest (the store by its rows: SQLite may
    make and remove its -wal and -shm files as it opens it)."""
    found = {str(p.relative_to(data)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(data.rglob("*")) if p.is_file()
             and not p.name.startswith("dockyard.db")}
    with sqlite3.connect(data / "dockyard.db") as conn:
        found["rows"] = hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()
    return found


def _stored(data: Path) -> list[bytes]:
    with sqlite3.connect(data / "dockyard.db") as conn:
        return [str(row[0]).encode() for row in conn.execute(
            "SELECT value_encrypted FROM configs UNION ALL "
            "SELECT value_encrypted FROM config_history")]


def _server(dy: Dockyard, **env: str) -> subprocess.CompletedProcess[str]:
    """`dockyard server` in the foreground, as an operator runs it (it is expected to stop)."""
    return subprocess.run([str(DOCKYARD), "server", "--listen", "127.0.0.1:0", "--no-ingress"],
                          env=cli_env(dy.home, dy.user, env), capture_output=True, text=True,
                          timeout=60, check=False)


def test_a_wrong_or_missing_key_is_refused_and_changes_nothing(
        deployed: Deployed, tmp_path: Path) -> None:
    key = tmp_path / "keys" / "dockyard.key"
    key.parent.mkdir()
    deployed.dy.env["DOCKYARD_KEY_FILE"] = str(key)
    deployed.set_and_up()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not (deployed.dy.data / "config.key").exists()  # the key is apart from the data
    deployed.dy.kill_server(signal.SIGTERM)
    before = _fingerprint(deployed.dy.data)

    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(Fernet.generate_key())
    refused = _server(deployed.dy, DOCKYARD_KEY_FILE=str(wrong))
    assert refused.returncode == ExitCode.KEY_REFUSED, refused
    assert f"error: the key file {wrong} does not open 2 of the 2 encrypted values" in \
        refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    missing = _server(deployed.dy)  # nothing set: the data directory's key, which is not there
    assert missing.returncode == ExitCode.KEY_REFUSED, missing
    assert "holds 2 encrypted value(s) but the key file" in missing.stderr, missing.stderr
    assert not (deployed.dy.data / "config.key").exists()  # never made over existing values
    assert _fingerprint(deployed.dy.data) == before

    assert deployed.dy.ps(deployed.project)["app"]["state"] == COMPLETED  # the right key
    deployed.check_inside()


def test_rotation_leaves_the_old_key_useless(deployed: Deployed, tmp_path: Path) -> None:
    deployed.set_and_up()
    old_key = (deployed.dy.data / "config.key").read_bytes()
    deployed.dy.kill_server(signal.SIGTERM)
    new_key = tmp_path / "new.key"
    rotated = deployed.dy.cli("server", "rotate-key", "--data", str(deployed.dy.data),
                              "--new-key-file", str(new_key))
    assert rotated.code == 0, str(rotated)
    assert "2 value(s) re-encrypted" in rotated.err, str(rotated)
    old, new = Fernet(old_key.strip()), Fernet(new_key.read_bytes().strip())
    values = _stored(deployed.dy.data)
    assert len(values) == 2
    for value in values:
        with pytest.raises(InvalidToken):
            old.decrypt(value)
    assert sorted(new.decrypt(v).decode() for v in values) == sorted(
        [deployed.token, deployed.env])

    deployed.dy.env["DOCKYARD_KEY_FILE"] = str(new_key)
    deployed.up()  # the server starts with the new key, and deploys with it
    deployed.check_inside()


def test_a_backup_restored_on_a_fresh_machine_deploys_the_same_values(
        deployed: Deployed, tmp_path: Path) -> None:
    key = tmp_path / "keys" / "dockyard.key"
    key.parent.mkdir()
    deployed.dy.env["DOCKYARD_KEY_FILE"] = str(key)
    deployed.set_and_up()
    backup = tmp_path / "backup" / "dockyard.db"
    backup.parent.mkdir()
    done = deployed.dy.cli("server", "backup", str(backup), "--data", str(deployed.dy.data))
    assert done.code == 0, str(done)  # while the server runs
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert not leaks(backup.parent, [deployed.token, deployed.env])

    # The machine is lost: its server, its containers and its data directory.
    deployed.dy.close()
    assert not containers(deployed.project)
    shutil.rmtree(deployed.dy.home)

    fresh = Dockyard(tmp_path / "fresh-home", env={"DOCKYARD_KEY_FILE": str(key)})
    fresh.projects.append(deployed.project)
    try:
        (fresh.data).mkdir(parents=True)
        (fresh.data / "dockyard.db").write_bytes(backup.read_bytes())
        listed = fresh.cli("config", "ls", "-p", deployed.project)
        assert listed.code == 0 and "API_TOKEN" in listed.out and "API_ENV" in listed.out, \
            str(listed)
        deployed.dy = fresh
        deployed.up()
        deployed.check_inside()
    finally:
        fresh.close()
