"""Previews that expire: `compose up --ttl` sets a project's deadline, the server keeps it in
its store (`project_expiry`) and takes the project down when it passes.

- Only `up` sets or clears a deadline: an `up` with a TTL sets (or moves) it, counted from the
  request; a later `up` without one clears it, so the project is kept. `down` clears it.
  `redeploy` and `rollback` leave it as it is.
- The server carries it out, not the CLI: one `Expirer` thread sleeps until the soonest
  deadline (woken when one is set), then takes the project down through
  `deployments.start_down`, the very path of `compose down`: the same deployment record and
  notes, volumes kept unless the `up` said `--ttl-volumes`.
- Deadlines are in the store, so they survive a restart: the thread starts after recovery,
  and one that passed while the server was stopped fires at once.
- A deployment of the project still running (409) is waited for (retried after
  `BUSY_RETRY_SECONDS`), and any other failure is logged and retried after
  `FAILED_RETRY_SECONDS`. The deadline is forgotten only once its `down` succeeded (or the
  project is gone, or `MAX_ATTEMPTS` downs failed), so a `down` cut short by a stopping
  server is started again at the next start; and it is never carried out once an `up` moved
  it.
"""

from __future__ import annotations

import logging
import threading
import weakref
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from dockyard.api_errors import DeploymentInProgress, NotFound, RequestInvalid
from dockyard.server.deployments import start_down
from dockyard.server.down import DOWN_NOTES
from dockyard.ttl import MAX_TTL_SECONDS, ttl_problem

if TYPE_CHECKING:
    from dockyard.server.control import ControlPlane
    from dockyard.store.store import Account, ProjectExpiry

log = logging.getLogger("dockyard.server")

BUSY_RETRY_SECONDS = 5.0  # a deployment of the project runs: look again this soon
FAILED_RETRY_SECONDS = 60.0  # taking it down failed (the engine is down ...): try again
MAX_SLEEP_SECONDS = 300.0  # look at the store at least this often (a clock that jumped)
DOWN_CHECK_SECONDS = 1.0  # while the `down` a deadline started runs: look at it this often
MAX_ATTEMPTS = 3  # `down`s started for one deadline before it is given up

_Key = tuple[int, str, datetime]  # (account id, project, deadline)

# The running expirer of each control plane, woken when a deadline is set (none in tests that
# start no expirer: a deadline is then only recorded).
_expirers: weakref.WeakKeyDictionary[ControlPlane, Expirer] = weakref.WeakKeyDictionary()


def check_ttl(ttl: float | None) -> None:
    """Refuse a TTL that is no TTL, before anything is deployed."""
    problem = None if ttl is None else ttl_problem(ttl)
    if problem:
        raise RequestInvalid(f"ttl {ttl:g}s is refused: {problem}",
                             hint=f"send ttl in seconds, from 1 to {MAX_TTL_SECONDS}")


def after_up(control: ControlPlane, account: Account, project: str, deployment: str,
             ttl: float | None, volumes: bool) -> datetime | None:
    """What an admitted `up` means for the deadline: set from now with a TTL, else cleared
    (a later `up` without `--ttl` keeps the project). The deadline, if any."""
    if ttl is None:
        clear_deadline(control, account, project)
        return None
    expires_at = datetime.now(UTC) + timedelta(seconds=ttl)
    control.store.set_expiry(account, project, expires_at, volumes, deployment)
    _wake(control)
    return expires_at


def clear_deadline(control: ControlPlane, account: Account, project: str) -> None:
    """Forget the project's deadline (`down`, or an `up` without `--ttl`)."""
    if control.store.clear_expiry(account, project):
        _wake(control)


def _wake(control: ControlPlane) -> None:
    expirer = _expirers.get(control)
    if expirer is not None:
        expirer.wake()


