"""Drivers: the only code that talks to a container engine (docs/architecture.md, Drivers)."""
