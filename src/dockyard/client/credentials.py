"""Tokens saved by `dockyard login`: `$DOCKYARD_HOME/config/credentials.json`, mode 0600."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

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
    temp = path.with_suffix(".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(tokens, out, indent=2)
    os.replace(temp, path)
    return path
