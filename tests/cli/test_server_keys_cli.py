"""The operator's key commands through the real console script, with no engine: a server given
the wrong key refuses to start (exit code 8, one clear line, no traceback) before it touches
the engine; `server rotate-key` and `server backup` work on a stopped server's data and say
what to do next."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography.fernet import Fernet

from dockyard.exit_codes import ExitCode
from dockyard.secrets.crypto import KEY_FILE
from dockyard.server.keys import load_cipher
from dockyard.server.settings import ServerSettings
from dockyard.store.store import Store
from tests.support.cli import run_cli

VALUE = "cli-key-value-5c2e"


def _data(tmp_path: Path) -> Path:
    """A stopped server's data directory with one config, under its default key file."""
    data = tmp_path / "home" / "data" / "server"
    data.mkdir(parents=True)
    settings = ServerSettings(data=data)
    cipher = load_cipher(settings)
    store = Store.open(settings.database_url)
    store.set_config(store.ensure_account("alice"), "shop", "API_TOKEN", cipher.encrypt(VALUE))
    store.close()
    return data


def test_a_server_with_the_wrong_key_refuses_to_start(tmp_path: Path) -> None:
    data = _data(tmp_path)
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(Fernet.generate_key())
    done = run_cli("server", "--listen", "127.0.0.1:0", "--no-ingress", "--key-file",
                   str(wrong), cwd=tmp_path, home=tmp_path / "home",
                   DOCKER_HOST="unix:///nonexistent.sock")  # refused before the engine
    assert done.code == ExitCode.KEY_REFUSED, done
    assert f"error: the key file {wrong} does not open 1 of the 1 encrypted values" in done.err
    assert "hint: give the key the values were encrypted with" in done.err
    assert "Traceback" not in done.err and VALUE not in done.err + done.out
    assert not (data / "server.json").exists()


def test_rotate_key_then_backup(tmp_path: Path) -> None:
    data = _data(tmp_path)
    old_key = (data / KEY_FILE).read_bytes()
    new = tmp_path / "keys" / "new.key"
    new.parent.mkdir()
    done = run_cli("server", "rotate-key", "--data", str(data), "--new-key-file", str(new),
                   cwd=tmp_path, home=tmp_path / "home")
    assert done.code == 0, done
    assert done.err.splitlines() == [
        f"1 value(s) re-encrypted with the key in {new} (made); the key file "
        f"{data / KEY_FILE} opens none of them now",
        f"start the server with --key-file {new} (or DOCKYARD_KEY_FILE), then delete the old "
        "key and its copies; services that use configs are replaced at their next "
        "`compose up`"]
    assert stat.S_IMODE(new.stat().st_mode) == 0o600 and new.read_bytes() != old_key

    again = run_cli("server", "rotate-key", "--data", str(data), "--new-key-file",
                    str(tmp_path / "third.key"), cwd=tmp_path, home=tmp_path / "home")
    assert again.code == ExitCode.KEY_REFUSED, again  # the data dir's key opens nothing now
    assert not (tmp_path / "third.key").exists()

    backup = tmp_path / "backup.db"
    done = run_cli("server", "backup", str(backup), "--data", str(data), cwd=tmp_path,
                   home=tmp_path / "home", DOCKYARD_KEY_FILE=str(new))
    assert done.code == 0, done
    assert f"store backed up to {backup}" in done.err
    assert f"keep a copy of the key file {new} apart from the backup" in done.err
    assert VALUE.encode() not in backup.read_bytes()
    refused = run_cli("server", "backup", str(backup), "--data", str(data), cwd=tmp_path,
                      home=tmp_path / "home")
    assert refused.code == ExitCode.USAGE and "already exists" in refused.err, refused
