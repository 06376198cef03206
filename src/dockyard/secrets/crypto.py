"""Config values encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256), one key per server.

Where the key comes from (a file outside the data directory, `DOCKYARD_KEY`, or by default
`<data>/config.key`) is `dockyard.server.keys`' business; this module only holds a key and uses
it. A value read with another key is a clear error naming where the key came from, never
garbage: Fernet's HMAC refuses a value it did not encrypt.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from dockyard.api_errors import ConfigKeyError as ConfigKeyError
from dockyard.files import write_private

KEY_FILE = "config.key"


def new_key() -> bytes:
    """A fresh key (32 random bytes, URL-safe base64), as a key file holds it."""
    return Fernet.generate_key()


class ConfigCipher:
    """One key: encrypts and decrypts values, and keys the digests of values (`digest_key`).

    `where` says where the key came from ("the key file /etc/dockyard/config.key",
    "DOCKYARD_KEY"), for messages; the key itself is never in one.
    """

    def __init__(self, key: bytes, where: str) -> None:
        self.where = where
        self._key = key.strip()
        try:
            self._fernet = Fernet(self._key)
        except ValueError as exc:
            raise ConfigKeyError(f"{where} does not hold a valid key",
                                 hint="a key is 44 characters of URL-safe base64, as "
                                 "`dockyard server rotate-key` writes it; restore the right "
                                 "one from a backup") from exc

    @classmethod
    def load_or_create(cls, directory: Path) -> ConfigCipher:
        """The key in `<directory>/config.key`, created (0600) the first time."""
        found = read_key_file(directory / KEY_FILE)
        if found is not None:
            return found
        directory.mkdir(parents=True, exist_ok=True)
        return create_key_file(directory / KEY_FILE)

    @property
    def digest_key(self) -> bytes:
        """The HMAC key of config digests (`secrets.resolve.values_digest`), derived from the
        key as a key file holds it (with its newline, as it always was)."""
        return hashlib.sha256(b"dockyard config digest\0" + self._key + b"\n").digest()

    def same_key(self, other: ConfigCipher) -> bool:
        return self._key == other._key

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str, *, name: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ConfigKeyError(
                f"config {name!r} cannot be decrypted with {self.where}",
                hint="the key was replaced or lost: restore it, or set the configs "
                "again with `dockyard config set`") from None

    def opens(self, token: str) -> bool:
        """Whether `token` was encrypted with this key."""
        try:
            self._fernet.decrypt(token.encode())
        except InvalidToken:
            return False
        return True


def key_file_label(path: Path) -> str:
    return f"the key file {path}"


def read_key_file(path: Path) -> ConfigCipher | None:
    """The key in `path`; None when there is no such file."""
    try:
        return ConfigCipher(path.read_bytes(), key_file_label(path))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigKeyError(f"{key_file_label(path)} cannot be read: {exc.strerror}",
                             hint="check its owner and mode (0600)") from exc


def create_key_file(path: Path) -> ConfigCipher:
    """A new key written to `path` (0600). When another process made the file first, its key
    is used: a key file is never overwritten."""
    try:
        write_private(path, new_key() + b"\n", exclusive=True)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigKeyError(f"{key_file_label(path)} cannot be written: {exc.strerror}",
                             hint="its directory must exist and be writable") from exc
    found = read_key_file(path)
    assert found is not None
    return found
