"""The store on a real SQLite file: migrations, tokens, deployments, events, isolation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from dockyard.ids import is_deployment_id
from dockyard.lifecycle import ServiceEvent, ServiceState
from dockyard.store import Store, StoreError
from dockyard.store.schema import MIGRATIONS


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'dockyard.db'}")
    yield s
    s.close()


def test_migrations_are_applied_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    first = Store.open(url)
    assert first.version() == len(MIGRATIONS)
    first.close()
    again = Store.open(url)  # reopening applies nothing twice
    assert again.version() == len(MIGRATIONS)
    with again.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO schema_version (version) VALUES (999)"))
    with pytest.raises(StoreError, match="newer"):
        again.migrate()
    again.close()


def test_tokens_are_hashed_and_resolve_to_their_account(store: Store) -> None:
    alice = store.ensure_account("alice")
    assert store.ensure_account("alice") == alice
    token = store.create_token(alice)
    assert store.account_for_token(token) == alice
    assert store.account_for_token(token + "x") is None
    with store.engine.connect() as conn:
        stored = [r[0] for r in conn.execute(sa.text("SELECT token_hash FROM tokens"))]
    assert token not in stored and len(stored[0]) == 64


def test_deployment_history_events_and_build_logs(store: Store) -> None:
    alice = store.ensure_account("alice")
    dep = store.create_deployment(alice, "shop", "up", {"name": "shop", "services": {}})
    assert is_deployment_id(dep)
    at = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    for state in (ServiceState.UPDATE_QUEUED, ServiceState.SERVICE_DEPLOYMENT_PENDING,
                  ServiceState.SERVICE_DEPLOYMENT_COMPLETED):
        store.add_event(alice, ServiceEvent("web", state, at, "ok", dep))
    assert [e.state for e in store.events(alice, dep)] == [7, 8, 9]
    assert store.events(alice, dep)[0].at == at
    store.append_build_log(alice, dep, "web", ["Step 1/2", "Step 2/2"])
    assert store.build_log(alice, dep, "web") == ["Step 1/2", "Step 2/2"]
    store.finish_deployment(alice, dep, "completed")
    (record,) = store.deployments(alice, "shop")
    assert record.id == dep and record.status == "completed" and record.finished_at
    assert store.deployed_project(alice, dep) == {"name": "shop", "services": {}}


def test_accounts_never_see_each_other(store: Store) -> None:
    alice, bob = store.ensure_account("alice"), store.ensure_account("bob")
    dep = store.create_deployment(alice, "shop", "up", {})
    store.add_event(alice, ServiceEvent("web", ServiceState.UPDATE_QUEUED,
                                        datetime.now(UTC), "", dep))
    assert store.deployments(bob) == []
    assert store.events(bob, dep) == []
    assert store.deployed_project(bob, dep) is None
    assert store.build_log(bob, dep, "web") == []
    with pytest.raises(StoreError):
        store.add_event(bob, ServiceEvent("web", ServiceState.UPDATE_QUEUED,
                                          datetime.now(UTC), "", dep))
    with pytest.raises(StoreError):
        store.append_build_log(bob, dep, "web", ["x"])
    store.finish_deployment(bob, dep, "failed")  # touches nothing of alice's
    assert store.deployments(alice)[0].status == "running"
    # the same project name in two accounts is two projects
    store.create_deployment(bob, "shop", "up", {})
    assert len(store.deployments(alice, "shop")) == 1 and len(store.deployments(bob, "shop")) == 1


def test_a_version_7_store_gains_the_history_columns(tmp_path: Path) -> None:
    """A store from before v8 (columns dropped to its shape) gains them with their defaults."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    store = Store.open(url)
    alice = store.ensure_account("alice")
    store.set_config(alice, "shop", "TOKEN", "encrypted")
    with store.engine.begin() as conn:
        for table, column in (("deployments", "record_json"), ("deployments", "plan_json"),
                              ("configs", "version"), ("config_history", "version")):
            conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        for table in ("deployment_configs", "project_expiry"):
            conn.execute(sa.text(f"DROP TABLE {table}"))
        conn.execute(sa.text("DELETE FROM schema_version WHERE version = 8"))
    store.close()
    again = Store.open(url)
    assert again.version() == len(MIGRATIONS)
    columns = {c["name"] for c in sa.inspect(again.engine).get_columns("deployments")}
    assert {"record_json", "plan_json"} <= columns
    with again.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version FROM configs")).scalar_one() == 1
    again.close()


