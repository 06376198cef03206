"""What a deployment records about itself beyond its project and images: who ran it, with
which versions of Dockyard, from which git checkout, with which options, and what it undoes.

The origin comes from the client (`client.origin`) and is taken as the client's word: it is
informative, never trusted for a decision. Its texts are cut to a bounded length so that a
client cannot grow the store through them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard import __version__
from dockyard.wire_models import DeployOrigin

MAX_TEXT = 200


def deployment_record(account: str, origin: DeployOrigin | None, *,
                      options: Mapping[str, Any] | None = None,
                      rollback_of: str | None = None) -> dict[str, Any]:
    """The record stored with a new deployment (`DeploymentRecordBody` on the wire)."""
    given = origin or DeployOrigin()
    record: dict[str, Any] = {
        "account": account, "server_version": __version__,
        "client_version": _text(given.client_version), "user": _text(given.user),
        "git_commit": _text(given.git_commit) if given.git_commit else None,
        "git_dirty": given.git_dirty if given.git_commit else None,
        "git_branch": _text(given.git_branch) if given.git_branch else None,
        "options": {k: v for k, v in (options or {}).items() if v not in (None, False, [])},
    }
    if rollback_of is not None:
        record["rollback_of"] = rollback_of
    return record


def _text(value: str) -> str:
    return value[:MAX_TEXT]
