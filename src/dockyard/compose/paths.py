"""Key paths into Compose data: `("services", "web", "ports", 1)` <-> `services.web.ports[1]`."""

from __future__ import annotations

KeyPath = tuple[str | int, ...]


def format_path(path: KeyPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def matches(path: KeyPath, pattern: tuple[str, ...]) -> bool:
    """True when `path` matches `pattern`, where `*` matches any one key or index."""
    if len(path) != len(pattern):
        return False
    return all(p == "*" or p == str(k) for k, p in zip(path, pattern, strict=True))
