"""Registry credentials in the store: per account, replaced in place, removed with the account."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'dockyard.db'}")
    yield s
    s.close()


def test_credentials_are_per_account_and_replaced_in_place(store: Store) -> None:
    alice, bob = store.ensure_account("alice"), store.ensure_account("bob")
    store.set_registry_credential(alice, "registry.example.com", "al", "enc-1")
    store.set_registry_credential(alice, "docker.io", "al2", "enc-2")
    store.set_registry_credential(alice, "registry.example.com", "al3", "enc-3")
    assert [(h, u) for h, u, _ in store.registry_credentials(alice)] == [
        ("docker.io", "al2"), ("registry.example.com", "al3")]
    assert store.registry_secret(alice, "registry.example.com") == ("al3", "enc-3")
    assert store.registry_credentials(bob) == []
    assert store.registry_secret(bob, "registry.example.com") is None
    assert not store.remove_registry_credential(bob, "docker.io")
    assert store.remove_registry_credential(alice, "docker.io")
    assert not store.remove_registry_credential(alice, "docker.io")
    assert [h for h, _, _ in store.registry_credentials(alice)] == ["registry.example.com"]


def test_credentials_go_with_their_account(store: Store) -> None:
    alice = store.ensure_account("alice")
    store.set_registry_credential(alice, "127.0.0.1:5000", "al", "enc")
    _, _, updated = store.registry_credentials(alice)[0]
    assert updated.tzinfo is not None
    store.remove_account(alice)
    again = store.ensure_account("alice")
    assert store.registry_credentials(again) == []
