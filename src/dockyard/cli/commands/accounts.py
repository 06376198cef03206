"""`dockyard login`, `logout` and `whoami`, and the operator's `dockyard server accounts|tokens`."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Mapping
from typing import Any

from dockyard.cli.render import note, write_stdout
from dockyard.client.api import Client
from dockyard.client.credentials import credentials_path, forget_token, save_token
from dockyard.errors import UsageError
from dockyard.server import accounts


def run_login(url: str) -> None:
    token = sys.stdin.read().strip() if not sys.stdin.isatty() else \
        getpass.getpass(f"API token for {url} (hidden): ").strip()
    if not token:
        raise UsageError("no token given", hint="paste the token `dockyard server accounts "
                         "add` printed, or pipe it in")
    with Client(url, token) as client:
        me = client.whoami()  # refuses a wrong token before it is saved
    path = save_token(url, token)
    note(f"logged in to {url} as {me.account} (token saved in {path})")


def run_logout(server: str | None, environ: Mapping[str, str]) -> None:
    """Forget the token `dockyard login` saved for `server` (default: $DOCKYARD_SERVER)."""
    url = server or environ.get("DOCKYARD_SERVER")
    if not url:
        raise UsageError("the local server needs no login, so there is nothing to log out of",
                         hint="name the server: `dockyard logout --server URL`")
    path = forget_token(url, environ)
    if path is None:
        note(f"not logged in to {url.rstrip('/')}: no token is saved for it "
             f"({credentials_path(environ)})")
    else:
        note(f"logged out of {url.rstrip('/')}: its token was removed from {path} (it stays "
             "valid on the server until revoked: `dockyard server tokens revoke`)")
    if environ.get("DOCKYARD_TOKEN"):
        note("DOCKYARD_TOKEN is set in this environment, and commands still send it; unset it "
             "too")


def run_whoami(client_factory: Any, server: str | None, *, as_json: bool) -> None:
    client: Client = client_factory()
    with client:
        me = client.whoami()
        url = client.url
    info = {"account": me.account, "server": url, "mode": me.mode, "zone": me.zone}
    if as_json:
        write_stdout(json.dumps(info, indent=2))
    else:
        write_stdout("\n".join(f"{k + ':':<9}{v}" for k, v in info.items()))


def run_accounts(verb: str, name: str | None, data: str | None) -> None:
    with accounts.open_store(data) as store:
        if verb == "add":
            assert name is not None
            token = accounts.add_account(store, name)
            note(f"account {name} created; its API token (shown once, keep it):")
            write_stdout(token)
        elif verb == "rm":
            assert name is not None
            accounts.remove_account(store, name)
            note(f"account {name} removed, with its tokens, projects and configs")
        else:
            rows = accounts.list_accounts(store)
            write_stdout("\n".join([f"{'ACCOUNT':<32}  TOKENS"] +
                                   [f"{n:<32}  {c}" for n, c in rows]))


def run_tokens(verb: str, name: str, data: str | None, *, label: str,
               token_id: int | None) -> None:
    with accounts.open_store(data) as store:
        if verb == "add":
            token = accounts.add_token(store, name, label)
            note(f"a new token for {name} (shown once, keep it):")
            write_stdout(token)
        elif verb == "revoke":
            assert token_id is not None
            accounts.revoke_token(store, name, token_id)
            note(f"token {token_id} of {name} revoked")
        else:
            rows = accounts.list_tokens(store, name)
            write_stdout("\n".join([f"{'ID':<6}  {'LABEL':<20}  CREATED"] +
                                   [f"{i:<6}  {lab:<20}  {at.isoformat()}"
                                    for i, lab, at in rows]))
