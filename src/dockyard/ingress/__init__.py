"""Ingress: routes, the proxy driver, and TLS certificates."""
