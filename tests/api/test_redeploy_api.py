"""Redeploying a recorded deployment runs the digests it recorded, over the API (fake engine
and fake registry): a tag that moved since is not followed, nothing is built again, and a
deployment whose images are gone is refused before anything changes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import IMAGE, Server, digest_of, make_tar, running_server

REGISTRY = "registry.example.com:5000"
APP = f"{REGISTRY}/team/app:1"
V1, V2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def served(image_id: str) -> str:
    """The digest the fake registry serves `image_id` under."""
    return "sha256:" + hashlib.sha256(image_id.encode()).hexdigest()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path) as running:
        running.driver.remote[APP] = V1
        running.driver.remote[IMAGE] = running.driver.images[IMAGE]  # the same bits
        yield running


def services() -> dict[str, Any]:
    return {"app": {"image": APP, "command": ["sleep", "1"]},
            "other": {"image": IMAGE, "command": ["sleep", "1"]}}


def redeploy(server: Server, deployment: str, **body: Any) -> str:
    response = server.call("POST", f"/v1/deployments/{deployment}/redeploy", json=body)
    assert response.status_code == 202, response.text
    started = str(response.json()["deployment"])
    assert server.events(started)[1] == "succeeded"
    return started


def test_a_redeploy_runs_the_recorded_digest_not_the_moved_tag(server: Server) -> None:
    first, status = server.up("shop", services())
    assert status == "succeeded"
    assert server.spec_of("shop", "app").image == f"{REGISTRY}/team/app@{served(V1)}"
    detail = server.call("GET", f"/v1/deployments/{first}").json()
    assert detail["images"]["app"]["digest"] == f"{REGISTRY}/team/app@{served(V1)}"
    assert detail["images"]["other"]["image_id"] == server.driver.images[IMAGE]

    server.driver.remote[APP] = V2  # the tag moves
    response = server.call("POST", "/v1/projects/shop/deployments",
                           json={"project": {"name": "shop", "services": services()},
                                 "pull": "always"})
    assert response.status_code == 202, response.text
    assert server.events(str(response.json()["deployment"]))[1] == "succeeded"
    moved = server.spec_of("shop", "app").image
    assert moved == f"{REGISTRY}/team/app@{served(V2)}"
    other = server.containers("shop")["other"]

    again = redeploy(server, first)
    assert server.spec_of("shop", "app").image == f"{REGISTRY}/team/app@{served(V1)}"
    assert server.containers("shop")["other"] == other  # unchanged: not restarted
    record = server.call("GET", f"/v1/deployments/{again}").json()
    assert record["action"] == "redeploy"
    assert record["images"]["app"]["digest"].endswith(served(V1))


def test_a_redeploy_of_a_build_runs_its_image_without_building(server: Server) -> None:
    data = make_tar({"Dockerfile": b"FROM dockyard/busybox:1\n"})
    digest = digest_of(data)
    assert server.call("PUT", f"/v1/contexts/{digest}", content=data).status_code == 201
    first, status = server.up("shop", {"web": {"build": {"context": "."}}},
                              builds={"web": {"digest": digest}})
    assert status == "succeeded"
    built = server.spec_of("shop", "web").image
    builds = len(server.driver.builds)
    redeploy(server, first)
    assert len(server.driver.builds) == builds
    assert server.spec_of("shop", "web").image == built

    # The image is gone from the engine (and was in no registry): refused, nothing changes.
    for name in [r for r, i in server.driver.images.items() if i == built]:
        del server.driver.images[name]
    before = server.containers("shop")
    response = server.call("POST", f"/v1/deployments/{first}/redeploy", json={})
    assert response.status_code == 422, response.text
    (problem,) = response.json()["diagnostics"]
    assert problem["code"] == "image-missing" and "web" in problem["message"], problem
    assert server.containers("shop") == before


def test_another_accounts_deployment_cannot_be_redeployed(server: Server) -> None:
    first, _ = server.up("shop", services())
    response = server.call("POST", f"/v1/deployments/{first}/redeploy", "bob", json={})
    assert response.status_code == 404, response.text
