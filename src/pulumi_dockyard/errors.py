"""The errors of Pulumi programs and their provider: Dockyard's own hierarchy, shown in full.

Pulumi prints a provider's exception as text (`str(exc)`), so the hint travels in the text.
"""

from __future__ import annotations

from dockyard.errors import DockyardError
from dockyard.exit_codes import ExitCode


class PulumiDockyardError(DockyardError):
    """A problem of a Pulumi program's Dockyard resources: what, where, and what to do."""

    def __str__(self) -> str:
        return self.message + (f" (hint: {self.hint})" if self.hint else "")


class UnsupportedField(PulumiDockyardError):
    """A field of the program's `services` that Dockyard does not run: named, never dropped."""

    exit_code = ExitCode.INVALID_PROJECT

    def __init__(self, path: str, reason: str, hint: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {reason}", hint)


class ServicesInvalid(PulumiDockyardError):
    """The services, as Compose, are refused by Dockyard's loader (every problem listed)."""

    exit_code = ExitCode.INVALID_PROJECT


class DeploymentFailed(PulumiDockyardError):
    """A deployment the provider ran ended with a service not SERVICE_DEPLOYMENT_COMPLETED."""

    exit_code = ExitCode.DEPLOYMENT_FAILED
