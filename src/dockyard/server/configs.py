"""Configs on the server: set, list, remove, and the values a deployment needs.

Values are encrypted before they reach the store (`dockyard.secrets.crypto`) and decrypted
only when a deployment starts containers; they never enter a response, an event or a log:
whatever the server says about a project is passed through `redact` with its values.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime

from dockyard.api_errors import ConfigInvalid as ConfigInvalid
from dockyard.api_errors import ConfigNotFound as ConfigNotFound
from dockyard.errors import DockyardError
from dockyard.secrets.crypto import ConfigCipher
from dockyard.secrets.resolve import is_config_name, redact
from dockyard.store.store import Account, Store

MAX_VALUE_BYTES = 64 * 1024


MAX_CONFIGS_PER_PROJECT = 100
MIN_CONFIG_PROJECTS = 5  # with a project limit, configs may be set for this many (or 2x)


class Configs:
    """Config values, encrypted at rest, and how many an account may keep.

    Every project keeps at most `MAX_CONFIGS_PER_PROJECT` configs. With a project limit (a
    shared server), configs may be set for at most max(5, 2 x the limit) projects: a user sets
    them before the first deployment, but a tenant must not grow the store through projects it
    never deploys. Both are checked under one lock with the write, so they cannot race.
    """

    def __init__(self, store: Store, cipher: ConfigCipher, max_projects: int = 0) -> None:
        self.store = store
        self.cipher = cipher
        self.max_projects = max(MIN_CONFIG_PROJECTS, 2 * max_projects) if max_projects else 0
        self._lock = threading.Lock()
        self.digest_key = cipher.digest_key

    def set(self, account: Account, project: str, name: str, value: str, *,
            if_not_set: bool = False) -> tuple[bool, datetime | None]:
        """Store `value` as config `name`; (whether it was written, when)."""
        check_name(name)
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise ConfigInvalid(f"the value of config {name!r} is over "
                                f"{MAX_VALUE_BYTES // 1024} KiB",
                                hint="store a smaller value (a key or a path, not a file)")
        if "\0" in value:  # no environment or file can carry it as the user meant
            raise ConfigInvalid(f"the value of config {name!r} holds a NUL byte",
                                hint="store text without NUL characters (base64 for binary)")
        with self._lock:
            existing = [n for n, _ in self.store.configs(account, project)]
            if if_not_set and name in existing:
                return False, None
            if name not in existing:
                self._check_room(account, project, len(existing))
            return True, self.store.set_config(account, project, name,
                                               self.cipher.encrypt(value))

    def _check_room(self, account: Account, project: str, count: int) -> None:
        if count >= MAX_CONFIGS_PER_PROJECT:
            raise ConfigInvalid(f"project {project!r} already has {count} configs, the most "
                                "a project may keep", hint="remove one (`dockyard config rm`)")
        if self.max_projects and count == 0:
            others = sorted(self.store.config_counts(account))
            if len(others) >= self.max_projects:
                raise ConfigInvalid(
                    f"configs are already set for {len(others)} projects of this account, the "
                    f"most this server allows ({', '.join(others[:10])})",
                    hint="remove the configs of a project you no longer use (`dockyard config "
                    "rm -p NAME ...`)")

    def names(self, account: Account, project: str) -> list[tuple[str, datetime]]:
        return self.store.configs(account, project)

    def remove(self, account: Account, project: str, names: Iterable[str]) -> list[str]:
        wanted = list(dict.fromkeys(names))
        for name in wanted:
            check_name(name)
        removed = self.store.remove_configs(account, project, wanted)
        missing = [n for n in wanted if n not in removed]
        if missing:
            raise ConfigNotFound(
                f"project {project!r} has no config {', '.join(map(repr, missing))}"
                + (f" (removed: {', '.join(removed)})" if removed else ""),
                hint="`dockyard config ls` lists the project's configs")
        return removed

    def values(self, account: Account, project: str) -> dict[str, str]:
        """Every config of the project, decrypted (for a deployment only)."""
        return {name: self.cipher.decrypt(token, name=name)
                for name, token in self.store.encrypted_configs(account, project).items()}

    def versioned_values(self, account: Account, project: str) -> dict[str, tuple[str, int]]:
        """Every config of the project, decrypted, with its version (for a deployment only)."""
        return {name: (self.cipher.decrypt(token, name=name), version) for name, (token, version)
                in self.store.encrypted_configs_versioned(account, project).items()}

    def version_values(self, account: Account, project: str,
                       versions: Mapping[str, int]) -> dict[str, str]:
        """The values of the configs at `versions` that are still kept, decrypted (a rollback
        runs them; `rollback.rollback_inputs` refused the ones that are gone)."""
        return {name: self.cipher.decrypt(token, name=name) for name, token
                in self.store.encrypted_config_versions(account, project, versions).items()}

    def redactor(self, account: Account, project: str) -> RedactText:
        """Redacts the current values and the last replaced ones (containers started before
        a `config set` keep the old value until the next `up` replaces them)."""
        values = list(self.values(account, project).values())
        for name, token in self.store.encrypted_history(account, project):
            try:
                values.append(self.cipher.decrypt(token, name=name))
            except DockyardError:
                continue
        return RedactText(values)


class RedactText:
    """Replaces a project's config values in any text the server is about to say."""

    def __init__(self, values: list[str]) -> None:
        self.values = values

    def __call__(self, text: str) -> str:
        return redact(text, self.values) if self.values else text


def check_name(name: str) -> None:
    if not is_config_name(name):
        raise ConfigInvalid(f"{name!r} is not a valid config name",
                            hint="use 1 to 64 letters, digits and underscores, not starting "
                            "with a digit (^[A-Za-z_][A-Za-z0-9_]{0,63}$)")
