"""The Python client of a Dockyard server: over HTTP only, local or remote alike."""

from dockyard.client.api import Client, ClientError, connect

__all__ = ["Client", "ClientError", "connect"]
