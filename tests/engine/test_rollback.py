"""Rollback end to end: the real CLI, a real local server, the real Docker Engine and HAProxy.

After a bad deploy (a new config value that passes every check), `dockyard rollback` brings
back exactly the previous deployment, its image digests and config versions, through the same
zero-downtime replacement as `up`: requests made through the ingress all the while get 0
failures. The untouched service keeps its container.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from tests.engine.test_ingress import Load, byoc_domain, get, logs, ports, replicas
from tests.engine.test_ingress import pytestmark as ingress_marks
from tests.support.deployments import Dockyard, containers, copy_project, eventually

pytestmark = ingress_marks  # a real engine and HAProxy, as the ingress tests


def show(dy: Dockyard, deployment: str) -> dict[str, Any]:
    result = dy.cli("deployments", "show", deployment, "--json")
    assert result.code == 0, str(result)
    found: dict[str, Any] = json.loads(result.out)
    return found


def test_a_rollback_after_a_bad_deploy_restores_digests_and_configs_with_no_failed_request(
        dockyard: Dockyard, tmp_path: Path) -> None:
    directory = copy_project("rollback-public", tmp_path)
    project = dockyard.name("rollback")
    assert dockyard.cli("config", "set", "RELEASE=good", "-p", project).code == 0
    first = dockyard.up(directory, project)
    assert first.code == 0, f"{first}\n{logs(dockyard)}"
    http_port, _ = ports(dockyard)
    domain = byoc_domain("web", 8080, project)
    assert get(http_port, domain).version == "good"
    worker = {c["Id"] for c in containers(project, service="worker")}

    assert dockyard.cli("config", "set", "RELEASE=bad", "-p", project).code == 0
    second = dockyard.up(directory, project)
    assert second.code == 0, f"{second}\n{logs(dockyard)}"
    eventually(lambda: get(http_port, domain).version == "bad", "the bad version to serve")
    bad_replicas = set(replicas(project, "web"))

    with Load(http_port, domain) as load:
        eventually(lambda: len(load.responses) >= 10, "the load to start")
        rolled = dockyard.cli("rollback", "-p", project, "--json")
        assert rolled.code == 0, f"{rolled}\n{logs(dockyard)}"
        tail = load.more(20)
    assert not load.failures(), f"{load.summary()}\n{load.failures()[:10]}\n{logs(dockyard)}"
    assert {r.version for r in tail} == {"good"}, Counter(r.version for r in tail)
    assert not set(replicas(project, "web")) & bad_replicas  # replaced
    assert {c["Id"] for c in containers(project, service="worker")} == worker  # kept

    events = [json.loads(line) for line in rolled.out.splitlines()]
    rollback = str(events[0]["deployment"])
    good = show(dockyard, first.deployment)
    undone = show(dockyard, rollback)
    assert events[0]["rollback_of"] == first.deployment
    assert undone["action"] == "rollback"
    assert undone["configs"] == good["configs"] == {"RELEASE": 1}
    assert show(dockyard, second.deployment)["configs"] == {"RELEASE": 2}
    assert {s: i["digest"] for s, i in undone["images"].items()} == \
        {s: i["digest"] for s, i in good["images"].items()}
    assert dockyard.ps(project)["web"]["deployment"] == rollback
