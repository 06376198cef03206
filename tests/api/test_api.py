"""The HTTP API in-process (FastAPI's TestClient) over a real SQLite store and a fake engine."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dockyard.server.app import create_app
from dockyard.server.control import ControlPlane
from dockyard.server.settings import ServerSettings
from dockyard.store.store import Store
from tests.fakes import FakeDriver


@dataclass
class Api:
    client: TestClient
    control: ControlPlane
    driver: FakeDriver
    alice: dict[str, str]
    bob: dict[str, str]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = ServerSettings(data=tmp_path / "server", stabilization_seconds=0.0,
                              deploy_timeout_seconds=5.0, max_context_bytes=1 << 20)
    settings.data.mkdir()
    store = Store.open(settings.database_url)
    driver = FakeDriver()
    control = ControlPlane(settings, store, driver)
    tokens = {name: store.create_token(store.ensure_account(name)) for name in ("alice", "bob")}
    with TestClient(create_app(control)) as client:
        yield Api(client, control, driver, {"Authorization": f"Bearer {tokens['alice']}"},
                  {"Authorization": f"Bearer {tokens['bob']}"})
    store.close()


def project(**services: dict[str, Any]) -> dict[str, Any]:
    return {"name": "shop", "services": services or {
        "web": {"image": "dockyard/busybox:1", "ports": [{"target": 8080}],
                "healthcheck": {"test": ["CMD", "true"]}},
        "db": {"image": "dockyard/busybox:1"},
        "migrate": {"image": "dockyard/busybox:1", "restart": "no",
                    "depends_on": {"db": {"condition": "service_started"}}},
    }}


def deploy(api: Api, body: dict[str, Any], headers: dict[str, str] | None = None) -> str:
    response = api.client.post("/v1/projects/shop/deployments",
                               json={"project": body}, headers=headers or api.alice)
    assert response.status_code == 202, response.text
    return str(response.json()["deployment"])


def events(api: Api, deployment: str) -> tuple[list[dict[str, Any]], str]:
    """Read the SSE stream to its end: (state events, final status)."""
    seen: list[dict[str, Any]] = []
    kind = ""
    with api.client.stream("GET", f"/v1/deployments/{deployment}/events",
                           headers=api.alice) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                if kind == "end":
                    return seen, str(data["status"])
                seen.append(data)
    raise AssertionError("the stream ended without an end event")


def test_health_needs_no_token_but_everything_else_does(api: Api) -> None:
    assert api.client.get("/v1/health").json()["status"] == "ok"
    for method, path in [("GET", "/v1/whoami"), ("GET", "/v1/projects"),
                         ("GET", "/v1/deployments"), ("GET", "/v1/projects/shop/services"),
                         ("POST", "/v1/projects/shop/deployments"),
                         ("POST", "/v1/projects/shop/down"),
                         ("GET", "/v1/deployments/abc/events"),
                         ("GET", "/v1/projects/shop/logs"),
                         ("PUT", "/v1/contexts/sha256:" + "0" * 64)]:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
            response = api.client.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers, response.text)
            assert "token" in response.json()["error"]


def test_whoami_and_openapi(api: Api) -> None:
    me = api.client.get("/v1/whoami", headers=api.alice).json()
    assert me["account"] == "alice" and me["mode"] == "byoc" and me["zone"] == "localhost"
    document = api.client.get("/v1/openapi.json").json()
    assert "/v1/projects/{project}/deployments" in document["paths"]


def test_deploy_streams_every_state_and_ps_shows_them(api: Api) -> None:
    deployment = deploy(api, project())
    seen, status = events(api, deployment)
    assert status == "succeeded"
    by_service: dict[str, list[str]] = {}
    for event in seen:
        by_service.setdefault(event["service"], []).append(event["state"])
    assert by_service["web"] == ["UPDATE_QUEUED", "SERVICE_DEPLOYMENT_PENDING",
                                 "SERVICE_DEPLOYMENT_COMPLETED"]
    assert by_service["migrate"][-1] == "SERVICE_DEPLOYMENT_COMPLETED"
    rows = {r["service"]: r for r in api.client.get(
        "/v1/projects/shop/services", headers=api.alice).json()}
    assert set(rows) == {"web", "db", "migrate"}
    assert rows["web"]["endpoint"] == "https://web--8080.shop.alice.localhost"
    assert rows["web"]["fqdn"] == "web.shop.alice.localhost"
    assert rows["db"]["endpoint"] == "" and rows["db"]["fqdn"] == "db.shop.internal"
    assert all(r["deployment"] == deployment for r in rows.values())
    history = api.client.get("/v1/deployments", headers=api.alice).json()
    assert history[0]["id"] == deployment and history[0]["status"] == "succeeded"
    assert history[0]["services"] == ["db", "migrate", "web"]


def test_a_no_op_deploy_restarts_nothing_and_reruns_no_job(api: Api) -> None:
    events(api, deploy(api, project()))
    before = set(api.driver.items)
    second = deploy(api, project())
    seen, status = events(api, second)
    assert status == "succeeded"
    assert set(api.driver.items) == before
    assert {e["reason"] for e in seen if e["state"] == "SERVICE_DEPLOYMENT_COMPLETED"} == {
        "unchanged: not restarted"}


def test_a_changed_service_is_replaced_and_a_removed_one_removed(api: Api) -> None:
    events(api, deploy(api, project()))
    web_before = {c for c, i in api.driver.items.items() if i.service == "web"}
    changed = project()
    changed["services"]["web"]["environment"] = {"COLOUR": "blue"}
    del changed["services"]["migrate"]
    _, status = events(api, deploy(api, changed))
    assert status == "succeeded"
    web_after = {c for c, i in api.driver.items.items() if i.service == "web"}
    assert web_after and not web_after & web_before
    assert not [i for i in api.driver.items.values() if i.service == "migrate"]
    rows = api.client.get("/v1/projects/shop/services", headers=api.alice).json()
    assert {r["service"] for r in rows} == {"web", "db"}


def test_a_failing_job_fails_its_dependents_which_never_start(api: Api) -> None:
    api.driver.job_exit_code = 3
    body = project(
        db={"image": "dockyard/busybox:1"},
        migrate={"image": "dockyard/busybox:1", "restart": "no"},
        api={"image": "dockyard/busybox:1", "depends_on": {
            "migrate": {"condition": "service_completed_successfully"}}})
    seen, status = events(api, deploy(api, body))
    assert status == "failed"
    final = {e["service"]: e for e in seen}
    assert final["migrate"]["state"] == "SERVICE_DEPLOYMENT_FAILED"
    assert "code 3" in final["migrate"]["reason"]
    assert final["api"]["state"] == "SERVICE_DEPLOYMENT_FAILED"
    assert "migrate" in final["api"]["reason"]
    assert not [i for i in api.driver.items.values() if i.service == "api"]
    assert final["db"]["state"] == "SERVICE_DEPLOYMENT_COMPLETED"


def test_a_crash_loop_fails_and_the_previous_version_keeps_serving(api: Api) -> None:
    events(api, deploy(api, project()))
    old = {c for c, i in api.driver.items.items() if i.service == "db"}
    broken = project()
    broken["services"]["db"]["command"] = ["sh", "-c", "crash"]
    seen, status = events(api, deploy(api, broken))
    assert status == "failed"
    db = [e for e in seen if e["service"] == "db"][-1]
    assert db["state"] == "SERVICE_DEPLOYMENT_FAILED"
    assert "previous version keeps running" in db["reason"]
    assert {c for c, i in api.driver.items.items() if i.service == "db"} == old


def test_an_image_neither_on_the_engine_nor_in_its_registry_is_refused_before_anything_starts(
        api: Api) -> None:
    """The registry is asked at admission: an unknown tag is a 422 naming the service, the
    image and the registry, and nothing is recorded or started."""
    response = api.client.post("/v1/projects/shop/deployments", headers=api.alice, json={
        "project": project(web={"image": "nginx:latest"})})
    assert response.status_code == 422
    body = response.json()
    assert body["kind"] == "ProjectInvalid"
    problem = body["diagnostics"][0]
    assert problem["code"] == "image-not-found"
    assert problem["path"] == "services.web.image"
    assert "service web" in problem["message"] and "nginx:latest" in problem["message"]
    assert "docker.io" in problem["message"], problem
    assert api.driver.checks == [("nginx:latest", None)]
    assert not api.driver.items and not api.control.store.deployments(
        api.control.store.ensure_account("alice"))


def test_an_invalid_project_is_refused_with_its_diagnostics(api: Api) -> None:
    response = api.client.post("/v1/projects/shop/deployments", headers=api.alice, json={
        "project": {"services": {"web": {"image": "x", "depends_on": ["nope"]}}}})
    assert response.status_code == 422
    assert "depends-on-unknown" in {d["code"] for d in response.json()["diagnostics"]}


def test_a_second_deployment_of_the_same_project_is_refused_while_one_runs(api: Api) -> None:
    api.driver.build_gate = threading.Event()
    tar = _tar({"Dockerfile": b"FROM dockyard/busybox:1\n"})
    digest = "sha256:" + hashlib.sha256(tar).hexdigest()
    assert api.client.put(f"/v1/contexts/{digest}", content=tar,
                          headers=api.alice).status_code == 201
    body = {"project": {"name": "shop", "services": {"web": {"build": {"context": "."}}}},
            "builds": {"web": {"digest": digest}}}
    first = api.client.post("/v1/projects/shop/deployments", json=body, headers=api.alice)
    assert first.status_code == 202
    second = api.client.post("/v1/projects/shop/deployments", json=body, headers=api.alice)
    assert second.status_code == 409
    assert "still running" in second.json()["error"]
    api.driver.build_gate.set()
    _, status = events(api, first.json()["deployment"])
    assert status == "succeeded"
    assert len(api.driver.builds) == 1
    assert re.fullmatch(r"dy-alice-shop-[0-9a-f]{10}-web:[0-9a-f]{16}", api.driver.builds[0])


def test_an_unchanged_context_is_not_uploaded_nor_built_again(api: Api) -> None:
    tar = _tar({"Dockerfile": b"FROM dockyard/busybox:1\n"})
    digest = "sha256:" + hashlib.sha256(tar).hexdigest()
    path = f"/v1/contexts/{digest}"
    assert api.client.head(path, headers=api.alice).status_code == 404
    assert api.client.put(path, content=tar, headers=api.alice).status_code == 201
    assert api.client.head(path, headers=api.alice).status_code == 200
    body = {"project": {"name": "shop", "services": {"web": {"build": {"context": "."}}}},
            "builds": {"web": {"digest": digest}}}
    for _ in range(2):
        response = api.client.post("/v1/projects/shop/deployments", json=body,
                                   headers=api.alice)
        seen, status = events(api, response.json()["deployment"])
        assert status == "succeeded"
    assert len(api.driver.builds) == 1
    assert seen[0]["state"] == "UPDATE_QUEUED" and "reused" in seen[0]["reason"]


def test_a_failed_build_is_build_failed_with_its_step(api: Api) -> None:
    api.driver.fail_builds.add("-web:")
    tar = _tar({"Dockerfile": b"FROM dockyard/busybox:1\nRUN false\n"})
    digest = "sha256:" + hashlib.sha256(tar).hexdigest()
    api.client.put(f"/v1/contexts/{digest}", content=tar, headers=api.alice)
    response = api.client.post("/v1/projects/shop/deployments", headers=api.alice, json={
        "project": {"name": "shop", "services": {"web": {"build": {"context": "."}}}},
        "builds": {"web": {"digest": digest}}})
    seen, status = events(api, response.json()["deployment"])
    assert status == "failed"
    assert [e["state"] for e in seen] == [
        "BUILD_QUEUED", "BUILD_PROVISIONING", "BUILD_PENDING", "BUILD_ACTIVATING",
        "BUILD_RUNNING", "BUILD_FAILED"]
    assert "RUN false" in seen[-1]["reason"] and "boom" in seen[-1]["reason"]
    logs = api.client.get("/v1/projects/shop/logs?type=build", headers=api.alice).text
    assert "Step 1/1" in logs


@pytest.mark.parametrize("members", [
    [("../evil", b"x")], [("/etc/passwd", b"x")]])
def test_unsafe_or_mislabelled_uploads_are_refused(api: Api,
                                                  members: list[tuple[str, bytes]]) -> None:
    tar = _tar(dict(members))
    digest = "sha256:" + hashlib.sha256(tar).hexdigest()
    response = api.client.put(f"/v1/contexts/{digest}", content=tar, headers=api.alice)
    assert response.status_code == 422
    assert "outside the context" in response.json()["error"]
    wrong = api.client.put("/v1/contexts/sha256:" + "0" * 64,
                           content=_tar({"a": b"b"}), headers=api.alice)
    assert wrong.status_code == 422 and "not sha256:" in wrong.json()["error"]
    big = api.client.put(f"/v1/contexts/{digest}", content=b"x" * (2 << 20),
                         headers=api.alice)
    assert big.status_code == 413 and "limit" in big.json()["error"]


def test_another_account_sees_nothing(api: Api) -> None:
    deployment = deploy(api, project())
    events(api, deployment)
    assert api.client.get(f"/v1/deployments/{deployment}", headers=api.bob).status_code == 404
    assert api.client.get(f"/v1/deployments/{deployment}/events",
                          headers=api.bob).status_code == 404
    assert api.client.get("/v1/projects/shop/services", headers=api.bob).status_code == 404
    assert api.client.get("/v1/deployments", headers=api.bob).json() == []
    assert api.client.get("/v1/projects", headers=api.bob).json() == []
    assert api.client.post("/v1/projects/shop/down", json={},
                           headers=api.bob).status_code == 404
    assert api.client.get("/v1/projects/shop/logs", headers=api.bob).status_code == 404


def test_down_removes_containers_and_network_and_keeps_volumes(api: Api) -> None:
    body = project()
    body["services"]["db"]["volumes"] = [{"type": "volume", "source": "data",
                                         "target": "/data"}]
    body["volumes"] = {"data": {}}
    events(api, deploy(api, body))
    assert api.driver.volume_set and api.driver.networks
    response = api.client.post("/v1/projects/shop/down", json={}, headers=api.alice)
    _, status = events(api, response.json()["deployment"])
    assert status == "succeeded"
    assert not api.driver.items and not api.driver.networks
    assert [re.sub("-[0-9a-f]{10}_", "_", v) for v in api.driver.volume_set] == [
        "dy-alice-shop_data"]
    assert api.client.get("/v1/projects/shop/services", headers=api.alice).json() == []
    events(api, deploy(api, body))
    response = api.client.post("/v1/projects/shop/down", json={"volumes": True},
                               headers=api.alice)
    events(api, response.json()["deployment"])
    assert not api.driver.volume_set


def test_run_logs_are_prefixed_by_service(api: Api) -> None:
    events(api, deploy(api, project()))
    text = api.client.get("/v1/projects/shop/logs?type=run&service=web",
                          headers=api.alice).text
    lines = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {\"s")]
    assert lines and all(item["service"] == "web" and item["type"] == "run" for item in lines)


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
