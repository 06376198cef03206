"""`dockyard compose config`: load, validate, print the normalized project."""

from __future__ import annotations

import json

from dockyard import yamlout
from dockyard.cli.render import print_diagnostics, write_stdout
from dockyard.compose import LoadOptions, NamingContext, load_project, project_to_dict
from dockyard.home import current_username


def run_config(options: LoadOptions, *, as_json: bool) -> None:
    result = load_project(options)  # raises ProjectInvalid, rendered by main
    print_diagnostics(result.warnings)
    naming = NamingContext(username=current_username(options.environ))
    data = project_to_dict(result.project, naming)
    if as_json:
        write_stdout(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        write_stdout(yamlout.dump(data))
