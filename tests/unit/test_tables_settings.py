"""The `ps` and `deployments` tables (goldens) and the server's settings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from dockyard.cli.tables import deployments_table, elapsed, endpoints_text, ps_table
from dockyard.errors import UsageError
from dockyard.naming import NamingMode
from dockyard.server.settings import parse_listen, settings_from
from dockyard.wire_models import DeploymentSummary, ServiceStatus

GOLDEN = Path(__file__).parent / "golden"

ROWS = [ServiceStatus.from_json(row) for row in [
    {"service": "web", "deployment": "a1b2c3d4e5f6", "state": "SERVICE_DEPLOYMENT_COMPLETED",
     "fqdn": "web.shop.alice.localhost", "endpoint": "https://web--8080.shop.alice.localhost",
     "endpoints": ["https://web--8080.shop.alice.localhost"], "replicas": 2, "running": 2,
     "since": "2026-11-28T10:00:00+00:00", "reason": "the health check passes",
     "image": "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
    {"service": "db", "deployment": "a1b2c3d4e5f6", "state": "SERVICE_DEPLOYMENT_FAILED",
     "fqdn": "db.shop.internal", "endpoint": "", "endpoints": [], "replicas": 1, "running": 0,
     "since": "2026-11-28T10:00:01+00:00", "reason": "container exited with code 3",
     "image": "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"},
    {"service": "metrics", "deployment": "a1b2c3d4e5f6", "state": "BUILD_RUNNING",
     "fqdn": "metrics.shop.internal", "endpoint": "localhost:9100",
     "endpoints": ["localhost:9100"], "replicas": 1, "running": 0,
     "since": "2026-11-28T10:00:02+00:00", "reason": "building"},
]]


def _golden(name: str, text: str, regen: bool) -> None:
    path = GOLDEN / name
    if regen:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


def test_ps_tables(regen: bool) -> None:
    _golden("ps.txt", ps_table(ROWS) + endpoints_text(ROWS), regen)
    _golden("ps-long.txt", ps_table(ROWS, long=True), regen)
    assert all(line == line.rstrip() for line in ps_table(ROWS).splitlines())


def test_ps_long_shows_the_nodes_on_a_swarm_and_only_there() -> None:
    """`--driver swarm`: where each service's replicas run, and a volume's pinned node."""
    swarm = [ServiceStatus.from_json({**row.to_json(), "nodes": nodes, "pinned_node": pin})
             for row, nodes, pin in zip(ROWS, (["n2", "n3"], ["n1"], []), ("", "n1", ""),
                                         strict=True)]
    lines = ps_table(swarm, long=True).splitlines()
    assert lines[0].split()[-2:] == ["NODES", "REASON"]
    assert lines[1].split()[-5:] == ["n2,n3", "the", "health", "check", "passes"]
    assert "n1 (pinned to n1)" in lines[2]
    assert "NODES" not in ps_table(ROWS, long=True)


def test_deployments_table(regen: bool) -> None:
    items = [DeploymentSummary.from_json(item) for item in [
        {"id": "a1b2c3d4e5f6", "created_at": "2026-11-28T10:00:00.123+00:00",
         "project": "shop", "action": "up", "status": "succeeded", "services": ["db", "web"]},
        {"id": "zzzzzzzzzzzz", "created_at": "2026-11-28T11:00:00+00:00",
         "project": "shop", "action": "down", "status": "failed", "services": []}]]
    _golden("deployments.txt", deployments_table(items), regen)


def test_elapsed() -> None:
    now = datetime(2026, 11, 28, 10, 2, 5, tzinfo=UTC)
    assert elapsed("2026-11-28T10:00:00+00:00", now) == "2m05s"
    assert elapsed("2026-11-28T10:02:00+00:00", now) == "5s"
    assert elapsed("not a time", now) == ""


def test_settings_from_options_then_environment() -> None:
    env = {"DOCKYARD_MODE": "playground", "DOCKYARD_LISTEN": "0.0.0.0:9000",
           "DOCKYARD_BUILD_CONCURRENCY": "3", "DOCKYARD_HOME": "/srv/dy"}
    settings = settings_from({"listen": "127.0.0.1:0"}, env)
    assert (settings.host, settings.port) == ("127.0.0.1", 0)
    assert settings.mode is NamingMode.PLAYGROUND and settings.zone == "prod1a.localhost"
    assert settings.build_concurrency == 3
    assert settings.data == Path("/srv/dy/data/server")
    assert settings.database_url == "sqlite:////srv/dy/data/server/dockyard.db"
    assert settings_from({"zone": "Example.COM."}, {}).zone == "example.com"


@pytest.mark.parametrize("options", [{"listen": "nope:x"}, {"mode": "cloud"},
                                     {"build_concurrency": "0"}, {"zone": "a..b"}])
def test_bad_settings_are_usage_errors(options: dict[str, str | None]) -> None:
    with pytest.raises(UsageError):
        settings_from(options, {})


def test_parse_listen() -> None:
    assert parse_listen("8080") == ("127.0.0.1", 8080)
    assert parse_listen(":8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:80") == ("[::1]", 80)
