"""What the CLI sends is what the server deploys: a normalized project loads back to itself.

The server re-loads the project the client sent (`operations.load_submitted`) instead of trusting
it; for every valid corpus case that round trip must change nothing but where the build context
lies (the server builds from the uploaded archive).
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.corpus_cases import Case, load_cases

from dockyard.compose import load_project, project_to_dict
from dockyard.plan import config_hash
from dockyard.server.operations import load_submitted

VALID = [c for c in load_cases() if c.valid]


def _without_contexts(data: dict[str, Any]) -> dict[str, Any]:
    for service in data.get("services", {}).values():
        if isinstance(service.get("build"), dict):
            service["build"]["context"] = "."
    return data


@pytest.mark.parametrize("case", VALID, ids=lambda c: c.name)
def test_a_normalized_project_loads_back_to_itself(case: Case) -> None:
    project = load_project(case.options()).project
    sent = _without_contexts(project_to_dict(project))
    loaded = load_submitted(project.name, sent)
    assert _without_contexts(project_to_dict(loaded)) == sent
    for name, service in project.services.items():
        assert config_hash(loaded.services[name], "img") == config_hash(service, "img"), name