class Expirer:
    """The thread that carries out deadlines, from `start` until `stop` (or the server's
    `shutting_down`)."""

    def __init__(self, control: ControlPlane) -> None:
        self.control = control
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Per deadline (account id, project, when): not before when to try again, the `down`
        # it started (the deadline is forgotten once that succeeded), and how many it started.
        self._retry_at: dict[_Key, datetime] = {}
        self._downs: dict[_Key, str] = {}
        self._attempts: dict[_Key, int] = {}

    def start(self) -> Expirer:
        _expirers[self.control] = self
        self._thread = threading.Thread(target=self._run, name="project-expiry", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        """A deadline was set or cleared: look at the store again now."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if _expirers.get(self.control) is self:
            del _expirers[self.control]

    def _stopping(self) -> bool:
        return self._stop.is_set() or self.control.shutting_down.is_set()

    def _run(self) -> None:
        while not self._stopping():
            self._wake.clear()  # a wake from here on is seen by the wait below
            try:
                soonest = self.run_once()
            except Exception:  # the store failed: look again later, never die
                log.exception("carrying out project deadlines failed")
                soonest = datetime.now(UTC) + timedelta(seconds=FAILED_RETRY_SECONDS)
            sleep = MAX_SLEEP_SECONDS if soonest is None else \
                (soonest - datetime.now(UTC)).total_seconds()
            self._wake.wait(min(MAX_SLEEP_SECONDS, max(0.0, sleep)))

    def run_once(self, now: datetime | None = None) -> datetime | None:
        """Take down every project whose deadline passed; when to look next (None: no
        deadline left)."""
        now = now or datetime.now(UTC)
        soonest: datetime | None = None
        pending = self.control.store.expiries()
        keys = {(item.account.id, item.project, item.expires_at) for item in pending}
        for memo in (self._retry_at, self._downs, self._attempts):
            for key in [k for k in memo if k not in keys]:  # moved, cleared or done
                del memo[key]
        for item in pending:
            if self._stopping():
                break
            key = (item.account.id, item.project, item.expires_at)
            due = max(item.expires_at, self._retry_at.get(key, item.expires_at))
            if due <= now:
                retry = self.expire(item)
                if retry is None:
                    continue
                due = now + timedelta(seconds=retry)
                self._retry_at[key] = due
            soonest = due if soonest is None else min(soonest, due)
        return soonest

    def expire(self, item: ProjectExpiry) -> float | None:
        """Take the project down as `compose down` does, and forget the deadline once that
        `down` succeeded; None when done (or nothing is left to do), else the seconds to wait
        before looking again.

        The deadline stays in the store while its `down` runs, so a server stopped meanwhile
        takes the project down again when it starts. A `down` that fails (a volume still in
        use ...) is tried `MAX_ATTEMPTS` times, then the deadline is dropped with a warning.
        """
        store, account, project = self.control.store, item.account, item.project
        key = (account.id, project, item.expires_at)
        started = self._downs.get(key)
        if started is not None:
            record = store.deployment(account, started)
            status = record.status if record is not None else "gone"
            if status == "running":
                return DOWN_CHECK_SECONDS
            del self._downs[key]
            if status == "succeeded" or self._attempts.get(key, 0) >= MAX_ATTEMPTS:
                if status != "succeeded":
                    log.warning("project %s/%s expired, but taking it down failed %d times "
                                "(see deployment %s); its deadline is dropped", account.name,
                                project, MAX_ATTEMPTS, started)
                store.clear_expiry(account, project, item.expires_at)
                return None
        current = store.expiry(account, project)
        if current is None or current.expires_at != item.expires_at:
            return None  # an `up` or `down` moved or cleared it meanwhile
        try:
            if self.control.is_deploying(account.name, project):  # no refused `down` noted
                raise DeploymentInProgress(f"a deployment of {project} runs")
            deployment = start_down(self.control, account, project, volumes=item.volumes)
        except DeploymentInProgress:
            log.info("project %s/%s expired while a deployment of it runs: waiting for it",
                     account.name, project)
            return BUSY_RETRY_SECONDS
        except NotFound:  # nothing of it left to take down
            store.clear_expiry(account, project, item.expires_at)
            return None
        except Exception as exc:
            log.warning("project %s/%s expired but could not be taken down (%s); trying again "
                        "in %gs", account.name, project, getattr(exc, "message", exc),
                        FAILED_RETRY_SECONDS)
            return FAILED_RETRY_SECONDS
        self._downs[key] = deployment
        self._attempts[key] = self._attempts.get(key, 0) + 1
        at = item.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        set_by = f" set by deployment {item.deployment}" if item.deployment else ""
        try:
            store.append_build_log(account, deployment, DOWN_NOTES, [
                f"taken down by the server: its TTL{set_by} expired at {at}"
                + ("; --ttl-volumes: its volumes go too" if item.volumes else "")])
        except Exception:  # a note must not undo the take-down
            log.exception("noting why %s/%s was taken down failed", account.name, project)
        log.info("project %s/%s expired at %s: taking it down (deployment %s%s)",
                 account.name, project, at, deployment,
                 ", volumes too" if item.volumes else "")
        return DOWN_CHECK_SECONDS
