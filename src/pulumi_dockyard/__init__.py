"""Deploy the services of a Pulumi program to a Dockyard server, as Defang's providers deploy
them to a cloud: a program written for `pulumi_defang_aws` (or -gcp, -azure) runs here after
changing only its import. See docs/pulumi.md.

    import pulumi
    import pulumi_dockyard as dockyard

    shop = dockyard.Project("shop", services={"web": {"image": "nginx", "ports": [...]}})
    pulumi.export("endpoints", shop.endpoints)

Needs the Pulumi SDK: `pip install 'dockyard[pulumi]'`.
"""

from __future__ import annotations

try:
    import pulumi  # noqa: F401
except ImportError as exc:  # pragma: no cover - only without the extra
    raise ImportError("pulumi_dockyard needs the Pulumi SDK: pip install 'dockyard[pulumi]'"
                      ) from exc

from pulumi_dockyard.errors import (
    DeploymentFailed,
    PulumiDockyardError,
    ServicesInvalid,
    UnsupportedField,
)
from pulumi_dockyard.provider import ProjectProvider
from pulumi_dockyard.resources import Project, Service

__all__ = ["DeploymentFailed", "Project", "ProjectProvider", "PulumiDockyardError", "Service",
           "ServicesInvalid", "UnsupportedField"]
