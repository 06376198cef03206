"""The server's own HTTP-01-style proof that a custom domain points at its ingress.

For a custom domain no ACME CA will prove (no ACME directory, or a local name), the server
publishes a random token through its own ingress, at
`http://<domain>:<http port>/.well-known/dockyard-challenge/<token>`, resolves `<domain>`
through the machine's real resolver, and fetches that URL: only this ingress knows the token,
so a matching answer shows the name reaches it. The token is withdrawn afterwards, whatever the
outcome.

The fetch goes wherever the tenant's DNS points (their choice of address, on the ingress's HTTP
port, for a random path). So no redirect is followed, no proxy from the environment is used, at
most `MAX_ANSWER_BYTES` are read, the whole check is bounded by `timeout`, and nothing of an
answer but its status code reaches the reason shown to the tenant.
"""

from __future__ import annotations

import http.client
import secrets
import socket
import threading
import time
from collections.abc import Callable

from dockyard.ingress.domain_policy import CHALLENGE_PREFIX, MAX_ANSWER_BYTES, judge_answer

CHECK_TIMEOUT = 10.0  # seconds for one check: resolving and every connection
MAX_ADDRESSES = 4  # addresses of a name tried at most

Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of `host` as this machine resolves it (its resolver and /etc/hosts)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


class TokenCheck:
    """A callable: `check(host)` is None when `host` reaches this ingress, else why not."""

    def __init__(self, present: Callable[[str, str], None], cleanup: Callable[[str], None],
                 port: int, *, timeout: float = CHECK_TIMEOUT,
                 resolver: Resolver = system_resolver) -> None:
        self.present, self.cleanup = present, cleanup
        self.port, self.timeout, self.resolver = port, timeout, resolver

    def __call__(self, host: str) -> str | None:
        token, value = secrets.token_urlsafe(24), secrets.token_urlsafe(32)
        self.present(token, value)
        try:
            return self._fetch(host, token, value, time.monotonic() + self.timeout)
        finally:
            self.cleanup(token)

    def _fetch(self, host: str, token: str, value: str, deadline: float) -> str | None:
        try:
            addresses = _bounded(lambda: self.resolver(host, self.port), deadline)
        except TimeoutError:
            return f"resolving it took longer than {self.timeout:g} s"
        except Exception as exc:  # gaierror (an OSError), or a name the resolver refuses
            return f"it does not resolve: {getattr(exc, 'strerror', None) or exc}"
        if not addresses:
            return "it does not resolve to any address"
        why = ""
        for address in addresses[:MAX_ADDRESSES]:
            left = deadline - time.monotonic()
            if left <= 0:
                return why or f"no answer within {self.timeout:g} s"
            why = _ask(address, self.port, host, token, value, left)
            if not why:
                return None
        where = f"port {self.port} of {', '.join(addresses[:MAX_ADDRESSES])}"
        return f"{why} (at {where})"


def _ask(address: str, port: int, host: str, token: str, value: str, timeout: float) -> str:
    """'' when `address` answers the token's value; else why not."""
    connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        connection.request("GET", CHALLENGE_PREFIX + token, headers={
            "Host": host if port == 80 else f"{host}:{port}",
            "User-Agent": "dockyard-domain-check", "Connection": "close"})
        response = connection.getresponse()
        body = response.read(MAX_ANSWER_BYTES + 1)
    except (OSError, http.client.HTTPException) as exc:
        kind = "no answer in time" if isinstance(exc, TimeoutError) else \
            f"it cannot be reached ({type(exc).__name__})"
        return kind
    finally:
        connection.close()
    return judge_answer(value, response.status, body) or ""


def _bounded(work: Callable[[], list[str]], deadline: float) -> list[str]:
    """`work()`, or TimeoutError at `deadline` (a resolver cannot be interrupted: its thread is
    left to finish on its own)."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = work()
        except Exception as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=run, name="domain-resolve", daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    if thread.is_alive():
        raise TimeoutError
    if "error" in box:
        error = box["error"]
        assert isinstance(error, Exception)
        raise error
    value = box["value"]
    assert isinstance(value, list)
    return value
