"""Configs (secrets): encryption at rest, and resolution into environments and files."""
