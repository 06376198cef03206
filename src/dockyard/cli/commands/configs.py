"""`dockyard config set|ls|rm`: a project's configs (secrets), stored encrypted by the server."""

from __future__ import annotations

import getpass
import json
import os
import sys
from typing import Any

from dockyard.cli.render import note, write_stdout
from dockyard.client.api import Client
from dockyard.errors import UsageError
from dockyard.secrets.resolve import is_config_name
from dockyard.secrets.values import random_value, split_assignment


def read_value(assignment: str, *, from_env: bool, random: bool) -> tuple[str, str]:
    """(name, value) from `NAME=VALUE`, `--env`, `--random`, stdin or a hidden prompt."""
    name, inline = split_assignment(assignment)
    if not is_config_name(name):
        raise UsageError(f"{name!r} is not a valid config name",
                         hint="use 1 to 64 letters, digits and underscores, not starting with "
                         "a digit")
    sources = [inline is not None, from_env, random]
    if sum(sources) > 1:
        raise UsageError("give the value one way: NAME=VALUE, --env or --random")
    if inline is not None:
        return name, inline
    if from_env:
        if name not in os.environ:
            raise UsageError(f"--env: {name} is not set in this environment",
                             hint=f"export {name}=... first, or give the value another way")
        return name, os.environ[name]
    if random:
        return name, random_value()
    if not sys.stdin.isatty():
        value = sys.stdin.read()
        return name, value[:-1] if value.endswith("\n") else value
    first = getpass.getpass(f"Value of {name} (hidden): ")
    if getpass.getpass("Again: ") != first:
        raise UsageError("the two values differ; nothing was set")
    return name, first


def run_set(project: str, client_factory: Any, assignment: str, *, from_env: bool,
            random: bool, if_not_set: bool) -> None:
    name, value = read_value(assignment, from_env=from_env, random=random)
    client: Client = client_factory()
    with client:
        result = client.set_config(project, name, value, if_not_set=if_not_set)
    if result.set:
        note(f"config {name} set in project {project}" +
             (" (a random value; it is not shown)" if random else ""))
    else:
        note(f"config {name} is already set in project {project}; left as it is")


def run_ls(project: str, client_factory: Any, *, as_json: bool) -> None:
    client: Client = client_factory()
    with client:
        items = client.configs(project)
    if as_json:
        write_stdout(json.dumps([item.to_json() for item in items], indent=2))
    elif not items:
        note(f"project {project!r} has no configs; set one with `dockyard config set NAME`")
    else:
        width = max(len("NAME"), *(len(i.name) for i in items))
        lines = [f"{'NAME':<{width}}  UPDATED"]
        lines += [f"{i.name:<{width}}  {i.updated_at}" for i in items]
        write_stdout("\n".join(lines))


def run_rm(project: str, client_factory: Any, names: list[str]) -> None:
    client: Client = client_factory()
    with client:
        for name in names:
            client.remove_config(project, name)
            note(f"config {name} removed from project {project}")
