"""Builds over the in-process API: upload a context, build and deploy it, read a refusal."""

from __future__ import annotations

from typing import Any

import httpx

from dockyard.runtime.driver import LABEL_ACCOUNT
from tests.support.server import Server, digest_of, make_tar


def upload(server: Server, who: str, dockerfile: str, **files: bytes) -> str:
    data = make_tar({"Dockerfile": dockerfile.encode(), **files})
    digest = digest_of(data)
    response = server.call("PUT", f"/v1/contexts/{digest}", who, content=data)
    assert response.status_code == 201, response.text
    return digest


def build_up(server: Server, who: str, project: str, dockerfile: str,
             image: str | None = None, args: dict[str, str] | None = None) -> httpx.Response:
    digest = upload(server, who, dockerfile, **{"app.txt": f"{who}-{project}".encode()})
    service: dict[str, Any] = {"build": {"context": "."}}
    if image:
        service["image"] = image
    return server.deploy(project, {"app": service}, who,
                         builds={"app": {"digest": digest, "args": args or {}}})


def finished(server: Server, response: httpx.Response, who: str) -> str:
    assert response.status_code == 202, response.text
    return server.events(str(response.json()["deployment"]), who)[1]


def alices_app(server: Server) -> str:
    """alice builds `alice/app:1`; the id of her image."""
    status = finished(server, build_up(server, "alice", "shop", "FROM dockyard/busybox:1\n",
                                       image="alice/app:1"), "alice")
    assert status == "succeeded"
    (image_id,) = {i for i, labels in server.driver.image_labels.items()
                   if labels.get(LABEL_ACCOUNT) == "alice"}
    return image_id


def diagnostics(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    found: list[dict[str, Any]] = response.json()["diagnostics"]
    return found
