"""`up --dry-run` over the API (fake engine): the plan a deployment would carry out, with the
reasons, and nothing changed: no deployment recorded, no container, pull or build."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import IMAGE, Server, digest_of, make_tar, running_server

APP = "registry.dockyard.test/team/app:1"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path) as running:
        running.driver.remote[APP] = "sha256:" + "1" * 64
        running.driver.remote[IMAGE] = running.driver.images[IMAGE]  # the same bits
        yield running


def services(**changes: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "db": {"image": IMAGE, "command": ["sleep", "1"]},
        "app": {"image": APP, "environment": {"A": "1"}, "depends_on": ["db"]},
    }
    for name, value in changes.items():
        found[name] = value
    return found


def dry_run(server: Server, body: dict[str, Any]) -> dict[str, Any]:
    response = server.call("POST", "/v1/projects/shop/plan", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def nothing_changed(server: Server, before: dict[str, Any]) -> None:
    assert server.driver.items.keys() == before["items"]
    assert len(server.driver.pulls) == before["pulls"]
    assert len(server.driver.builds) == before["builds"]
    assert len(server.store.deployments(server.accounts["alice"], "shop")) == before["records"]


def snapshot(server: Server) -> dict[str, Any]:
    return {"items": set(server.driver.items), "pulls": len(server.driver.pulls),
            "builds": len(server.driver.builds),
            "records": len(server.store.deployments(server.accounts["alice"], "shop"))}


def test_a_first_dry_run_creates_everything_and_changes_nothing(server: Server) -> None:
    before = snapshot(server)
    found = dry_run(server, {"project": {"name": "shop", "services": services()}})
    assert found["services"] == [
        {"service": "db", "action": "create", "reasons": ["new service"], "replicas": 1},
        {"service": "app", "action": "create", "reasons": ["new service"], "replicas": 1}]
    assert found["pulls"] == [APP] and found["builds"] == []
    nothing_changed(server, before)


def test_a_dry_run_says_what_changed_and_why(server: Server) -> None:
    _, status = server.up("shop", services())
    assert status == "succeeded"
    before = snapshot(server)
    same = dry_run(server, {"project": {"name": "shop", "services": services()}})
    assert [(s["service"], s["action"]) for s in same["services"]] == [("db", "keep"),
                                                                        ("app", "keep")]
    changed = services(app={"image": APP, "environment": {"A": "2"}, "depends_on": ["db"]},
                       extra={"image": IMAGE})
    found = dry_run(server, {"project": {"name": "shop", "services": changed}})
    actions = {s["service"]: (s["action"], s["reasons"]) for s in found["services"]}
    assert actions["app"] == ("replace", ["environment changed"])
    assert actions["extra"] == ("create", ["new service"])
    gone = dry_run(server, {"project": {"name": "shop", "services": {"db": services()["db"]}}})
    assert gone["services"][-1] == {"service": "app", "action": "remove",
                                    "reasons": ["no longer in the project"], "replicas": 0}
    # a moved tag, seen through --pull always, is a new digest to pull
    server.driver.remote[APP] = "sha256:" + "2" * 64
    moved = dry_run(server, {"project": {"name": "shop", "services": services()},
                             "pull": "always"})
    assert {s["service"]: s["reasons"] for s in moved["services"]}["app"] == [
        "image to be pulled (new digest)"]
    nothing_changed(server, before)


def test_a_build_that_would_run_is_said_so(server: Server) -> None:
    data = make_tar({"Dockerfile": b"FROM dockyard/busybox:1\n"})
    digest = digest_of(data)
    assert server.call("PUT", f"/v1/contexts/{digest}", content=data).status_code == 201
    body = {"project": {"name": "shop", "services": {"web": {"build": {"context": "."}}}},
            "builds": {"web": {"digest": digest}}}
    assert dry_run(server, body)["builds"] == ["web"]
    _, status = server.up("shop", {"web": {"build": {"context": "."}}},
                          builds={"web": {"digest": digest}})
    assert status == "succeeded"
    again = dry_run(server, body)
    assert again["builds"] == [] and again["services"][0]["action"] == "keep"
    rebuilt = dry_run(server, {**body, "build": True})
    assert rebuilt["builds"] == ["web"]
    assert rebuilt["services"][0]["reasons"] == ["image to be built"]


def test_a_dry_run_refuses_what_up_refuses(server: Server) -> None:
    response = server.call("POST", "/v1/projects/shop/plan", json={
        "project": {"name": "shop", "services": {"web": {"image": "nope.dockyard.test/x:1"}}}})
    assert response.status_code == 422, response.text
    assert response.json()["diagnostics"][0]["code"] == "image-not-found"
