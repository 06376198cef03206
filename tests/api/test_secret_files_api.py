"""Secret files (`server.secret_files`, `server.secret_restore`) in-process, over a fake engine:
written to the server's memory directory just before their containers start, gone with the
containers that used them, and written again (with the values their deployment ran) when the
server starts and finds them missing, as after a reboot emptied the tmpfs."""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.server.secret_files import SecretFiles
from dockyard.server.secret_restore import restore_secret_files
from dockyard.store import schema
from tests.support.server import IMAGE, Server, running_server

SERVICES = {"app": {"image": IMAGE, "secrets": ["API_TOKEN"],
                    "environment": {"API_ENV": None}},
            "web": {"image": IMAGE}}
SECRETS = {"API_TOKEN": {"external": True}}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path, secrets_dir=tmp_path / "memory") as running:
        yield running


def _source(server: Server) -> Path:
    (mount,) = [m for m in server.spec_of("vault", "app").mounts
                if m.target == "/run/secrets/API_TOKEN"]
    assert mount.type == "bind" and mount.read_only and mount.source
    return Path(mount.source)


def _deploy(server: Server) -> str:
    deployment, status = server.up("vault", SERVICES, secrets=SECRETS)
    assert status == "succeeded"
    return deployment


def test_files_live_in_the_memory_directory_and_go_with_their_containers(
        server: Server, tmp_path: Path) -> None:
    server.set_config("vault", "API_TOKEN", "tok-v1-7a1c")
    server.set_config("vault", "API_ENV", "env-v1-3b9d")
    first = _deploy(server)
    source = _source(server)
    assert source.is_relative_to(tmp_path / "memory") and first in source.parent.name
    assert source.read_text() == "tok-v1-7a1c"
    assert stat.S_IMODE(source.stat().st_mode) == 0o400
    assert stat.S_IMODE(source.parent.stat().st_mode) == 0o700
    assert not (server.settings.data / "secrets").exists()

    server.set_config("vault", "API_TOKEN", "tok-v2-5e0f")
    _deploy(server)  # the value changed: app is replaced, its old files go with it
    replaced = _source(server)
    assert replaced.read_text() == "tok-v2-5e0f"
    assert not source.exists() and not source.parent.exists()
    assert [p.name for p in replaced.parent.parent.iterdir()] == [replaced.parent.name]

    assert server.down("vault") == "succeeded"
    assert not replaced.exists() and not replaced.parent.parent.exists()


def test_a_finished_job_keeps_no_file(server: Server) -> None:
    server.set_config("vault", "API_TOKEN", "tok-job-0c0c")
    server.set_config("vault", "API_ENV", "env-job-0d0d")
    services = {**SERVICES, "migrate": {"image": IMAGE, "restart": "no",
                                        "secrets": ["API_TOKEN"]}}
    _, status = server.up("vault", services, secrets=SECRETS)
    assert status == "succeeded"
    (mount,) = [m for m in server.spec_of("vault", "migrate").mounts
                if m.target == "/run/secrets/API_TOKEN"]
    assert mount.source and not Path(mount.source).parent.exists()  # it ran, it is done
    assert _source(server).read_text() == "tok-job-0c0c"  # the service keeps its own
    restore_secret_files(server.control)
    assert not Path(mount.source).exists()  # and a start does not write it again


def test_missing_files_are_written_again_with_the_values_their_deployment_ran(
        server: Server) -> None:
    server.set_config("vault", "API_TOKEN", "tok-ran-11aa")
    server.set_config("vault", "API_ENV", "env-ran-22bb")
    _deploy(server)
    source = _source(server)
    assert restore_secret_files(server.control) == 0  # nothing is missing

    server.set_config("vault", "API_TOKEN", "tok-set-later-33cc")  # not deployed yet
    source.unlink()
    source.parent.rmdir()  # as a reboot empties the tmpfs
    assert restore_secret_files(server.control) == 1
    assert source.read_text() == "tok-ran-11aa"  # the recorded version, not the newer one
    assert stat.S_IMODE(source.stat().st_mode) == 0o400
    assert server.driver.restarts == []  # it runs: nothing to start

    # After a reboot the engine could not start it without its file: started once it is back.
    (app,) = server.containers("vault")["app"]
    server.driver.stop(app)
    source.unlink()
    assert restore_secret_files(server.control) == 1
    assert server.driver.restarts == [app] and source.read_text() == "tok-ran-11aa"


def test_without_recorded_versions_only_a_value_the_container_was_made_with_is_written(
        server: Server) -> None:
    server.set_config("vault", "API_TOKEN", "tok-old-44dd")
    server.set_config("vault", "API_ENV", "env-old-55ee")
    deployment = _deploy(server)
    source = _source(server)
    with server.store.engine.begin() as conn:  # a deployment made before versions were kept
        conn.execute(schema.deployment_configs.delete().where(
            schema.deployment_configs.c.deployment_id == deployment))

    source.unlink()
    assert restore_secret_files(server.control) == 1  # the current values are the ones it ran
    assert source.read_text() == "tok-old-44dd"

    server.set_config("vault", "API_ENV", "env-new-66ff")
    source.unlink()
    assert restore_secret_files(server.control) == 0  # a value changed since: left alone
    assert not source.exists()


def test_files_an_older_version_wrote_on_disk_go_when_no_container_uses_them(
        server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    retired = server.settings.data / "secrets"
    server.control.secret_files = SecretFiles(tmp_path / "memory", retired)
    server.set_config("vault", "API_TOKEN", "tok-disk-77ab")
    server.set_config("vault", "API_ENV", "env-disk-88cd")
    deployment = _deploy(server)
    project_dir = retired / _source(server).parent.parent.name
    in_use, stale = project_dir / f"app-{deployment}", project_dir / "app-oldoldoldold"
    other = retired / "dy-someone-gone-0123456789" / "web-oldoldoldold"
    for directory in (in_use, stale, other):  # as an older Dockyard left them
        directory.mkdir(parents=True)
        (directory / "0-API_TOKEN").write_text("tok-disk-77ab")

    with caplog.at_level(logging.WARNING, logger="dockyard.server"):
        restore_secret_files(server.control)
    assert in_use.is_dir() and not stale.exists() and not other.parent.exists()
    assert f"still used by {in_use}" in caplog.text and "compose up --force" in caplog.text

    server.set_config("vault", "API_TOKEN", "tok-memory-99ef")
    _deploy(server)  # app is replaced: its old files go, on disk as in memory
    assert not in_use.exists()
    restore_secret_files(server.control)
    assert not retired.exists()
    assert _source(server).read_text() == "tok-memory-99ef"
