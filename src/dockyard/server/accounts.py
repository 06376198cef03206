"""The operator's account management, straight on the server's store (no HTTP, no token):
whoever can read the data directory owns the server anyway."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from dockyard.errors import DockyardError, UsageError
from dockyard.server.settings import settings_from
from dockyard.store.store import Account, Store

ACCOUNT_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


class AccountNotFound(DockyardError):
    """No account of that name."""


@contextmanager
def open_store(data: str | None) -> Iterator[Store]:
    settings = settings_from({"data": data})
    if not settings.store_url and not (settings.data / "dockyard.db").exists():
        raise DockyardError(f"no Dockyard server data in {settings.data}",
                            hint="give the server's data directory with --data (or "
                            "DOCKYARD_DATA)")
    store = Store.open(settings.database_url)
    try:
        yield store
    finally:
        store.close()


def check_account_name(name: str) -> None:
    if not ACCOUNT_NAME.match(name):
        raise UsageError(f"{name!r} is not a valid account name",
                         hint="use 1 to 32 lowercase letters, digits and dashes, starting "
                         "with a letter (it becomes part of domain names)")


def add_account(store: Store, name: str, label: str = "first") -> str:
    """Create the account; its first token (shown once, stored hashed)."""
    check_account_name(name)
    if store.account_by_name(name) is not None:
        raise DockyardError(f"account {name!r} already exists",
                            hint=f"add a token with `dockyard server tokens add {name}`")
    return store.create_token(store.ensure_account(name), label=label)


def find_account(store: Store, name: str) -> Account:
    account = store.account_by_name(name)
    if account is None:
        raise AccountNotFound(f"there is no account {name!r}",
                              hint="`dockyard server accounts ls` lists them")
    return account


def remove_account(store: Store, name: str) -> None:
    store.remove_account(find_account(store, name))


def list_accounts(store: Store) -> list[tuple[str, int]]:
    return [(account.name, count) for account, count in store.accounts()]


def add_token(store: Store, name: str, label: str) -> str:
    return store.create_token(find_account(store, name), label=label)


def list_tokens(store: Store, name: str) -> list[tuple[int, str, datetime]]:
    return store.tokens(find_account(store, name))


def revoke_token(store: Store, name: str, token_id: int) -> None:
    if not store.revoke_token(find_account(store, name), token_id):
        raise DockyardError(f"account {name!r} has no token {token_id}",
                            hint=f"`dockyard server tokens ls {name}` lists its tokens")
