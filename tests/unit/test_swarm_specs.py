"""The Swarm driver's pure parts: a replica's container spec as a Swarm service, and its tasks
(with their nodes) as the container the control plane follows."""

from __future__ import annotations

from typing import Any

from dockyard.compose import LoadOptions, load_project
from dockyard.naming import NamingMode
from dockyard.runtime.driver import ContainerSpec, MountSpec, PublishedPort
from dockyard.runtime.specs import Placement, container_specs
from dockyard.runtime.swarm import _actions
from dockyard.runtime.swarm_specs import (
    LABEL_NODE_PIN,
    REJECTIONS_TO_FAIL,
    NodeView,
    SecretFile,
    container_info,
    node_of,
    place,
    placement_nodes,
    service_spec,
)

NODES = {"a": NodeView("a", "n1", "10.250.0.11", True),
         "b": NodeView("b", "n2", "10.250.0.12", False)}


def spec(**changes: Any) -> ContainerSpec:
    base: dict[str, Any] = {"name": "dy-x-web-1-abc",
                            "image": "reg:5443/web@sha256:" + "1" * 64,
                            "labels": {"dockyard.service": "web"}, "environment": {"A": "1"},
                            "network": "dy-x", "aliases": ("web", "web.p.internal")}
    base.update(changes)
    return ContainerSpec(**base)


