"""The size of a project as the store keeps it, and what to name when it is too big.

Each deployment stores the project it deployed (for `ps`, `down` and the history), so a
project with a huge `x-` key or environment would grow the database by that much on every
deployment. It is refused before anything is recorded, naming the part that makes it big.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dockyard.diagnostics import Location, error
from dockyard.errors import ProjectInvalid


def stored_size(value: Any) -> int:
    """Bytes of `value` as the store writes it (sorted keys, ASCII JSON)."""
    return len(json.dumps(value, sort_keys=True).encode())


def largest_part(data: Mapping[str, Any], depth: int = 4) -> tuple[str, int]:
    """The key path of the biggest part of `data` and its size: the largest key, then within
    it the largest key again while that one holds most of its parent (up to `depth` keys)."""
    path: list[str] = []
    value: Any = data
    size = stored_size(data)
    while isinstance(value, Mapping) and value and len(path) < depth:
        key, child = max(value.items(), key=lambda item: stored_size(item[1]))
        child_size = stored_size(child)
        if path and child_size * 2 < size:
            break  # no single key makes this one big: name this one
        path.append(str(key))
        value, size = child, child_size
    return ".".join(path), size


def check_project_size(data: Mapping[str, Any], max_bytes: int) -> None:
    """Raise ProjectInvalid (`project-too-large`) when `data` is over `max_bytes` as stored."""
    total = stored_size(dict(data))
    if total <= max_bytes:
        return
    where, size = largest_part(data)
    raise ProjectInvalid([error(
        "project-too-large", f"the project is {total} bytes as stored, over the server's limit "
        f"of {max_bytes} bytes; its largest part, {where or 'the project'}, is {size} bytes",
        Location(path=where or None),
        "keep large data out of the Compose file (x- keys, environment): put it in the image "
        "or a volume, or ask the server's operator to raise --max-project-bytes")])
