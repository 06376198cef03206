"""A log follow, in-process (issue 12): config values are redacted in each log entry before it
is encoded, and a client that goes away leaves no pump thread and no engine stream behind.

The fake engine counts the follow streams it has open (`FakeDriver.following`); each engine
stream is read by a pump thread named `dockyard-follow-<container>` (`log_stream.EngineFeed`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dockyard.server.app import create_app
from dockyard.server.control import ControlPlane
from dockyard.server.settings import ServerSettings
from dockyard.store.store import Store
from tests.fakes import FakeDriver

PUMP = "dockyard-follow-"  # the name of every pump thread, then its container's


@dataclass
class Api:
    client: TestClient
    driver: FakeDriver
    auth: dict[str, str]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = ServerSettings(data=tmp_path / "server", stabilization_seconds=0.0,
                              deploy_timeout_seconds=5.0)
    settings.data.mkdir()
    store = Store.open(settings.database_url)
    driver = FakeDriver()
    control = ControlPlane(settings, store, driver)
    token = store.create_token(store.ensure_account("alice"))
    with TestClient(create_app(control)) as client:
        yield Api(client, driver, {"Authorization": f"Bearer {token}"})
    store.close()


def deploy_shop(api: Api) -> None:
    """`shop` (web and db) deployed to its end."""
    body = {"project": {"name": "shop", "services": {
        "web": {"image": "dockyard/busybox:1"}, "db": {"image": "dockyard/busybox:1"}}}}
    response = api.client.post("/v1/projects/shop/deployments", json=body, headers=api.auth)
    assert response.status_code == 202, response.text
    deployment = response.json()["deployment"]
    with api.client.stream("GET", f"/v1/deployments/{deployment}/events",
                           headers=api.auth) as stream:
        assert any('"succeeded"' in line for line in stream.iter_lines())


def pumps() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(PUMP)]


def wait_until(check: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"waited {seconds:g}s for {what}"
        time.sleep(0.02)


def test_a_follow_left_by_its_client_leaves_no_pump_thread_and_no_engine_stream(
        api: Api) -> None:
    deploy_shop(api)
    assert not pumps() and api.driver.following == 0
    with api.client.stream("GET", "/v1/projects/shop/logs?follow=true&type=run&tail=1",
                           headers=api.auth) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        seen = 0
        for line in lines:  # both containers' last line: both pumps are reading
            seen += line.startswith("data: ")
            if seen == 2:
                break
        wait_until(lambda: api.driver.following == 2, "both engine follows to open")
        assert len(pumps()) == 2, pumps()
    # The client is gone (its connection closed mid-stream, as a killed `dockyard tail`).
    wait_until(lambda: not pumps(), f"the pump threads to end (left: {pumps()})")
    wait_until(lambda: api.driver.following == 0, "the engine follows to be closed")


def test_config_values_are_redacted_in_followed_entries(api: Api) -> None:
    deploy_shop(api)
    set_value = api.client.put("/v1/projects/shop/configs/TOKEN", json={"value": "line 2"},
                               headers=api.auth)
    assert set_value.status_code < 300, set_value.text
    api.driver.printed = 3  # "<container> line 0" .. "line 2"
    got: list[dict[str, object]] = []
    with api.client.stream("GET", "/v1/projects/shop/logs?follow=true&type=run&service=web",
                           headers=api.auth) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                got.append(json.loads(line[6:]))
            if len(got) == 4:
                break
    texts = [str(entry["line"]) for entry in got]
    assert texts[-1].endswith(" ****") and not any("line 2" in t for t in texts), texts
    assert all(entry["service"] == "web" and entry["type"] == "run" for entry in got), got