def test_a_long_running_replica_is_one_replicated_task_on_the_overlay_with_dnsrr() -> None:
    body = service_spec(spec(restart="unless-stopped", ingress_ports=(8080,),
                             healthcheck={"Test": ["CMD", "true"], "Interval": 10**9},
                             stop_timeout=2, nano_cpus=500_000_000, memory=128 << 20))
    assert body["Name"] == "dy-x-web-1-abc"
    assert body["Mode"] == {"Replicated": {"Replicas": 1}}
    # An ingress port: on the node, at a port the engine picks (replicas share nodes).
    assert body["EndpointSpec"] == {"Mode": "dnsrr", "Ports": [
        {"Protocol": "tcp", "TargetPort": 8080, "PublishMode": "host"}]}
    task = body["TaskTemplate"]
    assert task["Networks"] == [{"Target": "dy-x", "Aliases": ["web", "web.p.internal"]}]
    assert task["RestartPolicy"]["Condition"] == "any"
    assert task["Resources"]["Limits"] == {"NanoCPUs": 500_000_000, "MemoryBytes": 128 << 20}
    container = task["ContainerSpec"]
    assert container["Env"] == ["A=1"]
    assert container["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 10**9}
    assert container["StopGracePeriod"] == 2 * 10**9
    assert container["Image"].endswith("@sha256:" + "1" * 64)


def test_a_job_is_one_task_that_never_restarts() -> None:
    body = service_spec(spec(restart="no"))
    assert body["Mode"] == {"Replicated": {"Replicas": 1}}
    assert body["TaskTemplate"]["RestartPolicy"] == {"Condition": "none"}


def test_placement_constraints_preferences_and_the_volume_pin() -> None:
    body = service_spec(spec(constraints=("node.role==worker",), spread=("node.labels.zone",),
                             max_replicas_per_node=1,
                             mounts=(MountSpec("volume", "/data", "dy-x_data"),)), pin="a")
    placement = body["TaskTemplate"]["Placement"]
    assert placement == {"Constraints": ["node.role==worker", "node.id==a"],
                         "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
                         "MaxReplicas": 1}
    assert body["Labels"][LABEL_NODE_PIN] == "a"
    mount = body["TaskTemplate"]["ContainerSpec"]["Mounts"][0]
    assert (mount["Type"], mount["Source"], mount["Target"]) == ("volume", "dy-x_data", "/data")


def test_secret_files_become_swarm_secrets_and_no_bind_mount_is_left() -> None:
    body = service_spec(spec(mounts=(MountSpec("bind", "/run/x/1-token", "/run/secrets/t",
                                               read_only=True),)),
                        secrets=[SecretFile("sid", "dy-abc", "/run/secrets/t", 0o400, "0", "0")])
    container = body["TaskTemplate"]["ContainerSpec"]
    assert "Mounts" not in container
    assert container["Secrets"] == [{"SecretID": "sid", "SecretName": "dy-abc", "File": {
        "Name": "/run/secrets/t", "UID": "0", "GID": "0", "Mode": 0o400}}]


def test_host_ports_are_published_in_host_mode() -> None:
    body = service_spec(spec(ports=(PublishedPort(9100, "tcp", "9100"),)))
    assert body["EndpointSpec"]["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 9100, "PublishedPort": 9100, "PublishMode": "host"}]


def test_compose_placement_reaches_the_container_spec(tmp_path: Any) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    image: nginx\n    ports: ['8080']\n    deploy:\n"
        "      placement:\n        constraints: ['node.labels.ssd==true']\n"
        "        preferences: [{spread: node.labels.zone}]\n"
        "        max_replicas_per_node: 2\n")
    project = load_project(LoadOptions(working_dir=str(tmp_path), environ={})).project
    placement = Placement("alice", project.name, NamingMode.BYOC, "localhost", "srv")
    [made] = container_specs(project, project.services["web"], placement, image="nginx",
                             deployment="d1", config_hash="h", replicas=1)
    assert made.constraints == ("node.labels.ssd==true",)
    assert made.spread == ("node.labels.zone",)
    assert made.max_replicas_per_node == 2
    assert made.ingress_ports == (8080,)


def _service(ports: bool = True, check: bool = True,
             labels: dict[str, str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"Image": "x"}
    if check:
        container["Healthcheck"] = {"Test": ["CMD", "true"]}
    return {"ID": "svc1", "Spec": {
        "Name": "dy-x-web-1-abc", "Labels": {"dockyard.service": "web", **(labels or {})},
        "Mode": {"Replicated": {"Replicas": 1}},
        "TaskTemplate": {"ContainerSpec": container, "RestartPolicy": {"Condition": "any"}},
        "EndpointSpec": {"Ports": [{"TargetPort": 8080, "PublishedPort": 8080}] if ports
                         else []}}}


def _task(state: str, node: str = "a", at: str = "2026-01-01T00:00:01Z", err: str = "",
          desired: str = "running", code: int = 0) -> dict[str, Any]:
    return {"ID": f"t-{state}-{at}", "ServiceID": "svc1", "NodeID": node, "CreatedAt": at,
            "DesiredState": desired,
            "Status": {"State": state, "Err": err, "Timestamp": at,
                       "ContainerStatus": {} if state in ("new", "pending", "rejected") else
                       {"ContainerID": f"c-{at}", "ExitCode": code}},
            "NetworksAttachments": [{"Network": {"Spec": {"Name": "dy-x"}},
                                     "Addresses": ["10.0.1.5/24"]}]}


def test_a_running_task_with_a_check_is_running_and_healthy_at_its_node_address() -> None:
    task = _task("running")
    task["Status"]["PortStatus"] = {"Ports": [
        {"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 32769, "PublishMode": "host"}]}
    info = container_info(_service(), [task], NODES)
    assert (info.status, info.health, info.node) == ("running", "healthy", "n1")
    # The ingress reaches the port the engine picked on that node.
    assert (info.ip_address, info.reach(8080)) == ("10.250.0.11", 32769)
    assert info.host_ports == ("10.250.0.11:8080->8080/tcp",)  # the spec's fixed host port


def test_a_private_replica_is_reached_at_its_overlay_address() -> None:
    info = container_info(_service(ports=False), [_task("running")], NODES)
    assert info.ip_address == "10.0.1.5"


def test_a_task_waiting_to_be_placed_is_created_and_one_starting_is_not_yet_healthy() -> None:
    for state in ("new", "pending", "assigned", "preparing"):
        assert container_info(_service(), [_task(state)], NODES).status == "created"
    starting = container_info(_service(), [_task("starting")], NODES)
    assert (starting.status, starting.health) == ("running", "starting")


def test_a_failed_task_counts_as_a_restart_and_its_code_is_the_last_exit_code() -> None:
    tasks = [_task("failed", at="2026-01-01T00:00:01Z", err="task: non-zero exit (3)", code=3,
                   desired="shutdown"),
             _task("running", at="2026-01-01T00:00:02Z")]
    info = container_info(_service(), tasks, NODES)
    assert (info.status, info.restart_count, info.exit_code) == ("running", 1, 3)
    assert info.health_output == "task: non-zero exit (3)"


def test_a_rejected_task_is_no_restart_the_replica_waits_to_be_placed_again() -> None:
    # Seen in CI: a task rejected while Swarm placed the replica was taken for a crash loop
    # ("restarted 1 times, last exit code 0").
    tasks = [_task("rejected", at="2026-01-01T00:00:01Z", err="No such image: x",
                   desired="shutdown"),
             _task("pending", at="2026-01-01T00:00:02Z")]
    info = container_info(_service(), tasks, NODES)
    assert (info.status, info.restart_count) == ("created", 0)
    assert info.health_output == "rejected on n1: No such image: x; Swarm places it again"
    tasks[1] = _task("running", at="2026-01-01T00:00:02Z")
    running = container_info(_service(), tasks, NODES)
    assert (running.status, running.health, running.restart_count) == ("running", "healthy", 0)


def test_a_replica_swarm_keeps_rejecting_fails_with_the_reason() -> None:
    tasks = [_task("rejected", at=f"2026-01-01T00:00:0{i}Z", err="No such image: x",
                   desired="shutdown") for i in range(1, REJECTIONS_TO_FAIL + 1)]
    tasks.append(_task("pending", at="2026-01-01T00:00:09Z"))
    info = container_info(_service(), tasks, NODES)
    assert (info.status, info.restart_count) == ("exited", 0)
    assert info.health_output == (f"Swarm could not start it ({REJECTIONS_TO_FAIL} tries): "
                                  "rejected on n1: No such image: x")


def test_a_replica_on_a_node_that_is_down_has_died_with_the_nodes_name() -> None:
    info = container_info(_service(), [_task("running", node="b")], NODES)
    assert info.status == "restarting"  # Swarm reschedules it
    assert info.health_output == info.lost == "node n2 is down"
    moving = container_info(_service(), [_task("running", node="b", desired="shutdown"),
                                         _task("pending", at="2026-01-01T00:00:02Z")], NODES)
    assert (moving.status, moving.lost, moving.restart_count) == ("restarting",
                                                                  "node n2 is down", 0)
    assert node_of([_task("running", node="b")], NODES) == "n2"


def test_a_finished_job_is_exited_with_its_code() -> None:
    job = _service(check=False)
    job["Spec"]["Mode"] = {"Replicated": {"Replicas": 1}}
    job["Spec"]["TaskTemplate"]["RestartPolicy"] = {"Condition": "none"}
    info = container_info(job, [_task("complete", desired="shutdown")], NODES)
    assert (info.status, info.exit_code) == ("exited", 0)
    failed = container_info(job, [_task("failed", desired="shutdown", code=3)], NODES)
    assert (failed.status, failed.exit_code) == ("exited", 3)


def test_a_long_running_replica_that_exited_is_restarting() -> None:
    service = _service(check=False)
    service["Spec"]["Mode"] = {"Replicated": {"Replicas": 1}}
    service["Spec"]["TaskTemplate"]["RestartPolicy"] = {"Condition": "any"}
    info = container_info(service, [_task("failed", desired="shutdown", code=2)], NODES)
    assert (info.status, info.exit_code) == ("restarting", 2)


def test_the_pinned_node_is_shown_by_name() -> None:
    info = container_info(_service(labels={LABEL_NODE_PIN: "a"}), [_task("running")], NODES)
    assert info.pinned_node == "n1"


def test_task_changes_are_the_container_events_the_watcher_follows() -> None:
    assert _actions(("running", "healthy", False), ("exited", None, False)) == ["die"]
    assert _actions(("created", None, False), ("running", None, False)) == ["start"]
    assert _actions(("running", "starting", False), ("running", "healthy", False)) == \
        ["health_status: healthy"]
    assert _actions(("exited", None, False), ("running", "healthy", False)) == \
        ["start", "health_status: healthy"]
    # Swarm shuts a task down (its node drained): out of rotation before it stops.
    assert _actions(("running", "healthy", False), ("running", "healthy", True)) == ["kill"]


def test_a_replica_moved_off_a_drained_node_says_so_and_is_no_crash() -> None:
    drained = {**NODES, "b": NodeView("b", "n2", "10.250.0.12", True, drained=True)}
    old = _task("running", node="b", at="2026-01-01T00:00:01Z", desired="shutdown")
    moving = container_info(_service(), [old, _task("pending", at="2026-01-01T00:00:02Z")],
                            drained)
    assert (moving.status, moving.restart_count) == ("restarting", 0)
    assert moving.lost == moving.health_output == "node n2 is drained"
    stopping = container_info(_service(), [old], drained)
    assert (stopping.status, stopping.stopping) == ("running", True)
    moved = container_info(_service(), [old, _task("running", at="2026-01-01T00:00:02Z")],
                           drained)
    assert (moved.status, moved.lost, moved.stopping) == ("running", "", False)


def test_placement_constraints_are_matched_as_swarm_does() -> None:
    node = NodeView("a", "n1", "10.250.0.11", True, role="manager",
                    labels={"zone": "Paris"}, engine_labels={"gpu": "yes"}, arch="x86_64")
    assert node.matches(["node.role==manager", "node.hostname!=n2", "node.labels.zone==paris",
                         "engine.labels.gpu == yes", "node.platform.arch==x86_64"])
    assert not node.matches(["node.role==worker"])
    assert not node.matches(["node.labels.disk==ssd"])  # a missing label is not equal
    assert node.matches(["node.labels.disk!=ssd"])


def test_a_global_replica_is_pinned_to_the_first_node_without_one_of_its_version() -> None:
    nodes = {"a": NodeView("a", "n1", "x", True, role="manager"),
             "b": NodeView("b", "n2", "y", True), "c": NodeView("c", "n3", "z", True),
             "d": NodeView("d", "n4", "w", False), "e": NodeView("e", "n5", "v", True,
                                                                drained=True)}
    workers = placement_nodes(nodes, ["node.role==worker"])
    assert [n.hostname for n in workers] == ["n2", "n3"]  # not down, not drained
    glob = spec(global_mode=True)
    assert place(glob, workers, {}) == ("b", ())
    assert place(glob, workers, {"b": 1}) == ("c", ())
    assert place(glob, workers, {"b": 1, "c": 1}) == (None, ())
    # Replaced stop-first: the node whose old replica just stopped (its port free) comes first.
    assert place(glob, workers, {}, others={"b"}) == ("c", ())
    assert place(glob, workers, {"c": 1}, others={"b"}) == ("b", ())


def test_max_replicas_per_node_avoids_the_nodes_holding_that_many() -> None:
    nodes = placement_nodes({"a": NodeView("a", "n1", "x", True),
                             "b": NodeView("b", "n2", "y", True)}, [])
    most = spec(max_replicas_per_node=2)
    assert place(most, nodes, {"a": 2, "b": 1}) == (None, ("a",))
    body = service_spec(most, avoid=("a",))
    assert "node.id!=a" in body["TaskTemplate"]["Placement"]["Constraints"]
    assert place(spec(), nodes, {"a": 9}) == (None, ())


def test_a_task_swarm_replaced_while_it_ran_is_no_restart_when_its_node_reports_it_later() -> None:
    # Seen on 3 nodes: a worker killed and started again reports its old task failed (exit
    # 255) after Swarm had moved the replica; a drain later must still say "drained".
    drained = {**NODES, "b": NodeView("b", "n2", "10.250.0.12", True),
               "c": NodeView("c", "n3", "10.250.0.13", True, drained=True)}
    lost = _task("failed", node="b", at="2026-01-01T00:00:01Z", desired="shutdown", code=255)
    lost["Status"]["Timestamp"] = "2026-01-01T00:00:30Z"  # reported when n2 came back
    moved = _task("running", node="c", at="2026-01-01T00:00:05Z", desired="shutdown")
    info = container_info(_service(), [lost, moved, _task("ready", at="2026-01-01T00:01:00Z")],
                          drained)
    assert (info.status, info.restart_count) == ("restarting", 0)
    assert info.lost == "node n3 is drained"
    crashed = _task("failed", node="b", at="2026-01-01T00:00:01Z", desired="shutdown", code=3)
    crashed["Status"]["Timestamp"] = "2026-01-01T00:00:02Z"  # then Swarm restarted it
    again = container_info(_service(), [crashed, _task("running", at="2026-01-01T00:00:04Z")],
                           drained)
    assert (again.restart_count, again.exit_code) == (1, 3)


def test_a_spread_preference_sends_the_next_replica_to_the_value_with_the_fewest() -> None:
    nodes = placement_nodes({
        "a": NodeView("a", "n1", "x", True, labels={"zone": "east"}),
        "b": NodeView("b", "n2", "y", True, labels={"zone": "east"}),
        "c": NodeView("c", "n3", "z", True, labels={"zone": "west"})}, [])
    spread = spec(spread=("node.labels.zone",))
    assert place(spread, nodes, {}) == (None, ())  # no replica yet: anywhere
    assert place(spread, nodes, {"a": 1}) == (None, ("a", "b"))  # east has one: west next
    assert place(spread, nodes, {"a": 1, "c": 1}) == (None, ())  # even again


def test_a_replica_whose_picked_port_is_not_reported_yet_is_not_reachable_yet() -> None:
    # Seen on 3 nodes: a replica Swarm moved was routed to its target port before the engine
    # said which node port it picked; its route stayed down, and a drain then left none.
    service = _service()
    service["Spec"]["EndpointSpec"]["Ports"] = [{"TargetPort": 8080, "PublishMode": "host"}]
    early = container_info(service, [_task("running")], NODES)
    assert (early.status, early.ip_address, early.published) == ("running", None, {})
    task = _task("running")
    task["Status"]["PortStatus"] = {"Ports": [{"TargetPort": 8080, "PublishedPort": 30001}]}
    later = container_info(service, [task], NODES)
    assert (later.ip_address, later.reach(8080)) == ("10.250.0.11", 30001)
