"""`dockyard config resolve`: each service's environment, where each value comes from, and the
configs it needs (set or not; values never shown)."""

from __future__ import annotations

import json
from typing import Any

from dockyard.cli.render import note, print_diagnostics, write_stdout
from dockyard.cli.tables import table
from dockyard.client.api import Client
from dockyard.compose import LoadOptions, load_project
from dockyard.compose.env_origins import environment_origins
from dockyard.secrets.env_resolve import Resolution, resolve_environment


def run_resolve(options: LoadOptions, client_factory: Any, *, as_json: bool) -> None:
    result = load_project(options)  # raises ProjectInvalid, rendered by main
    print_diagnostics(result.warnings)
    project = result.project
    client: Client = client_factory()
    with client:
        names = [item.name for item in client.configs(project.name)]  # names, never values
    resolution = resolve_environment(project, environment_origins(options), names)
    if as_json:
        write_stdout(json.dumps(resolution.to_json(), indent=2, ensure_ascii=False))
    else:
        write_stdout(resolution_table(resolution).rstrip("\n"))
    for line in missing_notes(resolution, project.name):
        note(line)


def resolution_table(resolution: Resolution) -> str:
    """SERVICE NAME VALUE SOURCE, one row per variable (and secret file)."""
    rows = [[v.service, v.name, v.shown_value, v.source] for v in resolution.variables]
    if not rows:
        return "no service sets an environment variable\n"
    return table(["SERVICE", "NAME", "VALUE", "SOURCE"], rows)


def missing_notes(resolution: Resolution, project: str) -> list[str]:
    """What to say about the configs that are needed and not set (`up` would refuse)."""
    return [f"config {name} is not set (needed by {', '.join(users)}): `compose up` will "
            f"refuse to start until it is; set it with `dockyard config set {name} -p "
            f"{project}`" for name, users in sorted(resolution.missing.items())]
