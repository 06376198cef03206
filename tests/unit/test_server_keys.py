"""The config key (`server.keys`): where it comes from, the refusal of a key that does not open
the store (which then changes nothing), never a new key over existing values, rotation of every
encrypted column in one transaction, and the backup (`server.backup`)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dockyard.errors import UsageError
from dockyard.exit_codes import ExitCode
from dockyard.secrets.crypto import KEY_FILE, ConfigCipher, new_key, read_key_file
from dockyard.server.backup import backup
from dockyard.server.keys import KeyRefused, check_key, load_cipher, rotate_key
from dockyard.server.settings import ServerSettings
from dockyard.store import schema
from dockyard.store.store import Store

VALUES = {"API_TOKEN": "tok-4f9a-hunter2", "DB_PASSWORD": "pw-77c1-swordfish"}
REGISTRY_PASSWORD = "reg-pw-0b3e-secret"


def _fill(settings: ServerSettings) -> ConfigCipher:
    """A store with current configs, a replaced (history) value and a registry login, all
    encrypted with the settings' key."""
    cipher = load_cipher(settings)
    store = Store.open(settings.database_url)
    alice = store.ensure_account("alice")
    store.set_config(alice, "shop", "API_TOKEN", cipher.encrypt("an-older-value-9d2"))
    for name, value in VALUES.items():
        store.set_config(alice, "shop", name, cipher.encrypt(value))
    store.set_registry_credential(alice, "ghcr.io", "al", cipher.encrypt(REGISTRY_PASSWORD))
    store.close()
    return cipher


def _fill_large(settings: ServerSettings) -> None:
    """Values over a page (kept in overflow pages, which a rewrite frees)."""
    cipher = load_cipher(settings)
    store = Store.open(settings.database_url)
    bob = store.ensure_account("bob")
    for index in range(3):
        store.set_config(bob, "big", f"CERT_{index}", cipher.encrypt(f"{index}" * 40_000))
    store.close()


