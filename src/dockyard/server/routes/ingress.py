"""`GET /v1/ingress`: where the ingress listens, and the CA its local names chain to."""

from __future__ import annotations

from fastapi import APIRouter

from dockyard.server.auth import Who
from dockyard.server.control import ControlPlane
from dockyard.wire_models import IngressInfo


def add_routes(api: APIRouter, control: ControlPlane) -> None:

    @api.get("/v1/ingress")
    def ingress(_who: Who) -> IngressInfo:
        """Where the ingress listens, and the local CA certificate its HTTPS names chain to."""
        settings = control.settings
        enabled = control.ingress.enabled
        return IngressInfo(enabled=enabled,
                           http_port=settings.http_port if enabled else None,
                           https_port=settings.https_port if enabled else None,
                           ca_certificate=control.ingress.ca_certificate_pem())

