"""`.env` and `env_file` parsing with Compose's dotenv dialect.

Lines are `KEY=VALUE`, `KEY: VALUE` or `export KEY=VALUE`; `#` starts a comment at the start of a
line or after whitespace in an unquoted value. Single quotes are literal; double quotes
understand `\\n`, `\\t`, `\\"`, `\\\\` and `\\$`, and both may span lines. Unquoted and
double-quoted values are interpolated with the variables defined above them, then `lookup`.
A bare `KEY` takes its value from `lookup` and is skipped when that has none.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from dockyard.compose.interpolation import InterpolationError, Interpolator

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$$"}


class DotenvError(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def parse_raw_env(text: str, lookup: Callable[[str], str | None]) -> dict[str, str]:
    """An `env_file` with `format: raw`, as Compose reads it: `KEY=VALUE` lines whose value is
    taken as written (no quotes, comments or interpolation in it); blank and `#` lines are
    skipped; a bare `KEY` takes its value from `lookup` and is skipped when that has none."""
    result: dict[str, str] = {}
    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.lstrip().partition("=")
        if not _KEY.fullmatch(key):
            raise DotenvError(f"{key!r} is not a variable name", number)
        if sep:
            result[key] = value
        elif (found := lookup(key)) is not None:
            result[key] = found
    return result


def parse_dotenv(text: str, lookup: Callable[[str], str | None]) -> dict[str, str]:
    """Parse dotenv text. Raises `DotenvError` with a 1-based line for malformed content."""
    result: dict[str, str] = {}

    def resolve(name: str) -> str | None:
        return result[name] if name in result else lookup(name)

    class _Vars(dict[str, str]):
        def __contains__(self, name: object) -> bool:
            return isinstance(name, str) and resolve(name) is not None

        def __getitem__(self, name: str) -> str:
            value = resolve(name)
            if value is None:
                raise KeyError(name)
            return value

    pos = 0
    line_no = 1
    n = len(text)
    if text.startswith("\ufeff"):
        pos = 1
    while pos < n:
        end = text.find("\n", pos)
        if end == -1:
            end = n
        line = text[pos:end]
        stripped = line.strip()
        start_line = line_no
        if not stripped or stripped.startswith("#"):
            pos = end + 1
            line_no += 1
            continue
        body = stripped
        if body.startswith(("export ", "export\t")):
            body = body[7:].lstrip()
        m = _KEY.match(body)
        if m is None:
            raise DotenvError(f"unexpected character in variable name: {body[:20]!r}", start_line)
        key = m.group(0)
        rest = body[m.end():].lstrip(" \t")
        if not rest or rest.startswith("#"):
            value_from_env = lookup(key)
            if value_from_env is not None:
                result[key] = value_from_env
            pos = end + 1
            line_no += 1
            continue
        if rest[0] not in "=:":
            raise DotenvError(f"expected '=' after {key!r}", start_line)
        rest = rest[1:].lstrip(" \t")
        # Quoted values may span lines: continue from the absolute position of the quote.
        value_start = pos + line.index(rest) if rest else end
        if rest[:1] in ("'", '"'):
            quote = rest[0]
            qpos = value_start + 1
            buf: list[str] = []
            while True:
                if qpos >= n:
                    raise DotenvError(f"unterminated quoted value for {key!r}", start_line)
                ch = text[qpos]
                if ch == quote:
                    break
                if ch == "\\" and quote == '"' and qpos + 1 < n:
                    nxt = text[qpos + 1]
                    if nxt == "\n":
                        line_no += 1
                    buf.append(_ESCAPES.get(nxt, "\\" + nxt))
                    qpos += 2
                    continue
                if ch == "\n":
                    line_no += 1
                buf.append(ch)
                qpos += 1
            raw = "".join(buf)
            value = raw if quote == "'" else _interpolate(raw, _Vars(), start_line)
            after = text.find("\n", qpos)
            pos = n if after == -1 else after + 1
            line_no += 1
        else:
            comment = re.search(r" #", rest)  # Compose cuts at " #" only
            raw = (rest[: comment.start()] if comment else rest).strip()
            value = _interpolate(raw, _Vars(), start_line)
            pos = end + 1
            line_no += 1
        result[key] = value
    return result


def _interpolate(raw: str, variables: dict[str, str], line: int) -> str:
    try:
        return Interpolator(variables).substitute(raw)
    except InterpolationError as exc:
        raise DotenvError(exc.message, line) from None
