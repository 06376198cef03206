"""Acting on some services end to end (the real CLI, a local server, the Docker Engine and the
ingress proxy): `up SERVICE...` and `down SERVICE...` leave the other services' containers
exactly as they were (the same container ids), and `restart` under load loses no request.

The project is projects/some-services (web -> api -> db, and cache on its own); the load is
test_ingress.py's: requests through the proxy in a loop, each on a new connection."""

from __future__ import annotations

import json
from pathlib import Path

from tests.engine.test_ingress import Load, byoc_domain, deploy, get, logs, ports
from tests.support.deployments import (
    COMPLETED,
    Dockyard,
    by_service,
    containers,
    copy_project,
    edit,
    ids_of,
    is_running,
)
from tests.support.ingress import PROXY_MARKS

pytestmark = PROXY_MARKS


def running_ids(project: str) -> dict[str, set[str]]:
    """service -> ids of its running containers."""
    return {service: {str(c["Id"]) for c in found if is_running(c)}
            for service, found in by_service(containers(project)).items()}


def test_partial_up_and_down_leave_the_other_services_untouched(
        dockyard: Dockyard, tmp_path: Path) -> None:
    directory = copy_project("some-services", tmp_path)
    project = dockyard.name("some")
    first = dockyard.up(directory, project)
    assert first.code == 0, f"{first}\n{logs(dockyard)}"
    before = running_ids(project)
    assert sorted(before) == ["api", "cache", "db", "web"] and len(before["web"]) == 2

    # Every service changes; `up api` deploys api and db (which it depends on) only.
    edit(directory / "compose.yaml", "VERSION: v1", "VERSION: v2")
    second = dockyard.up(directory, project, "api")
    assert second.code == 0, f"{second}\n{logs(dockyard)}"
    after = running_ids(project)
    assert after["web"] == before["web"] and after["cache"] == before["cache"]
    assert not after["api"] & before["api"] and not after["db"] & before["db"]
    rows = dockyard.ps(project)
    assert sorted(rows) == ["api", "cache", "db", "web"]
    assert {r["state"] for r in rows.values()} == {COMPLETED}, rows
    assert rows["web"]["deployment"] == first.deployment
    assert rows["api"]["deployment"] == second.deployment

    # `down db` is refused while api runs; `down web` takes web alone away.
    refused = dockyard.cli("compose", "down", "-p", project, "db")
    assert refused.code == 1, str(refused)
    assert "api depends on db" in refused.err and "--force" in refused.err, str(refused)
    unknown = dockyard.cli("compose", "down", "-p", project, "nope")
    assert unknown.code == 2 and "its services: api, cache, db, web" in unknown.err, \
        str(unknown)
    assert running_ids(project) == after

    down = dockyard.cli("compose", "down", "--json", "-p", project, "web")
    assert down.code == 0, str(down)
    left = running_ids(project)
    assert "web" not in left and left == {k: v for k, v in after.items() if k != "web"}
    assert sorted(dockyard.ps(project)) == ["api", "cache", "db"]
    assert get(ports(dockyard)[0], byoc_domain("web", 8080, project)).status == 404


def test_restart_under_load_loses_no_request(dockyard: Dockyard, tmp_path: Path) -> None:
    project, directory = deploy(dockyard, "ingress-public", tmp_path, "restart")
    http_port, _ = ports(dockyard)
    domain = byoc_domain("web", 8080, project)
    before = {str(c["Id"]): c["State"]["StartedAt"] for c in containers(project)}
    assert len(before) == 2

    with Load(http_port, domain) as load:
        load.more(10)
        restarted = dockyard.cli("compose", "restart", "--json", "-p", project)
        assert restarted.code == 0, f"{restarted}\n{logs(dockyard)}"
        load.more(10)
    assert not load.failures(), f"{load.summary()}\n{load.failures()[:10]}\n{logs(dockyard)}"
    # The same two containers, each started again.
    after = {str(c["Id"]): c["State"]["StartedAt"] for c in containers(project)}
    assert set(after) == set(before)
    assert all(after[cid] != before[cid] for cid in before), (before, after)
    states = [e["state"] for e in restarted.json_lines() if e.get("event") == "state"]
    assert states[0] == "UPDATE_QUEUED" and states[-1] == COMPLETED, states
    assert states.count("SERVICE_DEPLOYMENT_PENDING") == 2, states
    services = next(e for e in restarted.json_lines() if e.get("event") == "services")
    assert services["status"] == "succeeded"

    # One replica: replaced start-first, still with no failed request.
    edit(directory / "compose.yaml", "replicas: 2", "replicas: 1")
    scaled = dockyard.up(directory, project)
    assert scaled.code == 0, f"{scaled}\n{logs(dockyard)}"
    (single,) = ids_of([c for c in containers(project) if is_running(c)])
    with Load(http_port, domain) as load:
        load.more(10)
        again = dockyard.cli("compose", "restart", "-p", project, "web")
        assert again.code == 0, f"{again}\n{logs(dockyard)}"
        load.more(10)
    assert not load.failures(), f"{load.summary()}\n{load.failures()[:10]}\n{logs(dockyard)}"
    (replacement,) = ids_of([c for c in containers(project) if is_running(c)])
    assert replacement != single
    row = json.loads(dockyard.cli("compose", "ps", "--json", "-p", project).out)[0]
    assert row["state"] == COMPLETED, row
