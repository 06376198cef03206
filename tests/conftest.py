"""Shared test set-up: every test runs with its own empty DOCKYARD_HOME."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

INGRESS_TEST_ENV = {"DOCKYARD_HTTP_PORT": "0", "DOCKYARD_HTTPS_PORT": "0",
                    "DOCKYARD_INGRESS_HOST": "127.0.0.1"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--regen", action="store_true", default=False,
                     help="rewrite golden files from the current output instead of comparing")


@pytest.fixture(autouse=True)
def dockyard_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "dockyard-home"
    monkeypatch.setenv("DOCKYARD_HOME", str(home))
    monkeypatch.setenv("DOCKYARD_USER", "alice")
    # Servers started by tests take any free ingress ports on loopback, never 80 and 443.
    for key, value in INGRESS_TEST_ENV.items():
        monkeypatch.setenv(key, value)
    # A forbidden state transition fails the test (server/control.py) instead of being logged.
    monkeypatch.setenv("DOCKYARD_STRICT_TRANSITIONS", "1")
    yield home


@pytest.fixture
def regen(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--regen"))
