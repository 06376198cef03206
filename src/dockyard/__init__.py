"""Dockyard: deploy an unmodified Compose file to infrastructure you own."""

__version__ = "0.1.0"
