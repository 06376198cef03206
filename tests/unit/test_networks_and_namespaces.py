"""Compose networks, shared namespaces, volumes_from and cap_add as container specs, the plan
that replaces a service with the one whose namespace it joins, and what admission refuses
(pure)."""

from __future__ import annotations

from pathlib import Path

from dockyard.compose import LoadOptions, load_project
from dockyard.compose.models import Project
from dockyard.naming import NamingMode
from dockyard.plan import ActionKind, RunningService, config_hash, config_parts, plan
from dockyard.runtime.specs import (
    Placement,
    container_specs,
    network_name,
    project_networks,
    scope,
)
from dockyard.server.containment import capability_problems
from dockyard.server.namespaces import namespace_problems

BYOC = Placement(account="alice", project="shop", mode=NamingMode.BYOC, zone="localhost")

NETWORKS = """
name: shop
services:
  web:
    image: busybox
    networks: [front]
  api:
    image: busybox
    networks:
      front: {aliases: [gateway]}
      back: {}
  db:
    image: busybox
    networks: [back]
    links: ["api:upstream"]
  plain:
    image: busybox
networks:
  front: {}
  back: {internal: true}
"""


def load(tmp_path: Path, text: str) -> Project:
    (tmp_path / "compose.yaml").write_text(text)
    return load_project(LoadOptions(working_dir=str(tmp_path), environ={})).project


def spec(project: Project, service: str):  # type: ignore[no-untyped-def]
    return container_specs(project, project.services[service], BYOC, image="sha256:abc",
                           deployment="d1e2f3g4h5i6", config_hash="h", replicas=1)[0]


def test_each_network_is_its_own_and_a_service_joins_only_those_it_lists(
        tmp_path: Path) -> None:
    project = load(tmp_path, NETWORKS)
    prefix = scope(BYOC)
    assert project_networks(project, BYOC) == {prefix: False, f"{prefix}_front": False,
                                               f"{prefix}_back": True}
    web, api, db, plain = (spec(project, s) for s in ("web", "api", "db", "plain"))
    assert (web.network, web.networks) == (f"{prefix}_front", ())
    assert plain.network == network_name(BYOC) == prefix
    attached = {api.network: api.aliases, **dict(api.networks)}
    assert set(attached) == {f"{prefix}_front", f"{prefix}_back"}
    # its private names on every network, its Compose aliases where given, and the alias
    # db's link gives it
    assert attached[f"{prefix}_front"] == ("api", "api.shop.internal", "upstream", "gateway")
    assert attached[f"{prefix}_back"] == ("api", "api.shop.internal", "upstream")
    assert (db.network, db.aliases) == (f"{prefix}_back", ("db", "db.shop.internal"))


def test_a_sidecar_joins_the_namespaces_of_its_service_and_sets_no_network(
        tmp_path: Path) -> None:
    project = load(tmp_path, """
name: shop
services:
  app: {image: busybox, hostname: app, volumes: [data:/data, cache:/cache]}
  proxy:
    image: busybox
    network_mode: service:app
    ipc: service:app
    volumes_from: ["app:ro"]
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
  lonely: {image: busybox, network_mode: none}
volumes: {data: {}, cache: {}}
""")
    app, proxy, lonely = (spec(project, s) for s in ("app", "proxy", "lonely"))
    assert (proxy.network_mode, proxy.ipc_mode) == ("service:app", "service:app")
    assert (proxy.network, proxy.aliases, proxy.networks, proxy.hostname) == ("", (), (), None)
    assert app.ipc_mode == "shareable" and app.network_mode is None
    assert lonely.network_mode == "none"
    assert {(m.target, m.source, m.read_only) for m in proxy.mounts} == {
        ("/data", f"{scope(BYOC)}_data", True), ("/cache", f"{scope(BYOC)}_cache", True)}
    assert (proxy.cap_add, proxy.cap_drop) == (("NET_ADMIN",), ("MKNOD",))
    assert project.services["proxy"].depends_on.keys() == {"app"}


def running(project: Project, *names: str) -> dict[str, RunningService]:
    return {n: RunningService(n, config_hash(project.services[n], "img"), 1,
                              config_parts(project.services[n], "img")) for n in names}


def test_a_sidecar_is_replaced_with_the_service_whose_namespace_it_joins(
        tmp_path: Path) -> None:
    text = """
name: shop
services:
  app: {image: busybox, environment: {V: "1"}}
  proxy: {image: busybox, network_mode: "service:app"}
  other: {image: busybox}
"""
    before = load(tmp_path, text)
    now = running(before, "app", "proxy", "other")
    images = {"app": "img", "proxy": "img", "other": "img"}
    assert not plan(before, now, images).changes
    after = load(tmp_path, text.replace('V: "1"', 'V: "2"'))
    decided = plan(after, now, images)
    proxy = decided.action("proxy")
    assert proxy is not None and proxy.kind is ActionKind.REPLACE
    assert proxy.reason == "joins the network namespace of app, which gets new containers"
    assert decided.action("other").kind is ActionKind.KEEP  # type: ignore[union-attr]


