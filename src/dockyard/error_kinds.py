"""The one registry of the errors the API sends: every `DockyardError` class a request can meet
on the server, by its `kind`. The server answers with `error.to_wire()` and the class's
`status`; the client rebuilds the same class from the answer's `kind` (`rebuild`), so a caller
catches `ConfigNotFound` or `EngineUnavailable` as if it had been raised in its own process,
and the CLI exits with the class's own code.

Not here, because no request meets them: the errors of the server's start-up
(`ServerStartError`, a refused config key `KeyRefused`), of the operator's local commands
(`AccountNotFound`), of what only a deployment's background job does (a pull the server
stopped, `PullStopped`; the ingress proxy's `IngressError`; the firewall's `EgressError`;
project files gone between admission and the containers' start, `ProjectFilesMissing`), and
of the client and CLI themselves.
`tests/unit/test_error_kinds.py` checks that every other class is registered.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from dockyard import api_errors
from dockyard.build.context import BuildContextError
from dockyard.build.dockerfile import DockerfileError
from dockyard.build.safety import UnsafeArchive
from dockyard.errors import DockyardError, ProjectInvalid, UsageError
from dockyard.ingress.tls_errors import CertificateError
from dockyard.lifecycle import InvalidTransition
from dockyard.runtime import errors as engine

_CLASSES: tuple[type[DockyardError], ...] = (
    DockyardError, UsageError, ProjectInvalid,
    api_errors.NotFound, api_errors.Unauthorized, api_errors.RequestInvalid,
    api_errors.RequestTooLarge, api_errors.DeploymentInProgress, api_errors.DependentsRunning,
    api_errors.ContextError,
    api_errors.ContextTooLarge, api_errors.ConfigInvalid, api_errors.ConfigNotFound,
    api_errors.ConfigKeyError, api_errors.TooManyFollows, api_errors.RegistryCredentialInvalid,
    api_errors.RegistryLoginRefused, api_errors.RegistryUnreachable,
    api_errors.RegistryLoginBusy, api_errors.RegistryNotAllowed, api_errors.StoreError,
    engine.EngineUnavailable, engine.EngineError, engine.BuildFailed, engine.BuildTimedOut,
    engine.RegistryError, engine.PullFailed, engine.PushFailed, engine.RegistryLoginFailed,
    UnsafeArchive, DockerfileError, BuildContextError, CertificateError, InvalidTransition,
)

KINDS: Mapping[str, type[DockyardError]] = MappingProxyType({c.kind: c for c in _CLASSES})


def rebuild(body: Mapping[str, Any]) -> DockyardError | None:
    """The error a server's JSON answer describes, as its own class; None when its `kind` is
    not one of `KINDS` (an answer from something else than a Dockyard server, or a newer one)."""
    found = KINDS.get(str(body.get("kind")))
    return None if found is None else found.from_wire(body)
