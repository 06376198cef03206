"""`dockyard deployments show` and `dockyard rollback`: thin adapters over the client."""

from __future__ import annotations

import json
from typing import Any

from dockyard.cli.commands.deploy import UpOptions, follow_deployment, print_plan
from dockyard.cli.deployment_view import deployment_text
from dockyard.cli.render import note, write_stdout
from dockyard.client.api import Client
from dockyard.client.origin import local_origin
from dockyard.exit_codes import ExitCode
from dockyard.yamlout import dump


def run_show(deployment: str, client_factory: Any, *, as_json: bool, compose: bool) -> int:
    """One deployment's record; `compose`: only its normalized project, as YAML."""
    client: Client = client_factory()
    with client:
        detail = client.deployment(deployment)
    if as_json:
        write_stdout(json.dumps(detail.to_json(), indent=2) + "\n")
    elif compose:
        write_stdout(dump(detail.compose))
    else:
        write_stdout(deployment_text(detail))
    return int(ExitCode.OK)


def run_rollback(project: str, deployment: str | None, client_factory: Any, up: UpOptions
                 ) -> int:
    """Say what the rollback will change, then do it and follow it like `up`."""
    client: Client = client_factory()
    with client:
        planned = client.rollback_plan(project, deployment, pull=up.pull)
        if up.dry_run:
            return print_plan(planned, as_json=up.as_json)
        if not up.as_json:
            changes = [s for s in planned.services if s.action != "keep"]
            note(f"rolling {project} back to deployment {planned.rollback_of}: " + (
                "; ".join(f"{s.action} {s.service} ({', '.join(s.reasons)})" for s in changes)
                if changes else "no service changes"))
        started = client.rollback(project, planned.rollback_of, pull=up.pull,
                                  origin=local_origin(None))
        return follow_deployment(client, project, started.deployment, up,
                       {"rollback_of": started.rollback_of})
