"""The real console script run as a subprocess, in a controlled environment: no COMPOSE_* or
DOCKYARD_* variable leaks in from the caller, DOCKYARD_HOME is given, the user is alice, and
colour is off (golden files compare plain text)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DOCKYARD = Path(sys.executable).parent / "dockyard"

# A registry login the in-process CLI tests store (the fake engine accepts it for this host).
REGISTRY_HOST = "127.0.0.1:5000"
REGISTRY_PASSWORD = "cli-registry-pw-0d6c1f"

# Variables the test projects use: a value in the caller's environment would change the output.
_PROJECT_VARIABLES = frozenset({"WEB_TAG", "GREETING", "DB_PASSWORD", "API_KEY", "TOKEN"})
# Variables that would make Rich write colour or wrap lines whatever NO_COLOR says.
_TERMINAL_VARIABLES = frozenset({"FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE",
                                 "CLICOLOR_FORCE", "COLUMNS", "LINES"})


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("COMPOSE_", "DOCKYARD_"))
        and key not in _PROJECT_VARIABLES and key not in _TERMINAL_VARIABLES
    }
    env.update(DOCKYARD_HOME=str(home), DOCKYARD_USER="alice",
               NO_COLOR="1", TERM="dumb", COLUMNS="200")
    env.update(extra)
    return env


def run_cli(*args: str, cwd: Path, home: Path, **extra_env: str) -> Result:
    proc = subprocess.run(
        [str(DOCKYARD), *args], cwd=cwd, env=cli_env(home, **extra_env),
        capture_output=True, text=True, encoding="utf-8", timeout=60, check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def write_files(root: Path, files: Mapping[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root
