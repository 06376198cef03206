"""Waiting for a health check with engine events: a deployment looks at its containers when an
event about them arrives, and by itself only as a fallback, so a large deployment does not ask
the engine about every container every second while the checks start."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Sequence

import pytest

from dockyard.runtime.driver import ContainerInfo
from dockyard.server import health
from dockyard.server.engine_events import EngineEvents


class _Engine:
    """Answers `inspect` with the health it is told, counting the looks."""

    def __init__(self, health_now: str) -> None:
        self.health = health_now
        self.looks = 0
        self.looked = threading.Event()

    def inspect(self, container_id: str) -> ContainerInfo:
        info = ContainerInfo(id=container_id, name=f"{container_id}-1", labels={},
                             status="running", exit_code=0, health=self.health,
                             restart_count=0, ip_address="10.0.0.2", started_at=None)
        self.looks += 1
        self.looked.set()
        return info

    def logs(self, container_id: str, tail: int) -> Sequence[object]:
        return ()


def _healthy_after(wake: Callable[[EngineEvents], None]) -> tuple[list[health.Outcome], int]:
    """Wait on a container whose check is starting; once the waiter has looked, the check
    passes and `wake` tells the board. Returns the outcome and how many looks it took."""
    engine, board = _Engine("starting"), EngineEvents()
    outcome: list[health.Outcome] = []
    waiter = threading.Thread(target=lambda: outcome.append(health.wait_healthy(
        engine, ["c1"], job=False, has_healthcheck=True,  # type: ignore[arg-type]
        http_port=None, stabilization=0.0, timeout=60.0, events=board)))
    waiter.start()
    assert engine.looked.wait(30.0)
    engine.health = "healthy"
    wake(board)
    waiter.join(30.0)
    return outcome, engine.looks


def test_a_health_event_settles_the_wait_without_polling() -> None:
    outcome, looks = _healthy_after(lambda board: board.saw("c1"))  # `health_status: healthy`
    assert outcome == [health.Outcome(True, "the health check passes")]
    assert looks == 2  # the first look, and the one the event asked for


def test_wake_all_makes_a_waiter_look_again() -> None:
    # The watcher's stream was interrupted: its events may be lost.
    outcome, _ = _healthy_after(EngineEvents.wake_all)
    assert outcome == [health.Outcome(True, "the health check passes")]


def test_get_checks_go_straight_to_the_container_whatever_proxy_the_environment_names(
        monkeypatch: pytest.MonkeyPatch) -> None:
    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            self.send_response(503 if self.path != "/" else 204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert health._http_ok("127.0.0.1", server.server_address[1]) is True
        assert health._http_ok(None, server.server_address[1]) is False
    finally:
        server.shutdown()
        server.server_close()
    assert health._http_ok("127.0.0.1", server.server_address[1]) is False  # refused