def test_config_values_are_numbered_and_old_versions_stay_findable(store: Store) -> None:
    alice = store.ensure_account("alice")
    for value in ("one", "two", "three"):
        store.set_config(alice, "shop", "TOKEN", value)
    assert store.config_versions(alice, "shop") == {"TOKEN": 3}
    assert store.encrypted_config_versions(alice, "shop", {"TOKEN": 1}) == {"TOKEN": "one"}
    assert store.encrypted_config_versions(alice, "shop", {"TOKEN": 3}) == {"TOKEN": "three"}
    store.remove_configs(alice, "shop", ["TOKEN"])
    store.set_config(alice, "shop", "TOKEN", "four")  # a number is never given twice
    assert store.config_versions(alice, "shop") == {"TOKEN": 4}
    assert store.encrypted_config_versions(alice, "shop", {"TOKEN": 3}) == {"TOKEN": "three"}
    for number in range(12):  # only the last 10 replaced values are kept
        store.set_config(alice, "shop", "TOKEN", f"v{number}")
    assert store.encrypted_config_versions(alice, "shop", {"TOKEN": 1}) == {}
    bob = store.ensure_account("bob")
    assert store.encrypted_config_versions(bob, "shop", {"TOKEN": 16}) == {}


def test_a_deployment_keeps_its_record_plan_and_config_versions(store: Store) -> None:
    alice, bob = store.ensure_account("alice"), store.ensure_account("bob")
    deployment = store.create_deployment(alice, "shop", "up", {"name": "shop"},
                                         record={"account": "alice", "git_commit": "abc"},
                                         configs={"TOKEN": 2})
    assert store.deployment_facts(alice, deployment).plan is None
    store.set_deployment_plan(alice, deployment, [{"service": "web", "action": "create"}])
    store.note_deployment(alice, deployment, rolled_back_by="x")
    facts = store.deployment_facts(alice, deployment)
    assert facts.record == {"account": "alice", "git_commit": "abc", "rolled_back_by": "x"}
    assert facts.plan == [{"service": "web", "action": "create"}]
    assert facts.configs == {"TOKEN": 2}
    assert store.deployment_facts(bob, deployment).configs == {}  # not bob's
    store.finish_deployment(alice, deployment, "failed")
    assert [d.id for d in store.deployments(alice, status="failed")] == [deployment]
    assert store.deployments(alice, status="succeeded") == []


def test_recorded_images_replace_a_services_earlier_record_and_keep_the_others(
        store: Store) -> None:
    alice, bob = store.ensure_account("alice"), store.ensure_account("bob")
    deployment = store.create_deployment(alice, "shop", "up", {})
    store.record_images(alice, deployment, [("web", "web:1", "sha256:a", "id-a"),
                                            ("db", "db:1", "", "id-b")])
    store.record_images(alice, deployment, [("web", "web:2", "sha256:c", "id-c"),
                                            ("api", "api:1", "", "id-d"),
                                            ("api", "api:2", "", "id-e")])  # the last wins
    store.record_images(bob, deployment, [("db", "stolen", "", "x")])  # not bob's: ignored
    store.record_images(alice, deployment, [])
    assert store.deployment_images(alice, deployment) == {
        "web": ("web:2", "sha256:c", "id-c"), "db": ("db:1", "", "id-b"),
        "api": ("api:2", "", "id-e")}
