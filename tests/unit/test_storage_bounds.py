"""What a tenant can grow on the server's disk, unit by unit: the context store's quota and
garbage collection (with an injected clock), the stored project's size, the build log's cap and
which deployments history pruning removes. The same through the HTTP API is in
tests/api/test_storage.py; against a real server, tests/engine/test_security_storage.py."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from dockyard.errors import ProjectInvalid
from dockyard.lifecycle import ServiceEvent, ServiceState
from dockyard.server.build_log import BuildLogCap
from dockyard.server.contexts import ContextError, ContextStore, ContextTooLarge
from dockyard.server.project_size import check_project_size, largest_part, stored_size
from dockyard.server.retention import deployments_to_prune
from dockyard.store import Store
from dockyard.store.schema import MIGRATIONS

TTL = 100.0


def tar(name: str, size: int) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = size
        archive.addfile(info, io.BytesIO(b"x" * size))
    data = buffer.getvalue()
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def contexts(tmp_path: Path, clock: Clock) -> ContextStore:
    return ContextStore(tmp_path / "contexts", max_bytes=1 << 20, clock=clock)


def files_in(store: ContextStore) -> list[str]:
    return sorted(str(p.relative_to(store.directory)) for p in store.directory.rglob("*")
                  if p.is_file())


# -- the quota ----------------------------------------------------------------------------------
def test_the_quota_counts_what_the_account_keeps_plus_the_upload(
        contexts: ContextStore) -> None:
    one, one_data = tar("a", 100_000)
    two, two_data = tar("b", 100_000)
    three, three_data = tar("c", 100_000)
    quota = len(one_data) + len(two_data) + 1000
    contexts.put(one, one_data, "7", quota=quota)
    contexts.put(two, two_data, "7", quota=quota)
    contexts.put(one, one_data, "7", quota=quota)  # the same digest again: not counted twice
    assert contexts.usage("7") == len(one_data) + len(two_data)
    with pytest.raises(ContextTooLarge) as refused:
        contexts.put(three, three_data, "7", quota=quota)
    assert f"over its quota of {quota} bytes" in refused.value.message
    assert "--max-context-storage" in (refused.value.hint or "")
    assert not contexts.has(three, "7") and not any(f.endswith(".part")
                                                    for f in files_in(contexts))
    contexts.put(three, three_data, "8", quota=quota)  # another account has its own quota
    assert contexts.has(three, "8") and not contexts.has(three, "7")


def test_uploads_in_progress_count_against_the_quota(contexts: ContextStore) -> None:
    one, one_data = tar("a", 60_000)
    two, two_data = tar("b", 60_000)
    quota = 100_000
    first = contexts.begin(one, "7", quota)
    second = contexts.begin(two, "7", quota)
    first.write(one_data[:50_000])
    with pytest.raises(ContextTooLarge):
        second.write(two_data[:60_000])  # 50k + 60k in flight: over
    second.close()
    first.write(one_data[50_000:])
    first.finish()
    assert contexts.has(one, "7")
    assert contexts._pending == {}  # nothing left reserved


def test_an_upload_over_the_size_limit_stops_at_the_chunk_that_crosses_it(
        contexts: ContextStore) -> None:
    digest, _ = tar("a", 10)
    with contexts.begin(digest, "7") as upload:
        upload.write(b"\0" * (1 << 20))
        with pytest.raises(ContextTooLarge, match="over the server's limit"):
            upload.write(b"\0")
    assert files_in(contexts) == []


def test_a_declared_size_over_a_limit_is_refused_before_any_byte(
        contexts: ContextStore) -> None:
    digest, data = tar("a", 10)  # 10240 bytes
    contexts.put(digest, data, "7", quota=20_000)
    with contexts.begin(digest, "7", quota=20_000) as upload:
        with pytest.raises(ContextTooLarge, match="2000000 bytes, over the server's limit"):
            upload.expect(2_000_000)
        upload.expect(20_000)  # the same digest again: what it replaces is not counted
    with contexts.begin("sha256:" + "1" * 64, "7", quota=20_000) as upload:
        with pytest.raises(ContextTooLarge, match="over its quota of 20000 bytes"):
            upload.expect(10_000)
    assert len(files_in(contexts)) == 2


def test_a_damaged_upload_leaves_nothing(contexts: ContextStore) -> None:
    digest, data = tar("a", 10)
    with pytest.raises(ContextError, match="not sha256:"):
        contexts.put("sha256:" + "0" * 64, data, "7")
    assert files_in(contexts) == []
    contexts.put(digest, data, "7")
    assert files_in(contexts) == [digest[7:] + ".tar", f"owners/7/{digest[7:]}"]


# -- garbage collection ----------------------------------------------------------------------
def test_an_unused_context_goes_after_the_ttl_and_a_used_one_stays(
        contexts: ContextStore, clock: Clock) -> None:
    used, used_data = tar("used", 1000)
    idle, idle_data = tar("idle", 1000)
    for digest, data in ((used, used_data), (idle, idle_data)):
        contexts.put(digest, data, "7")
    in_use = {("7", used)}
    clock.now += TTL - 1
    assert contexts.collect(in_use, TTL).files == 0  # not yet
    clock.now += 2
    found = contexts.collect(in_use, TTL)
    assert (found.markers, found.files, found.bytes) == (1, 1, len(idle_data))
    assert contexts.has(used, "7") and not contexts.has(idle, "7")
    assert files_in(contexts) == [used[7:] + ".tar", f"owners/7/{used[7:]}"]
    # no longer used: it goes one TTL after its last use
    clock.now += TTL + 1
    contexts.collect(set(), TTL)
    assert files_in(contexts) == []


def test_a_check_or_a_use_restarts_the_ttl(contexts: ContextStore, clock: Clock) -> None:
    digest, data = tar("a", 1000)
    contexts.put(digest, data, "7")
    clock.now += TTL - 10
    assert contexts.has(digest, "7")  # the client's HEAD before a deployment
    clock.now += 20
    contexts.collect(set(), TTL)
    assert contexts.get(digest, "7") is not None
    clock.now += TTL + 1
    contexts.collect(set(), TTL)
    assert contexts.get(digest, "7") is None


def test_shared_content_stays_while_any_account_keeps_it(contexts: ContextStore,
                                                         clock: Clock) -> None:
    digest, data = tar("a", 1000)
    contexts.put(digest, data, "7")
    clock.now += TTL / 2
    contexts.put(digest, data, "8")
    clock.now += TTL / 2 + 1
    contexts.collect(set(), TTL)
    assert not contexts.has(digest, "7") and contexts.has(digest, "8")
    clock.now += TTL + 1
    contexts.collect(set(), TTL)
    assert files_in(contexts) == []


def test_a_stale_temporary_file_is_removed(contexts: ContextStore, clock: Clock) -> None:
    digest, _ = tar("a", 10)
    upload = contexts.begin(digest, "7")
    upload.write(b"half")
    os.utime(upload._tmp, (clock.now, clock.now))
    contexts.collect(set(), TTL)
    assert len(files_in(contexts)) == 1  # an upload in progress is kept
    clock.now += TTL + 1
    assert contexts.collect(set(), TTL).files == 1
    assert files_in(contexts) == []
    upload.close()


# -- the stored project --------------------------------------------------------------------------
def test_a_project_over_the_limit_names_its_largest_part() -> None:
    project = {"name": "shop", "x-blob": "a" * 5000,
               "services": {"web": {"image": "x", "environment": {"BIG": "b" * 3000}}}}
    check_project_size(project, stored_size(project))  # exactly at the limit
    with pytest.raises(ProjectInvalid) as refused:
        check_project_size(project, 4000)
    diagnostic = refused.value.diagnostics[0]
    assert diagnostic.code == "project-too-large" and diagnostic.location.path == "x-blob"
    assert f"{stored_size(project)} bytes as stored" in diagnostic.message
    assert "--max-project-bytes" in (diagnostic.hint or "")
    project["x-blob"] = "small"
    assert largest_part(project) == ("services.web.environment.BIG", 3002)


# -- build logs -----------------------------------------------------------------------------------
def test_the_build_log_keeps_its_first_part_then_says_what_was_dropped() -> None:
    cap = BuildLogCap(100)
    assert cap.admit(["a" * 39, "b" * 39]) == ["a" * 39, "b" * 39]  # 80 bytes with newlines
    assert cap.admit(["c" * 30, "d" * 10]) == ["c" * 19]  # cut to the budget's end
    assert cap.stored == 100 and cap.truncated
    assert cap.admit(["e" * 9] * 5) == []
    assert (cap.dropped_bytes, cap.dropped_lines) == (11 + 11 + 50, 7)
    assert "72 bytes in 7 lines" in cap.note() and "limit 100 bytes" in cap.note()


def test_a_multibyte_line_is_cut_on_a_character() -> None:
    cap = BuildLogCap(10)
    assert cap.admit(["ééééé"]) == ["éééé"]  # 10 bytes + newline would be 11


# -- history --------------------------------------------------------------------------------------
def test_history_beyond_keep_is_pruned_oldest_first_but_never_what_is_in_use() -> None:
    history = [("d9", "up", "running"), ("d8", "up", "failed"), ("d7", "down", "succeeded"),
               ("d6", "up", "succeeded"), ("d5", "up", "succeeded"),
               ("d4", "up", "succeeded"), ("d3", "up", "running"), ("d2", "up", "failed"),
               ("d1", "up", "succeeded")]
    assert deployments_to_prune(history, 3, {"d5"}) == ["d1", "d2", "d4", "d6"]
    assert deployments_to_prune(history, 50, set()) == []
    only_downs = [("d3", "down", "succeeded"), ("d2", "down", "succeeded"),
                  ("d1", "up", "succeeded")]
    assert deployments_to_prune(only_downs, 1, set()) == ["d2"]  # d1: what down reads


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'dockyard.db'}")
    yield s
    s.close()


def test_the_store_removes_pruned_deployments_with_their_events_and_logs(store: Store) -> None:
    alice = store.ensure_account("alice")
    bob = store.ensure_account("bob")
    ids = [store.create_deployment(alice, "shop", "up", {"n": i}, [f"sha256:{i:064x}"])
           for i in range(4)]
    at = datetime(2026, 12, 1, tzinfo=UTC)
    for deployment in ids:
        store.add_event(alice, ServiceEvent("web", ServiceState.UPDATE_QUEUED, at, "q",
                                            deployment))
        store.append_build_log(alice, deployment, "web", ["Step 1/1"])
        store.finish_deployment(alice, deployment, "succeeded")
    history, current = store.deployment_history(alice, "shop")
    assert [h[0] for h in history] == ids[::-1] and current == {ids[-1]}
    assert store.remove_deployments(bob, ids) == 0  # not bob's
    assert store.remove_deployments(alice, ids) == 3  # the current one stays
    assert [r.id for r in store.deployments(alice)] == [ids[-1]]
    with store.engine.connect() as conn:
        for table in ("events", "build_logs", "deployment_contexts"):
            left = conn.execute(sa.text(f"SELECT DISTINCT deployment_id FROM {table}")).all()
            assert [r[0] for r in left] == [ids[-1]], table


def test_contexts_in_use_are_those_of_running_latest_and_current_deployments(
        store: Store) -> None:
    alice = store.ensure_account("alice")
    digest = [f"sha256:{i:064x}" for i in range(5)]
    old = store.create_deployment(alice, "shop", "up", {}, [digest[0]])
    store.finish_deployment(alice, old, "succeeded")
    latest = store.create_deployment(alice, "shop", "up", {}, [digest[1]])
    store.finish_deployment(alice, latest, "succeeded")
    failed = store.create_deployment(alice, "shop", "up", {}, [digest[2]])
    store.finish_deployment(alice, failed, "failed")
    running = store.create_deployment(alice, "blog", "up", {}, [digest[3], digest[3]])
    assert store.contexts_in_use() == {(alice.id, digest[1]), (alice.id, digest[3])}
    store.add_event(alice, ServiceEvent("web", ServiceState.UPDATE_QUEUED,
                                        datetime.now(UTC), "q", old))
    assert (alice.id, digest[0]) in store.contexts_in_use()  # a service's state is from it
    store.finish_deployment(alice, running, "succeeded")
    down = store.create_deployment(alice, "blog", "down", {})
    store.finish_deployment(alice, down, "succeeded")
    assert (alice.id, digest[3]) not in store.contexts_in_use()  # taken down


def test_a_version_4_store_gains_the_context_records(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    old = Store(url)
    with old.engine.begin() as conn:
        from dockyard.store import schema

        schema.schema_version.create(conn)
        for version, migration in enumerate(MIGRATIONS[:4], start=1):
            migration(conn)
            conn.execute(schema.schema_version.insert().values(version=version))
    alice = old.ensure_account("alice")
    before = old.create_deployment(alice, "shop", "up", {})
    old.close()
    store = Store.open(url)
    assert store.version() == len(MIGRATIONS) >= 5
    assert store.contexts_in_use() == set()
    assert store.deployment(alice, before) is not None
    store.close()
