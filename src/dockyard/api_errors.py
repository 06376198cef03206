"""Errors the API answers with that the server's own modules raise: defined here, outside
`dockyard.server`, so the client can rebuild them (`dockyard.error_kinds`) without importing
the server."""

from __future__ import annotations

from dockyard.errors import DockyardError


class NotFound(DockyardError):
    """Something the account does not have (or that does not exist: the same answer)."""
