"""What the CLI sends is what the server deploys: a normalized project loads back to itself.

The server re-loads the project the client sent (`admission.load_submitted`) instead of trusting
it; for every valid corpus case the wire document (`dockyard.wire.to_wire`: build contexts are
the uploaded archives, file-based secrets are not sent) loads back to itself, and a service the
wire did not change keeps its configuration hash.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.corpus_cases import Case, load_cases

from dockyard.compose import load_project, project_to_dict
from dockyard.plan import config_hash
from dockyard.server.admission import load_submitted
from dockyard.wire import to_wire

VALID = [c for c in load_cases() if c.valid]


def _without_contexts(data: dict[str, Any]) -> dict[str, Any]:
    for service in data.get("services", {}).values():
        if isinstance(service.get("build"), dict):
            service["build"]["context"] = "."
    return data


@pytest.mark.parametrize("case", VALID, ids=lambda c: c.name)
def test_a_normalized_project_loads_back_to_itself(case: Case) -> None:
    project = load_project(case.options()).project
    normalized = _without_contexts(project_to_dict(project))
    sent, refused = to_wire(normalized)
    if refused:
        pytest.skip("a build needing more than its context is not sent")
    loaded = load_submitted(project.name, sent)
    assert to_wire(project_to_dict(loaded))[0] == sent
    for name, service in project.services.items():
        if sent["services"][name] == normalized["services"][name]:
            assert config_hash(loaded.services[name], "img") == config_hash(service, "img"), \
                name
