"""The one error of the TLS part of the ingress (local CA, certificate store, ACME).

Its own module so that `ca`, `certificates` and `acme` can all raise it without importing
each other in a circle.
"""

from __future__ import annotations

from dockyard.errors import DockyardError


class CertificateError(DockyardError):
    """A certificate could not be created, loaded or obtained.

    The message names the certificate, file or server involved and never contains key material.
    """
