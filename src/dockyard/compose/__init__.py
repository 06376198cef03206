"""Compose files to a typed, validated, normalized `Project` (pure: no engine, no network).

    from dockyard.compose import LoadOptions, load_project
    result = load_project(LoadOptions(working_dir="examples/shop", environ=os.environ))
    result.project.services["web"].ports
"""

from dockyard.compose.loader import LoadResult, load_project
from dockyard.compose.models import Project, Service
from dockyard.compose.options import LoadOptions
from dockyard.compose.render import NamingContext, project_to_dict

__all__ = [
    "LoadOptions", "LoadResult", "NamingContext", "Project", "Service", "load_project",
    "project_to_dict",
]
