"""`dockyard compose ps` and `dockyard deployments`."""

from __future__ import annotations

import json
from typing import Any

from dockyard.cli.render import note, write_stdout
from dockyard.cli.tables import deployments_table, ps_table
from dockyard.client.api import Client


def run_ps(project: str, client_factory: Any, *, as_json: bool, long: bool) -> None:
    client: Client = client_factory()
    with client:
        rows = client.services(project)
    if as_json:
        write_stdout(json.dumps([row.to_json() for row in rows], indent=2))
    elif not rows:
        note(f"no services found in project {project!r}; `dockyard deployments` shows what "
             "was deployed")
    else:
        from dockyard.cli.commands.projects import expiry_line

        write_stdout(ps_table(rows, long=long) + expiry_line(rows))


def run_deployments(project: str | None, client_factory: Any, *, as_json: bool,
                    limit: int, status: str | None = None) -> None:
    client: Client = client_factory()
    with client:
        items = client.deployments(project, limit=limit, status=status)
    if as_json:
        write_stdout(json.dumps([item.to_json() for item in items], indent=2))
    else:
        write_stdout(deployments_table(items))
