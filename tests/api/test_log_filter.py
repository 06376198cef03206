"""`logs --filter TEXT`, in-process: the server keeps only the lines that contain TEXT (ignoring
case), after masking config values, so a filter never tells whether a guess of a secret is
right; `tail` and `limit` then count matching lines, and a follow sends matching lines only.

The engine is `PrintingDriver`: each container prints `hello from <name>`, `printed` numbered
lines (`<name> line <i>`), then its whole environment (`env KEY=value`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import Server, log_answer, running_server

SECRET = "hunter2-s3cret-value"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path) as running:
        running.set_config("shop", "API_KEY", SECRET)
        deployment, status = running.up("shop", {
            "web": {"image": "dockyard/busybox:1",
                    "environment": {"API_KEY": None, "MODE": "Verbose-Mode"}},
            "db": {"image": "dockyard/busybox:1"}})
        assert status == "succeeded", deployment
        yield running


def lines(server: Server, **options: object) -> list[str]:
    events = log_answer(server.client_of("alice"), "shop", kind="run", **options)
    server.bodies.extend(json.dumps(data) for _, data in events)
    return [str(data["line"]) for kind, data in events if kind == "log"]


def test_only_lines_containing_the_text_are_sent_ignoring_case(server: Server) -> None:
    server.driver.printed = 30
    every = lines(server)
    assert "env MODE=Verbose-Mode" in every
    assert lines(server, filter="VERBOSE-mode") == ["env MODE=Verbose-Mode"]
    found = lines(server, filter="line 2")
    assert found and all("line 2" in line for line in found)
    assert len(found) == 2 * 11  # line 2 and line 20 to 29, of both containers
    assert lines(server, filter="nothing prints this") == []
    assert lines(server, filter="") == every  # an empty filter keeps every line


def test_a_filter_matches_the_masked_line_so_it_cannot_probe_a_secret(server: Server) -> None:
    assert lines(server, filter="API_KEY") == ["env API_KEY=****"]
    for guess in (SECRET, SECRET[:6], "hunter"):
        assert lines(server, filter=guess) == [], guess
    assert lines(server, filter="=****") == ["env API_KEY=****"]
    assert not any(SECRET in body for body in server.bodies)


def test_tail_and_limit_count_matching_lines_and_the_engine_is_asked_for_no_tail(
        server: Server) -> None:
    server.driver.printed = 300
    server.driver.log_requests.clear()
    # The newest lines do not match: the engine's own tail would find none of them.
    found = lines(server, filter="line 1", tail=3, services=["web"])
    assert [line.rsplit(" ", 1)[-1] for line in found] == ["197", "198", "199"]
    assert [tail for _, tail in server.driver.log_requests] == [None]
    events = log_answer(server.client_of("alice"), "shop", kind="run", filter="line 1",
                        limit=5)
    end = events[-1][1]
    assert end["truncated"] is True and len(events) == 6  # 2 x 111 matches, the newest 5


def test_a_follow_sends_matching_lines_only(server: Server) -> None:
    server.driver.printed = 5
    path = "/v1/projects/shop/logs?follow=true&type=run&filter=LINE%203"
    seen: list[str] = []
    with server.client.stream("GET", path, headers=server.auth("alice")) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:])["line"])
            if len(seen) == 2:
                break
    assert len(seen) == 2 and all(line.endswith(" line 3") for line in seen), seen
    assert len({line.split(" ")[0] for line in seen}) == 2  # one of each container


def test_a_filter_longer_than_the_bound_is_refused(server: Server) -> None:
    response = server.call("GET", "/v1/projects/shop/logs?filter=" + "x" * 1001)
    assert response.status_code == 422, response.text


def test_tail_takes_since_and_filter_from_the_command_line(
        server: Server, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from dockyard.cli.main import main
    from dockyard.client import api

    monkeypatch.setattr(api, "connect", lambda *_a, **_k: server.client_of("alice"))
    server.driver.printed = 12
    # The greeting is an hour older than the numbered lines: --since 10m leaves it out.
    code = main(["tail", "-p", "shop", "--no-follow", "--type", "run", "--since", "10m",
                 "--filter", "LINE 1", "web"])
    out, err = capsys.readouterr()
    assert code == 0, err
    shown = [line.split(" | ", 1)[1] for line in out.splitlines()]
    assert len(shown) == 3 and all(" line 1" in line for line in shown), out
    assert main(["logs", "-p", "shop", "--type", "run", "--until", "30m", "--filter",
                 "hello"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2  # only the greetings are older
