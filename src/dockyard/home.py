"""Where Dockyard keeps its state and settings.

Everything lives under `$DOCKYARD_HOME` when it is set (`data/` and `config/` inside it);
otherwise under the XDG directories (`$XDG_DATA_HOME/dockyard`, `$XDG_CONFIG_HOME/dockyard`,
defaulting to `~/.local/share/dockyard` and `~/.config/dockyard`). Nothing is created until a
feature needs it.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    from pathlib import Path  # imported here: `compose config` needs only the user name

    env = _env(environ)
    if env.get("DOCKYARD_HOME"):
        return Path(env["DOCKYARD_HOME"]) / "data"
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dockyard"


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    from pathlib import Path

    env = _env(environ)
    if env.get("DOCKYARD_HOME"):
        return Path(env["DOCKYARD_HOME"]) / "config"
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "dockyard"


def current_username(environ: Mapping[str, str] | None = None) -> str:
    """The account name in single-user mode: `$DOCKYARD_USER`, else the OS user name."""
    env = _env(environ)
    if env.get("DOCKYARD_USER"):
        return env["DOCKYARD_USER"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "dockyard"
