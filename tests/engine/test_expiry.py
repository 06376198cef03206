"""A preview that expires across a server restart: the real CLI, a real local server, a real
Docker Engine. `up --ttl` records the deadline in the server's store; the server is stopped
before it passes and started again after, on the same data directory, and takes the project
down by itself (as `compose down` does: containers and network gone, the named volume kept)."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.deployments import (
    Dockyard,
    containers,
    copy_project,
    docker,
    eventually,
    labelled,
    process_alive,
)
from tests.support.engine import engine_ready

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1 (run scripts/setup "
                       "as root)"),
]

TTL_SECONDS = 20  # long enough for `up` to finish and the server to stop before it passes


def test_a_ttl_expires_across_a_server_restart(dockyard: Dockyard, tmp_path: Path) -> None:
    directory = copy_project("volume", tmp_path)
    project = dockyard.name("ttl")
    up = dockyard.up(directory, project, "--ttl", f"{TTL_SECONDS}s")
    assert up.code == 0, str(up)
    (volume,) = labelled("volume", project)
    (network,) = labelled("network", project)
    rows = dockyard.ps(project)
    deadline = rows["store"]["expires_at"]
    assert deadline, rows
    listed = dockyard.cli("compose", "ls", "--json")
    assert listed.code == 0, str(listed)
    (item,) = [p for p in json.loads(listed.out) if p["name"] == project]
    assert (item["expires_at"], item["expire_volumes"], item["deployment"]) == \
        (deadline, False, up.deployment)

    # The server stops before the deadline; the project is still all there.
    pid = dockyard.kill_server(signal.SIGTERM)
    assert not process_alive(pid)
    assert len(containers(project)) == 1, "taken down before the deadline"
    # The deadline passes while no server runs (a wait for a condition, not an assertion).
    expires_at = datetime.fromisoformat(deadline)
    while datetime.now(UTC) <= expires_at:
        time.sleep(0.2)
    assert len(containers(project)) == 1, "no server runs, yet the project was taken down"

    # Started again on the same data directory (any command starts it), it carries it out.
    assert dockyard.cli("compose", "ls").code == 0
    found = dockyard.server()
    assert found is not None and found[1] != pid
    eventually(lambda: containers(project) == [], "the expired project's containers to go",
               timeout=60)
    eventually(lambda: docker("network", "inspect", network, check=False).returncode != 0,
               "its network to go")
    assert docker("volume", "inspect", volume, check=False).returncode == 0, \
        "the volume was removed without --ttl-volumes"

    # As `compose down` records it, with the reason; the deadline is forgotten.
    def down_done() -> dict[str, object] | None:
        latest = dockyard.deployments(project)[0]
        return latest if latest["action"] == "down" and latest["status"] != "running" \
            else None

    down = eventually(down_done, "the server's down to end")
    assert down["status"] == "succeeded", down
    detail = dockyard.api(f"/v1/deployments/{down['id']}")
    assert any(f"TTL set by deployment {up.deployment} expired" in note
               for note in detail["notes"]), detail["notes"]
    eventually(lambda: [p for p in json.loads(dockyard.cli("compose", "ls", "--json").out)
                        if p["name"] == project and p["expires_at"] is None],
               "the deadline to be forgotten")
    assert dockyard.ps(project) == {}
