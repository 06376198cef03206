"""`--driver` (DOCKYARD_DRIVER): docker (one engine, the default) or swarm (docs/swarm.md)."""

from __future__ import annotations

import pytest

from dockyard.cli.main import build_parser
from dockyard.errors import UsageError
from dockyard.server.settings import settings_from


def test_the_driver_defaults_to_one_docker_engine() -> None:
    assert settings_from({}, {}).driver == "docker"


def test_the_driver_comes_from_the_option_then_the_environment() -> None:
    assert settings_from({"driver": "swarm"}, {"DOCKYARD_DRIVER": "docker"}).driver == "swarm"
    assert settings_from({}, {"DOCKYARD_DRIVER": "Swarm"}).driver == "swarm"


def test_an_unknown_driver_is_refused_with_the_choices() -> None:
    with pytest.raises(UsageError, match="--driver 'kubernetes'") as raised:
        settings_from({}, {"DOCKYARD_DRIVER": "kubernetes"})
    assert "swarm" in (raised.value.hint or "")


def test_the_server_command_takes_driver() -> None:
    assert build_parser().parse_args(["server", "--driver", "swarm"]).driver == "swarm"
