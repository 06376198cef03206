"""Registry logins per account: checked against the registry, encrypted at rest, used only for
that account's pulls and pushes.

A login is checked through the engine (`Driver.check_login`, the engine's `POST /auth`) before
it is kept, as `docker login` does. The password is encrypted with the key configs use
(`dockyard.secrets.crypto`) and decrypted only to hand the engine an auth config for one pull or
push of the same account (`auth_for`). It never enters a response, an error, a log or a repr.
"""

from __future__ import annotations

import builtins
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime

from dockyard.api_errors import RegistryCredentialInvalid as RegistryCredentialInvalid
from dockyard.api_errors import RegistryLoginBusy as RegistryLoginBusy
from dockyard.api_errors import RegistryLoginRefused as RegistryLoginRefused
from dockyard.api_errors import RegistryUnreachable as RegistryUnreachable
from dockyard.errors import DockyardError
from dockyard.registry.reference import auth_server_address, normalize_host
from dockyard.runtime.driver import Driver
from dockyard.runtime.errors import RegistryLoginFailed
from dockyard.secrets.crypto import ConfigCipher, ConfigKeyError
from dockyard.server.scrub import scrub_engine_text
from dockyard.store.store import Account, Store

log = logging.getLogger("dockyard.server")

MAX_REGISTRIES = 50  # logins one account may keep
MAX_USERNAME = 255  # characters (the store's column)
MAX_PASSWORD_BYTES = 8 * 1024  # a password or an access token (ECR's are about 2 KiB)


@dataclass(frozen=True, slots=True)
class RegistryAuth:
    """What the engine needs to pull from or push to one registry as one user."""

    username: str
    password: str = field(repr=False)
    server_address: str

    def as_engine(self) -> dict[str, str]:
        """docker-py's `auth_config` (the engine's X-Registry-Auth)."""
        return {"username": self.username, "password": self.password,
                "serveraddress": self.server_address}


@dataclass(frozen=True, slots=True)
class RegistryLogin:
    """A stored login as anyone may see it: no secret."""

    host: str
    username: str
    updated_at: datetime


class RegistryCredentials:
    def __init__(self, store: Store, cipher: ConfigCipher, driver: Driver) -> None:
        self.store = store
        self.cipher = cipher
        self.driver = driver
        self._lock = threading.Lock()  # the count limit is checked with the write
        self._checking: set[int] = set()  # accounts whose login the registry is checking

    def login(self, account: Account, host: str, username: str, password: str) -> str:
        """Check the login against the registry, then keep it; returns the host as stored
        ("docker.io" for every spelling of Docker Hub)."""
        key = host_key(host)
        check_username(username)
        check_password(password)
        self._check_room(account, key)  # before the registry is asked, and again below
        with self._lock:
            if account.id in self._checking:
                raise RegistryLoginBusy(
                    "another registry login of this account is being checked",
                    hint="wait for it to finish, then log in again")
            self._checking.add(account.id)
        try:
            self.driver.check_login(auth_server_address(key), username, password)
        except RegistryLoginFailed as exc:
            raise _explained(exc, key, username, password) from None
        finally:
            with self._lock:
                self._checking.discard(account.id)
        with self._lock:
            self._check_room(account, key)
            self.store.set_registry_credential(account, key, username,
                                               self.cipher.encrypt(password))
        log.info("registry login: account %s, host %s, user %s", account.name, key, username)
        return key

    def logout(self, account: Account, host: str) -> bool:
        """Forget the account's login for `host`; False when there was none."""
        removed = self.store.remove_registry_credential(account, host_key(host))
        if removed:
            log.info("registry logout: account %s, host %s", account.name, host_key(host))
        return removed

    def auth_for(self, account: Account, host: str) -> RegistryAuth | None:
        """The account's login for `host` (as `registry_host` names it), or None."""
        try:
            key = normalize_host(host)
        except ValueError:
            return None
        found = self.store.registry_secret(account, key)
        if found is None:
            return None
        username, token = found
        try:
            password = self.cipher.decrypt(token, name=key)
        except ConfigKeyError:
            raise ConfigKeyError(
                f"the login for registry {key} cannot be decrypted with "
                f"{self.cipher.where}",
                hint=f"the key file was replaced or lost: restore it, or log in again with "
                f"`dockyard registry login {key}`") from None
        return RegistryAuth(username, password, auth_server_address(key))

    def _check_room(self, account: Account, key: str) -> None:
        hosts = [h for h, _, _ in self.store.registry_credentials(account)]
        if key not in hosts and len(hosts) >= MAX_REGISTRIES:
            raise RegistryCredentialInvalid(
                f"this account already has logins for {len(hosts)} registries, the most it "
                "may keep", hint="log out of one you no longer use (`dockyard registry logout "
                "HOST`; `dockyard registry ls` lists them)")

    def list(self, account: Account) -> builtins.list[RegistryLogin]:
        """The account's logins by host: never their passwords."""
        return [RegistryLogin(h, u, at) for h, u, at in self.store.registry_credentials(account)]


def host_key(host: str) -> str:
    """The host as logins are keyed, or `RegistryCredentialInvalid`."""
    try:
        return normalize_host(host)
    except ValueError as exc:
        raise RegistryCredentialInvalid(str(exc)) from None


def check_username(username: str) -> None:
    if not username:
        raise RegistryCredentialInvalid("no user name given for the registry login",
                                        hint="give one with -u USER")
    if len(username) > MAX_USERNAME:
        raise RegistryCredentialInvalid(
            f"the user name is {len(username)} characters long, over {MAX_USERNAME}",
            hint="check the user name given with -u")
    if any(ord(c) < 32 or ord(c) == 127 for c in username):
        raise RegistryCredentialInvalid("the user name holds control characters",
                                        hint="check the user name given with -u")


def check_password(password: str) -> None:
    if not password:
        raise RegistryCredentialInvalid("no password given for the registry login",
                                        hint="type it when asked, or pipe it to "
                                        "--password-stdin")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise RegistryCredentialInvalid(
            f"the password is over {MAX_PASSWORD_BYTES // 1024} KiB",
            hint="check what was given as the password (one line with --password-stdin)")
    if "\0" in password:
        raise RegistryCredentialInvalid("the password holds a NUL byte",
                                        hint="check what was given as the password")


def _explained(exc: RegistryLoginFailed, host: str, username: str,
               password: str) -> DockyardError:
    """The engine's reason as an error for people, the password never in it."""
    reason = scrub_engine_text(exc.reason)
    if len(password) >= 4:
        reason = reason.replace(password, "***")
    if exc.denied:
        return RegistryLoginRefused(
            f"registry {host} refused the login of user {username!r}: {reason}",
            hint="check the user name and password (or access token); nothing was stored")
    return RegistryUnreachable(
        f"cannot check the login: the Dockyard server did not reach registry {host}: {reason}",
        hint="check the host name and port; the server's engine must reach the registry (one "
        "with its own CA needs /etc/docker/certs.d/HOST/ca.crt on the server); nothing was "
        "stored")
