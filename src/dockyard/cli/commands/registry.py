"""`dockyard registry login|logout|ls`: the account's registry logins, as `docker login` does
them, kept by the server (encrypted) for this account's pulls and pushes only."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Mapping
from typing import Any

from dockyard.cli.render import note, write_stdout
from dockyard.client.api import Client
from dockyard.errors import UsageError
from dockyard.registry.reference import normalize_host


def host_of(text: str) -> str:
    try:
        return normalize_host(text)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def read_login(host: str, *, username: str | None, password_stdin: bool,
               from_docker_config: bool,
               environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(username, password) from the Docker config, -u and standard input, or prompts."""
    if from_docker_config:
        if username is not None or password_stdin:
            raise UsageError("--from-docker-config takes the user and password from the "
                             "Docker config: give neither -u nor --password-stdin with it")
        from dockyard.client.docker_config import docker_config_path, login_from_docker_config

        return login_from_docker_config(host, docker_config_path(environ))
    if password_stdin:
        if not username:
            raise UsageError("--password-stdin needs the user name: give it with -u USER")
        line = sys.stdin.readline()
        return username, line.rstrip("\r\n")
    interactive = sys.stdin.isatty()
    if not username:
        if not interactive:
            raise UsageError("no user name, and standard input is not a terminal to ask for "
                             "one", hint="give -u USER and pipe the password to "
                             "--password-stdin")
        sys.stderr.write("Username: ")
        sys.stderr.flush()
        username = sys.stdin.readline().strip()
    if not interactive:
        raise UsageError("cannot ask for the password: standard input is not a terminal",
                         hint="pipe it to --password-stdin (`... | dockyard registry login "
                         f"{host} -u {username} --password-stdin`)")
    return username, getpass.getpass("Password: ")


def run_login(client_factory: Any, host_text: str, *, username: str | None,
              password_stdin: bool, from_docker_config: bool) -> None:
    host = host_of(host_text)
    user, password = read_login(host, username=username, password_stdin=password_stdin,
                                from_docker_config=from_docker_config)
    if not password:
        raise UsageError("no password given", hint="type it when asked, or pipe it to "
                         "--password-stdin")
    client: Client = client_factory()
    with client:
        stored = client.registry_login(host, user, password)
    note(f"logged in to {stored.host or host} as {user}; this account's pulls and pushes "
         "use it")
    write_stdout("Login Succeeded")


def run_logout(client_factory: Any, host_text: str) -> None:
    host = host_of(host_text)
    client: Client = client_factory()
    with client:
        removed = client.registry_logout(host)
    write_stdout(f"Removing login credentials for {host}" if removed
                 else f"Not logged in to {host}")


def run_ls(client_factory: Any, *, as_json: bool) -> None:
    client: Client = client_factory()
    with client:
        items = client.registries()
    if as_json:
        write_stdout(json.dumps([item.to_json() for item in items], indent=2))
    elif not items:
        note("no registry logins; add one with `dockyard registry login HOST`")
    else:
        host_w = max(len("HOST"), *(len(r.host) for r in items))
        user_w = max(len("USERNAME"), *(len(r.username) for r in items))
        lines = [f"{'HOST':<{host_w}}  {'USERNAME':<{user_w}}  UPDATED"]
        lines += [f"{r.host:<{host_w}}  {r.username:<{user_w}}  {r.updated_at}"
                  for r in items]
        write_stdout("\n".join(lines))
