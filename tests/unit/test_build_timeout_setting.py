"""`--build-timeout` (DOCKYARD_BUILD_TIMEOUT): how long one build may take (0: no bound)."""

from __future__ import annotations

import pytest

from dockyard.cli.main import build_parser
from dockyard.errors import UsageError
from dockyard.server.settings import settings_from


def test_the_build_timeout_defaults_to_half_an_hour() -> None:
    assert settings_from({}, {}).build_timeout_seconds == 1800.0


def test_the_build_timeout_comes_from_the_option_then_the_environment() -> None:
    assert settings_from({"build_timeout": "90"}, {}).build_timeout_seconds == 90.0
    assert settings_from({}, {"DOCKYARD_BUILD_TIMEOUT": "0"}).build_timeout_seconds == 0.0


@pytest.mark.parametrize("text", ["-1", "soon", "nan"])
def test_a_bad_build_timeout_is_refused(text: str) -> None:
    with pytest.raises(UsageError, match="--build-timeout"):
        settings_from({"build_timeout": text}, {})


def test_the_server_command_takes_build_timeout() -> None:
    args = build_parser().parse_args(["server", "--build-timeout", "120"])
    assert args.build_timeout == "120"
