"""Errors a request can meet on the server, defined outside `dockyard.server` so the client can
rebuild them (`dockyard.error_kinds`) without importing the server. The modules that raise them
import them from here (and keep their names: `server.configs.ConfigNotFound` is this one).

`status` is the HTTP status the server answers each with (`dockyard.errors`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from dockyard.errors import DockyardError


class NotFound(DockyardError):
    """Something the account does not have (or that does not exist: the same answer)."""

    status = 404


class Unauthorized(DockyardError):
    """No token, or a token the server does not know."""

    status = 401


class RequestInvalid(DockyardError):
    """The request's parameters or body do not match the API (FastAPI's validation): `detail`
    says where and what is wrong, never what was sent (it may hold a config's value)."""

    status = 422

    @classmethod
    def from_wire(cls, body: Mapping[str, Any]) -> Self:
        error = super().from_wire(body)
        detail = body.get("detail")
        if isinstance(detail, list):
            error.message = "the server refused the request: " + "; ".join(
                str(d.get("msg")) for d in detail if isinstance(d, dict))
            error.args = (error.message,)
        return error


class RequestTooLarge(DockyardError):
    """A request body over the server's `--max-request-bytes` (`server.body_limit`)."""

    status = 413


class DeploymentInProgress(DockyardError):
    """Another deployment of the same project is running."""

    status = 409


class DependentsRunning(DockyardError):
    """`down SERVICE...` would take away a service that a running service, which stays,
    depends on (`selection.blockers`); `--force` takes it down anyway."""

    status = 409


class ContextError(DockyardError):
    """An upload that is not what it claims to be."""

    status = 422


class ContextTooLarge(ContextError):
    """An upload over the server's context size limit or over the account's quota."""

    status = 413


class ConfigInvalid(DockyardError):
    """A config name or value was refused."""

    status = 422


class ConfigNotFound(DockyardError):
    """No config of that name in the project."""

    status = 404


class ConfigKeyError(DockyardError):
    """The config encryption key is missing, unreadable, or not the one the values were
    encrypted with."""

    status = 500


class TooManyFollows(DockyardError):
    """The account already follows as many log streams as the server allows (HTTP 429)."""

    status = 429


class RegistryCredentialInvalid(DockyardError):
    """A host, user name or password that cannot be a registry login, or one login too many."""

    status = 422


class RegistryLoginRefused(DockyardError):
    """The registry refused the user name and password."""

    status = 400


class RegistryUnreachable(DockyardError):
    """The login could not be checked: the engine did not reach the registry."""

    status = 502


class RegistryLoginBusy(DockyardError):
    """Another login of the same account is being checked (each may wait on a slow registry,
    holding a server thread: one at a time per account)."""

    status = 429


class RegistryNotAllowed(DockyardError):
    """A tenant named a registry at a private or local address (a login, on a shared server)."""

    status = 403


class StoreError(DockyardError):
    """The store cannot be opened or is newer than this version of Dockyard."""
