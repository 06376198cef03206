"""Custom domains on a shared server: the policy (pure), the proofs' state, the token check.

The policy: on a playground server a custom domain outside the zone needs a proof (the ACME
result for a public name when ACME is configured, else the server's own token check); byoc
keeps today's behaviour. The token check is run against a real HTTP server on loopback that
answers presented tokens as the ingress does, with a resolver the test controls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dockyard.ingress.domain_policy import (
    CHALLENGE_PREFIX,
    Proof,
    challenge_url,
    judge_answer,
    owners,
    proof_for,
    service_reason,
)
from dockyard.ingress.haproxy_config import Layout, Listener, Paths, render_config
from dockyard.naming import NamingMode
from dockyard.server.domain_check import TokenCheck
from dockyard.server.domains import DomainProofs

PG, BYOC = NamingMode.PLAYGROUND, NamingMode.BYOC
ZONE = "prod1a.example.com"


# -- the policy ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "host", "acme", "expected"), [
    (PG, "login.examplebank.com", True, Proof.ACME),
    (PG, "login.examplebank.com", False, Proof.TOKEN),
    (PG, "login.examplebank.test", True, Proof.TOKEN),  # no public CA certifies a local name
    (PG, "shop.localhost", True, Proof.TOKEN),
    (PG, "example.com", True, Proof.ACME),  # the zone's parent is outside the zone
    (PG, "x.prod1a.example.com", True, Proof.TRUSTED),  # in the zone: refused before, not here
    (BYOC, "login.examplebank.com", True, Proof.TRUSTED),
    (BYOC, "login.examplebank.com", False, Proof.TRUSTED),
])
def test_which_proof_a_custom_domain_needs(mode: NamingMode, host: str, acme: bool,
                                           expected: Proof) -> None:
    assert proof_for(mode, ZONE, host, acme=acme) is expected


def test_a_zone_suffix_that_is_not_a_label_boundary_is_outside_the_zone() -> None:
    assert proof_for(PG, ZONE, "evilprod1a.example.com", acme=False) is Proof.TOKEN


def test_the_token_answer_must_match_and_its_content_never_shows() -> None:
    assert judge_answer("s3cret", 200, b"s3cret\n") is None
    wrong = judge_answer("s3cret", 200, b"internal admin page")
    assert wrong is not None and "internal" not in wrong and "another server" in wrong
    missing = judge_answer("s3cret", 404, b"no service is published at this address")
    assert missing is not None and "404" in missing and "published" not in missing


def test_the_challenge_url_is_on_the_ingress_http_port() -> None:
    assert challenge_url("a.example.com", 80, "t") == \
        f"http://a.example.com{CHALLENGE_PREFIX}t"
    assert challenge_url("a.example.com", 8080, "t") == \
        f"http://a.example.com:8080{CHALLENGE_PREFIX}t"


def test_the_first_proof_keeps_a_domain_two_accounts_proved() -> None:
    claims = [("x.com", "bob/p/web/80", 10.0), ("x.com", "alice/p/web/80", 20.0),
              ("y.com", "alice/p/web/80", 5.0)]
    assert owners(claims) == {"x.com": "bob/p/web/80", "y.com": "alice/p/web/80"}


def test_the_reason_says_which_domains_are_served_and_why_not() -> None:
    text = service_reason({"a.test": "it does not resolve", "b.com": None},
                          {"a.test": Proof.TOKEN, "b.com": Proof.ACME})
    assert "custom domain a.test is not served: not verified (it does not resolve)" in text
    assert "custom domain b.com verified and served (HTTPS)" in text


def test_the_proxy_answers_the_server_s_own_challenge_path_on_http_only(tmp_path: Path) -> None:
    config = render_config(Layout(certificates=(tmp_path / "default.pem",)), Paths(tmp_path),
                           http=Listener(3), https=Listener(4))
    http_part = config.split("frontend https")[0]
    assert CHALLENGE_PREFIX in http_part and "/.well-known/acme-challenge/" in http_part
    assert CHALLENGE_PREFIX not in config.split("frontend https")[1]


# -- the proofs' state -----------------------------------------------------------------------------
class Checks:
    """Fake checks: each host's answer, what was asked, and a gate to hold a check open."""

    def __init__(self, answers: dict[str, str | None]) -> None:
        self.answers = answers
        self.asked: list[str] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, host: str) -> str | None:
        self.asked.append(host)
        assert self.gate.wait(10)
        return self.answers.get(host, "unknown host")


def proofs(tmp_path: Path, checks: Checks, *, acme: Checks | None = None,
           clock: list[float] | None = None, **options: float) -> DomainProofs:
    now = clock if clock is not None else [1000.0]
    return DomainProofs(PG, ZONE, tmp_path / "domains" / "verified.json", token_check=checks,
                        acme_check=acme, clock=lambda: now[0], **options)  # type: ignore[arg-type]


