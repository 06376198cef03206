"""Starting the proofs of a deployment's custom domains, and telling the tenant what came of them.

A deployment request claims its services' custom domains (`claim_project_domains`); the proofs
run beside the deployment. Once a service's are settled *and* the deployment that claimed them
has ended, their outcome is noted in the service's state (same state, its reason extended), so
`ps` and the deployment's events say which custom domains are served and why the others are
not. Waiting for the end keeps the deployer's own last word from hiding the note.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import TYPE_CHECKING

from dockyard.compose.models import Project
from dockyard.ingress.domain_policy import Proof, service_reason
from dockyard.ingress.routes import custom_hosts

if TYPE_CHECKING:
    from dockyard.server.control import ControlPlane

REPORT_WAIT_SECONDS = 3600.0  # for the claiming deployment to end; then nothing is noted

# One waiting note per (account, project, service): a newer claim supersedes an older one, so
# requests that are refused later (no deployment follows) cannot pile up waiting threads.
_latest: dict[tuple[str, str, str], int] = {}
_latest_lock = threading.Lock()
_numbers = itertools.count(1)


def claim_project_domains(control: ControlPlane, account: str, project: Project) -> None:
    """Start proving the custom domains of `project`'s public services (playground), without
    waiting; each service's outcome is noted once its deployment has ended."""
    domains = control.ingress.domains
    owner = control.store.account_by_name(account)
    if domains is None or owner is None:
        return
    latest = control.store.deployments(owner, project.name, limit=1)
    previous = latest[0].id if latest else None
    for service in project.services.values():
        if not service.is_public:
            continue
        hosts = [h for h in custom_hosts(service) if domains.needs_proof(h)]
        if not hosts:
            continue
        proofs = {h: domains.proof(h) for h in hosts}

        def note(results: dict[str, str | None], name: str = service.name,
                 proofs: dict[str, Proof] = proofs) -> None:
            note_when_deployed(control, account, project.name, name, previous,
                               service_reason(results, proofs))

        domains.claim(account, hosts, note)


def note_when_deployed(control: ControlPlane, account_name: str, project: str, service: str,
                       previous: str | None, text: str,
                       wait: float = REPORT_WAIT_SECONDS) -> bool:
    """Once the deployment after `previous` has ended, add `text` to `service`'s reason in it.

    False when there is nothing to note it on: no such deployment ended within `wait` seconds
    (the request was refused), or the service is not part of it.
    """
    account = control.store.account_by_name(account_name)
    if account is None:
        return False
    key, number = (account_name, project, service), next(_numbers)
    with _latest_lock:
        _latest[key] = number
    deadline = time.monotonic() + wait
    seen = control.generation()
    while True:
        with _latest_lock:
            if _latest.get(key) != number:
                return False  # a newer claim of this service will say it

        found = control.store.deployments(account, project, limit=1)
        if found and found[0].id != previous and found[0].status != "running":
            latest = found[0]
            break
        if time.monotonic() > deadline or control.shutting_down.is_set():
            with _latest_lock:
                if _latest.get(key) == number:
                    del _latest[key]
            return False
        seen = control.wait_change(seen, timeout=min(1.0, max(0.0, deadline -
                                                               time.monotonic())))
    with _latest_lock:
        if _latest.get(key) == number:
            del _latest[key]
    for _ in range(3):  # the watcher may move the service between the read and the note
        status = next((s for s in control.store.statuses(account, project)
                       if s.service == service and s.deployment == latest.id), None)
        if status is None:
            return False
        reason = f"{status.reason}; {text}" if status.reason else text
        # A note in the state it is in (never a move back to the state it was read in).
        if control.follow(account, latest.id, service, status.state, status.state, reason):
            return True
    return False