def test_a_provider_service_is_always_kept(tmp_path: Path) -> None:
    project = load(tmp_path, """
name: shop
services:
  llm: {provider: {type: model, options: {model: ai/smollm2}}}
  app: {image: busybox, depends_on: [llm]}
""")
    decided = plan(project, {}, {"llm": "<provider>", "app": "img"})
    llm = decided.action("llm")
    assert llm is not None and llm.kind is ActionKind.KEEP
    assert "no container" in llm.reason


def test_namespaces_outside_the_project_are_refused(tmp_path: Path) -> None:
    project = load(tmp_path, """
name: shop
services:
  a: {image: busybox, network_mode: host}
  b: {image: busybox, ipc: host, volumes_from: ["container:x"]}
  c: {image: busybox, network_mode: "service:d", ports: ["80"], hostname: c}
  d: {image: busybox}
""")
    found = namespace_problems(project)
    assert {d.code for d in found} == {"network-mode-refused"}
    text = "\n".join(d.message for d in found)
    assert "network_mode 'host'" in text and "ipc 'host'" in text
    assert "'container:x'" in text and "cannot set ports, hostname" in text
    assert all(d.hint for d in found)
    swarm = namespace_problems(project, driver="swarm")
    assert any("Swarm driver" in d.message for d in swarm)
    lonely = load(tmp_path, "services:\n  x: {image: busybox, network_mode: none}\n")
    assert namespace_problems(lonely) == []
    assert [d.code for d in namespace_problems(lonely, driver="swarm")] == [
        "network-mode-refused"]


def test_a_shared_server_admits_only_the_default_capabilities(tmp_path: Path) -> None:
    project = load(tmp_path, """
name: shop
services:
  ok: {image: busybox, cap_add: [NET_BIND_SERVICE, CAP_CHOWN]}
  bad: {image: busybox, cap_add: [NET_ADMIN, SYS_ADMIN, CHOWN]}
""")
    found = capability_problems(project)
    assert len(found) == 1 and found[0].code == "capability-refused"
    assert "NET_ADMIN, SYS_ADMIN" in found[0].message and "CHOWN," not in found[0].message
    assert found[0].location.path == "services.bad.cap_add"


def test_the_swarm_driver_attaches_every_network_and_adds_capabilities() -> None:
    from dockyard.runtime.driver import ContainerSpec
    from dockyard.runtime.swarm_specs import service_spec

    body = service_spec(ContainerSpec(
        name="dy-x-api-1-abc", image="busybox", labels={"dockyard.service": "api"},
        environment={}, network="dy-x_front", aliases=("api", "gateway"),
        networks=(("dy-x_back", ("api",)),), cap_add=("NET_ADMIN",)))
    task = body["TaskTemplate"]
    assert task["Networks"] == [{"Target": "dy-x_front", "Aliases": ["api", "gateway"]},
                                {"Target": "dy-x_back", "Aliases": ["api"]}]
    assert task["ContainerSpec"]["CapabilityAdd"] == ["NET_ADMIN"]


def test_the_engine_s_bridge_means_the_project_s_default_network(tmp_path: Path) -> None:
    project = load(tmp_path, """
name: shop
services:
  old: {image: busybox, network_mode: bridge}
""")
    old = spec(project, "old")
    assert (old.network, old.network_mode) == (scope(BYOC), None)
    assert old.aliases == ("old", "old.shop.internal")
    assert namespace_problems(project) == []


def test_a_service_another_joins_the_ipc_of_is_made_shareable_and_replaced_for_it(
        tmp_path: Path) -> None:
    text = """
name: shop
services:
  app: {image: busybox}
"""
    before = load(tmp_path, text)
    now = running(before, "app")
    after = load(tmp_path, text + "  shm: {image: busybox, ipc: \"service:app\"}\n")
    app = plan(after, now, {"app": "img", "shm": "img"}).action("app")
    assert app is not None and app.kind is ActionKind.REPLACE and app.reason == "ipc changed"
    assert spec(after, "app").ipc_mode == "shareable"


def test_playground_private_names_resolve_on_every_network_a_service_joins(
        tmp_path: Path) -> None:
    playground = Placement(account="alice", project="shop", mode=NamingMode.PLAYGROUND,
                           zone="prod1a.localhost")
    project = load(tmp_path, NETWORKS)
    api = container_specs(project, project.services["api"], playground, image="sha256:abc",
                          deployment="d1e2f3g4h5i6", config_hash="h", replicas=1)[0]
    for _, aliases in ((api.network, api.aliases), *api.networks):
        assert {"api", "api.shop.internal", "alice-api"} <= set(aliases)
