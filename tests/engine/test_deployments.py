"""Deployments end to end: the real `dockyard` CLI, a real local server, a real Docker Engine.

Every command runs as a subprocess with the test's own DOCKYARD_HOME (tests/conftest.py), so
each test starts its own local server, exactly as a user's first command does. The `dockyard`
fixture stops that server at teardown (SIGTERM, then SIGKILL) and removes everything the test's
projects left on the engine: containers, volumes and images by label, the network by name.
Project names are unique per run (`t-<run>-<what>-<id>`) and host ports are picked free, because
other projects (a benchmark) may use the same engine at the same time.

The server is made fast for tests through the environment the CLI hands to the server it starts
(DOCKYARD_STABILIZATION, DOCKYARD_DEPLOY_TIMEOUT); the projects under `projects/` check health
every second and stop within a second. Waiting is always polling for a condition with a
deadline, never a sleep standing for an assertion.

Servers sharing the engine leave each other's containers alone (each touches only what carries
its own server id): `test_a_server_start_leaves_other_servers_containers_alone` holds them to
it, since every test here starts a server beside whatever else runs on the engine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.deployments import (
    BUILD_FAILED,
    COMPLETED,
    FAILED,
    PENDING,
    SCALED_IN,
    Dockyard,
    Result,
    by_service,
    containers,
    copy_project,
    docker,
    docker_exec,
    edit,
    env_of,
    eventually,
    free_port,
    ids_of,
    is_running,
    label,
    labelled,
    last_events,
)
from tests.support.engine import EXAMPLE, engine_ready

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1 (run scripts/setup "
                       "as root)"),
]

# -- the example: one deployment of examples/shop, shared by the tests of TestShop -------------
@dataclass(frozen=True)
class Shop:
    dy: Dockyard
    project: str
    directory: Path
    port: int
    first: Result


@pytest.fixture(scope="class")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """examples/shop deployed once: its own home, a unique name, a free metrics port and every
    health check every second (the example checks every 2-5 s)."""
    root = tmp_path_factory.mktemp("shop")
    dy = Dockyard(root / "home")
    try:
        project = dy.name("shop")
        directory = root / "shop"
        shutil.copytree(EXAMPLE, directory)
        compose = directory / "compose.yaml"
        data = yaml.safe_load(compose.read_text())
        services = data["services"]
        assert services["metrics"]["ports"][0]["published"] == 9100
        port = free_port()
        services["metrics"]["ports"][0]["published"] = port
        for service in services.values():
            if "healthcheck" in service:
                service["healthcheck"]["interval"] = "1s"
        compose.write_text(yaml.safe_dump(data, sort_keys=False))
        first = dy.up(directory, project)
        yield Shop(dy, project, directory, port, first)
    finally:
        dy.close()


class TestShop:
    """In file order: the deployment, a no-op second `up`, then a change (which alters the
    shared deployment, so it comes last)."""

    def test_the_example_deploys_every_service(self, shop: Shop) -> None:
        assert shop.first.code == 0, str(shop.first)
        project, deployment = shop.project, shop.first.deployment
        rows = shop.dy.ps(project)
        assert set(rows) == {"web", "api", "db", "migrate", "metrics"}
        assert {name: row["state"] for name, row in rows.items()} == dict.fromkeys(rows,
                                                                                    COMPLETED)
        assert {row["deployment"] for row in rows.values()} == {deployment}
        assert (rows["api"]["replicas"], rows["api"]["running"]) == (2, 2)

        # metrics: published on the host port, no domain; it answers there.
        assert rows["metrics"]["endpoint"] == f"localhost:{shop.port}"
        page = httpx.get(f"http://127.0.0.1:{shop.port}/", timeout=5)
        assert page.status_code == 200 and "Dockyard shop" in page.text
        # web: public, at its own domain; db: private, no endpoint, a private name.
        https_port = json.loads((shop.dy.data / "server.json").read_text())["https_port"]
        assert rows["web"]["endpoint"] == \
            f"https://web--8080.{project}.alice.localhost:{https_port}"
        assert rows["web"]["fqdn"] == f"web.{project}.alice.localhost"
        assert rows["db"]["endpoint"] == "" and rows["db"]["endpoints"] == []
        assert rows["db"]["exposure"] == "private"
        assert rows["db"]["fqdn"] == f"db.{project}.internal"

        found = by_service(containers(project))
        assert {name: len(items) for name, items in found.items()} == {
            "web": 1, "api": 2, "db": 1, "migrate": 1, "metrics": 1}
        (job,) = found["migrate"]
        assert (job["State"]["Status"], job["State"]["ExitCode"]) == ("exited", 0)
        # The api replicas are healthy, and their health check reaches db by its hostname.
        for api in found["api"]:
            assert api["State"]["Health"]["Status"] == "healthy"
            assert any(check["ExitCode"] == 0 for check in api["State"]["Health"]["Log"])
        # The private name <service>.<project>.internal resolves on the project network.
        (web,) = found["web"]
        probe = docker_exec(web, f"nc -w 2 db.{project}.internal 5432 </dev/null")
        assert probe.stdout.strip() == "ok", probe
        (db,) = found["db"]
        (network,) = labelled("network", project, "alice")
        db_address = db["NetworkSettings"]["Networks"][network]["IPAddress"]
        lookup = docker_exec(web, f"nslookup db.{project}.internal")
        assert db_address and db_address in lookup.stdout, lookup

        for service, items in found.items():
            for container in items:
                env = env_of(container)
                assert env.get("DOCKYARD_SERVICE") == service
                assert env.get("DOCKYARD_DEPLOYMENT") == deployment
                assert "DOCKYARD_FQDN" in env
                if rows[service]["exposure"] == "public":
                    assert env["DOCKYARD_FQDN"] == rows[service]["fqdn"]
        assert env_of(found["api"][0])["DATABASE_HOST"] == "db"

    def test_a_second_up_changes_nothing(self, shop: Shop) -> None:
        assert shop.first.code == 0, str(shop.first)
        before = {str(c["Id"]): c for c in containers(shop.project)}
        again = shop.dy.up(shop.directory, shop.project)
        assert again.code == 0, str(again)
        after = {str(c["Id"]): c for c in containers(shop.project)}
        assert set(after) == set(before), "a no-op `up` replaced containers"
        for cid, container in after.items():
            # Not restarted either: the same start, no restart counted.
            assert container["State"]["StartedAt"] == before[cid]["State"]["StartedAt"]
            assert container["RestartCount"] == before[cid]["RestartCount"]
        (job,) = by_service(list(after.values()))["migrate"]
        assert (job["State"]["Status"], job["State"]["ExitCode"]) == ("exited", 0)

        last = last_events(shop.dy.events(again.deployment))
        assert set(last) == {"web", "api", "db", "migrate", "metrics"}
        for service, event in last.items():
            assert event["state"] == COMPLETED, event
            assert event["reason"].startswith("unchanged"), (service, event)

    def test_a_dry_run_says_what_would_change_and_changes_nothing(self, shop: Shop) -> None:
        assert shop.first.code == 0, str(shop.first)
        before = {str(c["Id"]): c["State"]["StartedAt"] for c in containers(shop.project)}
        history = len(shop.dy.deployments(shop.project))
        same = shop.dy.cli("compose", "up", "-C", str(shop.directory), "-p", shop.project,
                           "--dry-run", "--json")
        assert same.code == 0, str(same)
        rows = [json.loads(line) for line in same.out.splitlines()]
        assert {r["service"]: r["action"] for r in rows} == dict.fromkeys(
            ("web", "api", "db", "migrate", "metrics"), "keep"), rows
        assert set(rows[0]) == {"service", "action", "reasons", "replicas"}

        (shop.directory / "web" / "index.html").write_text("<h1>Dockyard shop dry</h1>\n")
        changed = shop.dy.cli("compose", "up", "-C", str(shop.directory), "-p", shop.project,
                              "--dry-run")
        assert changed.code == 0, str(changed)
        table = {line.split()[0]: line.split(None, 3)[1:] for line in changed.out.splitlines()
                 if line and not line.startswith(("SERVICE", "would"))}
        # web and metrics build from the same context (./web); the others do not change.
        for service in ("web", "metrics"):
            assert table[service] == ["replace", "1", "image to be built"], changed.out
        assert all(table[s][0] == "keep" for s in ("api", "db", "migrate")), table
        assert "would build: metrics, web" in changed.out, changed.out
        # Nothing changed: the same containers, started once, and no deployment recorded.
        after = {str(c["Id"]): c["State"]["StartedAt"] for c in containers(shop.project)}
        assert after == before
        assert len(shop.dy.deployments(shop.project)) == history

    def test_a_changed_service_is_replaced_and_a_removed_one_removed(self, shop: Shop) -> None:
        assert shop.first.code == 0, str(shop.first)
        before = by_service(containers(shop.project))
        (shop.directory / "web" / "index.html").write_text("<h1>Dockyard shop v2</h1>\n")
        compose = shop.directory / "compose.yaml"
        data = yaml.safe_load(compose.read_text())
        del data["services"]["metrics"]
        compose.write_text(yaml.safe_dump(data, sort_keys=False))

        result = shop.dy.up(shop.directory, shop.project)
        assert result.code == 0, str(result)
        after = by_service(containers(shop.project))
        assert "metrics" not in after, "the service removed from the file still has containers"
        for service in ("api", "db", "migrate"):
            assert ids_of(after[service]) == ids_of(before[service]), f"{service} was replaced"
        (web,) = after["web"]
        assert ids_of([web]) != ids_of(before["web"]), "the changed web was not replaced"
        assert label(web, "deployment") == result.deployment and is_running(web)
        served = docker_exec(web, "wget -q -O- http://127.0.0.1:8080/")
        assert "Dockyard shop v2" in served.stdout, served

        rows = shop.dy.ps(shop.project)
        assert set(rows) == {"web", "api", "db", "migrate"}
        assert all(row["state"] == COMPLETED for row in rows.values()), rows
        last = last_events(shop.dy.events(result.deployment))
        assert last["metrics"]["state"] == SCALED_IN, last["metrics"]
        assert last["web"]["state"] == COMPLETED
        assert not last["web"]["reason"].startswith("unchanged"), last["web"]


# -- failures ----------------------------------------------------------------------------------
def test_a_failed_build_keeps_the_previous_version(dockyard: Dockyard, tmp_path: Path) -> None:
    directory = copy_project("build", tmp_path)
    project = dockyard.name("build")
    good = dockyard.up(directory, project)
    assert good.code == 0, str(good)
    (old,) = containers(project)
    assert label(old, "deployment") == good.deployment

    step = "RUN echo broken-step-output && exit 7"
    edit(directory / "app" / "Dockerfile", "COPY index.html /www/index.html\n",
         f"COPY index.html /www/index.html\n{step}\n")
    (directory / "app" / "index.html").write_text("second version\n")
    bad = dockyard.up(directory, project)
    assert bad.code == 5, str(bad)
    assert "BUILD_FAILED" in bad.err, str(bad)

    row = dockyard.ps(project)["app"]
    assert row["state"] == BUILD_FAILED, row
    assert row["deployment"] == bad.deployment
    assert step in row["reason"], row
    assert "broken-step-output" in row["reason"], row

    logs = dockyard.cli("logs", "-p", project, "--type", "build")
    assert logs.code == 0, str(logs)
    assert "app (build) | Step 1/" in logs.out, str(logs)
    assert "broken-step-output" in logs.out, str(logs)

    (still,) = containers(project)
    assert still["Id"] == old["Id"] and is_running(still), "the previous version was replaced"
    served = docker_exec(still, "wget -q -O- http://127.0.0.1:8080/")
    assert served.stdout.strip() == "first version", served
    statuses = {d["id"]: d["status"] for d in dockyard.deployments(project)}
    assert statuses == {good.deployment: "succeeded", bad.deployment: "failed"}


def test_a_crash_looping_service_fails_with_its_exit_code_and_output(
        dockyard: Dockyard, tmp_path: Path) -> None:
    directory = copy_project("crashloop", tmp_path)
    project = dockyard.name("crash")
    result = dockyard.up(directory, project)
    assert result.code == 5, str(result)
    row = dockyard.ps(project)["crasher"]
    assert row["state"] == FAILED, row
    assert re.search(r"code 3\b", row["reason"]), row
    assert "dying" in row["reason"], row
    assert "crasher" in result.err, str(result)


def test_a_failed_job_stops_its_dependent(dockyard: Dockyard, tmp_path: Path) -> None:
    directory = copy_project("failing-job", tmp_path)
    project = dockyard.name("job")
    result = dockyard.up(directory, project)
    assert result.code == 5, str(result)
    rows = dockyard.ps(project)
    assert rows["setup"]["state"] == FAILED, rows["setup"]
    assert "exited with code 4" in rows["setup"]["reason"], rows["setup"]
    assert "setup-failed" in rows["setup"]["reason"], rows["setup"]
    assert rows["app"]["state"] == FAILED, rows["app"]
    assert "setup" in rows["app"]["reason"], rows["app"]
    assert containers(project, service="app") == [], "app started although its job failed"
    (job,) = containers(project, service="setup")
    assert (job["State"]["Status"], job["State"]["ExitCode"]) == ("exited", 4)


# -- down ---------------------------------------------------------------------------------------
def test_a_project_deployed_before_injective_names_keeps_its_data(
        dockyard: Dockyard, tmp_path: Path) -> None:
    """An older server named things `dy-<account>-<project>`: after the upgrade, the first `up`
    keeps the volume under its old name (its labels say it is this project's: its data stays),
    replaces the old container once (it sat on the old network) and removes the old network."""
    directory = copy_project("volume", tmp_path)
    project = dockyard.name("legacy")
    assert dockyard.cli("whoami").code == 0  # the local server starts: its id exists
    server = (dockyard.data / "server-id").read_text().strip()
    owner = {"dockyard.managed": "true", "dockyard.server": server,
             "dockyard.account": "alice", "dockyard.project": project}
    flags = [a for k, v in owner.items() for a in ("--label", f"{k}={v}")]
    old = f"dy-alice-{project}"
    docker("volume", "create", *flags, f"{old}_data")
    docker("network", "create", *flags, old)
    docker("run", "--rm", "-v", f"{old}_data:/data", "dockyard/busybox:1", "sh", "-c",
           "echo alice-rows > /data/rows")
    docker("run", "-d", "--name", f"{old}-store-1-old000", "--network", old, *flags,
           "--label", "dockyard.service=store", "--label", "dockyard.deployment=old000000000",
           "--label", "dockyard.config-hash=old", "--label", "dockyard.replica=1",
           "--label", "dockyard.job=false", "dockyard/busybox:1", "sleep", "1d")

    up = dockyard.up(directory, project)
    assert up.code == 0, str(up)
    assert "(upgrade)" in up.out, str(up)
    (store,) = containers(project)
    assert store["Name"].lstrip("/") != f"{old}-store-1-old000"
    assert docker_exec(store, "cat /data/rows").stdout.strip() == "alice-rows"
    assert labelled("volume", project) == [f"{old}_data"]
    assert labelled("network", project) != [old]
    assert docker("network", "inspect", old, check=False).returncode != 0, "old network kept"

    gone = dockyard.cli("compose", "down", "--volumes", "-p", project)
    assert gone.code == 0, str(gone)
    assert f"volume {old}_data removed" in gone.err, str(gone)
    assert labelled("volume", project) == []


def test_down_keeps_named_volumes_unless_asked(dockyard: Dockyard, tmp_path: Path) -> None:
    directory = copy_project("volume", tmp_path)
    project = dockyard.name("down")
    up = dockyard.up(directory, project)
    assert up.code == 0, str(up)
    (volume,) = labelled("volume", project, "alice")
    (network,) = labelled("network", project, "alice")
    assert volume.startswith("dy-alice-") and volume.endswith("_data")
    assert len(containers(project)) == 1
    assert docker("volume", "inspect", volume, check=False).returncode == 0

    down = dockyard.cli("compose", "down", "--json", "-p", project)
    assert down.code == 0, str(down)
    assert containers(project) == []
    assert docker("network", "inspect", network, check=False).returncode != 0, "network kept"
    assert docker("volume", "inspect", volume, check=False).returncode == 0, "volume removed"
    kept = docker("run", "--rm", "--network", "none", "-v", f"{volume}:/data",
                  "dockyard/busybox:1", "cat", "/data/marker")
    assert kept.stdout.strip() == "kept"
    assert dockyard.ps(project) == {}

    gone = dockyard.cli("compose", "down", "--volumes", "--json", "-p", project)
    assert gone.code == 0, str(gone)
    assert docker("volume", "inspect", volume, check=False).returncode != 0, "volume kept"

    history = [(d["id"], d["action"], d["status"]) for d in dockyard.deployments(project)]
    assert history == [(gone.deployment, "down", "succeeded"),
                       (down.deployment, "down", "succeeded"),
                       (up.deployment, "up", "succeeded")]


# -- the server dies, two deployments at once ---------------------------------------------------
def test_a_server_killed_mid_deployment_recovers(dockyard: Dockyard, tmp_path: Path) -> None:
    directory = copy_project("recover", tmp_path)
    compose = directory / "compose.yaml"
    project = dockyard.name("kill")
    first = dockyard.up(directory, project)
    assert first.code == 0, str(first)
    (v1,) = containers(project, service="svc")

    # Version 2 never becomes healthy: the deployment is in flight until the server dies.
    healthy_check = 'test: ["CMD-SHELL", "nc -w 2 127.0.0.1 5432 </dev/null | grep -q ok"]'
    edit(compose, 'VERSION: "1"', 'VERSION: "2"')
    edit(compose, healthy_check, 'test: ["CMD", "test", "-f", "/never"]')
    started = dockyard.up(directory, project, "--detach")
    assert started.code == 0, str(started)
    second = started.deployment
    eventually(lambda: any(e["service"] == "svc" and e["state"] == PENDING
                           for e in dockyard.events(second)), "svc version 2 to start")
    dockyard.kill_server(signal.SIGKILL)

    # The next command starts a new server, which finds the interrupted deployment.
    statuses = {d["id"]: d["status"] for d in dockyard.deployments(project)}
    assert statuses == {first.deployment: "succeeded", second: "failed"}
    last = last_events(dockyard.events(second))
    assert any("interrupted" in e["reason"] for e in dockyard.events(second)
               if e["service"] == "svc"), last

    # No container the store does not know; the half-done version 2 is gone, version 1 serves.
    found = containers(project)
    assert {label(c, "deployment") for c in found} <= set(statuses), found
    assert [c["Id"] for c in found if label(c, "service") == "svc"] == [v1["Id"]]
    # ps tells what runs.
    rows = dockyard.ps(project)
    for service, items in by_service(found).items():
        running = [c for c in items if is_running(c)]
        assert rows[service]["running"] == len(running), rows[service]
        assert (rows[service]["state"] == COMPLETED) == (len(running) == len(items) > 0), \
            rows[service]
    # Which deployment ps names for each service, against the deployment of what runs.
    recovered = {service: (rows[service]["deployment"], {label(c, "deployment") for c in items},
                           rows[service]["state"], rows[service]["reason"])
                 for service, items in by_service(found).items()}

    # A following deployment succeeds, and replaces version 1.
    edit(compose, 'VERSION: "2"', 'VERSION: "3"')
    edit(compose, 'test: ["CMD", "test", "-f", "/never"]', healthy_check)
    third = dockyard.up(directory, project)
    assert third.code == 0, str(third)
    rows = dockyard.ps(project)
    assert all(row["state"] == COMPLETED for row in rows.values()), rows
    (v3,) = containers(project, service="svc")
    assert label(v3, "deployment") == third.deployment
    assert env_of(v3)["VERSION"] == "3"

    # Checked last: after the recovery, ps named for each service the deployment its running
    # containers belong to (the first one: the interrupted deployment's were removed).
    wrong = {service: f"ps said {said} ({state}: {reason}), its containers are {sorted(actual)}"
             for service, (said, actual, state, reason) in recovered.items()
             if said not in actual}
    assert not wrong, "\n".join(f"{service}: {text}" for service, text in wrong.items())


def test_a_second_up_of_the_same_project_is_refused(dockyard: Dockyard, tmp_path: Path) -> None:
    directory = copy_project("gated", tmp_path)
    project = dockyard.name("twice")
    first = dockyard.background("compose", "up", "-C", str(directory), "-p", project,
                                output=tmp_path / "first.log")
    try:
        def in_flight() -> str | None:
            if dockyard.server() is None:
                return None
            for item in dockyard.api("/v1/deployments", project=project):
                if item["status"] == "running" and any(
                        e["state"] == PENDING for e in dockyard.events(item["id"])):
                    return str(item["id"])
            return None

        deployment = eventually(in_flight, "the first deployment to start its container")
        second = dockyard.up(directory, project)
        assert second.code != 0, str(second)
        assert "still running" in second.err, str(second)

        (gated,) = containers(project)
        assert docker_exec(gated, "touch /go").returncode == 0
        assert first.wait(timeout=60) == 0, (tmp_path / "first.log").read_text()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    history = dockyard.deployments(project)
    assert {d["id"]: d["status"] for d in history if d["id"] == deployment} == {
        deployment: "succeeded"}
    others = [d for d in history if d["id"] != deployment]
    assert [d["status"] for d in others] == ["refused"], history
    assert dockyard.events(others[0]["id"]) == []
    assert [label(c, "deployment") for c in containers(project)] == [deployment]


# -- after the deployment: the state follows the engine -----------------------------------------
def _deploy_steady(dockyard: Dockyard, tmp_path: Path) -> tuple[str, str]:
    directory = copy_project("steady", tmp_path)
    project = dockyard.name("steady")
    result = dockyard.up(directory, project)
    assert result.code == 0, str(result)
    return project, result.deployment


def test_a_killed_container_is_no_longer_reported_completed(
        dockyard: Dockyard, tmp_path: Path) -> None:
    project, deployment = _deploy_steady(dockyard, tmp_path)
    seen = max(int(e["id"]) for e in dockyard.events(deployment))
    (victim,) = containers(project, service="checked")
    docker("kill", str(victim["Id"]))  # a manual stop for the engine: no restart follows

    def left_completed() -> dict[str, Any] | None:
        row = dockyard.ps(project)["checked"]
        return row if row["state"] != COMPLETED else None

    row = eventually(left_completed, "ps to stop calling checked COMPLETED")
    (now,) = containers(project, service="checked")
    assert not is_running(now), "the engine restarted a container stopped by `docker kill`"
    assert (row["state"], row["running"]) == (FAILED, 0), row
    new = [e for e in dockyard.events(deployment) if int(e["id"]) > seen]
    assert any(e["service"] == "checked" and "137" in e["reason"] for e in new), new
    assert dockyard.ps(project)["plain"]["state"] == COMPLETED


def test_a_crashed_container_is_restarted_and_reported_again(
        dockyard: Dockyard, tmp_path: Path) -> None:
    project, deployment = _deploy_steady(dockyard, tmp_path)
    seen = max(int(e["id"]) for e in dockyard.events(deployment))
    (victim,) = containers(project, service="plain")
    try:  # a crash, as the engine sees it: its process is killed from outside
        os.kill(int(victim["State"]["Pid"]), signal.SIGKILL)
    except PermissionError:
        pytest.skip("cannot signal the container's process from here")

    def back() -> list[dict[str, Any]] | None:
        new = [e for e in dockyard.events(deployment)
               if int(e["id"]) > seen and e["service"] == "plain"]
        return new if new and new[-1]["state"] == COMPLETED else None

    new = eventually(back, "plain to be reported COMPLETED again after its crash")
    assert new[0]["state"] == PENDING and "137" in new[0]["reason"], new
    (again,) = containers(project, service="plain")
    assert again["Id"] == victim["Id"] and is_running(again)
    assert again["RestartCount"] >= 1
    row = dockyard.ps(project)["plain"]
    assert (row["state"], row["running"]) == (COMPLETED, 1), row


# -- no engine ----------------------------------------------------------------------------------
def test_no_engine_is_a_clear_error(dockyard: Dockyard, tmp_path: Path) -> None:
    directory = copy_project("steady", tmp_path)
    for args in (("compose", "up", "-C", str(directory), "-p", dockyard.name("noengine")),
                 ("compose", "ps", "-p", "anything")):
        result = dockyard.cli(*args, DOCKER_HOST="unix:///nonexistent.sock")
        # 4, the engine is unavailable: not 7 (server unavailable), which would hide the cause.
        assert result.code == 4, str(result)
        assert "Docker Engine" in result.err, str(result)
        assert "/nonexistent.sock" in result.err, str(result)
        assert "Traceback" not in result.err + result.out, str(result)
    assert dockyard.server() is None


# -- several servers on one engine --------------------------------------------------------------
def test_a_server_start_leaves_other_servers_containers_alone(tmp_path: Path) -> None:
    """Two homes, two servers, one engine: starting bob's server must not touch alice's
    containers (nor those of a benchmark or any other server on the engine)."""
    alice = Dockyard(tmp_path / "alice")
    bob = Dockyard(tmp_path / "bob", user="bob")
    try:
        project, _ = _deploy_steady(alice, tmp_path)
        before = ids_of(containers(project))
        started = bob.cli("deployments", "--json")  # bob's first command starts his server
        assert started.code == 0, str(started)
        assert bob.server() is not None
        assert ids_of(containers(project)) == before, (
            "alice's containers were removed when bob's server started; its log says: "
            + (bob.data / "server.log").read_text())
        assert all(row["state"] == COMPLETED for row in alice.ps(project).values())
    finally:
        bob.close()
        alice.close()


def test_two_servers_never_share_a_project_network(tmp_path: Path) -> None:
    """Two homes with the same account and project name on one engine: engine names carry the
    server's id, so each server deploys into its own network and neither touches the other's
    containers (one used to be refused, or worse, to join the other's network)."""
    first = Dockyard(tmp_path / "first")
    second = Dockyard(tmp_path / "second")
    try:
        project, _ = _deploy_steady(first, tmp_path / "a")
        before = ids_of(containers(project))
        directory = copy_project("steady", tmp_path / "b")
        up = second.up(directory, project)
        assert up.code == 0, str(up)
        networks = labelled("network", project)
        assert len(networks) == 2, networks
        servers = {json.loads(docker("network", "inspect", n).stdout)[0]["Labels"]
                   ["dockyard.server"] for n in networks}
        assert len(servers) == 2, servers
        joined: set[str] = set()
        for server in servers:
            mine = containers(project, server=server)
            (network,) = {n for c in mine for n in c["NetworkSettings"]["Networks"]}
            assert network in networks and network not in joined, (network, joined)
            joined.add(network)
        assert before <= ids_of(containers(project))
        assert all(row["state"] == COMPLETED for row in first.ps(project).values())
        assert all(row["state"] == COMPLETED for row in second.ps(project).values())
    finally:
        second.close()
        first.close()
