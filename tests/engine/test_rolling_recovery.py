"""A server killed with SIGKILL during a rolling update, end to end: the real CLI, a real local
server, the real Docker Engine and HAProxy.

projects/rolling (three public replicas, `parallelism: 1`) goes to a v2 whose health check
passes only once the test marks a replica ready: it marks the first two, and kills the server
when the third (batch 3) has started. The next server keeps the two finished batches and the
previous replica that batch 3 had not replaced yet (three replicas serve), removes the third new
one, says so in the service's state, routes exactly what it kept, and the next `up` finishes the
update. Which replicas run is read from the engine, never from timings.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import yaml

from tests.engine.test_ingress import attempt, get, logs, ports, replicas
from tests.engine.test_ingress import pytestmark as ingress_marks
from tests.engine.test_rolling_update import first_version, set_version, versions
from tests.support.deployments import (
    COMPLETED,
    FAILED,
    Dockyard,
    containers,
    docker_exec,
    env_of,
    eventually,
    is_running,
)

pytestmark = ingress_marks  # a real engine and HAProxy, as the ingress tests

READY = {"test": ["CMD", "test", "-f", "/ready"], "interval": "1s", "retries": 10000}


def test_a_server_killed_in_batch_3_keeps_what_serves_and_up_finishes_it(
        dockyard: Dockyard, tmp_path: Path) -> None:
    project, directory, _, domain = first_version(dockyard, tmp_path, "rolling-kill")
    (first,) = [d["id"] for d in dockyard.deployments(project)]

    set_version(directory, "v2", healthcheck=READY)
    started = dockyard.up(directory, project, "--detach")
    assert started.code == 0, f"{started}\n{logs(dockyard)}"
    second = started.deployment
    marked: list[str] = []

    def third_started() -> dict[str, Any] | None:
        """Marks each new replica ready, the first two only; the third once it runs."""
        new = sorted((c for c in containers(project, service="web", deployment=second)
                      if is_running(c)), key=lambda c: str(c["Created"]))
        for replica in new[:2]:
            if replica["Id"] not in marked:
                assert docker_exec(replica, "touch /ready").returncode == 0
                marked.append(str(replica["Id"]))
        return new[2] if len(new) == 3 else None

    third = eventually(third_started, "batch 3 to start", timeout=120)
    dockyard.kill_server(signal.SIGKILL)

    # The next command starts a new server, which recovers.
    statuses = {d["id"]: d["status"] for d in dockyard.deployments(project)}
    assert statuses == {first: "succeeded", second: "failed"}, statuses
    found = versions(project)
    assert found == {"v1": 1, "v2": 2}, f"{found}\n{logs(dockyard)}"
    kept = replicas(project, "web")
    assert third["Id"] not in {c["Id"] for c in kept.values()}
    assert {c["Id"] for c in kept.values() if env_of(c)["VERSION"] == "v2"} == set(marked)
    assert [c["Id"] for c in containers(project, service="web") if not is_running(c)] == []
    row = dockyard.ps(project)["web"]
    assert row["state"] == FAILED, row
    assert row["deployment"] == second, row
    assert row["reason"] == (
        "the server stopped during the update: 2 of 3 replicas run the new version, 1 the "
        "previous one; `dockyard compose up` finishes it, `dockyard rollback` goes back to the "
        "previous deployment"), row

    # The proxy serves exactly the three kept replicas.
    http_port = ports(dockyard)[0]

    def answering() -> set[str] | None:
        seen = {attempt(lambda: get(http_port, domain)) for _ in range(30)}
        found = {r.replica for r in seen if r is not None and r.status == 200}
        return found if found == set(kept) else None

    eventually(answering, f"the kept replicas {sorted(kept)} to answer")

    # The next `up` replaces the mixed versions.
    path = directory / "compose.yaml"
    data = yaml.safe_load(path.read_text())
    data["services"]["web"].pop("healthcheck")
    path.write_text(yaml.safe_dump(data))
    set_version(directory, "v3")
    third_up = dockyard.up(directory, project)
    assert third_up.code == 0, f"{third_up}\n{logs(dockyard)}"
    assert versions(project) == {"v3": 3}
    assert dockyard.ps(project)["web"]["state"] == COMPLETED
