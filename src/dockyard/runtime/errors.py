"""Engine errors, as the project's own errors with hints."""

from __future__ import annotations

from dockyard.errors import DockyardError
from dockyard.exit_codes import ExitCode


class EngineUnavailable(DockyardError):
    """The Docker Engine does not answer."""

    status = 503
    exit_code = ExitCode.ENGINE_UNAVAILABLE


class EngineError(DockyardError):
    """The engine answered but refused an operation (a name in use, a bad option ...)."""


class BuildFailed(DockyardError):
    """An image build failed; `step` and `last_lines` say where and why."""

    def __init__(self, message: str, step: str | None, last_lines: list[str]) -> None:
        super().__init__(message, hint="fix the Dockerfile step above; the full log is kept "
                         "with the deployment")
        self.step = step
        self.last_lines = last_lines


class BuildTimedOut(BuildFailed):
    """A build ran past the server's build timeout and was stopped."""

    def __init__(self, message: str, step: str | None, last_lines: list[str]) -> None:
        super().__init__(message, step, last_lines)
        self.hint = ("make the build faster (fewer or cached steps), or ask the operator for a "
                     "longer --build-timeout")


class RegistryError(DockyardError):
    """A registry refused or failed a pull, push or check; `engine_message` is the engine's
    own text (scrubbed of credentials), for `registry.failures.classify` to explain."""

    def __init__(self, message: str, engine_message: str) -> None:
        super().__init__(message)
        self.engine_message = engine_message


class PullFailed(RegistryError):
    """An image could not be pulled (or a pull was stopped: too large, too slow)."""


class PushFailed(RegistryError):
    """A built image could not be pushed to the server's registry."""


class RegistryLoginFailed(EngineError):
    """The engine could not log in to a registry with the given credentials; `reason` is the
    engine's own words (never the password), `denied` whether the registry refused them (as
    opposed to not being reachable or answering oddly)."""

    def __init__(self, reason: str, *, denied: bool) -> None:
        super().__init__(f"the registry login failed: {reason}")
        self.reason = reason
        self.denied = denied
