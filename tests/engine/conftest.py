"""Fixtures several engine test modules use, defined in tests/support: `dockyard` (the CLI
with the test's own local server) and `pebble` (an ACME CA). A module may define its own
fixture of the same name, which then wins (test_ingress.py, test_acme_pebble.py)."""

from tests.support.deployments import dockyard
from tests.support.pebble import pebble

__all__ = ["dockyard", "pebble"]
