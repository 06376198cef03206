"""What a tenant can grow on the server's disk, through the HTTP API in-process: the context
quota, unused contexts collected after their TTL (an injected clock), the stored project's size,
the build log's cap and history pruning. A real SQLite store and a fake engine
(`tests.fakes.FakeDriver`, here taught to print a long build)."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dockyard.build.context import PackedContext
from dockyard.runtime.driver import BuildFence
from dockyard.runtime.errors import BuildFailed
from dockyard.server import retention
from dockyard.server.app import create_app
from dockyard.server.control import ControlPlane
from dockyard.server.settings import Limits, ServerSettings
from dockyard.store.store import Store
from tests.fakes import FakeDriver
from tests.support.server import client_over, follow

QUOTA = 300_000
TTL = 3600.0
LOG_CAP = 64 * 1024
IMAGE = "dockyard/busybox:1"


class ChattyDriver(FakeDriver):
    """A build that prints `lines` lines of 100 bytes, then fails when its tag is in
    `fail_builds` (with its last lines, as the real driver keeps them)."""

    lines = 5000

    def build(self, context: PackedContext, *, tag: str, dockerfile: str = "Dockerfile",
              build_args: Mapping[str, str] | None = None, target: str | None = None,
              labels: Mapping[str, str] | None = None,
              on_log: Callable[[str], None] | None = None,
              fence: BuildFence | None = None) -> str:
        printed = [f"line {n:05d} " + "y" * 89 for n in range(self.lines)]
        for line in printed:
            if on_log:
                on_log(line)
        if any(prefix in tag for prefix in self.fail_builds):
            raise BuildFailed(f"the build of {tag} failed", "Step 1/1 : RUN yes",
                              printed[-20:])
        return super().build(context, tag=tag, dockerfile=dockerfile, build_args=build_args,
                             target=target, labels=labels, on_log=None)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Api:
    client: TestClient
    control: ControlPlane
    driver: ChattyDriver
    clock: Clock
    headers: dict[str, str]

    def put(self, data: bytes) -> tuple[str, Any]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        return digest, self.client.put(f"/v1/contexts/{digest}", content=data,
                                       headers=self.headers)

    def has(self, digest: str) -> bool:
        response = self.client.head(f"/v1/contexts/{digest}", headers=self.headers)
        return bool(response.status_code == 200)

    def deploy(self, project: dict[str, Any], builds: dict[str, str] | None = None) -> Any:
        return self.client.post("/v1/projects/shop/deployments", headers=self.headers, json={
            "project": project, "builds": {k: {"digest": v} for k, v in (builds or {}).items()}})

    def finished(self, project: dict[str, Any], builds: dict[str, str] | None = None
                 ) -> tuple[str, list[dict[str, Any]], str]:
        response = self.deploy(project, builds)
        assert response.status_code == 202, response.text
        deployment = str(response.json()["deployment"])
        seen, status = self.events(deployment)
        return deployment, seen, status

    def events(self, deployment: str) -> tuple[list[dict[str, Any]], str]:
        seen, end = follow(client_over(self.client.app, self.headers), deployment)
        return seen, str(end["status"])


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = ServerSettings(
        data=tmp_path / "server", stabilization_seconds=0.0, deploy_timeout_seconds=5.0,
        max_context_bytes=200_000, limits=Limits(0, 0, 0, 0.0, 0, 0, 0, QUOTA),
        max_project_bytes=20_000, max_build_log_bytes=LOG_CAP, keep_deployments=3,
        context_ttl_seconds=TTL)
    settings.data.mkdir()
    store = Store.open(settings.database_url)
    driver = ChattyDriver()
    control = ControlPlane(settings, store, driver)
    clock = Clock()
    control.contexts.clock = clock
    token = store.create_token(store.ensure_account("alice"))
    with TestClient(create_app(control)) as client:
        yield Api(client, control, driver, clock, {"Authorization": f"Bearer {token}"})
    store.close()


def context(tag: str, size: int = 1000) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in (("Dockerfile", b"FROM dockyard/busybox:1\n"),
                           ("blob", tag.encode() * (size // len(tag)))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def built(service: str = "web") -> dict[str, Any]:
    return {"name": "shop", "services": {service: {"build": {"context": "."}}}}


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def leftovers(api: Api) -> list[Path]:
    """Every file of the context store. `os.walk` passes over a directory the collector
    removes while it is read (rglob raised FileNotFoundError then: a flaky test)."""
    return [Path(root) / name
            for root, _dirs, files in os.walk(api.control.contexts.directory)
            for name in files]


# -- contexts ------------------------------------------------------------------------------------
def test_an_upload_over_the_accounts_quota_is_413_and_leaves_nothing(api: Api) -> None:
    kept = [api.put(context(tag, 120_000)) for tag in ("a", "b")]
    assert all(r.status_code == 201 for _, r in kept)
    digest, refused = api.put(context("c", 120_000))
    assert refused.status_code == 413
    body = refused.json()
    assert "over its quota of 300000 bytes" in body["error"]
    assert "--max-context-storage" in body["hint"] and body["kind"] == "ContextTooLarge"
    assert not api.has(digest)
    assert len(leftovers(api)) == 4  # the two kept contexts and their markers, no .part


def test_an_upload_over_the_size_limit_is_413_and_leaves_nothing(api: Api) -> None:
    data = context("a", 1000) + b"\0" * 300_000
    digest, refused = api.put(data)
    assert refused.status_code == 413 and "over the server's limit" in refused.json()["error"]
    assert not api.has(digest) and leftovers(api) == []


def test_unused_contexts_go_after_the_ttl_and_used_ones_stay(api: Api) -> None:
    used, _ = api.put(context("used"))
    idle = [api.put(context(tag))[0] for tag in ("x", "y", "z")]
    _, _, status = api.finished(built(), {"web": used})
    assert status == "succeeded"
    assert all(api.has(d) for d in idle)  # younger than the TTL
    api.clock.now += TTL + 1
    # After the next deployment (an image-only one that needs no context), the idle ones go;
    # the context of the latest successful deployment that built stays.
    api.finished({"name": "shop", "services": {"web": {"build": {"context": "."}},
                                               "db": {"image": IMAGE}}}, {"web": used})
    assert eventually(lambda: not any(api.has(d) for d in idle))
    assert api.has(used)
    assert sorted(p.name for p in leftovers(api)) == sorted([used[7:], used[7:] + ".tar"])
    # Deployed without it, it is no longer used: it goes a TTL after its last use.
    api.finished({"name": "shop", "services": {"db": {"image": IMAGE}}})
    api.clock.now += TTL + 1
    retention.collect_contexts(api.control)  # what the periodic collector does
    assert not api.has(used) and leftovers(api) == []


def test_the_collector_thread_collects_without_any_deployment(api: Api) -> None:
    idle, _ = api.put(context("idle"))
    api.clock.now += TTL + 1
    thread = retention.Collector(api.control, interval=0.01).start()
    try:
        assert eventually(lambda: leftovers(api) == [])
    finally:
        api.control.shutting_down.set()
        thread.join(5)
    assert not thread.is_alive() and not api.has(idle)
    assert retention.Collector(api.control).interval == 300.0  # a TTL of an hour: 5 minutes


# -- the stored project -------------------------------------------------------------------------
def test_a_project_over_the_size_limit_is_refused_before_anything_is_recorded(
        api: Api) -> None:
    project = {"name": "shop", "x-blob": "a" * 30_000,
               "services": {"web": {"image": IMAGE}}}
    refused = api.deploy(project)
    assert refused.status_code == 422, refused.text
    diagnostic = refused.json()["diagnostics"][0]
    assert diagnostic["code"] == "project-too-large" and diagnostic["path"] == "x-blob"
    assert "over the server's limit of 20000 bytes" in diagnostic["message"]
    assert api.control.store.all_projects() == []  # no project, no deployment recorded
    assert not api.driver.items


# -- build logs -----------------------------------------------------------------------------------
def stored_log(api: Api, deployment: str) -> list[str]:
    account = api.control.store.ensure_account("alice")
    return api.control.store.build_log(account, deployment, "web")


def test_a_long_build_log_is_stored_up_to_the_cap_then_one_note(api: Api) -> None:
    digest, _ = api.put(context("a"))
    deployment, _, status = api.finished(built(), {"web": digest})
    assert status == "succeeded"
    lines = stored_log(api, deployment)
    stored = sum(len(line) + 1 for line in lines[:-1])
    assert LOG_CAP - 100 < stored <= LOG_CAP
    assert lines[0].startswith("line 00000") and "line 04999" not in "".join(lines)
    dropped = 5000 * 101 - stored  # 100 characters and a newline a line
    assert lines[-1].startswith("[build log truncated") and \
        f"{dropped} bytes in" in lines[-1], lines[-1]
    text = api.client.get("/v1/projects/shop/logs?type=build", headers=api.headers).text
    assert "build log truncated" in text


def test_a_failed_builds_reason_still_shows_the_end(api: Api) -> None:
    api.driver.fail_builds.add("-web:")
    digest, _ = api.put(context("a"))
    deployment, seen, status = api.finished(built(), {"web": digest})
    assert status == "failed"
    assert "line 0499" in seen[-1]["reason"] and seen[-1]["state"] == "BUILD_FAILED"
    lines = stored_log(api, deployment)
    assert sum(len(line) + 1 for line in lines) <= LOG_CAP + 300
    assert "line 04999" not in "".join(lines)


# -- history ---------------------------------------------------------------------------------------
def test_history_beyond_keep_deployments_is_pruned_with_its_events(api: Api) -> None:
    ids = []
    for replicas in (1, 2, 1, 2, 1, 2):
        deployment, _, status = api.finished({"name": "shop", "services": {"web": {
            "image": IMAGE, "deploy": {"replicas": replicas}}}})
        assert status == "succeeded"
        ids.append(deployment)
    assert eventually(lambda: len(api.client.get(
        "/v1/deployments", headers=api.headers).json()) == 3)
    listed = [d["id"] for d in api.client.get("/v1/deployments", headers=api.headers).json()]
    assert listed == ids[:-4:-1]
    for old in ids[:3]:
        assert api.client.get(f"/v1/deployments/{old}", headers=api.headers).status_code == 404
    with api.control.store.engine.connect() as conn:
        from dockyard.store import schema

        left = {r[0] for r in conn.execute(schema.events.select().with_only_columns(
            schema.events.c.deployment_id))}
    assert left <= set(ids[3:])
    rows = api.client.get("/v1/projects/shop/services", headers=api.headers).json()
    assert rows and all(r["state"] == "SERVICE_DEPLOYMENT_COMPLETED" for r in rows)
