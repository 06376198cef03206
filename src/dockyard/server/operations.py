"""Former home of the API's operations, now one module per concept: `admission` (checks),
`deployments` (background jobs), `down`, `ps`, `log_sources` and `settle`. The names below are
kept here for the modules that still import them from this one."""

from __future__ import annotations

from dockyard.api_errors import NotFound
from dockyard.server.admission import check_request, load_submitted
from dockyard.server.deployments import start_deployment, start_down, start_redeploy
from dockyard.server.down import DOWN_NOTES
from dockyard.server.log_sources import LogEntry, run_containers
from dockyard.server.ps import ServiceRow, deployed_model, services
from dockyard.server.settle import settle_unfinished

__all__ = ["DOWN_NOTES", "LogEntry", "NotFound", "ServiceRow", "check_request",
           "deployed_model", "load_submitted", "run_containers", "services",
           "settle_unfinished", "start_deployment", "start_down", "start_redeploy"]
