"""Merging Compose files with Compose's rules (later files override earlier ones).

Mappings merge key by key and scalars are replaced; sequences are appended. Fields that may be
written as a list or a mapping are merged in one form: `environment`, `labels` and the like as
`KEY=VALUE` lists (later entries win when normalized), `depends_on` and service `networks` as
mappings, `build: .` as `{context: .}`. `command`, `entrypoint` and `healthcheck.test` are
replaced whole. Entries that identify the same thing (a port by address, a mount by target) are
de-duplicated later, by the normalizer. `!reset` removes the earlier value and `!override`
replaces it without merging (`TaggedFile`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dockyard.compose.paths import KeyPath, matches
from dockyard.compose.yamlfile import Override, Reset

Merger = Callable[[Any, Any, KeyPath], Any]


def _to_sequence(value: Any) -> list[Any]:
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            items.append(key if item is None else f"{key}={_scalar_text(item)}")
        return sorted(items, key=str)
    if isinstance(value, list):
        return list(value)
    if isinstance(value, str):
        return [value]
    return []


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _to_mapping(value: Any, default: dict[str, Any] | None) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return {str(item): (dict(default) if default is not None else None) for item in value}
    return {}


def _merge_to_sequence(base: Any, other: Any, _path: KeyPath) -> Any:
    return _to_sequence(base) + _to_sequence(other)


def _override(_base: Any, other: Any, _path: KeyPath) -> Any:
    return other


def _merge_build(base: Any, other: Any, path: KeyPath) -> Any:
    def as_map(v: Any) -> dict[str, Any]:
        return {"context": v} if isinstance(v, str) else dict(v) if isinstance(v, dict) else {}
    return merge_values(as_map(base), as_map(other), path, skip_special=True)


_DEP_DEFAULT = {"condition": "service_started", "required": True}


def _merge_depends_on(base: Any, other: Any, path: KeyPath) -> Any:
    return merge_values(_to_mapping(base, _DEP_DEFAULT), _to_mapping(other, _DEP_DEFAULT), path,
                        skip_special=True)


def _merge_networks(base: Any, other: Any, path: KeyPath) -> Any:
    return merge_values(_to_mapping(base, None), _to_mapping(other, None), path,
                        skip_special=True)


def _merge_logging(base: Any, other: Any, path: KeyPath) -> Any:
    if not isinstance(base, dict) or not isinstance(other, dict):
        return other
    if "driver" not in other or "driver" not in base or other["driver"] == base["driver"]:
        return merge_values(base, other, path, skip_special=True)
    return other


def _merge_ulimit(base: Any, other: Any, path: KeyPath) -> Any:
    if isinstance(base, dict) and isinstance(other, dict):
        return merge_values(base, other, path, skip_special=True)
    return other


_SPECIALS: tuple[tuple[tuple[str, ...], Merger], ...] = (
    (("networks", "*", "labels"), _merge_to_sequence),
    (("volumes", "*", "labels"), _merge_to_sequence),
    (("services", "*", "annotations"), _merge_to_sequence),
    (("services", "*", "build"), _merge_build),
    (("services", "*", "build", "args"), _merge_to_sequence),
    (("services", "*", "build", "additional_contexts"), _merge_to_sequence),
    (("services", "*", "build", "extra_hosts"), _merge_to_sequence),
    (("services", "*", "build", "labels"), _merge_to_sequence),
    (("services", "*", "command"), _override),
    (("services", "*", "depends_on"), _merge_depends_on),
    (("services", "*", "deploy", "labels"), _merge_to_sequence),
    (("services", "*", "dns"), _merge_to_sequence),
    (("services", "*", "dns_opt"), _merge_to_sequence),
    (("services", "*", "dns_search"), _merge_to_sequence),
    (("services", "*", "entrypoint"), _override),
    (("services", "*", "env_file"), _merge_to_sequence),
    (("services", "*", "label_file"), _merge_to_sequence),
    (("services", "*", "environment"), _merge_to_sequence),
    (("services", "*", "extra_hosts"), _merge_to_sequence),
    (("services", "*", "healthcheck", "test"), _override),
    (("services", "*", "labels"), _merge_to_sequence),
    (("services", "*", "logging"), _merge_logging),
    (("services", "*", "networks"), _merge_networks),
    (("services", "*", "sysctls"), _merge_to_sequence),
    (("services", "*", "tmpfs"), _merge_to_sequence),
    (("services", "*", "ulimits", "*"), _merge_ulimit),
)


def merge_values(base: Any, other: Any, path: KeyPath = (), skip_special: bool = False,
                 overrides: frozenset[KeyPath] = frozenset()) -> Any:
    """Merge `other` (a later file) onto `base`. Neither argument is modified.

    `overrides` are the paths the later file tagged `!override`: replaced, not merged.
    """
    if path in overrides:
        return other
    if not skip_special:
        for pattern, merger in _SPECIALS:
            if matches(path, pattern):
                if other is None:
                    return base
                return merger(base, other, path)
    if other is None:
        return base
    if isinstance(base, dict) and isinstance(other, dict):
        merged = dict(base)
        for key, value in other.items():
            if key not in merged:
                merged[key] = value
            else:
                merged[key] = merge_values(merged[key], value, (*path, key),
                                           overrides=overrides)
        return merged
    if isinstance(base, list) and isinstance(other, list):
        return base + other
    return other


@dataclass(frozen=True)
class TaggedFile:
    """One file's data with its `!reset` and `!override` tags moved out of it.

    The data is plain (every later stage can trust it); the tags say how it merges onto what
    earlier files set: each reset path is removed first, each override path is replaced.
    """

    data: dict[str, Any]
    resets: tuple[KeyPath, ...] = ()
    overrides: frozenset[KeyPath] = frozenset()


def extract_tags(data: dict[str, Any]) -> TaggedFile:
    resets: list[KeyPath] = []
    overrides: set[KeyPath] = set()

    def walk(value: Any, path: KeyPath) -> Any:
        while isinstance(value, Override):
            overrides.add(path)
            value = value.value
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if isinstance(item, Reset):
                    resets.append((*path, key))
                    continue
                out[key] = walk(item, (*path, key))
            return out
        if isinstance(value, list):
            return [walk(item, (*path, i)) for i, item in enumerate(value)
                    if not isinstance(item, Reset)]
        if isinstance(value, Reset):
            return None
        return value

    return TaggedFile(walk(data, ()), tuple(resets), frozenset(overrides))


def _remove(base: Any, paths: tuple[KeyPath, ...], list_entries: bool) -> None:
    """Remove each path from `base` (in place): what a later `!reset` takes away."""
    for path in paths:
        parent: Any = base
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        key = path[-1]
        if isinstance(parent, dict):
            parent.pop(key, None)
        elif list_entries and isinstance(parent, list) and isinstance(key, str):
            # `KEY: !reset` against an earlier list form (environment, labels, depends_on)
            parent[:] = [item for item in parent
                         if str(item) != key and not str(item).startswith(key + "=")]


def merge_file(base: dict[str, Any], tagged: TaggedFile) -> dict[str, Any]:
    """Merge one tagged file onto what the earlier files set."""
    if tagged.resets:
        base = copy.deepcopy(base)
        _remove(base, tagged.resets, list_entries=True)
    merged: dict[str, Any] = merge_values(base, tagged.data, overrides=tagged.overrides)
    return merged


def merge_extended(base: dict[str, Any], own: dict[str, Any], path: KeyPath,
                   resets: tuple[KeyPath, ...] = (),
                   overrides: frozenset[KeyPath] = frozenset()) -> Any:
    """A service (at `path`) merged onto the service it `extends`, with its own file's tags.

    As in Compose, `command: !reset` or `ports: !reset []` in the extending service removes
    what the base set, and `!override` replaces it whole. A reset key inside a list form of
    the base (`labels: [a=1]`) is kept, as Compose keeps it.
    """
    size = len(path)
    mine = tuple(p[size:] for p in resets if p[:size] == path and len(p) > size)
    if mine:
        base = copy.deepcopy(base)
        _remove(base, mine, list_entries=False)
    return merge_values(base, own, path, overrides=overrides)
