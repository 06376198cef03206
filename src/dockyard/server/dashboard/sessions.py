"""The dashboard's sessions and one-time login links, kept in the server's memory.

A session is what a browser holds instead of the API token: the cookie carries only a random
session id (HttpOnly, SameSite=Strict), the token stays on the server. Each request looks the
token's account up again, so a revoked token or a removed account ends its sessions at once.
Every session has its own CSRF token, which each state-changing form (or htmx request) sends
back; a request whose token does not match is refused.

A login link (`dockyard dashboard`) is a random code that names a token for at most
`LINK_SECONDS` and can be used once: it is exchanged for a session on its first visit.

Nothing here is written to disk: a restarted server forgets every session (log in again).
Memory is bounded: at most `MAX_SESSIONS` sessions (each account `MAX_PER_ACCOUNT`), the
oldest dropped first, and at most `MAX_LINKS` unused links.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

SESSION_COOKIE = "dockyard_session"
LOGIN_COOKIE = "dockyard_login"  # the login form's own CSRF value (no session yet)
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
IDLE_SECONDS = 12 * 3600  # a session unused this long is over
LINK_SECONDS = 120  # a login link is valid this long, once
MAX_SESSIONS = 2000
MAX_PER_ACCOUNT = 20
MAX_LINKS = 200


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def same(given: str | None, expected: str) -> bool:
    """Compare two secrets in constant time; a missing one never matches."""
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


@dataclass
class Session:
    id: str
    token: str  # the API token it stands for (never sent to the browser)
    account_id: int
    csrf: str
    used: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class _Link:
    token: str
    expires: float


class SessionBook:
    """Sessions by id and login links by code (thread-safe: routes run in worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # oldest use first
        self._links: OrderedDict[str, _Link] = OrderedDict()

    # -- sessions -------------------------------------------------------------------------------
    def open(self, token: str, account_id: int) -> Session:
        """A new session for `token` (of account `account_id`)."""
        session = Session(new_secret(), token, account_id, new_secret())
        with self._lock:
            mine = [s.id for s in self._sessions.values() if s.account_id == account_id]
            for old in mine[:max(0, len(mine) - MAX_PER_ACCOUNT + 1)]:
                del self._sessions[old]
            while len(self._sessions) >= MAX_SESSIONS:
                self._sessions.popitem(last=False)
            self._sessions[session.id] = session
        return session

    def find(self, session_id: str | None) -> Session | None:
        """The live session of a cookie's id (its idle time starts again), or None."""
        if not session_id:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.used > IDLE_SECONDS:
                del self._sessions[session_id]
                return None
            session.used = now
            self._sessions.move_to_end(session_id)
            return session

    def close(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def count(self) -> int:
        with self._lock:
            return len(self._sessions)

    # -- one-time login links -------------------------------------------------------------------
    def link(self, token: str) -> str:
        """A code that opens one session for `token`, once, within LINK_SECONDS."""
        code = new_secret()
        now = time.monotonic()
        with self._lock:
            for stale in [c for c, link in self._links.items() if link.expires < now]:
                del self._links[stale]
            while len(self._links) >= MAX_LINKS:
                self._links.popitem(last=False)
            self._links[code] = _Link(token, now + LINK_SECONDS)
        return code

    def redeem(self, code: str) -> str | None:
        """The token of an unused, unexpired code (which is spent now), or None."""
        with self._lock:
            link = self._links.pop(code, None)
        if link is None or link.expires < time.monotonic():
            return None
        return link.token
