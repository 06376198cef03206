"""The one exception hierarchy of Dockyard.

Every error that can reach a user is a `DockyardError`: it says what is wrong, where, and what to
do. The CLI catches `DockyardError` in exactly one place, renders it and exits with the code the
error class names (`dockyard.exit_codes`). Anything else reaching the CLI is a bug.
"""

from __future__ import annotations

from collections.abc import Sequence

from dockyard.diagnostics import Diagnostic, errors_of, warnings_of
from dockyard.exit_codes import ExitCode


class DockyardError(Exception):
    """Base of every error Dockyard raises on purpose."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(DockyardError):
    """The command line itself is wrong (unknown option value, conflicting flags)."""

    exit_code = ExitCode.USAGE


class ProjectInvalid(DockyardError):
    """The Compose project was refused. Carries every problem found, not just the first."""

    exit_code = ExitCode.INVALID_PROJECT

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        errs = errors_of(self.diagnostics)
        noun = "problem" if len(errs) == 1 else "problems"
        super().__init__(
            f"the Compose project is invalid ({len(errs)} {noun})",
            hint="fix the problems above, then run the command again",
        )

    @property
    def errors(self) -> list[Diagnostic]:
        return errors_of(self.diagnostics)

    @property
    def warnings(self) -> list[Diagnostic]:
        return warnings_of(self.diagnostics)
