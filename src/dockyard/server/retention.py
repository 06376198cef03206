"""What the server keeps of past deployments and uploads, and for how long.

- History: each project keeps its newest `keep_deployments` deployments (with their events
  and build logs); older ones are removed after each deployment finishes. A running
  deployment, one a service's current state comes from, and the latest `up` (what `down`
  reads) are kept whatever their age. Config history is not touched (it is bounded itself).
- Build contexts: after each deployment and periodically (a `Collector` thread), contexts no
  deployment needs (see `Store.contexts_in_use`) are removed once unused for
  `context_ttl_seconds` (see `ContextStore.collect`).

Neither may fail a deployment: a failure is logged and the next run tries again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dockyard.server.contexts import Collected

if TYPE_CHECKING:
    from dockyard.server.control import ControlPlane
    from dockyard.store.store import Account

log = logging.getLogger("dockyard.server")
MAX_COLLECT_INTERVAL = 300.0  # seconds between periodic collections at most


def deployments_to_prune(history: Sequence[tuple[str, str, str]], keep: int,
                         current: set[str]) -> list[str]:
    """Ids to remove from a project's `history` ((id, action, status), newest first): those
    beyond the newest `keep`, oldest first, but never a running one, one in `current` (a
    service's state comes from it) or the latest `up`."""
    latest_up = next((d for d, action, _ in history if action == "up"), None)
    return [d for d, _, status in reversed(history[keep:])
            if status != "running" and d not in current and d != latest_up]


def prune_history(control: ControlPlane, account: Account, project: str) -> int:
    """Remove the project's deployments beyond `keep_deployments`; how many were removed."""
    history, current = control.store.deployment_history(account, project)
    gone = deployments_to_prune(history, control.settings.keep_deployments, current)
    return control.store.remove_deployments(account, gone) if gone else 0


def collect_contexts(control: ControlPlane) -> Collected:
    """Remove the build contexts no deployment needs, unused for the TTL."""
    in_use = {(str(account_id), digest)
              for account_id, digest in control.store.contexts_in_use()}
    found = control.contexts.collect(in_use, control.settings.context_ttl_seconds)
    if found.markers or found.files:
        log.info("build contexts collected: %d unused by their account, %d files (%d bytes) "
                 "removed", found.markers, found.files, found.bytes)
    return found


def after_deployment(control: ControlPlane, account: Account, project: str) -> None:
    """Prune the project's history and collect unused contexts; never raises."""
    try:
        prune_history(control, account, project)
        collect_contexts(control)
    except Exception:  # a failure here must not fail the deployment: the next run retries
        log.exception("pruning after a deployment of %s/%s failed", account.name, project)


class Collector:
    """Collects unused build contexts every `interval` seconds until the server stops (a TTL
    counts even when nobody deploys)."""

    def __init__(self, control: ControlPlane, interval: float | None = None) -> None:
        self.control = control
        ttl = control.settings.context_ttl_seconds
        self.interval = interval if interval is not None else \
            min(MAX_COLLECT_INTERVAL, max(1.0, ttl / 4))

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="context-collector", daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        stop = self.control.shutting_down
        while not stop.is_set():
            try:
                collect_contexts(self.control)
            except Exception:
                log.exception("collecting unused build contexts failed")
            stop.wait(self.interval)
