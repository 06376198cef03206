"""`dockyard server` and `python -m dockyard.server` share their options (server/arguments.py):
the server starts without importing the CLI."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from dockyard.exit_codes import ExitCode
from dockyard.server.arguments import add_server_arguments, server_options
from dockyard.server.main import run
from dockyard.server.settings import settings_from


def _parse(argv: list[str]) -> dict[str, str | None]:
    parser = argparse.ArgumentParser()
    add_server_arguments(parser)
    return server_options(parser.parse_args(argv))


def test_nothing_given_is_all_none() -> None:
    options = _parse([])
    assert set(options.values()) == {None}
    assert settings_from(options, environ={}).ingress


def test_options_as_settings_from_reads_them() -> None:
    options = _parse(["--listen", "127.0.0.1:0", "--no-ingress", "--mode", "playground",
                      "--allow-image", "a/*", "--allow-image", "b", "--allow-registry", "r:5000",
                      "--max-cpus", "2", "--tenant-pulls", "off"])
    assert options["listen"] == "127.0.0.1:0"
    assert options["ingress"] == "off"
    assert options["mode"] == "playground"
    assert options["allow_image"] == "a/*,b"
    assert options["allow_registry"] == "r:5000"
    assert options["allow_host_ports"] is None
    assert options["max_cpus"] == "2"
    assert options["tenant_pulls"] == "off"
    settings = settings_from(options, environ={})
    assert not settings.ingress


def test_a_usage_error_exits_with_the_usage_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        run(["--no-such-option"])
    assert caught.value.code == int(ExitCode.USAGE)
    assert "python -m dockyard.server --help" in capsys.readouterr().err


def test_the_server_entry_point_does_not_import_the_cli() -> None:
    code = ("import sys, dockyard.server.main, dockyard.server.arguments; "
            "print(sorted(m for m in sys.modules if m.startswith('dockyard.cli')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
