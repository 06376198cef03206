"""The wire format (`dockyard.wire`) and engine-text scrubbing, pure."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.corpus_cases import Case, load_cases

from dockyard.compose import load_project, project_to_dict
from dockyard.server.admission import load_submitted
from dockyard.server.scrub import scrub_engine_text
from dockyard.wire import check_wire, to_wire

VALID = [c for c in load_cases() if c.valid]


@pytest.mark.parametrize("case", VALID, ids=lambda c: c.name)
def test_what_the_client_sends_passes_the_servers_check_and_loads_again(case: Case) -> None:
    project = load_project(case.options()).project
    data, refused = to_wire(project_to_dict(project))
    if refused:  # only builds that need more files than their context may be refused
        assert {(d.location.path or "").rsplit(".", 1)[-1] for d in refused} <= {
            "additional_contexts", "ssh", "secrets"}, refused
        return
    assert check_wire(data) == []
    again = load_submitted(project.name, data)
    assert set(again.services) == set(project.services)


def test_file_based_secrets_are_not_sent_and_their_references_go_with_them() -> None:
    data, refused = to_wire({
        "name": "p", "services": {"web": {"image": "x", "secrets": [
            {"source": "pw"}, {"source": "api"}], "build": {"context": "/home/me/app"}}},
        "secrets": {"pw": {"name": "p_pw", "file": "/home/me/pw.txt"},
                    "api": {"name": "api", "external": True}}})
    assert refused == []
    assert data["secrets"] == {"api": {"name": "api", "external": True}}
    assert data["services"]["web"]["secrets"] == [{"source": "api"}]
    assert data["services"]["web"]["build"]["context"] == "."


def test_scrubbing_masks_data_paths_environment_values_and_control_characters(
        tmp_path: Path) -> None:
    text = (f"open {tmp_path}/config.key: bad\x00line\ninvalid environment variable: "
            "SECRET=hunter2 PATH=/usr/bin")
    out = scrub_engine_text(text, tmp_path)
    assert str(tmp_path) not in out and "<server-data>/config.key" in out
    assert "hunter2" not in out and "\x00" not in out and "\n" not in out
    assert len(scrub_engine_text("x" * 5000)) <= 300
    mount = ('error mounting "/run/dockyard/0a1b2c3d4e5f/dy-bob-site-0123456789/web-abc/'
             '0-TOKEN" to rootfs at "/run/secrets/TOKEN": no such file')
    assert scrub_engine_text(mount) == ('error mounting "<server-secrets>" to rootfs at '
                                        '"/run/secrets/TOKEN": no such file')
