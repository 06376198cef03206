"""The one exception hierarchy of Dockyard.

Every error that can reach a user is a `DockyardError`: it says what is wrong, where, and what to
do. The CLI catches `DockyardError` in exactly one place, renders it and exits with the code the
error class names (`dockyard.exit_codes`). Anything else reaching the CLI is a bug.

Each class carries, as class attributes, what the API and the CLI need to know of it: `kind`
(its class name: the `kind` of the server's JSON error, by which the client rebuilds it through
`dockyard.error_kinds`), `status` (the HTTP status the server answers it with) and `exit_code`.
A subclass inherits its base's status and exit code unless it names its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from dockyard.diagnostics import Diagnostic, Location, Severity, errors_of, warnings_of
from dockyard.exit_codes import ExitCode


class DockyardError(Exception):
    """Base of every error Dockyard raises on purpose."""

    kind: ClassVar[str] = "DockyardError"
    status: ClassVar[int] = 400
    exit_code: ClassVar[ExitCode] = ExitCode.FAILURE

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.kind = cls.__name__

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_wire(self) -> dict[str, Any]:
        """The server's JSON answer for this error: `{"error", "hint", "kind"}` and what the
        class adds."""
        return {"error": self.message, "hint": self.hint, "kind": self.kind}

    @classmethod
    def from_wire(cls, body: Mapping[str, Any]) -> Self:
        """The error a server answered with (`to_wire`), as this class: its message and hint.
        What a class keeps beyond them (a build's last lines, an engine's words) stays on the
        server."""
        error = cls.__new__(cls)
        DockyardError.__init__(error, str(body.get("error") or ""), _hint(body))
        return error


def _hint(body: Mapping[str, Any]) -> str | None:
    hint = body.get("hint")
    return None if hint is None else str(hint)


class UsageError(DockyardError):
    """The command line itself is wrong (unknown option value, conflicting flags)."""

    exit_code = ExitCode.USAGE


class ProjectInvalid(DockyardError):
    """The Compose project was refused. Carries every problem found, not just the first."""

    status = 422
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

    def to_wire(self) -> dict[str, Any]:
        body = super().to_wire()
        body["diagnostics"] = [
            {"severity": d.severity.value, "code": d.code, "message": d.message,
             "file": d.location.file, "line": d.location.line, "path": d.location.path,
             "hint": d.hint} for d in self.diagnostics]
        return body

    @classmethod
    def from_wire(cls, body: Mapping[str, Any]) -> Self:
        found = body.get("diagnostics")
        if not isinstance(found, list):
            return super().from_wire(body)
        return cls([
            Diagnostic(Severity(d.get("severity", "error")), str(d.get("code")),
                       str(d.get("message")),
                       Location(d.get("file"), d.get("line"), d.get("path")), d.get("hint"))
            for d in found])
