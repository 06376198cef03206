"""Problems found in a user's input, as values.

Loading and validation never stop at the first problem: they collect `Diagnostic` values, each
with a stable code, a message, where it is (file, line, key path) and what to do about it. Errors
refuse the project; warnings are reported once and never fatal. The CLI renders them; the library
never prints.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Location:
    """Where a problem is: a file (absolute path), a 1-based line when known, a key path."""

    file: str | None = None
    line: int | None = None
    path: str | None = None

    def __str__(self) -> str:
        parts: list[str] = []
        if self.file:
            parts.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.path:
            parts.append(self.path)
        return ": ".join(parts)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem. `code` is stable (documented in docs/diagnostics.md) and safe to match on."""

    severity: Severity
    code: str
    message: str
    location: Location = field(default_factory=Location)
    hint: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def render(self) -> str:
        """Plain text: `error[code] file:line: key.path: message`, then `    hint: ...`."""
        where = str(self.location)
        head = f"{self.severity.value}[{self.code}]"
        text = f"{head} {where}: {self.message}" if where else f"{head}: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text

    def sort_key(self) -> tuple[str, int, str, str, str]:
        loc = self.location
        return (loc.file or "", loc.line or 0, loc.path or "", self.code, self.message)


def error(code: str, message: str, location: Location | None = None,
          hint: str | None = None) -> Diagnostic:
    return Diagnostic(Severity.ERROR, code, message, location or Location(), hint)


def warning(code: str, message: str, location: Location | None = None,
            hint: str | None = None) -> Diagnostic:
    return Diagnostic(Severity.WARNING, code, message, location or Location(), hint)


def dedupe(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Keep the first of each (code, message, key path): a problem is reported once per key."""
    seen: set[tuple[str, str, str | None]] = set()
    out: list[Diagnostic] = []
    for d in diagnostics:
        key = (d.code, d.message, d.location.path)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def errors_of(diagnostics: Sequence[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.is_error]


def warnings_of(diagnostics: Sequence[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if not d.is_error]
