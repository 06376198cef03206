"""Request bodies, log answers and follow streams are bounded (issue 10), in-process.

- a body over `max_request_bytes` is refused with 413 before it is read, with or without a
  Content-Length (the middleware stops pulling chunks at the cap); context uploads are exempt;
- a log answer without follow holds at most `limit` lines, asks the engine for `limit + 1` per
  container, and its `end` event says when older lines were left out and where to page from;
- an account follows at most `limits.follows` log streams (429 over it), and a stream that ends
  gives its slot back and stops its engine streams;
- absurd integer query parameters answer 422, not 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from dockyard.server.app import create_app
from dockyard.server.body_limit import BodyLimit
from dockyard.server.control import ControlPlane
from dockyard.server.settings import Limits, ServerSettings
from dockyard.server.streams import FollowSlots
from dockyard.store.store import Store
from tests.fakes import FakeDriver
from tests.support.server import client_over, log_answer

CAP = 64 * 1024  # the JSON body cap of these tests


@dataclass
class Api:
    client: TestClient
    control: ControlPlane
    driver: FakeDriver
    alice: dict[str, str]
    bob: dict[str, str]

    @property
    def follows(self) -> FollowSlots:
        slots = self.client.app.state.follows  # type: ignore[attr-defined]
        assert isinstance(slots, FollowSlots)
        return slots


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = ServerSettings(data=tmp_path / "server", stabilization_seconds=0.0,
                              deploy_timeout_seconds=5.0, max_context_bytes=1 << 20,
                              max_request_bytes=CAP, limits=Limits(0, 0, 0, 0.0, 0, 0, 2, 0))
    settings.data.mkdir()
    store = Store.open(settings.database_url)
    driver = FakeDriver()
    control = ControlPlane(settings, store, driver)
    tokens = {name: store.create_token(store.ensure_account(name)) for name in ("alice", "bob")}
    with TestClient(create_app(control)) as client:
        yield Api(client, control, driver, {"Authorization": f"Bearer {tokens['alice']}"},
                  {"Authorization": f"Bearer {tokens['bob']}"})
    store.close()


def deployed(api: Api, headers: dict[str, str] | None = None) -> None:
    """`shop` (web and db) deployed by alice (or `headers`' account), to its end."""
    body = {"project": {"name": "shop", "services": {
        "web": {"image": "dockyard/busybox:1"}, "db": {"image": "dockyard/busybox:1"}}}}
    response = api.client.post("/v1/projects/shop/deployments", json=body,
                               headers=headers or api.alice)
    assert response.status_code == 202, response.text
    deployment = response.json()["deployment"]
    with api.client.stream("GET", f"/v1/deployments/{deployment}/events",
                           headers=headers or api.alice) as stream:
        assert any('"succeeded"' in line for line in stream.iter_lines())


def eventually(check: Callable[[], bool], what: str, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"waited {seconds}s for {what}"
        time.sleep(0.02)


# -- request bodies --------------------------------------------------------------------------
def test_a_body_over_the_cap_with_a_content_length_is_refused_with_413(api: Api) -> None:
    body = json.dumps({"project": {"name": "shop", "x-pad": "a" * CAP}}).encode()
    response = api.client.post("/v1/projects/shop/deployments", content=body,
                               headers=api.alice | {"Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    error = response.json()
    assert error["kind"] == "RequestTooLarge" and str(CAP) in error["error"] and error["hint"]


def test_a_chunked_body_over_the_cap_is_refused_with_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"project": {"name": "shop", "x-pad": "'
        for _ in range(4):
            yield b"a" * (CAP // 2)
        yield b'"}}'

    response = api.client.post("/v1/projects/shop/deployments", content=chunks(),
                               headers=api.alice | {"Content-Type": "application/json"})
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413, response.text
    assert response.json()["kind"] == "RequestTooLarge"


def test_a_body_under_the_cap_still_reaches_its_route(api: Api) -> None:
    response = api.client.post("/v1/projects/shop/down", json={"volumes": False},
                               headers=api.alice)
    assert response.status_code != 413, response.text


def test_no_token_is_refused_before_the_body_is_counted(api: Api) -> None:
    response = api.client.post("/v1/projects/shop/deployments", content=b"x" * (2 * CAP))
    assert response.status_code == 401


def test_a_context_upload_has_its_own_cap_and_is_not_cut_at_the_json_cap(api: Api) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = bytes(range(256)) * (CAP // 128)  # 2 x CAP: over the JSON cap
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    content = buffer.getvalue()
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    response = api.client.put(f"/v1/contexts/{digest}", content=content, headers=api.alice)
    assert response.status_code == 201, response.text


def _body_limit_run(messages: list[Message], headers: list[tuple[bytes, bytes]]
                    ) -> tuple[int, list[Message], bool]:
    """Run BodyLimit alone: (chunks pulled, what it sent, whether the app was called)."""
    pulled = 0
    sent: list[Message] = []
    called = False

    async def receive() -> Message:
        nonlocal pulled
        pulled += 1
        return messages[pulled - 1] if pulled <= len(messages) else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal called
        called = True
        while (await receive()).get("more_body"):
            pass

    scope: Scope = {"type": "http", "method": "POST", "path": "/v1/projects/x/deployments",
                    "headers": headers}
    asyncio.run(BodyLimit(app, max_bytes=4 * 1024)(scope, receive, send))
    return pulled, sent, called


def test_the_middleware_stops_reading_at_the_cap() -> None:
    chunk = {"type": "http.request", "body": b"a" * 1024, "more_body": True}
    pulled, sent, called = _body_limit_run([chunk] * 1000, [])
    assert pulled == 5 and not called  # 5 KiB read for a 4 KiB cap, not 1000 KiB
    assert sent[0]["status"] == 413 and (b"connection", b"close") in sent[0]["headers"]
    pulled, sent, called = _body_limit_run([chunk] * 1000,
                                           [(b"content-length", b"1024000")])
    assert pulled == 0 and not called and sent[0]["status"] == 413
    last = {"type": "http.request", "body": b"a" * 1024, "more_body": False}
    pulled, sent, called = _body_limit_run([chunk, chunk, last], [])
    assert called and not sent  # 3 KiB: the app gets it


# -- log answers -------------------------------------------------------------------------------
def test_a_log_answer_holds_the_newest_limit_lines_and_says_older_ones_were_left_out(
        api: Api) -> None:
    deployed(api)
    api.driver.printed = 500
    api.driver.log_requests.clear()
    events = log_answer(client_over(api.client.app, api.alice), "shop", kind="run", limit=100)
    lines = [data for kind, data in events if kind == "log"]
    kind, end = events[-1]
    assert kind == "end" and end["truncated"] is True and end["limit"] == 100
    assert len(lines) == 100
    # The engine was asked for limit + 1 lines of each container, never for everything.
    assert [tail for _, tail in api.driver.log_requests] == [101, 101]
    # The newest 100 of both containers, in time order; `before` is the oldest sent.
    times = [datetime.fromisoformat(line["at"]) for line in lines]
    assert times == sorted(times) and end["before"] == lines[0]["at"]
    assert {line["line"].rsplit(" ", 1)[-1] for line in lines} >= {"499"}
    # Asking again until `before` pages further back (the boundary line comes again).
    api.driver.log_requests.clear()
    older = log_answer(client_over(api.client.app, api.alice), "shop", kind="run", limit=100,
                       until=end["before"])
    older_lines = [data for kind, data in older if kind == "log"]
    assert len(older_lines) == 100 and older[-1][1]["truncated"] is True
    before = datetime.fromisoformat(end["before"])
    assert all(datetime.fromisoformat(line["at"]) <= before for line in older_lines)
    assert older_lines[-1]["at"] == end["before"]
    assert [tail for _, tail in api.driver.log_requests] == [None, None]  # no tail with until


def test_a_short_log_is_whole_and_not_truncated(api: Api) -> None:
    deployed(api)
    api.driver.printed = 3
    events = log_answer(client_over(api.client.app, api.alice), "shop", kind="run")
    assert len([1 for kind, _ in events if kind == "log"]) == 2 * 4
    assert events[-1] == ("end", {"truncated": False, "before": None, "limit": 10_000})


def test_the_default_limit_is_asked_of_the_engine_and_a_users_tail_is_not_a_truncation(
        api: Api) -> None:
    deployed(api)
    api.driver.printed = 50
    api.driver.log_requests.clear()
    api.client.get("/v1/projects/shop/logs?type=run", headers=api.alice)
    assert [tail for _, tail in api.driver.log_requests] == [10_001, 10_001]
    api.driver.log_requests.clear()
    events = log_answer(client_over(api.client.app, api.alice), "shop", kind="run", tail=5)
    assert [tail for _, tail in api.driver.log_requests] == [5, 5]
    assert len(events) == 11 and events[-1][1]["truncated"] is False


# -- follow streams ------------------------------------------------------------------------------
def test_an_account_follows_at_most_its_limit_and_a_closed_stream_frees_its_slot(
        api: Api) -> None:
    deployed(api)
    deployed(api, api.bob)
    path = "/v1/projects/shop/logs?follow=true&type=run"
    with ExitStack() as streams:
        for _ in range(2):
            opened = streams.enter_context(api.client.stream("GET", path, headers=api.alice))
            assert opened.status_code == 200
        eventually(lambda: api.driver.following == 4, "4 engine follows (2 streams x 2)")
        refused = api.client.get(path, headers=api.alice)
        assert refused.status_code == 429, refused.text
        error = refused.json()
        assert error["kind"] == "TooManyFollows" and "2" in error["error"] and error["hint"]
        assert api.follows.open("alice") == 2
        # Another account has slots of its own.
        with api.client.stream("GET", path, headers=api.bob) as theirs:
            assert theirs.status_code == 200
    # Every stream closed: the slots are free, and so are the engine streams.
    eventually(lambda: api.follows.open("alice") == 0 and api.follows.open("bob") == 0,
               "the follow slots to be released")
    eventually(lambda: api.driver.following == 0, "the engine follows to stop")
    with api.client.stream("GET", path, headers=api.alice) as again:
        assert again.status_code == 200


def test_a_follow_sends_lines_as_they_come(api: Api) -> None:
    deployed(api)
    api.driver.printed = 3
    with api.client.stream("GET", "/v1/projects/shop/logs?follow=true&type=run&tail=2",
                           headers=api.alice) as stream:
        seen: list[str] = []
        for line in stream.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:])["line"])
            if len(seen) == 4:
                break
    # The last 2 lines of each container (printed: line 0, 1 and 2).
    assert sorted(line.rsplit(" ", 1)[-1] for line in seen) == ["1", "1", "2", "2"], seen


# -- integer query parameters -------------------------------------------------------------
@pytest.mark.parametrize("path", [
    "/v1/deployments?limit=100000000000000000000", "/v1/deployments?limit=0",
    "/v1/deployments?limit=1001", "/v1/deployments?limit=-1",
    "/v1/projects/shop/logs?tail=100000000000000000000", "/v1/projects/shop/logs?tail=-1",
    "/v1/projects/shop/logs?limit=0", "/v1/projects/shop/logs?limit=50001",
    "/v1/deployments/abc/events?after=100000000000000000000",
    "/v1/deployments/abc/events?after=-1"])
def test_absurd_integers_answer_422(api: Api, path: str) -> None:
    response = api.client.get(path, headers=api.alice)
    assert response.status_code == 422, response.text
    assert response.json()["kind"] == "RequestInvalid"


def test_the_largest_allowed_integers_are_accepted(api: Api) -> None:
    assert api.client.get("/v1/deployments?limit=1000", headers=api.alice).status_code == 200
    deployed(api)
    response = api.client.get("/v1/projects/shop/logs?limit=50000&tail=50000",
                              headers=api.alice)
    assert response.status_code == 200


def test_dockyard_logs_prints_the_newest_lines_and_says_older_ones_were_left_out(
        api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    from dockyard.cli.commands.logs import run_logs
    from dockyard.client.api import Client

    deployed(api)
    api.driver.printed = 20_000  # two containers: 40,002 lines, over the default 10,000
    client = Client("http://testserver", "unused")
    client.http = api.client
    api.client.headers.update(api.alice)
    run_logs("shop", lambda: client, services=[], follow=False, since=None, until=None,
             kind="run", deployment=None, tail=None, as_json=False)
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 10_000
    assert "line 19999" in out.splitlines()[-1]
    assert "older lines were left out (the newest 10000 lines are shown)" in err
    assert "--until 20" in err  # a time to page from