def _fingerprint(data: Path) -> dict[str, str]:
    """What the data directory holds: each file's digest, and the store's rows."""
    files = {str(p.relative_to(data)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(data.rglob("*")) if p.is_file() and "-wal" not in p.name
             and "-shm" not in p.name and p.name != "dockyard.db"}
    with sqlite3.connect(data / "dockyard.db") as conn:
        files["rows"] = hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()
    return files


def _settings(tmp_path: Path, **options: object) -> ServerSettings:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return ServerSettings(data=data, **options)  # type: ignore[arg-type]


def test_the_first_start_makes_a_0600_key_in_the_data_directory(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    check_key(settings)  # no store yet: nothing to open
    cipher = load_cipher(settings)
    path = settings.data / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_cipher(settings).decrypt(cipher.encrypt("x-value"), name="X") == "x-value"


def test_a_key_file_outside_the_data_or_the_key_itself_is_used(tmp_path: Path) -> None:
    outside = tmp_path / "etc" / "dockyard.key"
    outside.parent.mkdir()
    settings = _settings(tmp_path, key_file=outside)
    cipher = _fill(settings)
    assert outside.is_file() and not (settings.data / KEY_FILE).exists()
    check_key(settings)
    key = outside.read_text().strip()
    from_env = _settings(tmp_path, key=key)
    check_key(from_env)
    token = cipher.encrypt("v-123456")
    assert load_cipher(from_env).decrypt(token, name="V") == "v-123456"
    assert key not in repr(from_env)


def test_a_wrong_key_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _fill(settings)
    before = _fingerprint(settings.data)
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(new_key() + b"\n")
    with pytest.raises(KeyRefused) as caught:
        check_key(_settings(tmp_path, key_file=wrong))
    assert caught.value.exit_code is ExitCode.KEY_REFUSED and int(ExitCode.KEY_REFUSED) == 8
    assert str(wrong) in caught.value.message and "does not open 4 of the 4" in \
        caught.value.message
    assert caught.value.hint and "--key-file" in caught.value.hint
    with pytest.raises(KeyRefused):
        check_key(_settings(tmp_path, key=new_key().decode()))
    assert _fingerprint(settings.data) == before


def test_a_lost_key_is_never_made_again_over_existing_values(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _fill(settings)
    (settings.data / KEY_FILE).unlink()
    before = _fingerprint(settings.data)
    with pytest.raises(KeyRefused) as caught:
        check_key(settings)
    assert "holds 4 encrypted value(s)" in caught.value.message
    assert caught.value.hint and "never makes a new key" in caught.value.hint
    assert not (settings.data / KEY_FILE).exists()
    assert _fingerprint(settings.data) == before


def test_a_damaged_key_is_refused_clearly(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _fill(settings)
    (settings.data / KEY_FILE).write_text("not a key\n")
    with pytest.raises(KeyRefused) as caught:
        check_key(settings)
    assert "does not hold a valid key" in caught.value.message


def _stored(settings: ServerSettings) -> list[str]:
    store = Store(settings.database_url)
    try:
        return store.encrypted_values()
    finally:
        store.close()


def test_rotation_re_encrypts_every_column_and_the_old_key_opens_nothing(
        tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    old = _fill(settings)
    _fill_large(settings)
    assert {table for table, _ in Store.ENCRYPTED_COLUMNS} <= set(schema.metadata.tables)
    before = _stored(settings)
    assert len(before) == 7 and all(old.opens(v) for v in before)  # 5 + 1 replaced + login

    done = rotate_key(settings, tmp_path / "new.key")
    assert done.values == 7 and done.created
    assert stat.S_IMODE((tmp_path / "new.key").stat().st_mode) == 0o600
    new = read_key_file(tmp_path / "new.key")
    assert new is not None
    after = _stored(settings)
    assert len(after) == 7
    assert not any(old.opens(v) for v in after)
    for path in settings.data.glob("dockyard.db*"):  # nor in a free page or the WAL
        raw = path.read_bytes()
        assert not [v for v in before if v[:40].encode() in raw], path
    assert sorted(new.decrypt(v, name="v") for v in after) == sorted(
        [*VALUES.values(), "an-older-value-9d2", REGISTRY_PASSWORD,
         *(f"{index}" * 40_000 for index in range(3))])
    with pytest.raises(KeyRefused):
        check_key(settings)  # the old key file in the data directory opens nothing now
    check_key(_settings(tmp_path, key_file=tmp_path / "new.key"))


def test_rotation_with_a_given_key_file_and_its_refusals(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _fill(settings)
    given = tmp_path / "given.key"
    given.write_bytes(new_key() + b"\n")
    with pytest.raises(UsageError, match="is the current key file"):
        rotate_key(settings, settings.data / KEY_FILE)
    same = tmp_path / "same.key"
    same.write_bytes((settings.data / KEY_FILE).read_bytes())
    with pytest.raises(UsageError, match="holds the current key"):
        rotate_key(settings, same)
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                               "dockyard.server"])  # what server.json names must be a server
    try:
        while b"dockyard.server" not in Path(f"/proc/{server.pid}/cmdline").read_bytes():
            time.sleep(0.01)  # until it runs that command line (not pytest's, forked)
        (settings.data / "server.json").write_text(json.dumps({"pid": server.pid}))
        with pytest.raises(UsageError, match=f"a server \\(pid {server.pid}\\) runs on"):
            rotate_key(settings, given)
        (settings.data / "server.json").write_text(json.dumps({"pid": os.getpid()}))
        rotate_key(settings, tmp_path / "unused.key")  # a stale file naming another program
    finally:
        server.kill()
        server.wait()
    given.write_bytes(new_key() + b"\n")
    settings = _settings(tmp_path, key_file=tmp_path / "unused.key")
    done = rotate_key(settings, given)
    assert done.values == 4 and not done.created


def test_rotation_is_all_or_nothing(tmp_path: Path) -> None:
    """A value the current key does not open (a damaged store) stops the rotation before
    anything is written: no value is left under a key nobody has."""
    settings = _settings(tmp_path)
    _fill(settings)
    stranger = ConfigCipher(new_key(), "another key")
    store = Store.open(settings.database_url)
    store.set_config(store.ensure_account("bob"), "p", "X", stranger.encrypt("x-value-1"))
    store.close()
    before = _fingerprint(settings.data)
    with pytest.raises(KeyRefused):
        rotate_key(settings, tmp_path / "new.key")
    assert _fingerprint(settings.data) == before

    # And the transaction itself: a value that fails midway rolls every row back.
    store = Store.open(settings.database_url)
    seen: list[str] = []

    def change(token: str) -> str:
        seen.append(token)
        if len(seen) == 3:
            raise RuntimeError("stop")
        return "changed"
    with pytest.raises(RuntimeError):
        store.reencrypt(change)
    assert "changed" not in store.encrypted_values()
    store.close()


def test_a_backup_is_a_private_consistent_copy_without_the_key(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    cipher = _fill(settings)
    store = Store.open(settings.database_url)  # the server has the store open meanwhile
    target = tmp_path / "backup.db"
    done = backup(settings, target)
    assert done.path == target and done.size == target.stat().st_size > 0
    assert str(settings.data / KEY_FILE) in done.key
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with pytest.raises(UsageError, match="already exists"):
        backup(settings, target)
    store.close()
    copy = Store.open(f"sqlite:///{target}")
    alice = copy.ensure_account("alice")
    values = {name: cipher.decrypt(token, name=name)
              for name, token in copy.encrypted_configs(alice, "shop").items()}
    copy.close()
    assert values == VALUES
    raw = target.read_bytes()
    assert not any(v.encode() in raw for v in [*VALUES.values(), REGISTRY_PASSWORD])
    assert (settings.data / KEY_FILE).read_bytes().strip() not in raw
