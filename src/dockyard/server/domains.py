"""Which custom domains each account has proven on a playground server, and the proving.

The policy is `dockyard.ingress.domain_policy`; this is its state and its threads. A deployment
request `claim`s its services' custom domains: the proof of each one not yet proven (or proven
too long ago) starts in the background, so the request and the deployment go on meanwhile. The
ingress serves a custom domain only once `verified_at` says so; when a proof succeeds,
`on_change` lets the ingress add the name to its route, and when it fails the name stays
unserved and the reason goes to whoever claimed it (the service's state).

Proven names are remembered per account in one JSON file of the server's data directory
(`domains/verified.json`, 0600), so a restart serves them again without proving them again.
Failures are remembered in memory only, to not repeat a check (or an ACME order, which CAs
rate-limit) at every request. At most `max_parallel` proofs run at once, and an account may
have `max_pending` waiting: more claims are answered at once with a reason.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.ingress.certificates import write_private_file
from dockyard.ingress.domain_policy import (
    TOKEN_RETRY_SECONDS,
    Proof,
    proof_for,
    recheck_after,
)
from dockyard.naming import NamingMode

log = logging.getLogger("dockyard.server")

Check = Callable[[str], str | None]  # host → None when proven, else why not
Settled = Callable[[dict[str, str | None]], None]  # host → None when served, else why not

SETTLE_TIMEOUT = 300.0  # a claim's proofs, queueing included
MAX_PARALLEL = 4
MAX_PENDING = 8
ACME_RETRY_SECONDS = 600.0  # as certificates.ACME_RETRY_SECONDS: CAs rate-limit failures


@dataclass(frozen=True, slots=True)
class Record:
    proof: Proof
    at: float  # when proven (seconds since the epoch)


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    why: str | None = None


class DomainProofs:
    def __init__(self, mode: NamingMode, zone: str, path: Path, *, token_check: Check,
                 acme_check: Check | None = None, clock: Callable[[], float] = time.time,
                 max_parallel: int = MAX_PARALLEL, max_pending: int = MAX_PENDING,
                 acme_retry: float = ACME_RETRY_SECONDS,
                 token_retry: float = TOKEN_RETRY_SECONDS) -> None:
        self.mode, self.zone, self.path = mode, zone, path
        self.token_check, self.acme_check = token_check, acme_check
        self.clock = clock
        self.max_pending = max_pending
        self.retry = {Proof.ACME: acme_retry, Proof.TOKEN: token_retry}
        self.on_change: Callable[[], None] = lambda: None
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_parallel)
        self._records = _load(path)
        self._failed: dict[tuple[str, str], tuple[float, str]] = {}  # → (monotonic, why)
        self._running: dict[tuple[str, str], _Pending] = {}

    # -- what the ingress asks -----------------------------------------------------------------
    def proof(self, host: str) -> Proof:
        return proof_for(self.mode, self.zone, host, acme=self.acme_check is not None)

    def needs_proof(self, host: str) -> bool:
        return self.proof(host) is not Proof.TRUSTED

    def verified_at(self, account: str, host: str) -> float | None:
        """When `account` proved `host` (and may be served it), or None."""
        with self._lock:
            record = self._records.get(account, {}).get(host)
            return record.at if record is not None and record.proof is self.proof(host) \
                else None

    # -- what a deployment request does --------------------------------------------------------
    def claim(self, account: str, hosts: Iterable[str],
              on_settled: Settled | None = None) -> None:
        """Start proving `hosts` for `account` (those not proven); without waiting. When every
        one is settled, `on_settled` gets each one's outcome (in a thread of its own)."""
        pending = {h: self._start(account, h) for h in dict.fromkeys(hosts)
                   if self.needs_proof(h)}
        if not pending or on_settled is None:
            return

        def wait() -> None:
            results = _wait(pending, SETTLE_TIMEOUT)
            try:
                on_settled(results)
            except Exception:  # a report that failed must not take the server down
                log.exception("the outcome of proving custom domains could not be reported")

        threading.Thread(target=wait, name="domain-claim", daemon=True).start()

    def settle(self, account: str, hosts: Iterable[str],
               timeout: float = SETTLE_TIMEOUT) -> dict[str, str | None]:
        """`claim`, waiting for the outcomes (at most `timeout` seconds)."""
        pending = {h: self._start(account, h) for h in dict.fromkeys(hosts)
                   if self.needs_proof(h)}
        return _wait(pending, timeout)

    # -- proving -------------------------------------------------------------------------------
    def _start(self, account: str, host: str) -> _Pending:
        key = (account, host)
        proof = self.proof(host)
        with self._lock:
            running = self._running.get(key)
            if running is not None:
                return running
            record = self._records.get(account, {}).get(host)
            if record is not None and record.proof is proof and \
                    self.clock() - record.at < recheck_after(proof):
                return _settled(None)
            failed = self._failed.get(key)
            if failed is not None and time.monotonic() - failed[0] < self.retry[proof]:
                return _settled(failed[1])
            if sum(1 for a, _ in self._running if a == account) >= self.max_pending:
                return _settled(f"more than {self.max_pending} custom domains of this account "
                                "are being verified at once: deploy again in a minute")
            pending = self._running[key] = _Pending()
        threading.Thread(target=self._prove, args=(account, host, proof, pending),
                         name="domain-proof", daemon=True).start()
        return pending

    def _prove(self, account: str, host: str, proof: Proof, pending: _Pending) -> None:
        check = self.acme_check if proof is Proof.ACME else self.token_check
        why: str | None = "no way to prove it is configured"
        try:
            with self._slots:
                if check is not None:
                    why = check(host)
        except Exception as exc:  # a bug or the unexpected: the name stays unserved, say why
            log.exception("proving the custom domain %s failed", host)
            why = f"the check failed: {type(exc).__name__}"
        changed = False
        with self._lock:
            key = (account, host)
            mine = self._records.setdefault(account, {})
            if why is None:
                before = mine.get(host)
                changed = before is None or before.proof is not proof
                mine[host] = Record(proof, self.clock())
                self._failed.pop(key, None)
            else:
                changed = mine.pop(host, None) is not None
                self._failed[key] = (time.monotonic(), why)
            if not mine:
                del self._records[account]
            self._save()
            del self._running[key]
        pending.why = why
        pending.done.set()
        log.info("custom domain %s of account %s: %s", host, account,
                 "verified" if why is None else f"not verified ({why})")
        if changed:
            try:
                self.on_change()
            except Exception:
                log.exception("the ingress could not take the verified domain %s", host)

    def _save(self) -> None:
        data = {"version": 1, "accounts": {
            account: {host: {"proof": r.proof.value, "at": r.at}
                      for host, r in sorted(hosts.items())}
            for account, hosts in sorted(self._records.items())}}
        try:
            write_private_file(self.path, json.dumps(data, indent=1).encode() + b"\n")
        except OSError as exc:  # served until restart; proven again then
            log.warning("verified domains cannot be saved to %s (%s)", self.path, exc)


def _settled(why: str | None) -> _Pending:
    pending = _Pending(why=why)
    pending.done.set()
    return pending


def _wait(pending: dict[str, _Pending], timeout: float) -> dict[str, str | None]:
    deadline = time.monotonic() + timeout
    results: dict[str, str | None] = {}
    for host, item in pending.items():
        if item.done.wait(max(0.0, deadline - time.monotonic())):
            results[host] = item.why
        else:
            results[host] = f"no proof within {timeout:g} s"
    return results


def _load(path: Path) -> dict[str, dict[str, Record]]:
    try:
        data = json.loads(path.read_text())
        return {str(account): {str(host): Record(Proof(r["proof"]), float(r["at"]))
                               for host, r in hosts.items()}
                for account, hosts in data["accounts"].items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("verified domains in %s cannot be read (%s): they will be proven again",
                    path, exc)
        return {}
