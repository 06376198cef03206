"""The `dockyard` command: a thin adapter that renders what the library returns."""
