"""Tokens saved by `dockyard login`: `$DOCKYARD_HOME/config/credentials.json`, mode 0600."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from dockyard.files import write_private
from dockyard.home import config_dir


def credentials_path(env: Mapping[str, str] | None = None) -> Path:
    return config_dir(env) / "credentials.json"


def save_token(url: str, token: str, env: Mapping[str, str] | None = None) -> Path:
    """Remember `token` for `url` (other servers' tokens are kept); the file's path."""
    path = credentials_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        tokens = json.loads(path.read_text())
        if not isinstance(tokens, dict):
            tokens = {}
    except (OSError, ValueError):
        tokens = {}
    tokens[url.rstrip("/")] = token
    write_private(path, json.dumps(tokens, indent=2))
    return path
