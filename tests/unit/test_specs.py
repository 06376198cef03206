"""Services as container specs: names, labels, aliases, limits, policies (pure)."""

from __future__ import annotations

from pathlib import Path

from dockyard.compose import LoadOptions, load_project
from dockyard.compose.models import Project
from dockyard.naming import NamingMode
from dockyard.runtime.specs import (
    Placement,
    container_specs,
    is_job,
    missing_configs,
    replacement_order,
    resolve_environment,
    restart_policy,
    scope,
)

BYOC = Placement(account="alice", project="shop", mode=NamingMode.BYOC, zone="localhost")
PLAYGROUND = Placement(account="alice", project="shop", mode=NamingMode.PLAYGROUND,
                       zone="prod1a.localhost")


def load(tmp_path: Path, text: str) -> Project:
    (tmp_path / "compose.yaml").write_text(text)
    return load_project(LoadOptions(working_dir=str(tmp_path), environ={})).project


def test_a_public_service_with_replicas_limits_and_a_volume(tmp_path: Path) -> None:
    project = load(tmp_path, """
name: shop
services:
  api:
    image: busybox
    ports: ["8000", {target: 9100, published: 9100, mode: host}]
    environment: {GREETING: "cost $$5"}
    networks: {default: {aliases: [backend]}}
    volumes: [data:/data, {type: tmpfs, target: /tmp}]
    healthcheck: {test: [CMD, "true"], interval: 2s, retries: 3}
    stop_grace_period: 3s
    deploy:
      replicas: 2
      resources:
        limits: {cpus: "0.5", memory: 128M, pids: 50}
        reservations: {cpus: "0.25", memory: 64M}
volumes: {data: {}}
""")
    specs = container_specs(project, project.services["api"], BYOC, image="sha256:abc",
                            deployment="d1e2f3g4h5i6", config_hash="h1", replicas=2)
    prefix = scope(BYOC)
    assert prefix.startswith("dy-alice-shop-") and len(prefix) == len("dy-alice-shop-") + 10
    assert [s.name for s in specs] == [f"{prefix}-api-1-d1e2f3", f"{prefix}-api-2-d1e2f3"]
    first = specs[0]
    assert first.network == prefix
    assert first.aliases == ("api", "api.shop.internal", "backend")
    assert first.labels["dockyard.account"] == "alice"
    assert first.labels["dockyard.config-hash"] == "h1"
    assert first.labels["dockyard.replica"] == "1" and specs[1].labels["dockyard.replica"] == "2"
    assert first.labels["dockyard.job"] == "false"
    assert first.environment == {"GREETING": "cost $5", "DOCKYARD_SERVICE": "api",
                                 "DOCKYARD_DEPLOYMENT": "d1e2f3g4h5i6",
                                 "DOCKYARD_FQDN": "api.shop.alice.localhost"}
    assert first.nano_cpus == 500_000_000 and first.memory == 128 * 1024 * 1024
    assert first.memory_reservation == 64 * 1024 * 1024 and first.cpu_shares == 256
    assert first.pids_limit == 50
    assert first.stop_timeout == 3
    assert first.healthcheck == {"Test": ["CMD", "true"], "Interval": 2_000_000_000,
                                 "Retries": 3}
    assert [(m.type, m.source, m.target) for m in first.mounts] == [
        ("volume", f"{prefix}_data", "/data"), ("tmpfs", None, "/tmp")]
    assert [(p.target, p.published) for p in first.ports] == [(9100, "9100")]
    assert first.restart == "unless-stopped"


def test_playground_adds_the_username_alias_and_its_domain(tmp_path: Path) -> None:
    project = load(tmp_path, "services: {web: {image: busybox, ports: ['80']}}\n")
    spec = container_specs(project, project.services["web"], PLAYGROUND, image="i",
                           deployment="abcdefabcdef", config_hash="h", replicas=1)[0]
    assert "alice-web" in spec.aliases
    assert spec.environment["DOCKYARD_FQDN"] == "alice-web.prod1a.localhost"


def test_a_private_service_has_no_fqdn_and_a_job_never_restarts(tmp_path: Path) -> None:
    project = load(tmp_path, """
services:
  migrate: {image: busybox, restart: "no"}
  worker: {image: busybox, restart: on-failure:3}
  sweeper: {image: busybox, deploy: {restart_policy: {condition: none}}}
""")
    migrate = project.services["migrate"]
    assert is_job(migrate) and is_job(project.services["sweeper"])
    assert restart_policy(migrate) == ("no", 0)
    assert restart_policy(project.services["worker"]) == ("on-failure", 3)
    spec = container_specs(project, migrate, BYOC, image="i", deployment="abcdefabcdef",
                           config_hash="h", replicas=1)[0]
    assert spec.environment["DOCKYARD_FQDN"] == "" and spec.labels["dockyard.job"] == "true"


def test_config_references_are_resolved_or_listed_when_missing(tmp_path: Path) -> None:
    project = load(tmp_path, """
services:
  api: {image: busybox, environment: {DSN: "postgres://u:${DB_PASSWORD}@db", TOKEN: null}}
  web: {image: busybox, environment: [TOKEN]}
""")
    assert missing_configs(project, {}) == {"DB_PASSWORD": ["api"], "TOKEN": ["api", "web"]}
    assert missing_configs(project, {"DB_PASSWORD": "s", "TOKEN": "t"}) == {}
    assert resolve_environment(project.services["api"], {"DB_PASSWORD": "pa$$", "TOKEN": "t"}
                               ) == {"DSN": "postgres://u:pa$$@db", "TOKEN": "t"}


def test_replacement_order_keeps_written_volumes_and_host_ports_safe(tmp_path: Path) -> None:
    project = load(tmp_path, """
name: shop
services:
  web: {image: busybox, ports: ["8080"]}
  reader: {image: busybox, ports: ["8080"], volumes: ["data:/data:ro"]}
  db: {image: busybox, volumes: [data:/var/lib/db]}
  shared:
    image: busybox
    volumes: [data:/data]
    deploy: {update_config: {order: start-first}}
  cautious: {image: busybox, deploy: {update_config: {order: stop-first}}}
  metrics: {image: busybox, ports: [{target: 9100, published: 9100, mode: host}],
            deploy: {update_config: {order: start-first}}}
  job: {image: busybox, restart: "no"}
volumes: {data: {}}
""")
    order = {name: replacement_order(s) for name, s in project.services.items()}
    assert order == {"web": "start-first", "reader": "start-first", "db": "stop-first",
                     "shared": "start-first", "cautious": "stop-first",
                     "metrics": "stop-first", "job": "stop-first"}



def test_a_build_arg_that_references_a_config_is_refused(tmp_path: Path) -> None:
    from dockyard.secrets.resolve import build_arg_config_problems, config_users

    (tmp_path / "compose.yaml").write_text("""
name: shop
services:
  api:
    build:
      context: .
      args:
        - TOKEN=${API_TOKEN}
        - LEVEL=${LOG_LEVEL}
    environment:
      KEY: "${API_TOKEN}"
""")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    result = load_project(LoadOptions(working_dir=str(tmp_path), environ={}))
    problems = build_arg_config_problems(result.warnings, config_users(result.project))
    assert [(p.code, p.location.path) for p in problems] == [
        ("config-in-build-arg", "services.api.build.args[0]")]
    assert "API_TOKEN" in problems[0].message
    # LOG_LEVEL is not a config: an unset variable, as in Compose (a warning)
    assert not build_arg_config_problems(result.warnings, ["OTHER"])
