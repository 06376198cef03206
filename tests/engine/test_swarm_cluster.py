"""The Swarm driver on a simulated 3-node Swarm (`scripts/cluster`), end to end.

One cluster for the module (made and removed here: the host's engine is left as it was), one
deployment of the example shop through the real CLI and a real local server started with
`--driver swarm` (DOCKYARD_DRIVER) against the manager's engine, with the cluster's registry:
built images are pushed there and every node runs them by digest. The database writes a named
volume, so the driver pins it to the manager (n1, whose engine the server talks to); one of
the API's two replicas is on a worker (`max_replicas_per_node: 1`, added to the copy), and
killing that worker never loses the data.

The tests run in file order, on the same deployment: it runs, it is reached, it survives the
loss of a node, and `down` leaves nothing on any node.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cluster import Cluster, cluster_possible, running_cluster
from tests.support.deployments import (
    COMPLETED,
    FAILED,
    PENDING,
    PROJECTS,
    Dockyard,
    Result,
    edit,
    eventually,
)
from tests.support.engine import EXAMPLE, engine_ready
from tests.support.ingress import local_ca, request

pytestmark = [
    pytest.mark.docker,
    pytest.mark.cluster,
    pytest.mark.skipif(not os.environ.get("CI") and not (engine_ready() and cluster_possible()),
                       reason="needs root, iproute2, docker-registry and a Docker Engine with "
                       "dockyard/busybox:1 (run scripts/setup as root)"),
]

NODES = 3
log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster(NODES) as made:
        yield made


@dataclass
class Shop:
    dy: Dockyard
    cluster: Cluster
    project: str
    port: int  # the ingress's HTTPS port
    ca: str
    directory: Path
    first_up: str  # what the first `up` printed

    def up(self) -> Result:
        return self.dy.cli("compose", "up", "-C", str(self.directory), "-p", self.project,
                           "--json", timeout=600)

    def under_load(self, service: str, port: int) -> tuple[threading.Event, dict[str, int],
                                                           threading.Thread]:
        """A client asking `service` through the ingress every 50 ms until the event is set."""
        stop = threading.Event()
        counts = {"ok": 0, "failed": 0}

        def load() -> None:
            while not stop.is_set():
                try:
                    ok = self.get(service, port) == 200
                except OSError:
                    ok = False
                counts["ok" if ok else "failed"] += 1
                time.sleep(0.05)
        thread = threading.Thread(target=load, daemon=True)
        thread.start()
        return stop, counts, thread

    def rows(self) -> dict[str, dict[str, Any]]:
        return self.dy.ps(self.project)

    def host(self, service: str, port: int) -> str:
        return f"{service}--{port}.{self.project}.{self.dy.user}.localhost"

    def get(self, service: str, port: int) -> int:
        return request(self.port, self.host(service, port), ca=self.ca, timeout=5).status


@pytest.fixture(scope="module")
def shop(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    base = tmp_path_factory.mktemp("swarm")
    directory = base / "shop"
    shutil.copytree(EXAMPLE, directory)
    # The API's two replicas on two machines, as a user who wants it to survive a node would
    # ask (replicas can share a node: their ports are the ones the engine picks there).
    edit(directory / "compose.yaml", "      replicas: 2\n",
         "      replicas: 2\n      placement: {max_replicas_per_node: 1}\n")
    # The API is healthy once `db` answers by name across nodes. Once, in a full-suite run
    # on a freshly made simulated cluster, an API task failed its 5 checks (25 s) and Swarm
    # replaced it, so the first `up` failed (as it should) and every test here errored. A
    # start period, as a user of a slow network would give, keeps this module about
    # placement and the ingress, not about how fast the overlay settles under load.
    edit(directory / "compose.yaml", "      retries: 5\n    deploy:\n",
         "      retries: 5\n      start_period: 60s\n    deploy:\n")
    dy = Dockyard(base / "home", env={**cluster.env, "DOCKYARD_DEPLOY_TIMEOUT": "120"})
    project = dy.name("swarm")
    try:
        first = dy.cli("compose", "up", "-C", str(directory), "-p", project, "--json",
                       timeout=600)
        assert first.code == 0, str(first)
        endpoint = dy.ps(project)["web"]["endpoint"]
        shop = Shop(dy, cluster, project, int(endpoint.rsplit(":", 1)[1]), local_ca(dy),
                    directory, first.out + first.err)
        yield shop
    finally:
        dy.close()


def test_the_example_runs_with_its_replicas_on_several_nodes(shop: Shop) -> None:
    rows = shop.rows()
    assert {name: row["state"] for name, row in rows.items()} == dict.fromkeys(
        ("api", "db", "metrics", "migrate", "web"), COMPLETED)
    assert len(rows["api"]["nodes"]) == 2  # max_replicas_per_node: 1
    assert rows["db"]["nodes"] == ["n1"] and rows["db"]["pinned_node"] == "n1"
    assert "warning: pinned to node n1" in shop.first_up  # said at `up`
    every = {n for row in rows.values() for n in row["nodes"]}
    assert len(every) >= 2
    # A host port is published on the node running the replica, and answers there.
    [metrics] = rows["metrics"]["nodes"]
    address = f"10.250.0.{10 + int(metrics.removeprefix('n'))}"
    assert rows["metrics"]["endpoint"] == f"{address}:9100"
    assert httpx.get(f"http://{address}:9100/", timeout=10).status_code == 200
    # Every node runs the same bits: the built image, pushed and pinned by digest.
    assert rows["api"]["image"].startswith(f"{shop.cluster.registry}/")
    assert "@sha256:" in rows["api"]["image"]
    table = shop.dy.cli("compose", "ps", "--long", "-p", shop.project)
    assert "NODES" in table.out and "(pinned to n1)" in table.out, str(table)


def test_private_names_resolve_on_every_node_and_public_endpoints_answer(shop: Shop) -> None:
    # The API's health check asks `db` by name: both replicas run on workers, db on the
    # manager, so it resolved across nodes; ask again from a task of our own on each worker.
    network = next(n for n in shop.cluster.docker("n1", "network", "ls", "--format",
                                                  "{{.Name}}").stdout.split()
                   if n.startswith(f"dy-{shop.dy.user}-{shop.project[:24]}"))
    name = f"probe-{uuid.uuid4().hex[:6]}"
    shop.cluster.docker(
        "n1", "service", "create", "--detach", "--name", name, "--network", network,
        "--mode", "global-job", "--constraint", "node.role==worker", "--no-resolve-image",
        "dockyard/busybox:1", "sh", "-c",
        "nslookup db && nslookup web && wget -q -O- http://web:8080/ && echo probe-ok")
    try:
        def done() -> str | None:
            out = shop.cluster.docker("n1", "service", "logs", "--raw", name, check=False).stdout
            return out if out.count("probe-ok") == NODES - 1 else None
        eventually(done, "the probe to answer on both workers", timeout=60)
    finally:
        shop.cluster.docker("n1", "service", "rm", name, check=False)
    assert shop.get("web", 8080) == 200
    assert shop.get("api", 8000) == 200


def test_a_rolling_update_under_load_loses_no_request(shop: Shop) -> None:
    before = shop.rows()["web"]
    edit(shop.directory / "compose.yaml", "      API_URL: http://api:8000\n",
         "      API_URL: http://api:8000\n      RELEASE: two\n")
    stop, counts, thread = shop.under_load("web", 8080)
    try:
        result = shop.up()
    finally:
        stop.set()
        thread.join()
    assert result.code == 0, str(result)
    after = shop.rows()["web"]
    assert after["state"] == COMPLETED and after["deployment"] != before["deployment"]
    assert counts["ok"] > 0
    assert counts["failed"] == 0, counts


def test_a_failing_new_version_fails_and_the_old_one_keeps_serving(shop: Shop) -> None:
    before = shop.rows()["web"]
    edit(shop.directory / "compose.yaml",
         'test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/"]',
         'test: ["CMD", "false"]')
    try:
        result = shop.up()
        assert result.code != 0, str(result)
        row = shop.rows()["web"]
        assert row["state"] == FAILED and "keeps" in row["reason"], row
        assert row["nodes"] == before["nodes"] and row["running"] == 1
        assert shop.get("web", 8080) == 200
        # Asked to, the failed deployment is rolled back: the previous one runs again.
        again = shop.dy.cli("compose", "up", "-C", str(shop.directory), "-p", shop.project,
                            "--json", "--rollback-on-failure", timeout=600)
        assert again.code != 0, str(again)
        failed = json.loads(again.out.splitlines()[0])["deployment"]
        shown = shop.dy.cli("deployments", "show", failed, "--json")
        record = json.loads(shown.out)["record"]
        assert record["rolled_back_by"] and record["rolled_back_to"], record
        row = eventually(lambda: (r := shop.rows()["web"])["state"] == COMPLETED and r,
                         "web to be COMPLETED after the rollback", timeout=120)
        assert row["running"] == 1 and row["nodes"] == before["nodes"], row
        assert shop.get("web", 8080) == 200
    finally:
        edit(shop.directory / "compose.yaml", 'test: ["CMD", "false"]',
             'test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/"]')


def test_a_server_killed_mid_update_rebuilds_its_view_from_the_swarm(shop: Shop) -> None:
    dy, cluster = shop.dy, shop.cluster
    before = shop.rows()["web"]
    edit(shop.directory / "compose.yaml", "      RELEASE: two\n", "      RELEASE: three\n")
    client = dy.background("compose", "up", "-C", str(shop.directory), "-p", shop.project,
                           output=shop.directory / "up.log")
    try:
        def replacing() -> bool:
            row = shop.rows()["web"]
            return bool(row["deployment"] != before["deployment"] and row["state"] == PENDING)
        eventually(replacing, "the update of web to start its new replica", timeout=120)
        dy.kill_server()
    finally:
        client.kill()
        client.wait()

    def web_services() -> list[str]:
        return cluster.docker("n1", "service", "ls", "--format", "{{.Name}}", "--filter",
                              f"label=dockyard.project={shop.project}", "--filter",
                              "label=dockyard.service=web").stdout.split()
    # The next command starts a server, which recovers: the interrupted replica goes, the
    # previous version (still serving) stays, and nothing is left behind on the Swarm.
    row = eventually(lambda: (r := shop.rows()["web"])["state"] == COMPLETED and r,
                     "web to be COMPLETED again", timeout=60)
    assert row["running"] == 1
    eventually(lambda: len(web_services()) == 1, "one web replica on the Swarm", timeout=60)
    shop.port = int(row["endpoint"].rsplit(":", 1)[1])  # the new server's ingress port
    assert shop.get("web", 8080) == 200


def test_secret_files_arrive_on_tmpfs_and_no_node_writes_them_to_disk(shop: Shop) -> None:
    dy, cluster = shop.dy, shop.cluster
    project = dy.name("secrets")
    token = f"tok-{uuid.uuid4().hex}"
    for name, value in (("API_TOKEN", token), ("API_ENV", "plain")):
        done = dy.cli("config", "set", f"{name}={value}", "-p", project)
        assert done.code == 0, str(done)
    up = dy.cli("compose", "up", "-C", str(PROJECTS / "secrets-at-rest"), "-p", project,
                "--json", timeout=300)
    assert up.code == 0, str(up)
    try:
        def placed() -> tuple[str, str] | None:
            """(node, container) where `ps` says the replica runs and that node runs it: once
            a fresh-clone run found no container where `ps` had just placed it (not seen
            again in 10 runs of this module); `ps` is asked again each time."""
            [node] = dy.ps(project)["app"]["nodes"]
            found = cluster.docker(node, "ps", "-q", "--filter",
                                   f"label=dockyard.project={project}").stdout.split()
            return (node, found[0]) if len(found) == 1 else None

        node, container = eventually(placed, "the app's container where ps places it",
                                     timeout=60)
        inside = cluster.docker(node, "exec", container, "sh", "-c",
                                "cat /run/secrets/API_TOKEN; echo; "
                                "grep ' /run/secrets/API_TOKEN ' /proc/mounts").stdout
        assert inside.splitlines()[0] == token
        assert inside.splitlines()[1].split()[2] == "tmpfs", inside
        for each in cluster.nodes:
            root = Path(cluster.socket(each).removeprefix("unix://")).parent / "data"
            found = subprocess.run(["grep", "-rlF", token, str(root / "containers"),
                                    str(root / "swarm")], capture_output=True, text=True,
                                   timeout=120, check=False)
            assert found.stdout == "", f"{each} wrote the secret to disk: {found.stdout}"
    finally:
        down = dy.cli("compose", "down", "-p", project)
        assert down.code == 0, str(down)


def test_global_services_and_max_replicas_per_node_are_placed_by_dockyard(
        shop: Shop, tmp_path: Path) -> None:
    dy = shop.dy
    project = dy.name("placement")
    directory = tmp_path / "placement"
    shutil.copytree(PROJECTS / "swarm-placement", directory)
    try:
        up = dy.cli("compose", "up", "-C", str(directory), "-p", project, "--json",
                    timeout=300)
        assert up.code == 0, str(up)
        rows = dy.ps(project)
        # One replica per worker (the manager is no worker), one per node at most.
        assert (rows["agent"]["running"], rows["agent"]["nodes"]) == (2, ["n2", "n3"]), rows
        assert (rows["spread"]["running"], rows["spread"]["nodes"]) == (2, ["n2", "n3"]), rows
        agent = f"agent--8080.{project}.{dy.user}.localhost"
        assert request(shop.port, agent, ca=shop.ca, timeout=5).status == 404  # no index
        # A new version of the global public service: start-first on each node (the new
        # replica's port is another one the engine picks there).
        edit(directory / "compose.yaml", "RELEASE: one", "RELEASE: two")
        replaced = dy.cli("compose", "up", "-C", str(directory), "-p", project, "--json",
                          timeout=300)
        assert replaced.code == 0, str(replaced)
        row = dy.ps(project)["agent"]
        assert (row["state"], row["running"], row["nodes"]) == (COMPLETED, 2, ["n2", "n3"])
        assert row["deployment"] != rows["agent"]["deployment"]
        assert request(shop.port, agent, ca=shop.ca, timeout=5).status == 404
        # A third replica has no worker left: refused at once, saying why; two keep running.
        edit(directory / "compose.yaml", "      replicas: 2\n", "      replicas: 3\n")
        more = dy.cli("compose", "up", "-C", str(directory), "-p", project, "--json",
                      timeout=300)
        assert more.code != 0, str(more)
        row = dy.ps(project)["spread"]
        assert row["state"] == FAILED and "max_replicas_per_node 1" in row["reason"], row
        assert row["nodes"] == ["n2", "n3"], row
    finally:
        down = dy.cli("compose", "down", "-p", project)
        assert down.code == 0, str(down)


def test_losing_a_worker_moves_its_replicas_and_the_states_say_why(
        shop: Shop, request: pytest.FixtureRequest) -> None:
    victim = sorted(shop.rows()["api"]["nodes"])[-1]  # a worker: two replicas, two nodes
    stop, outcome, loader = shop.under_load("api", 8000)
    try:
        shop.cluster.script("kill", victim)

        def back() -> dict[str, Any] | None:
            row = shop.rows()["api"]
            return row if row["state"] == COMPLETED and row["running"] == 2 \
                and victim not in row["nodes"] else None
        row = eventually(back, "api back to COMPLETED on other nodes", timeout=120)
        assert len(row["nodes"]) == 2, row  # max_replicas_per_node: 1 holds after the move
    finally:
        stop.set()
        loader.join()
        shop.cluster.script("start", victim)
    # The service left COMPLETED while its replica was away (a few seconds: `ps` may not catch
    # it), saying why, and came back: the deployment's own events.
    moves = [(e["state"], e["reason"]) for e in shop.dy.events(row["deployment"])
             if e["service"] == "api"]
    lost = [i for i, (state, reason) in enumerate(moves)
            if state == PENDING and reason.startswith(f"node {victim} is down")]
    assert lost and [state for state, _ in moves[lost[0] + 1:]][:1] == [COMPLETED], moves
    # Reported, not asserted: the goal is 0 once the proxy's health check noticed (docs/swarm.md);
    # bench/swarm_bench.py prints it too. (user_properties: what `record_property` would add,
    # without its warning under junit's xunit2.)
    request.node.user_properties += [
        ("failed_requests_during_node_loss", outcome["failed"]),
        ("requests_during_node_loss", outcome["failed"] + outcome["ok"])]
    log.info("node loss: %d of %d requests through the ingress failed", outcome["failed"],
             outcome["failed"] + outcome["ok"])
    assert outcome["ok"] > 0
    assert shop.get("api", 8000) == 200


def test_draining_a_node_moves_its_tasks_and_no_request_fails(shop: Shop) -> None:
    rows = shop.rows()
    workers = sorted(n for n in rows["api"]["nodes"] if n != "n1")
    assert workers, rows["api"]  # one of two replicas is on a worker (no two share a node)
    victim = workers[-1]
    stop, outcome, loader = shop.under_load("api", 8000)
    try:
        shop.cluster.docker("n1", "node", "update", "--availability", "drain", victim)

        def moved() -> dict[str, Any] | None:
            row = shop.rows()["api"]
            return row if row["state"] == COMPLETED and row["running"] == 2 \
                and victim not in row["nodes"] else None
        row = eventually(moved, f"api moved off {victim}", timeout=120)
        time.sleep(1)  # a moment of load on the moved replica too
    finally:
        stop.set()
        loader.join()
        shop.cluster.docker("n1", "node", "update", "--availability", "active", victim)
    moves = [(e["state"], e["reason"]) for e in shop.dy.events(row["deployment"])
             if e["service"] == "api"]
    assert any(state == PENDING and reason.startswith(f"node {victim} is drained")
               for state, reason in moves), "\n".join(map(str, moves))
    assert moves[-1][0] == COMPLETED, moves
    # Swarm stops the drained task; the ingress took it out of rotation when Swarm shut it
    # down, and a request that still met it is retried on the other replica.
    assert outcome["ok"] > 0
    assert outcome["failed"] == 0, outcome
    # The service writing a named volume never moved: it stays with its data.
    assert shop.rows()["db"]["nodes"] == ["n1"]


def test_down_removes_everything_from_every_node(shop: Shop) -> None:
    result = shop.dy.cli("compose", "down", "--volumes", "-p", shop.project)
    assert result.code == 0, str(result)
    cluster = shop.cluster
    assert cluster.docker("n1", "service", "ls", "-q").stdout.strip() == ""
    assert cluster.docker("n1", "secret", "ls", "-q").stdout.strip() == ""

    def left() -> list[str]:
        found = []
        scope = shop.project[:24]
        for node in cluster.nodes:
            found += [f"{node}: container {name}" for name in cluster.docker(
                node, "ps", "-a", "--format", "{{.Names}} {{.Status}}", "--filter",
                f"label=dockyard.project={shop.project}").stdout.splitlines()]
            found += [f"{node}: volume {name}" for name in cluster.docker(
                node, "volume", "ls", "-q").stdout.split() if scope in name]
            found += [f"{node}: network {name}" for name in cluster.docker(
                node, "network", "ls", "--format", "{{.Name}}").stdout.split() if scope in name]
        return found
    # Swarm removes the task containers on each node by itself, a node back from a crash
    # once it has caught up with the manager.
    deadline = time.monotonic() + 120
    while (remaining := left()) and time.monotonic() < deadline:
        time.sleep(1)
    assert remaining == []
