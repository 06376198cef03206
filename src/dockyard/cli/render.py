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
    from rich.table import Table

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


def note(message: str) -> None:
    """A one-line message for the person at the terminal (stderr)."""
    if _plain_stderr():
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
        return
    stderr().print(f"[dim]{escape(message)}[/]")


class LiveStates:
    """The live table of `compose up`: service, state, how long, reason.

    On a terminal it redraws in place (Rich); otherwise each change is one plain line on
    stderr, so logs and CI output stay readable.
    """

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, str, str]] = {}  # service -> (state, since, reason)
        self._live: object | None = None
        if not _plain_stderr():
            from rich.live import Live

            live = Live(self._table(), console=stderr(), refresh_per_second=4,
                        transient=False, get_renderable=self._table)
            live.start()
            self._live = live

    def _table(self) -> Table:
        from rich.table import Table

        from dockyard.cli.tables import elapsed

        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("SERVICE", "STATE", "TIME", "REASON"):
            table.add_column(column)
        for service, (state, since, reason) in sorted(self.rows.items()):
            style = ("green" if state.endswith("COMPLETED") else
                     "red" if state.endswith("FAILED") else "yellow")
            table.add_row(escape(service), f"[{style}]{state}[/]", elapsed(since),
                          escape(reason))
        return table

    def update(self, service: str, state: str, at: str, reason: str) -> None:
        self.rows[service] = (state, at, reason)
        if self._live is None:
            sys.stderr.write(f"{service}  {state}  {reason}\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self._live is not None:
            from rich.live import Live

            assert isinstance(self._live, Live)
            self._live.stop()
            self._live = None
