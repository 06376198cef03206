"""All terminal output of the CLI: the only module that imports Rich.

Diagnostics are rendered once each, errors before warnings' summary, with paths shown relative
to the current directory when that is shorter.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from dockyard.diagnostics import Diagnostic, Location

if TYPE_CHECKING:
    from rich.console import Console

_stderr: Console | None = None


def stderr() -> Console:
    """The stderr console, created (and Rich imported, about 70 ms) on first use only."""
    global _stderr
    if _stderr is None:
        from rich.console import Console

        _stderr = Console(stderr=True, highlight=False, soft_wrap=True)
    return _stderr


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def _relative(file: str | None) -> str | None:
    if file:
        try:
            rel = os.path.relpath(file)
            if len(rel) < len(file):
                return rel
        except ValueError:
            pass
    return file


def diagnostic_text(d: Diagnostic) -> str:
    """Plain text of one diagnostic, its file shown relative to the current directory."""
    loc = d.location
    return replace(d, location=Location(_relative(loc.file), loc.line, loc.path)).render()

def _plain_stderr() -> bool:
    """Plain text when stderr is not a terminal (pipes, CI, tests) or NO_COLOR is set: the
    same words without colour, and without importing Rich (about 70 ms of start-up)."""
    return bool(os.environ.get("NO_COLOR")) or not sys.stderr.isatty()


def print_diagnostics(diagnostics: Iterable[Diagnostic]) -> None:
    diagnostics = list(diagnostics)
    if not diagnostics:
        return
    if _plain_stderr():
        sys.stderr.write("".join(diagnostic_text(d) + "\n" for d in diagnostics))
        sys.stderr.flush()
        return
    console = stderr()
    for d in diagnostics:
        style = "bold red" if d.is_error else "yellow"
        lines = diagnostic_text(d).split("\n")
        console.print(f"[{style}]{escape(lines[0])}[/]")
        for line in lines[1:]:
            console.print(f"[dim]{escape(line)}[/]")


def print_error(message: str, hint: str | None = None) -> None:
    if _plain_stderr():
        sys.stderr.write(f"error: {message}\n" + (f"    hint: {hint}\n" if hint else ""))
        sys.stderr.flush()
        return
    console = stderr()
    console.print(f"[bold red]error:[/] {escape(message)}")
    if hint:
        console.print(f"[dim]    hint: {escape(hint)}[/]")


def write_stdout(text: str) -> None:
    sys.stdout.write(text)
    if not text.endswith("\n"):
        sys.stdout.write("\n")
    sys.stdout.flush()
