"""`.dockerignore` with Docker's rules (moby/patternmatcher), as a pure function of paths.

- One pattern a line; `#` starts a comment line; blank lines are skipped.
- Patterns are cleaned like Go's `filepath.Clean` and a leading `/` is dropped: they are always
  relative to the context root.
- `*` matches any run of characters except `/`, `?` one character except `/`, `[...]` a class,
  `**` any number of directories (including none), and `\\` escapes the next character.
- A pattern that matches a directory excludes everything below it.
- `!pattern` re-includes what an earlier pattern excluded; the last matching pattern wins.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rule:
    pattern: str
    negated: bool
    regex: re.Pattern[str]


def _translate(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    out.append("(?:.*/)?")  # `**/` : zero or more directories
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            close = pattern.find("]", i + 1)
            if close == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1: close]
                if body.startswith(("!", "^")):
                    body = "^" + body[1:]
                out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
                i = close
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    # A match of a directory covers everything below it.
    return re.compile("^" + "".join(out) + "(?:/.*)?$")


def parse(text: str) -> list[Rule]:
    rules: list[Rule] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        if negated:
            line = line[1:].strip()
        cleaned = posixpath.normpath(line).lstrip("/")
        if cleaned in ("", "."):
            continue
        rules.append(Rule(cleaned, negated, _translate(cleaned)))
    return rules


def is_excluded(path: str, rules: list[Rule]) -> bool:
    """Is `path` (relative to the context, `/`-separated) left out of the build context?"""
    excluded = False
    for rule in rules:
        if rule.regex.match(path):
            excluded = not rule.negated
    return excluded
