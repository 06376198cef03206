"""Config values encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256), one key per server.

The key file (`<data>/config.key`, mode 0600) is created once. A store read with another key
(the file lost or replaced) is a clear error naming the file, never garbage: Fernet's HMAC
refuses a value it did not encrypt.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from dockyard.api_errors import ConfigKeyError as ConfigKeyError
from dockyard.files import write_private

KEY_FILE = "config.key"


class ConfigCipher:
    def __init__(self, key: bytes, path: Path) -> None:
        self.path = path
        try:
            self._fernet = Fernet(key)
        except ValueError as exc:
            raise ConfigKeyError(f"the config key file {path} is not a valid key",
                                 hint="restore it from a backup; without it the stored "
                                 "configs cannot be read and must be set again") from exc

    @classmethod
    def load_or_create(cls, directory: Path) -> ConfigCipher:
        """The server's key under `directory`, created (0600) the first time."""
        path = directory / KEY_FILE
        try:
            return cls(path.read_bytes().strip(), path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ConfigKeyError(f"the config key file {path} cannot be read: {exc.strerror}",
                                 hint="check its owner and mode (0600)") from exc
        directory.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        try:
            write_private(path, key + b"\n", exclusive=True)
        except FileExistsError:  # another process made it first: use theirs
            return cls(path.read_bytes().strip(), path)
        return cls(key, path)

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str, *, name: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ConfigKeyError(
                f"config {name!r} cannot be decrypted with the key in {self.path}",
                hint="the key file was replaced or lost: restore it, or set the configs "
                "again with `dockyard config set`") from None
