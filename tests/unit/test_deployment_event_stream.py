"""A deployment's event stream sends what one store read found in one write: a no-op `up` of
100 services records 100 events, and each chunk costs the server's event loop a pass through
every ASGI layer (and the client a read)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dockyard.server.streams import deployment_events


@dataclass
class _Event:
    service: str

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "state": "SERVICE_DEPLOYMENT_COMPLETED"}


@dataclass
class _Recorded:
    id: int
    event: _Event


@dataclass
class _Record:
    status: str


class _Store:
    def __init__(self, events: int, status: str) -> None:
        self.events = [_Recorded(i + 1, _Event(f"s{i}")) for i in range(events)]
        self.status = status

    def deployment(self, who: object, deployment: str) -> _Record:
        return _Record(self.status)

    def events_since(self, who: object, deployment: str, last: int) -> list[_Recorded]:
        return [e for e in self.events if e.id > last]


class _Control:
    def __init__(self, store: _Store) -> None:
        self.store = store

    def on_change(self, wake: Callable[[], None]) -> Callable[[], None]:
        return lambda: None


def _chunks(store: _Store, after: int = 0) -> list[str]:
    async def collect() -> list[str]:
        return [chunk async for chunk in deployment_events(
            _Control(store), object(), "d1", after)]  # type: ignore[arg-type]
    return asyncio.run(collect())


def test_a_finished_deployments_events_and_its_end_go_out_in_one_chunk() -> None:
    chunks = _chunks(_Store(100, "succeeded"))
    assert len(chunks) == 1
    assert chunks[0].count("event: state\n") == 100
    assert chunks[0].endswith('event: end\ndata: {"status": "succeeded"}\n\n')
    assert '"id": 100' in chunks[0]


def test_events_already_seen_are_not_sent_again() -> None:
    chunks = _chunks(_Store(5, "failed"), after=3)
    assert chunks[0].count("event: state\n") == 2 and '"id": 3' not in chunks[0]
    assert _chunks(_Store(0, "succeeded")) == ['event: end\ndata: {"status": "succeeded"}\n\n']
