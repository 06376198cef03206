"""The server's local CA, saved where the user's tools can be pointed at it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from dockyard.client.api import Client
from dockyard.errors import DockyardError


def save_ca(client: Client, directory: Path) -> Path:
    """Fetch the server's local CA certificate and save it under `directory`; its path.

    The file is named after the certificate's digest, so two servers never overwrite each
    other's and saving twice writes the same file.
    """
    pem = client.ingress().ca_certificate
    if not pem:
        raise DockyardError("this server runs no ingress, so it has no certificates to trust",
                            hint="start the server without --no-ingress")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"dockyard-ca-{hashlib.sha256(pem.encode()).hexdigest()[:12]}.crt"
    path.write_text(pem)
    return path
