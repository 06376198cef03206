"""Rolling updates end to end (`deploy.update_config`): the real CLI, a real local server, the
real Docker Engine and HAProxy.

projects/rolling is a public service of three replicas with `parallelism: 1, delay: 1s`. A new
version under load replaces them one at a time with 0 failed requests; a new version whose
second replica fails pauses there (the default `failure_action`), the first new replica and
the two previous ones serving. "One at a time" is read from what the server recorded and from
how many replicas ran at once, never from timings.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.engine.test_ingress import Load, byoc_domain, get, logs, ports, replicas
from tests.engine.test_ingress import pytestmark as ingress_marks
from tests.support.deployments import (
    COMPLETED,
    FAILED,
    PENDING,
    Dockyard,
    containers,
    copy_project,
    env_of,
    eventually,
    is_running,
)

pytestmark = ingress_marks  # a real engine and HAProxy, as the ingress tests


def first_version(dy: Dockyard, tmp_path: Path, what: str) -> tuple[str, Path, int, str]:
    """projects/rolling deployed (v1, serving): its project name, directory, the ingress's
    HTTP port and the service's domain."""
    directory = copy_project("rolling", tmp_path)
    project = dy.name(what)
    result = dy.up(directory, project)
    assert result.code == 0, f"{result}\n{logs(dy)}"
    http_port, domain = ports(dy)[0], byoc_domain("web", 8080, project)
    assert get(http_port, domain).version == "v1"
    return project, directory, http_port, domain


def set_version(directory: Path, version: str, **web: Any) -> None:
    path = directory / "compose.yaml"
    project = yaml.safe_load(path.read_text())
    project["services"]["web"]["environment"]["VERSION"] = version
    project["services"]["web"].update(web)
    path.write_text(yaml.safe_dump(project))


@contextmanager
def most_running(project: str) -> Iterator[list[int]]:
    """The most replicas of web seen running at once while the block runs (sampled)."""
    seen, stop = [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            running = [c for c in containers(project, service="web") if is_running(c)]
            seen[0] = max(seen[0], len(running))
            stop.wait(0.1)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(timeout=30)


def web_events(dy: Dockyard, deployment: str) -> list[tuple[str, str]]:
    return [(str(e["state"]), str(e["reason"])) for e in dy.events(deployment)
            if e["service"] == "web"]


def versions(project: str) -> Counter[str]:
    return Counter(env_of(c)["VERSION"] for c in replicas(project, "web").values())


def test_an_update_under_load_replaces_one_replica_at_a_time_with_no_failed_request(
        dockyard: Dockyard, tmp_path: Path) -> None:
    project, directory, http_port, domain = first_version(dockyard, tmp_path, "rolling")

    set_version(directory, "v2")
    with Load(http_port, domain) as load, most_running(project) as most:
        eventually(lambda: len(load.responses) >= 10, "the load to start")
        second = dockyard.up(directory, project)
        assert second.code == 0, f"{second}\n{logs(dockyard)}"
        tail = load.more(20)
    assert not load.failures(), f"{load.summary()}\n{load.failures()[:10]}\n{logs(dockyard)}"
    assert {r.version for r in tail} == {"v2"}, Counter(r.version for r in tail)
    assert versions(project) == {"v2": 3}
    assert most[0] <= 4, f"{most[0]} replicas ran at once: more than one was replaced at a time"

    events = web_events(dockyard, second.deployment)
    notes = [re.sub(r"^replacing the previous version \([^)]*\): ", "", reason)
             for state, reason in events if state == PENDING]
    assert notes == ["0 of 3 replicas updated, 1 more started", "1 of 3 replicas updated",
                     "1 of 3 replicas updated, 1 more started", "2 of 3 replicas updated",
                     "2 of 3 replicas updated, 1 more started"], events
    assert events[-1][0] == COMPLETED


def test_a_failing_batch_pauses_the_update_and_the_previous_version_keeps_serving(
        dockyard: Dockyard, tmp_path: Path) -> None:
    project, directory, http_port, domain = first_version(dockyard, tmp_path, "rolling-pause")

    # v2 claims a directory on a shared volume before it serves: its first replica does, the
    # second finds it claimed and exits. (start-first asked: a volume writer is else stop-first)
    serve = "mkdir -p /www && hostname > /www/index.html && echo \"$$VERSION\" >> " \
        "/www/index.html && exec httpd -f -p 8080 -h /www"
    set_version(directory, "v2", command=["sh", "-c", f"mkdir /claims/one || exit 3; {serve}"],
                volumes=["claims:/claims"],
                deploy={"replicas": 3, "update_config": {"parallelism": 1, "delay": "1s",
                                                         "order": "start-first"}})
    with (directory / "compose.yaml").open("a") as compose:
        compose.write("volumes:\n  claims: {}\n")
    with Load(http_port, domain) as load:
        eventually(lambda: len(load.responses) >= 10, "the load to start")
        second = dockyard.up(directory, project)
        assert second.code != 0, f"{second}\n{logs(dockyard)}"
        load.more(20)
    assert not load.failures(), f"{load.summary()}\n{load.failures()[:10]}\n{logs(dockyard)}"
    assert versions(project) == {"v1": 2, "v2": 1}  # batch 3 never started
    eventually(lambda: {get(http_port, domain).version for _ in range(20)} == {"v1", "v2"},
               "both versions to answer")

    state, reason = web_events(dockyard, second.deployment)[-1]
    assert state == FAILED
    assert reason.startswith("1 of 3 replicas run the new version, the others the previous "
                             "one; batch 2 of 3 failed, paused there: `dockyard rollback` "
                             "restores the previous version: "), reason
    assert dockyard.ps(project)["web"]["state"] == FAILED