def test_a_proven_domain_is_verified_for_its_account_only_and_remembered(tmp_path: Path) -> None:
    checks = Checks({"shop.example.net": None})
    domains = proofs(tmp_path, checks)
    changed: list[bool] = []
    domains.on_change = lambda: changed.append(True)
    assert domains.verified_at("alice", "shop.example.net") is None
    assert domains.settle("alice", ["shop.example.net"]) == {"shop.example.net": None}
    assert domains.verified_at("alice", "shop.example.net") == 1000.0
    assert domains.verified_at("bob", "shop.example.net") is None
    assert changed == [True]
    path = tmp_path / "domains" / "verified.json"
    assert path.stat().st_mode & 0o777 == 0o600
    again = proofs(tmp_path, Checks({}))  # a restart: proven names are served without a check
    assert again.verified_at("alice", "shop.example.net") == 1000.0
    assert again.settle("alice", ["shop.example.net"]) == {"shop.example.net": None}


def test_a_failed_proof_is_not_served_not_repeated_at_once_and_retried_later(
        tmp_path: Path) -> None:
    checks = Checks({"bank.example.net": "it does not resolve"})
    domains = proofs(tmp_path, checks, token_retry=0.3)
    assert domains.settle("bob", ["bank.example.net"]) == {
        "bank.example.net": "it does not resolve"}
    assert domains.verified_at("bob", "bank.example.net") is None
    assert domains.settle("bob", ["bank.example.net"])["bank.example.net"] == \
        "it does not resolve"
    assert checks.asked == ["bank.example.net"]  # the failure was remembered
    time.sleep(0.35)
    checks.answers["bank.example.net"] = None  # the tenant fixed their DNS
    assert domains.settle("bob", ["bank.example.net"]) == {"bank.example.net": None}
    assert checks.asked == ["bank.example.net"] * 2


def test_a_token_proof_is_checked_again_after_a_day_and_lost_when_that_fails(
        tmp_path: Path) -> None:
    clock = [1000.0]
    checks = Checks({"shop.example.net": None})
    domains = proofs(tmp_path, checks, clock=clock)
    domains.settle("alice", ["shop.example.net"])
    clock[0] += 3600
    domains.settle("alice", ["shop.example.net"])
    assert checks.asked == ["shop.example.net"]  # still fresh
    clock[0] += 24 * 3600
    checks.answers["shop.example.net"] = "it answered HTTP 404"  # DNS moved elsewhere
    changed: list[bool] = []
    domains.on_change = lambda: changed.append(True)
    assert domains.settle("alice", ["shop.example.net"])["shop.example.net"] is not None
    assert domains.verified_at("alice", "shop.example.net") is None and changed == [True]


def test_acme_proves_public_names_and_the_token_check_local_ones(tmp_path: Path) -> None:
    token, acme = Checks({"a.test": None}), Checks({"b.example.net": None})
    domains = proofs(tmp_path, token, acme=acme)
    assert domains.settle("alice", ["a.test", "b.example.net", "x.prod1a.example.com"]) == {
        "a.test": None, "b.example.net": None}  # in the zone: no proof (refused elsewhere)
    assert (token.asked, acme.asked) == (["a.test"], ["b.example.net"])


def test_one_check_at_a_time_per_name_and_a_bounded_number_per_account(tmp_path: Path) -> None:
    checks = Checks({f"d{i}.example.net": None for i in range(4)})
    checks.gate.clear()  # every check stays open until the gate opens
    domains = proofs(tmp_path, checks, max_pending=3)
    settled: list[dict[str, str | None]] = []
    domains.claim("alice", ["d0.example.net", "d1.example.net"], settled.append)
    domains.claim("alice", ["d0.example.net"], settled.append)  # joins the check under way
    domains.claim("alice", ["d2.example.net"], settled.append)
    started = time.monotonic()
    refused = domains.settle("alice", ["d3.example.net"], timeout=5)["d3.example.net"]
    assert time.monotonic() - started < 1, "a claim over the bound waited for a check"
    assert refused is not None and "at once" in refused
    assert domains.settle("bob", ["d3.example.net"], timeout=0.2) == {
        "d3.example.net": "no proof within 0.2 s"}  # another account is not bounded by alice's
    checks.gate.set()
    deadline = time.monotonic() + 5
    while len(settled) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(sorted(r.items()) for r in settled) == [
        [("d0.example.net", None)], [("d0.example.net", None), ("d1.example.net", None)],
        [("d2.example.net", None)]]
    assert sorted(checks.asked) == ["d0.example.net", "d1.example.net", "d2.example.net",
                                    "d3.example.net"]  # d0 once; d3 once, for bob


