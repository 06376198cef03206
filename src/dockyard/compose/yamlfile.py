"""Reading one Compose YAML file into plain data plus a map of line numbers.

Compose v2 reads YAML 1.2 (go-yaml v3): `yes`, `no`, `on`, `off` are strings, `22:22` is a string
(not a base-60 number) and dates stay strings. PyYAML speaks YAML 1.1, so the resolvers here are
replaced with the YAML 1.2 core schema. Duplicate keys are an error, as in Compose.

The data is plain dicts, lists and scalars so every later stage is a pure function over it. Line
numbers live beside it in `LineMap` (key path -> 1-based line), used only to say where a problem is.
The Compose merge tags `!reset` and `!override` become `Reset` and `Override` wrappers.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from dockyard.compose.paths import KeyPath
from dockyard.diagnostics import Diagnostic, Location, error

LineMap = dict[KeyPath, int]

# libyaml parses in C when PyYAML has it; the constructors below stay in Python either way.
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Tagged:
    """A value with a Compose merge tag (a plain class, not a dataclass: a faster start)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, _Tagged) and type(other) is type(self)
                and other.value == self.value)

    def __hash__(self) -> int:
        return hash((type(self), repr(self.value)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"


class Reset(_Tagged):
    """`!reset value`: drop whatever earlier files set at this key."""

    __slots__ = ()


class Override(_Tagged):
    """`!override value`: replace what earlier files set instead of merging with it."""

    __slots__ = ()


class YamlFileError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


class _Loader(_BaseLoader):  # type: ignore[misc]
    """YAML 1.2 core schema, line tracking, merge tags."""

    yaml_implicit_resolvers: dict[Any, Any] = {}
    line_map: LineMap


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
# go-yaml v3 reads integers with Go's ParseInt(base 0): `0o17`, `0x1F`, `0b101`, a leading `0`
# for octal (`012` is 10) and `_` separators (`1_000`).
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+))$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int | float | str:
    text = str(loader.construct_scalar(node))
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-").replace("_", "")
    try:
        if digits[:2] in ("0o", "0x", "0b"):
            return sign * int(digits, 0)
        if len(digits) > 1 and digits.startswith("0"):
            return sign * int(digits, 8)
        return sign * int(digits, 10)
    except ValueError:  # `09`: not octal; Go then reads it as a float
        try:
            return float(text.replace("_", ""))
        except ValueError:
            return text


def _construct_float(loader: _Loader, node: yaml.ScalarNode) -> float:
    text = str(loader.construct_scalar(node)).lower()
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    if text == ".nan":
        return float("nan")
    return float(text)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    # Keys merged in with `<<` may be overridden by the mapping's own keys; only the mapping's
    # own keys must be unique.
    own = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    own_keys: set[Any] = set()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, list | dict):
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            )
        if key is None:
            key = "null"
        elif isinstance(key, bool):
            key = "true" if key else "false"
        elif not isinstance(key, str):
            key = str(key)
        if id(key_node) in own:
            if key in own_keys:
                raise yaml.constructor.ConstructorError(
                    None, None, f"mapping key {key!r} is defined twice", key_node.start_mark
                )
            own_keys.add(key)
        result[key] = loader.construct_object(value_node, deep=True)
    return result


def _construct_reset(loader: _Loader, node: yaml.Node) -> Reset:
    return Reset(_construct_any(loader, node))


def _construct_override(loader: _Loader, node: yaml.Node) -> Override:
    return Override(_construct_any(loader, node))


def _construct_any(loader: _Loader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return _construct_mapping(loader, node)
    if isinstance(node, yaml.SequenceNode):
        return [loader.construct_object(child, deep=True) for child in node.value]
    value = loader.construct_scalar(node)
    return None if value in ("", "~", "null") else value


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("!reset", _construct_reset)
_Loader.add_constructor("!override", _construct_override)


MAX_NODES = 200_000  # after expanding aliases; real Compose files are far below


class _TooLarge(Exception):
    pass


class _Budget:
    """Nodes visited so far: aliases and merge keys are walked where they are used, so this
    counts the expanded tree, whatever repeats under the same key paths."""

    def __init__(self) -> None:
        self.visits = 0


def _record_lines(node: yaml.Node, path: KeyPath, lines: LineMap,
                  budget: _Budget | None = None) -> None:
    """Walk the composed node tree once and remember the line of every key and list item.

    Aliases are walked where they are used, so a document that expands to an enormous tree
    (a "billion laughs" alias bomb, through aliases or merge keys) is refused here, before
    anything else walks it.
    """
    budget = budget or _Budget()
    budget.visits += 1
    if budget.visits > MAX_NODES or len(lines) > MAX_NODES:
        raise _TooLarge()
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                if key_node.value == "<<":
                    # merge key: the merged keys are reported at the line of the alias target
                    _record_merge(value_node, path, lines, budget)
                    continue
                child = (*path, str(key_node.value))
                lines[child] = key_node.start_mark.line + 1
                _record_lines(value_node, child, lines, budget)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines.setdefault(child, item.start_mark.line + 1)
            _record_lines(item, child, lines, budget)


def _record_merge(node: yaml.Node, path: KeyPath, lines: LineMap, budget: _Budget) -> None:
    sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
    for source in sources:
        budget.visits += 1
        if isinstance(source, yaml.MappingNode):
            for key_node, value_node in source.value:
                if isinstance(key_node, yaml.ScalarNode):
                    if key_node.value == "<<":
                        _record_merge(value_node, path, lines, budget)
                        continue
                    child = (*path, str(key_node.value))
                    lines.setdefault(child, key_node.start_mark.line + 1)
                    _record_lines(value_node, child, lines, budget)


def parse_yaml(text: str, filename: str) -> tuple[Any, LineMap]:
    """Parse one YAML document. Raises `YamlFileError` (code `yaml-syntax`) with file and line."""
    loader = _Loader(text)
    lines: LineMap = {}
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines
        _record_lines(node, (), lines)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and "end of stream" in (exc.problem or ""):
            mark = exc.context_mark  # an unclosed quote or bracket: point where it opened
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem and "defined twice" not in problem:
            problem = f"{problem} ({exc.context})"
        raise YamlFileError(
            error(
                "yaml-syntax",
                f"invalid YAML: {problem}",
                Location(filename, mark.line + 1 if mark else None),
                hint="check the indentation (spaces, not tabs), quotes and colons on that line",
            )
        ) from None
    except yaml.YAMLError as exc:
        raise YamlFileError(
            error("yaml-syntax", f"invalid YAML: {exc}", Location(filename))
        ) from None
    except _TooLarge:
        raise YamlFileError(
            error("yaml-syntax", f"the document expands to more than {MAX_NODES} values "
                  "(counting what its aliases and merge keys repeat)", Location(filename),
                  hint="reduce the use of YAML anchors and aliases (*name)")
        ) from None
    except RecursionError:
        raise YamlFileError(
            error("yaml-syntax", "invalid YAML: nested too deeply", Location(filename))
        ) from None
    finally:
        loader.dispose()
    return data, lines
