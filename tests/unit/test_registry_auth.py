"""Registry logins (`server.registry_auth`) on a real store and key, with a fake engine: checked
before they are kept, encrypted, per account, and the password in no message or repr."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fakes import FakeDriver

from dockyard.runtime.errors import RegistryLoginFailed
from dockyard.secrets.crypto import ConfigCipher, ConfigKeyError
from dockyard.server.registry_auth import (
    MAX_REGISTRIES,
    RegistryAuth,
    RegistryCredentialInvalid,
    RegistryCredentials,
    RegistryLoginBusy,
    RegistryLoginRefused,
    RegistryUnreachable,
)
from dockyard.store.store import Account, Store

HOST = "registry.example.com:5000"
PASSWORD = "pw-alice-7f3c9e"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'dockyard.db'}")
    yield s
    s.close()


@pytest.fixture
def driver() -> FakeDriver:
    fake = FakeDriver()
    fake.registry_users[HOST] = ("alice", PASSWORD)
    fake.registry_users["https://index.docker.io/v1/"] = ("al", PASSWORD)
    return fake


@pytest.fixture
def logins(store: Store, driver: FakeDriver, tmp_path: Path) -> RegistryCredentials:
    return RegistryCredentials(store, ConfigCipher.load_or_create(tmp_path / "keys"), driver)


def test_auth_hides_its_password_and_gives_the_engine_its_auth_config() -> None:
    auth = RegistryAuth("alice", PASSWORD, HOST)
    assert PASSWORD not in repr(auth) and PASSWORD not in str(auth)
    assert auth.as_engine() == {"username": "alice", "password": PASSWORD,
                                "serveraddress": HOST}


def test_a_checked_login_is_kept_encrypted_for_its_account_only(
        logins: RegistryCredentials, store: Store, driver: FakeDriver) -> None:
    alice, bob = store.ensure_account("alice"), store.ensure_account("bob")
    assert logins.login(alice, "HTTPS://Registry.Example.com:5000/v2/", "alice",
                        PASSWORD) == HOST
    assert driver.login_checks == [(HOST, "alice")]
    username, token = store.registry_secret(alice, HOST) or ("", "")
    assert username == "alice" and PASSWORD not in token
    assert [(r.host, r.username) for r in logins.list(alice)] == [(HOST, "alice")]
    assert logins.auth_for(alice, HOST) == RegistryAuth("alice", PASSWORD, HOST)
    assert logins.auth_for(bob, HOST) is None and logins.list(bob) == []
    assert not logins.logout(bob, HOST)
    assert logins.auth_for(alice, HOST) is not None
    assert logins.logout(alice, HOST)
    assert logins.auth_for(alice, HOST) is None and not logins.logout(alice, HOST)


def test_every_spelling_of_docker_hub_is_one_login(logins: RegistryCredentials,
                                                   store: Store, driver: FakeDriver) -> None:
    alice = store.ensure_account("alice")
    assert logins.login(alice, "index.docker.io", "al", PASSWORD) == "docker.io"
    assert driver.login_checks == [("https://index.docker.io/v1/", "al")]
    for spelling in ("docker.io", "registry-1.docker.io", "https://index.docker.io/v1/"):
        assert logins.auth_for(alice, spelling) == RegistryAuth(
            "al", PASSWORD, "https://index.docker.io/v1/")
    assert logins.logout(alice, "registry-1.docker.io")
    assert logins.list(alice) == []


def test_refused_and_unreachable_logins_are_explained_and_not_kept(
        logins: RegistryCredentials, store: Store) -> None:
    alice = store.ensure_account("alice")
    with pytest.raises(RegistryLoginRefused) as refused:
        logins.login(alice, HOST, "alice", "wrong-" + PASSWORD)
    assert HOST in refused.value.message and "'alice'" in refused.value.message
    assert "401" in refused.value.message and refused.value.hint
    with pytest.raises(RegistryUnreachable) as down:
        logins.login(alice, "nowhere.example.org", "alice", PASSWORD)
    assert "nowhere.example.org" in down.value.message and "no such host" in down.value.message
    for error in (refused.value, down.value):
        assert PASSWORD not in f"{error.message} {error.hint}"
    assert logins.list(alice) == []


def test_a_reason_quoting_the_password_is_redacted(store: Store, tmp_path: Path) -> None:
    class Echoing(FakeDriver):
        def check_login(self, server_address: str, username: str, password: str) -> None:
            raise RegistryLoginFailed(f"bad credentials {username}:{password}", denied=True)

    echoing = RegistryCredentials(store, ConfigCipher.load_or_create(tmp_path), Echoing())
    with pytest.raises(RegistryLoginRefused) as refused:
        echoing.login(store.ensure_account("alice"), HOST, "alice", PASSWORD)
    assert PASSWORD not in refused.value.message and "alice:***" in refused.value.message


@pytest.mark.parametrize(("host", "username", "password", "words"), [
    ("bad host", "alice", PASSWORD, "spaces"),
    ("ftp://x.example.com", "alice", PASSWORD, "scheme"),
    (HOST, "", PASSWORD, "no user name"),
    (HOST, "a" * 256, PASSWORD, "over 255"),
    (HOST, "ali\nce", PASSWORD, "control characters"),
    (HOST, "alice", "", "no password"),
    (HOST, "alice", "x" * (8 * 1024 + 1), "over 8 KiB"),
    (HOST, "alice", "pw\0", "NUL"),
])
def test_bad_input_is_refused_before_the_registry_is_asked(
        logins: RegistryCredentials, store: Store, driver: FakeDriver, host: str,
        username: str, password: str, words: str) -> None:
    with pytest.raises(RegistryCredentialInvalid, match=words):
        logins.login(store.ensure_account("alice"), host, username, password)
    assert driver.login_checks == []


def test_an_account_keeps_at_most_fifty_logins(logins: RegistryCredentials, store: Store,
                                               driver: FakeDriver) -> None:
    alice, bob = store.ensure_account("alice"), store.ensure_account("bob")
    for n in range(MAX_REGISTRIES):
        driver.registry_users[f"r{n}.example.com"] = ("alice", PASSWORD)
        logins.login(alice, f"r{n}.example.com", "alice", PASSWORD)
    driver.registry_users["one-more.example.com"] = ("alice", PASSWORD)
    with pytest.raises(RegistryCredentialInvalid, match="50 registries"):
        logins.login(alice, "one-more.example.com", "alice", PASSWORD)
    logins.login(alice, "r0.example.com", "alice", PASSWORD)  # replacing one is no new one
    logins.login(bob, "one-more.example.com", "alice", PASSWORD)  # another account's count
    assert len(logins.list(alice)) == MAX_REGISTRIES


def test_one_login_check_at_a_time_per_account(store: Store, tmp_path: Path) -> None:
    class Slow(FakeDriver):
        def __init__(self) -> None:
            super().__init__()
            self.entered, self.release = threading.Event(), threading.Event()

        def check_login(self, server_address: str, username: str, password: str) -> None:
            if server_address == "slow.example.com":
                self.entered.set()
                self.release.wait(10)

    slow = Slow()
    checks = RegistryCredentials(store, ConfigCipher.load_or_create(tmp_path), slow)
    alice, bob = store.ensure_account("alice"), store.ensure_account("bob")
    waiting = threading.Thread(target=checks.login, args=(alice, "slow.example.com", "a", "pw"))
    waiting.start()
    try:
        assert slow.entered.wait(10)
        with pytest.raises(RegistryLoginBusy):
            checks.login(alice, "other.example.com", "a", "pw")
        checks.login(bob, "other.example.com", "b", "pw")  # another account is not held up
    finally:
        slow.release.set()
        waiting.join(10)
    checks.login(alice, "other.example.com", "a", "pw")
    assert [r.host for r in checks.list(alice)] == ["other.example.com", "slow.example.com"]


def test_a_login_kept_under_another_key_is_a_clear_error(
        logins: RegistryCredentials, store: Store, driver: FakeDriver, tmp_path: Path) -> None:
    alice: Account = store.ensure_account("alice")
    logins.login(alice, HOST, "alice", PASSWORD)
    other = RegistryCredentials(store, ConfigCipher.load_or_create(tmp_path / "other"), driver)
    with pytest.raises(ConfigKeyError, match=f"registry {HOST}") as lost:
        other.auth_for(alice, HOST)
    assert "registry login" in str(lost.value.hint)