# -- the token check -------------------------------------------------------------------------------
class Answers:
    """A tiny ingress: it answers presented tokens at the challenge path, 404 elsewhere."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.hosts: list[str] = []
        answers = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                answers.hosts.append(self.headers.get("Host", ""))
                token = self.path.removeprefix(CHALLENGE_PREFIX)
                value = answers.tokens.get(token) if self.path.startswith(CHALLENGE_PREFIX) \
                    else None
                body = (value or "not here").encode()
                self.send_response(200 if value else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def present(self, token: str, value: str) -> None:
        self.tokens[token] = value

    def cleanup(self, token: str) -> None:
        self.tokens.pop(token, None)


@pytest.fixture
def ingress() -> Iterator[Answers]:
    answers = Answers()
    yield answers
    answers.server.shutdown()
    answers.server.server_close()


def resolver(table: dict[str, list[str]]) -> object:
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(-2, "Name or service not known")
        return table[host]
    return resolve


def test_a_name_that_reaches_the_ingress_passes_and_the_token_is_withdrawn(
        ingress: Answers) -> None:
    check = TokenCheck(ingress.present, ingress.cleanup, ingress.port,
                       resolver=resolver({"shop.example.net": ["127.0.0.1"]}))  # type: ignore
    assert check("shop.example.net") is None
    assert ingress.tokens == {}
    assert ingress.hosts == [f"shop.example.net:{ingress.port}"]


def test_a_name_that_does_not_resolve_or_reaches_another_server_fails_with_why(
        ingress: Answers) -> None:
    other = Answers()  # another web server: it knows no token of ours
    try:
        table = {"elsewhere.example.net": ["127.0.0.1"], "nowhere.example.net": ["127.0.0.2"]}
        check = TokenCheck(ingress.present, ingress.cleanup, other.port,
                           resolver=resolver(table), timeout=3)  # type: ignore[arg-type]
        why = check("login.examplebank.test")
        assert why is not None and "does not resolve" in why
        why = check("elsewhere.example.net")
        assert why is not None and "404" in why and "another server" in why
        why = check("nowhere.example.net")  # nothing listens there
        assert why is not None and "cannot be reached" in why
        assert ingress.tokens == {}
    finally:
        other.server.shutdown()
        other.server.server_close()


def test_a_resolver_that_hangs_is_bounded(ingress: Answers) -> None:
    def slow(host: str, port: int) -> list[str]:
        time.sleep(5)
        return ["127.0.0.1"]

    check = TokenCheck(ingress.present, ingress.cleanup, ingress.port, resolver=slow,
                       timeout=0.5)
    started = time.monotonic()
    why = check("slow.example.net")
    assert why is not None and "longer than" in why
    assert time.monotonic() - started < 3  # the bound the check promises (0.5 s), with slack


# -- the note in the service's state -----------------------------------------------------------
class FakeControl:
    """What `note_when_deployed` uses of the control plane: deployments, statuses, follow."""

    def __init__(self) -> None:
        from dockyard.store.store import Account

        self.account = Account(1, "alice")
        self.deployment: Any = None
        self.recorded: list[tuple[str, str, str]] = []
        self.shutting_down = threading.Event()
        self.store = self

    def account_by_name(self, name: str) -> Any:
        return self.account if name == "alice" else None

    def deployments(self, account: Any, project: str, limit: int = 50) -> list[Any]:
        return [self.deployment] if self.deployment is not None else []

    def statuses(self, account: Any, project: str) -> list[Any]:
        from dockyard.lifecycle import ServiceState
        from dockyard.store.store import ServiceStatus

        return [ServiceStatus("web", "d2", ServiceState.SERVICE_DEPLOYMENT_COMPLETED,
                              "1 replica healthy", datetime.now(UTC))]

    def generation(self) -> int:
        return 0

    def wait_change(self, seen: int, timeout: float) -> int:
        time.sleep(min(timeout, 0.02))
        return seen

    def record(self, account: Any, deployment: str, service: str, state: Any,
               reason: str) -> Any:
        self.recorded.append((deployment, service, reason))
        return state

    def follow(self, account: Any, deployment: str, service: str, seen: Any, state: Any,
               reason: str) -> bool:
        self.recorded.append((deployment, service, reason))
        return True


def test_the_note_waits_for_the_deployment_and_a_newer_claim_supersedes_it() -> None:
    from dockyard.server.domain_reports import note_when_deployed
    from dockyard.store.store import DeploymentRecord

    control = FakeControl()
    outcomes: list[bool] = []

    def note(text: str) -> None:
        outcomes.append(note_when_deployed(control, "alice", "shop", "web",  # type: ignore[arg-type]
                                           "d1", text, wait=5))

    first = threading.Thread(target=note, args=("old claim",))
    first.start()
    time.sleep(0.1)
    second = threading.Thread(target=note, args=("custom domain a.test is not served",))
    second.start()
    first.join(5)
    assert outcomes == [False] and control.recorded == []  # superseded; nothing ended yet
    control.deployment = DeploymentRecord("d2", "shop", "up", "running", datetime.now(UTC),
                                          None)
    time.sleep(0.1)
    assert control.recorded == []  # still running: the deployer's last word is to come
    control.deployment = DeploymentRecord("d2", "shop", "up", "succeeded", datetime.now(UTC),
                                          datetime.now(UTC))
    second.join(5)
    assert outcomes == [False, True]
    assert control.recorded == [
        ("d2", "web", "1 replica healthy; custom domain a.test is not served")]
