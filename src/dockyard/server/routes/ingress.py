"""`GET /v1/ingress`: where the ingress listens, and the CA its local names chain to."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from dockyard.server.auth import Who
from dockyard.server.control import ControlPlane


def add_routes(api: APIRouter, control: ControlPlane) -> None:

    @api.get("/v1/ingress")
    def ingress(_who: Who) -> dict[str, Any]:
        """Where the ingress listens, and the local CA certificate its HTTPS names chain to."""
        settings = control.settings
        enabled = control.ingress.enabled
        return {"enabled": enabled,
                "http_port": settings.http_port if enabled else None,
                "https_port": settings.https_port if enabled else None,
                "ca_certificate": control.ingress.ca_certificate_pem()}

