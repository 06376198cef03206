"""The dashboard's sessions and login links (server/dashboard/sessions.py): a link opens once
and expires, sessions end when idle or closed, and memory stays bounded."""

from __future__ import annotations

import time

import pytest

from dockyard.server.dashboard import sessions
from dockyard.server.dashboard.sessions import SessionBook, same


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    ticking = Clock()
    monkeypatch.setattr(time, "monotonic", ticking)  # what sessions reads its time from
    return ticking


def test_a_link_opens_once_and_only_within_its_time(clock: Clock) -> None:
    book = SessionBook()
    code = book.link("token-a")
    assert book.redeem(code) == "token-a"
    assert book.redeem(code) is None  # spent
    late = book.link("token-b")
    clock.now += sessions.LINK_SECONDS + 1
    assert book.redeem(late) is None
    assert book.redeem("a-code-nobody-made") is None


def test_a_session_ends_when_idle_or_closed(clock: Clock) -> None:
    book = SessionBook()
    session = book.open("token", account_id=1)
    assert session.token == "token" and session.csrf and session.id != session.csrf
    clock.now += sessions.IDLE_SECONDS - 1
    assert book.find(session.id) is session  # used: its idle time starts again
    clock.now += sessions.IDLE_SECONDS - 1
    assert book.find(session.id) is session
    clock.now += sessions.IDLE_SECONDS + 1
    assert book.find(session.id) is None
    other = book.open("token", account_id=1)
    book.close(other.id)
    assert book.find(other.id) is None
    assert book.find(None) is None and book.find("") is None


def test_sessions_and_links_are_bounded(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    book = SessionBook()
    opened = [book.open("t", account_id=7) for _ in range(sessions.MAX_PER_ACCOUNT + 5)]
    assert book.count() == sessions.MAX_PER_ACCOUNT
    assert book.find(opened[0].id) is None and book.find(opened[-1].id) is not None
    monkeypatch.setattr(sessions, "MAX_SESSIONS", 30)
    for account in range(40):
        book.open("t", account_id=100 + account)
    assert book.count() == 30
    codes = [book.link("t") for _ in range(sessions.MAX_LINKS + 3)]
    assert book.redeem(codes[0]) is None and book.redeem(codes[-1]) == "t"


def test_secrets_compare_only_when_both_are_there() -> None:
    assert same("abc", "abc")
    assert not same("abd", "abc")
    assert not same("", "")
    assert not same(None, "abc")
