"""Tokens saved by `dockyard login`: `$DOCKYARD_HOME/config/credentials.json`, mode 0600."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from dockyard.files import write_private
from dockyard.home import config_dir


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    return config_dir(env) / "credentials.json"


def _read(path: Path) -> dict[str, str]:
    try:
        tokens = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return tokens if isinstance(tokens, dict) else {}


def save_token(url: str, token: str, env: Mapping[str, str] | None = None) -> Path:
    """Remember `token` for `url` (other servers' tokens are kept); the file's path."""
    path = credentials_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokens = _read(path)
    tokens[url.rstrip("/")] = token
    write_private(path, json.dumps(tokens, indent=2))
    return path


def forget_token(url: str, env: Mapping[str, str] | None = None) -> Path | None:
    """Forget the token saved for `url` (`dockyard logout`); the file it was removed from, or
    None when none was saved. Other servers' tokens are kept. The token itself stays valid on
    the server until its operator revokes it."""
    path = credentials_path(env)
    tokens = _read(path)
    if tokens.pop(url.rstrip("/"), None) is None:
        return None
    write_private(path, json.dumps(tokens, indent=2))
    return path
