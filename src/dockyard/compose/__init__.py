"""Compose files to a typed, validated, normalized `Project` (pure: no engine, no network).

    from dockyard.compose import LoadOptions, load_project
    result = load_project(LoadOptions(working_dir="examples/shop", environ=os.environ))
    result.project.services["web"].ports

The names below are imported on first use, so a command that needs one submodule (the project
name for `ps`: `dockyard.compose.session`) does not pay for the whole loader.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dockyard.compose.loader import LoadResult, load_project, load_project_name
    from dockyard.compose.models import Project, Service
    from dockyard.compose.options import LoadOptions
    from dockyard.compose.render import NamingContext, project_to_dict

_WHERE = {
    "LoadOptions": "options", "LoadResult": "loader", "NamingContext": "render",
    "Project": "models", "Service": "models", "load_project": "loader",
    "load_project_name": "loader", "project_to_dict": "render",
}

__all__ = [
    "LoadOptions", "LoadResult", "NamingContext", "Project", "Service", "load_project",
    "load_project_name", "project_to_dict",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'dockyard.compose' has no attribute {name!r}")
    return getattr(importlib.import_module(f"dockyard.compose.{module}"), name)
