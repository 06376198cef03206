"""The API app in-process: a real SQLite store, a fake engine (`PrintingDriver`) and the
real Python client (`Client.over`) over Starlette's `TestClient`, as alice and bob."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import ASGIApp

from dockyard.client.api import Client
from dockyard.runtime.driver import LABEL_ACCOUNT, LABEL_PROJECT, LogLine, StreamStop
from dockyard.server.app import create_app
from dockyard.server.control import ControlPlane
from dockyard.server.settings import ServerSettings
from dockyard.store.store import Account, Store
from tests.fakes import FakeDriver

IMAGE = "dockyard/busybox:1"


class PrintingDriver(FakeDriver):
    """A fake engine whose containers print their whole environment and every file mounted
    into them: whatever a program could print about its configs, it does."""

    def logs(self, container_id: str, *, tail: int | None = None,
             since: datetime | None = None, until: datetime | None = None,
             follow: bool = False, stop: StreamStop | None = None) -> Iterator[LogLine]:
        yield from super().logs(container_id, tail=tail, since=since, until=until,
                                follow=follow, stop=stop)
        spec = self.specs.get(container_id)
        if spec is None:
            return
        now = datetime.now(UTC)
        for key, value in sorted(spec.environment.items()):
            yield LogLine(container_id, f"env {key}={value}", now)
        for mount in spec.mounts:
            if mount.type == "bind" and mount.source and os.path.isfile(mount.source):
                yield LogLine(container_id,
                              f"file {mount.target}: {Path(mount.source).read_text()}", now)


@dataclass
class Server:
    client: TestClient
    app: FastAPI
    control: ControlPlane
    driver: PrintingDriver
    store: Store
    settings: ServerSettings
    accounts: dict[str, Account]
    tokens: dict[str, str]
    bodies: list[str] = field(default_factory=list)  # every response body, for leak searches

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def call(self, method: str, path: str, who: str | None = "alice",
             headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        """One request (as `who`, or with `headers` as given); its body is kept."""
        sent = dict(headers) if headers is not None else (self.auth(who) if who else {})
        response: httpx.Response = self.client.request(method, path, headers=sent, **kwargs)
        self.bodies.append(response.text)
        return response

    def deploy(self, project: str, services: dict[str, Any], who: str = "alice",
               secrets: dict[str, Any] | None = None,
               builds: dict[str, Any] | None = None) -> httpx.Response:
        body: dict[str, Any] = {"name": project, "services": services}
        if secrets:
            body["secrets"] = secrets
        return self.call("POST", f"/v1/projects/{project}/deployments", who,
                         json={"project": body, "builds": builds or {}})

    def client_of(self, who: str = "alice") -> Client:
        """The real Python client, as `who`, over the in-process app."""
        return client_over(self.app, self.auth(who))

    def events(self, deployment: str, who: str = "alice") -> tuple[list[dict[str, Any]], str]:
        """The deployment's state events read to their end with the real client: (events,
        final status). What the stream said is kept with the response bodies."""
        seen, end = follow(self.client_of(who), deployment)
        self.bodies.extend(json.dumps(data) for data in [*seen, end])
        return seen, str(end["status"])

    def up(self, project: str, services: dict[str, Any], who: str = "alice",
           secrets: dict[str, Any] | None = None,
           builds: dict[str, Any] | None = None) -> tuple[str, str]:
        """Deploy and wait: (deployment id, final status)."""
        response = self.deploy(project, services, who, secrets, builds)
        assert response.status_code == 202, response.text
        deployment = str(response.json()["deployment"])
        return deployment, self.events(deployment, who)[1]

    def down(self, project: str, who: str = "alice") -> str:
        response = self.call("POST", f"/v1/projects/{project}/down", who, json={})
        assert response.status_code == 202, response.text
        _, status = self.events(str(response.json()["deployment"]), who)
        return status

    def set_config(self, project: str, name: str, value: str, who: str = "alice") -> None:
        response = self.call("PUT", f"/v1/projects/{project}/configs/{name}", who,
                             json={"value": value})
        assert response.status_code == 200, response.text

    def containers(self, project: str, who: str = "alice") -> dict[str, set[str]]:
        """service -> ids of its containers, for one account's project."""
        out: dict[str, set[str]] = {}
        for cid, info in self.driver.items.items():
            if info.labels.get(LABEL_ACCOUNT) == who and \
                    info.labels.get(LABEL_PROJECT) == project:
                out.setdefault(info.service, set()).add(cid)
        return out

    def spec_of(self, project: str, service: str, who: str = "alice") -> Any:
        (cid,) = self.containers(project, who)[service]
        return self.driver.specs[cid]


@contextmanager
def running_server(tmp_path: Path, **settings: Any) -> Iterator[Server]:
    options: dict[str, Any] = {"data": tmp_path / "server", "stabilization_seconds": 0.0,
                               "deploy_timeout_seconds": 5.0, "max_context_bytes": 1 << 20}
    options.update(settings)
    server_settings = ServerSettings(**options)
    server_settings.data.mkdir()
    store = Store.open(server_settings.database_url)
    driver = PrintingDriver()
    control = ControlPlane(server_settings, store, driver)
    accounts = {name: store.ensure_account(name) for name in ("alice", "bob")}
    tokens = {name: store.create_token(account) for name, account in accounts.items()}
    app = create_app(control)
    try:
        with TestClient(app) as client:
            yield Server(client, app, control, driver, store, server_settings, accounts, tokens)
    finally:
        store.close()


def make_tar(files: dict[str, bytes]) -> bytes:
    """A build context: an uncompressed tar of `files` (name -> content)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def digest_of(data: bytes) -> str:
    """The name the server stores an uploaded context under."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


class InProcessClient(TestClient):
    """Starlette's TestClient refuses a per-request timeout, which the client sends."""

    def request(self, *args: Any, **kwargs: Any) -> httpx.Response:
        kwargs.pop("timeout", None)
        response: httpx.Response = super().request(*args, **kwargs)
        return response


def client_over(app: ASGIApp, headers: dict[str, str]) -> Client:
    """The real Python client over an in-process app, sending `headers` (the token)."""
    return Client.over(InProcessClient(app, base_url="http://testserver", headers=headers))


def follow(client: Client, deployment: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A deployment's state events (SSE) read to their end: (events, the end event's data)."""
    seen: list[dict[str, Any]] = []
    for kind, data in client.events(deployment):
        if kind == "end":
            return seen, dict(data)
        seen.append(dict(data))
    raise AssertionError(f"the stream of {deployment} ended without an end event")


def log_answer(client: Client, project: str, **options: Any) -> list[tuple[str, dict[str, Any]]]:
    """A log answer (SSE, not followed) as (event, data) pairs: each ("log", entry), then
    ("end", {"truncated", "before", "limit"}). `options` are `Client.logs`'s."""
    ends: list[dict[str, Any]] = []
    events: list[tuple[str, dict[str, Any]]] = [
        ("log", entry) for entry in client.logs(project, on_end=ends.append, **options)]
    return events + [("end", end) for end in ends]
