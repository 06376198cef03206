"""Settling a deployment that stopped half-way: every service it left in flight is failed.

Used when a deployment's worker fails under it (`deployments`) and, at start-up, for the
deployments a stopped server interrupted (`recovery`).
"""

from __future__ import annotations

from dockyard.lifecycle import BUILD_STATES, TERMINAL, ServiceState
from dockyard.server.control import ControlPlane
from dockyard.store.store import Account

S = ServiceState


def settle_unfinished(control: ControlPlane, account: Account, project: str, deployment: str,
                      reason: str) -> list[str]:
    """Every service `deployment` left in flight, failed with `reason`: a build that had not
    finished as BUILD_FAILED, anything else as SERVICE_DEPLOYMENT_FAILED. Returns the services
    it cut short (recovery settles what their containers were left as)."""
    cut: list[str] = []
    for status in control.store.statuses(account, project):
        if status.deployment == deployment and status.state not in TERMINAL:
            failed = S.BUILD_FAILED if status.state in BUILD_STATES else \
                S.SERVICE_DEPLOYMENT_FAILED
            control.record(account, deployment, status.service, failed, reason)
            cut.append(status.service)
    return cut
