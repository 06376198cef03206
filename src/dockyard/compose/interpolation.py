"""Variable interpolation with Compose's syntax and semantics.

Forms: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`,
`${VAR?message}`, `${VAR:+alternative}`, `${VAR+alternative}`, nested expressions in the
default/alternative, and `$$` for a literal `$`. A `$` not followed by a name or `{` stays as is.

Dockyard's one departure from Compose: a plain `${NAME}` inside a service's `environment` value that
no source defines is kept, because the server resolves it from the account's stored configs at
deploy time (docs/architecture.md, Concepts). So environment values stay *templates*: a literal `$`
is written `$$` in them and `${NAME}` is a config reference, and `config_references` reads them.
Everywhere else (and for `$NAME` without braces) an unset variable becomes the empty string with an
`unset-variable` warning, as in Compose.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.compose.paths import KeyPath, matches

_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")


class InterpolationError(Exception):
    """A template that cannot be evaluated: bad syntax, or a required variable is unset."""

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint


@dataclass
class Interpolator:
    """Evaluates templates against `variables`; records the unset names it met."""

    variables: Mapping[str, str]
    unset: set[str] = field(default_factory=set)

    def substitute(self, text: str, keep_unset_plain: bool = False) -> str:
        """Evaluate `text`. With `keep_unset_plain`, return a template (see module doc)."""
        if "$" not in text:
            return text
        self._template = keep_unset_plain
        out, _ = self._parse(text, 0, keep_unset_plain, stop=None)
        return out

    _template = False

    def _value(self, name: str) -> str:
        value = self.variables[name]
        return value.replace("$", "$$") if self._template else value

    def _dollar(self) -> str:
        return "$$" if self._template else "$"

    # Recursive descent over the template. `stop` is "}" inside a braced default/alternative.
    def _parse(self, text: str, pos: int, keep: bool, stop: str | None) -> tuple[str, int]:
        out: list[str] = []
        n = len(text)
        while pos < n:
            ch = text[pos]
            if stop is not None and ch == stop:
                return "".join(out), pos
            if ch != "$":
                nxt = text.find("$", pos)
                if stop is not None:
                    close = text.find(stop, pos)
                    if close != -1 and (nxt == -1 or close < nxt):
                        nxt = close
                if nxt == -1:
                    out.append(text[pos:])
                    pos = n
                else:
                    out.append(text[pos:nxt])
                    pos = nxt
                continue
            if pos + 1 >= n:
                out.append(self._dollar())
                pos += 1
                continue
            nch = text[pos + 1]
            if nch == "$":
                out.append(self._dollar())
                pos += 2
            elif nch == "{":
                value, pos = self._braced(text, pos + 2, keep)
                out.append(value)
            else:
                m = _NAME.match(text, pos + 1)
                if m is None:
                    out.append(self._dollar())
                    pos += 1
                    continue
                name = m.group(0)
                pos = m.end()
                if name in self.variables:
                    out.append(self._value(name))
                else:
                    self.unset.add(name)
        if stop is not None:
            raise InterpolationError(
                "invalid-interpolation",
                f"invalid interpolation format in {text!r}: missing '}}'",
                hint="close the ${...} expression, or write $$ for a literal $",
            )
        return "".join(out), pos

    def _braced(self, text: str, pos: int, keep: bool) -> tuple[str, int]:
        m = _NAME.match(text, pos)
        if m is None:
            raise _bad(text)
        name = m.group(0)
        pos = m.end()
        if pos >= len(text):
            raise _bad(text)
        op_char = text[pos]
        if op_char == "}":
            if name in self.variables:
                return self._value(name), pos + 1
            if keep:
                return "${" + name + "}", pos + 1
            self.unset.add(name)
            return "", pos + 1
        colon = op_char == ":"
        if colon:
            pos += 1
            if pos >= len(text):
                raise _bad(text)
            op_char = text[pos]
        if op_char not in "-?+":
            raise _bad(text)
        pos += 1
        is_set = name in self.variables
        is_nonempty = is_set and self.variables[name] != ""
        present = is_nonempty if colon else is_set
        # Evaluate the nested part lazily: unset names inside an unused default do not warn.
        saved = set(self.unset)
        arg, pos = self._parse(text, pos, False, stop="}")
        pos += 1  # the closing brace
        if op_char == "-":
            if present:
                self.unset = saved
                return self._value(name), pos
            return arg, pos
        if op_char == "+":
            if present:
                return arg, pos
            self.unset = saved
            return "", pos
        # "?": required
        self.unset = saved
        if present:
            return self._value(name), pos
        detail = f": {arg}" if arg else ""
        raise InterpolationError(
            "required-variable",
            f"required variable {name} is missing a value{detail}",
            hint=f"set {name} in the environment, in .env, or in a file given with --env-file",
        )


def config_references(template: str) -> list[str]:
    """The config names a deploy-time environment template refers to (`${NAME}`)."""
    names: list[str] = []
    pos = 0
    while True:
        pos = template.find("$", pos)
        if pos == -1 or pos + 1 >= len(template):
            return names
        if template[pos + 1] == "$":
            pos += 2
            continue
        if template[pos + 1] == "{":
            close = template.find("}", pos)
            if close != -1:
                names.append(template[pos + 2: close])
                pos = close + 1
                continue
        pos += 1


def escape_template(value: str) -> str:
    """A literal value as a deploy-time template (`$` becomes `$$`)."""
    return value.replace("$", "$$")


def _bad(text: str) -> InterpolationError:
    return InterpolationError(
        "invalid-interpolation",
        f"invalid interpolation format in {text!r}",
        hint="use ${NAME}, ${NAME:-default}, ${NAME:?message} or ${NAME:+alt}; write $$ for $",
    )


_KEEP_PATTERNS: tuple[tuple[str, ...], ...] = (
    ("services", "*", "environment", "*"),
)


def keeps_unset(path: KeyPath) -> bool:
    """Is this the value of a service's `environment` entry (where unset names are kept)?"""
    return any(matches(path, pattern) for pattern in _KEEP_PATTERNS)


ProblemSink = Callable[[str, str, KeyPath, str | None], None]


def interpolate_tree(
    data: Any, variables: Mapping[str, str], report: ProblemSink, path: KeyPath = ()
) -> Any:
    """Interpolate every string value (not keys) of a Compose document.

    Problems go to `report(code, message, path, hint)` and the walk continues, so one run finds
    every bad template. Unset variables are reported once per key path with code `unset-variable`.
    """
    if isinstance(data, dict):
        return {k: interpolate_tree(v, variables, report, (*path, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate_tree(v, variables, report, (*path, i)) for i, v in enumerate(data)]
    if isinstance(data, str) and "$" in data:
        interp = Interpolator(variables)
        try:
            result = interp.substitute(data, keep_unset_plain=keeps_unset(path))
        except InterpolationError as exc:
            report(exc.code, exc.message, path, exc.hint)
            return ""
        for name in sorted(interp.unset):
            report(
                "unset-variable",
                f'the "{name}" variable is not set; defaulting to a blank string',
                path,
                f"set {name} in the environment or .env, or use ${{{name}:-default}}",
            )
        return result
    return data
