"""Where a project's log lines come from: the build output a deployment recorded, and the
containers that run (`log_stream` streams them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dockyard.runtime.driver import LABEL_DEPLOYMENT, LABEL_SERVICE, ContainerInfo
from dockyard.runtime.specs import project_labels
from dockyard.server.control import ControlPlane
from dockyard.store.store import Account


@dataclass(frozen=True, slots=True)
class LogEntry:
    service: str
    kind: str  # build or run
    text: str
    at: datetime | None
    container: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "type": self.kind, "line": self.text,
                "at": self.at.isoformat() if self.at else None, "container": self.container}


MAX_FILTER = 1000  # characters of a `--filter` text


def line_filter(text: str | None) -> Callable[[str], bool] | None:
    """`--filter TEXT`: keep the lines that contain TEXT, ignoring case (as a search box does:
    `error` finds `ERROR` and `Error`); None (no text, or an empty one) keeps every line. It is
    matched against the line once its config values are masked, so a filter cannot probe a
    secret one guessed character at a time."""
    if not text:
        return None
    needle = text.casefold()
    return lambda line: needle in line.casefold()


def build_logs(control: ControlPlane, account: Account, deployment: str,
               services: list[str]) -> Iterator[LogEntry]:
    data = control.store.deployed_project(account, deployment) or {}
    names = services or sorted((data.get("services") or {}).keys())
    for name in names:
        for line in control.store.build_log(account, deployment, name):
            yield LogEntry(name, "build", line, None)


def run_containers(control: ControlPlane, account: Account, project: str,
                   services: list[str], deployment: str | None) -> list[ContainerInfo]:
    placement = control.placement(account, project)
    found = control.driver.containers(project_labels(placement))
    if services:
        found = [c for c in found if c.service in services]
    if deployment:
        found = [c for c in found if c.labels.get(LABEL_DEPLOYMENT) == deployment]
    return found


def service_of(info: ContainerInfo) -> str:
    return info.labels.get(LABEL_SERVICE, "")


