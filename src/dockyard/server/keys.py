"""The server's config key: where it comes from, the check that it opens the store, rotation.

The key comes from, in this order: `--key-file PATH` (or `DOCKYARD_KEY_FILE`), `DOCKYARD_KEY`
(the key itself), else `<data>/config.key`. A key file that does not exist is made (0600) only
when the store holds no encrypted value: Dockyard never makes a new key, and never overwrites
one, while values encrypted under a key exist. A server whose key does not open every stored
value does not start (`KeyRefused`, exit code 8) and changes nothing.

`rotate_key` re-encrypts every stored value under a new key in one transaction, with the server
stopped: afterwards the old key opens nothing in the store.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import DockyardError, UsageError
from dockyard.exit_codes import ExitCode
from dockyard.secrets.crypto import (
    KEY_FILE,
    ConfigCipher,
    ConfigKeyError,
    create_key_file,
    read_key_file,
)
from dockyard.server.settings import ServerSettings
from dockyard.store.store import Store

KEY_VARIABLE = "DOCKYARD_KEY"
STATE_FILE = "server.json"  # as server.main writes it


class KeyRefused(DockyardError):
    """The config key is missing or does not open the values in the store: the server does
    not start, and nothing is changed."""

    exit_code = ExitCode.KEY_REFUSED


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where the key comes from: a file (`path`), or DOCKYARD_KEY (`path` None)."""

    path: Path | None
    default: bool  # the data directory's own key file, nothing set

    @property
    def where(self) -> str:
        return f"the key file {self.path}" if self.path is not None else KEY_VARIABLE


def key_source(settings: ServerSettings) -> KeySource:
    if settings.key_file is not None:
        return KeySource(settings.key_file, default=False)
    if settings.key:
        return KeySource(None, default=False)
    return KeySource(settings.data / KEY_FILE, default=True)


def load_cipher(settings: ServerSettings) -> ConfigCipher:
    """The key as `settings` say, its file made when missing (`check_key` ran first in a
    server: it refuses to make one while encrypted values exist)."""
    source = key_source(settings)
    found = _existing_cipher(settings, source)
    if found is not None:
        return found
    assert source.path is not None  # DOCKYARD_KEY always gives a key
    if source.default:
        source.path.parent.mkdir(parents=True, exist_ok=True)
    return create_key_file(source.path)


def check_key(settings: ServerSettings) -> None:
    """Refuse (`KeyRefused`) a key that is missing or does not open every encrypted value of
    the store; before the server opens the store, so a refused start changes nothing."""
    source = key_source(settings)
    values = stored_values(settings)
    try:
        cipher = _existing_cipher(settings, source)
    except ConfigKeyError as exc:
        raise KeyRefused(exc.message, hint=exc.hint) from None
    if cipher is None:
        if values:
            raise KeyRefused(
                f"the store holds {len(values)} encrypted value(s) but {source.where} does "
                "not exist", hint=_restore_hint(settings, source))
        return
    unopened = sum(1 for value in values if not cipher.opens(value))
    if unopened:
        raise KeyRefused(
            f"{source.where} does not open {unopened} of the {len(values)} encrypted values "
            f"in the store ({_store_name(settings)})", hint=_restore_hint(settings, source))


def _existing_cipher(settings: ServerSettings, source: KeySource) -> ConfigCipher | None:
    if source.path is None:
        assert settings.key is not None
        return ConfigCipher(settings.key.encode(), KEY_VARIABLE)
    return read_key_file(source.path)


def _restore_hint(settings: ServerSettings, source: KeySource) -> str:
    default = settings.data / KEY_FILE
    if source.default:
        return (f"restore the key file {default} from your backup, or give the key the "
                "values were encrypted with: --key-file PATH (or DOCKYARD_KEY_FILE, "
                "DOCKYARD_KEY). Dockyard never makes a new key while values encrypted under "
                "another one exist")
    return ("give the key the values were encrypted with (--key-file PATH, DOCKYARD_KEY_FILE "
            "or DOCKYARD_KEY); after `dockyard server rotate-key`, that is the new key file")


def _store_name(settings: ServerSettings) -> str:
    return str(settings.data / "dockyard.db") if not settings.store_url else "--store-url"


def stored_values(settings: ServerSettings) -> list[str]:
    """Every encrypted value of the store, read without creating or upgrading it."""
    if not settings.store_url and not (settings.data / "dockyard.db").exists():
        return []
    store = Store(settings.database_url)
    try:
        return store.encrypted_values()
    finally:
        store.close()


# -- rotation ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Rotation:
    """What `rotate_key` did: how many values it re-encrypted, the new key file (made now
    or given), and where the old key was."""

    values: int
    new_key_file: Path
    created: bool
    old_key: str


def rotate_key(settings: ServerSettings, new_key_file: Path) -> Rotation:
    """Re-encrypt every value of the store under the key in `new_key_file` (made, 0600, when
    it does not exist), in one transaction. The server must be stopped; the current key must
    open every value (else nothing is changed)."""
    pid = running_server(settings.data)
    if pid is not None:
        raise UsageError(f"a server (pid {pid}) runs on {settings.data}",
                         hint="stop it first: it keeps using the old key, and values it "
                         "writes during the rotation would be lost to the new one")
    if not settings.store_url and not (settings.data / "dockyard.db").exists():
        raise UsageError(f"no Dockyard server data in {settings.data}",
                         hint="give the server's data directory with --data (or "
                         "DOCKYARD_DATA)")
    check_key(settings)
    source = key_source(settings)
    old = _existing_cipher(settings, source)
    if old is None:  # no key and no value: nothing was ever encrypted
        raise UsageError(f"{source.where} does not exist: there is no key to rotate",
                         hint="start the server once, or give the key with --key-file")
    created = not new_key_file.exists()
    if source.path is not None and new_key_file.resolve() == source.path.resolve():
        raise UsageError(f"--new-key-file {new_key_file} is the current key file",
                         hint="write the new key to another path; then start the server with "
                         "it (--key-file) and delete the old one")
    try:
        new = create_key_file(new_key_file) if created else read_key_file(new_key_file)
    except ConfigKeyError as exc:
        raise UsageError(exc.message, hint=exc.hint) from None
    assert new is not None
    if new.same_key(old):
        raise UsageError(f"{new_key_file} holds the current key", hint="give a new key file "
                         "(one that does not exist yet is made for you)")
    store = Store(settings.database_url)
    try:
        count = store.reencrypt(lambda token: new.encrypt(old.decrypt(token, name="a value")))
        store.compact()  # the old values stay in no free page and no WAL frame
    finally:
        store.close()
    return Rotation(count, new_key_file, created, source.where)


def running_server(data: Path) -> int | None:
    """The pid of the server that runs on `data` (its server.json names a live process)."""
    try:
        pid = int(json.loads((data / STATE_FILE).read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    try:  # a stale file whose pid now belongs to another program
        if b"dockyard" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None
    except OSError:
        pass
    return pid
