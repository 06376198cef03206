"""A private registry on the fake engine, for pulls over the in-process API: its host, the
image it serves, the two accounts' logins, and a playground server that lets tenants pull."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from dockyard.naming import NamingMode
from dockyard.runtime.errors import RegistryLoginFailed
from dockyard.server.settings import Limits
from tests.support.images import diagnostics
from tests.support.server import PrintingDriver, Server, running_server

HOST = "registry.dockyard.test"  # .test never resolves: no private address (registry_access)
REF = f"{HOST}/team/secret:1"
SECRET_ID = "sha256:" + "5" * 64  # the image the registry serves as REF
USERS = {"alice": "alice-registry-pw-7c41", "bob": "bob-registry-pw-d09e"}
ALLOWED = ("dockyard/busybox:*",)


def served_digest(image_id: str) -> str:
    """The manifest digest the fake registry serves `image_id` under."""
    return "sha256:" + hashlib.sha256(image_id.encode()).hexdigest()


def pinned(reference: str, image_id: str) -> str:
    return f"{reference.rsplit(':', 1)[0]}@{served_digest(image_id)}"


def two_users(driver: PrintingDriver, monkeypatch: pytest.MonkeyPatch, host: str,
              users: Mapping[str, str]) -> None:
    """The fake registry at `host` requires a login and accepts each of `users` (name ->
    password), for logins, checks and pulls alike; `driver.checks`/`pulls` keep recording
    the username each request came with."""
    canonical = next(iter(users.items()))
    driver.private[host] = canonical

    def served_to_any(reference: str, auth: Mapping[str, str] | None) -> tuple[str, str]:
        if auth is not None and users.get(auth.get("username", "")) == auth.get("password"):
            auth = {**auth, "username": canonical[0], "password": canonical[1]}
        return PrintingDriver._served(driver, reference, auth)  # the class's, not a patch

    def check_login(server_address: str, username: str, password: str) -> None:
        driver.login_checks.append((server_address, username))
        if server_address != host or users.get(username) != password:
            raise RegistryLoginFailed(f"login attempt to https://{server_address}/v2/ failed "
                                      "with status: 401 Unauthorized", denied=True)

    monkeypatch.setattr(driver, "_served", served_to_any)
    monkeypatch.setattr(driver, "check_login", check_login)


def login(server: Server, who: str, password: str | None = None) -> None:
    response = server.call("PUT", f"/v1/registries/{quote(HOST, safe='')}", who,
                           json={"username": who, "password": password or USERS[who]})
    assert response.status_code == 200, response.text


def up(server: Server, project: str, services: dict[str, Any], who: str = "alice",
       builds: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], str]:
    """Deploy (it must be admitted) and follow it to its end: (events, final status)."""
    response = server.deploy(project, services, who, builds=builds)
    assert response.status_code == 202, response.text
    return server.events(str(response.json()["deployment"]), who)


def refused(response: httpx.Response) -> dict[str, Any]:
    (problem,) = diagnostics(response)
    return problem


def with_playground(tmp_path: Path, **settings: Any) -> AbstractContextManager[Server]:
    return running_server(tmp_path, mode=NamingMode.PLAYGROUND, zone="prod1a.localhost",
                          limits=Limits(projects=5), allow_images=ALLOWED, **settings)
