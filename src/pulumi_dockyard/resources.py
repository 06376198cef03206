"""`Project` and `Service`: the resources a program declares, shaped as Defang's providers'.

    import pulumi_dockyard as defang_aws      # was: import pulumi_defang_aws as defang_aws
    demo = defang_aws.Project("demo", services={"app": {"image": "nginx", "ports": [...]}})
    pulumi.export("endpoints", demo.endpoints)

Each is a component (as Defang's are) registered with the inputs Defang's would have, around
one dynamic resource whose provider (`ProjectProvider`) deploys to a Dockyard server. Relative
paths are relative to the program's directory (where Pulumi runs it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi.dynamic

from pulumi_dockyard.errors import UnsupportedField
from pulumi_dockyard.fields import NETWORK, SERVICE, Shape, to_compose, wire_names
from pulumi_dockyard.provider import ProjectProvider
from pulumi_dockyard.secrets import split

# The outputs a deployment resource has, beside its inputs.
_OUTPUTS = ("deployment", "endpoints", "status")

# Defang's Project/Service arguments that configure a cloud: meaningless on a Dockyard server.
_CLOUD = ("aws", "gcp", "azure", "etag", "sidecars", "security_group_ids", "task_role_arn",
          "triggers", "secrets")


class _Deployment(pulumi.dynamic.Resource, module="dockyard", name="Project"):
    """The dynamic resource of a project: type `pulumi-python:dynamic/dockyard:Project`."""

    deployment: pulumi.Output[str]
    endpoints: pulumi.Output[dict[str, str]]
    status: pulumi.Output[dict[str, Any]]


def _refuse(kind: str, extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if value is None:
            continue
        if key in _CLOUD:
            raise UnsupportedField(key, f"{kind} argument `{key}` configures Defang's cloud; "
                                   "a Dockyard server needs none", f"remove `{key}`")
        raise UnsupportedField(key, f"{kind} has no argument `{key}`",
                               "see docs/pulumi.md for the arguments")


def _wire(value: Any, shape: Shape) -> Any:
    """The component's own inputs, named as Defang's SDK names them."""
    if value is None:
        return None
    if isinstance(value, pulumi.Output):
        return value.apply(lambda v: _wire(v, shape))
    if isinstance(value, Mapping):
        return {k: (v.apply(lambda x: wire_names(x, shape)) if isinstance(v, pulumi.Output)
                    else wire_names(v, shape)) for k, v in value.items()}
    return value


def _deploy(parent: pulumi.Resource, name: str, project_name: str, services: Any,
            networks: Any, volumes: Any, server: str | None, wait: bool | None,
            only: list[str] | None) -> _Deployment:
    directory = os.getcwd()
    plain, configs = split(services)

    def checked(found: Any) -> Any:
        to_compose(project_name, found, directory)  # refuse what Dockyard lacks, by name
        return found

    props: dict[str, Any] = {
        "project_name": project_name, "services": plain.apply(checked), "configs": configs,
        "networks": networks, "volumes": volumes, "server": server, "program_dir": directory,
        "wait": wait, "only": only, **dict.fromkeys(_OUTPUTS)}
    return _Deployment(ProjectProvider(), name, props, pulumi.ResourceOptions(parent=parent))


class Project(pulumi.ComponentResource):
    """Services deployed together as one Dockyard project, from Defang's `services` map (or
    Compose's spellings). `project_name` defaults to the resource's name; `server` to the
    CLI's choice (`DOCKYARD_SERVER`, or the local server)."""

    endpoints: pulumi.Output[dict[str, str]]
    services: pulumi.Output[dict[str, Any]]
    deployment: pulumi.Output[str]

    def __init__(self, resource_name: str, opts: pulumi.ResourceOptions | None = None, *,
                 services: Any = None, networks: Any = None, volumes: Any = None,
                 project_name: str | None = None, server: str | None = None,
                 wait_for_steady_state: bool | None = None, **unsupported: Any) -> None:
        _refuse("Project", unsupported)
        if services is None:
            raise UnsupportedField("services", "a Project needs `services`",
                                   "pass services={'NAME': {'image': ...}}")
        super().__init__("dockyard:index:Project", resource_name, {
            "services": _wire(services, SERVICE), "networks": _wire(networks, NETWORK),
            "waitForSteadyState": wait_for_steady_state}, opts)
        inner = _deploy(self, resource_name, project_name or resource_name, services,
                        networks, volumes, server, wait_for_steady_state, None)
        self.endpoints = inner.endpoints
        self.services = inner.status
        self.deployment = inner.deployment
        self.register_outputs({"endpoints": self.endpoints, "services": self.services,
                               "deployment": self.deployment})


class Service(pulumi.ComponentResource):
    """One image-only service, as Defang's standalone `Service`: the service `resource_name`
    of project `project_name` (default: the resource's name). Other services of that project
    are left as they run."""

    endpoint: pulumi.Output[str]
    service_name: pulumi.Output[str]
    state: pulumi.Output[str]
    fqdn: pulumi.Output[str]
    deployment: pulumi.Output[str]

    def __init__(self, resource_name: str, opts: pulumi.ResourceOptions | None = None, *,
                 image: Any = None, project_name: str | None = None,
                 server: str | None = None, wait_for_steady_state: bool | None = None,
                 **fields: Any) -> None:
        # Any other key is a field of the service, checked as Project's are (Compose's too).
        _refuse("Service", {k: v for k, v in fields.items() if k in _CLOUD})
        if image is None:
            raise UnsupportedField("image", "a standalone Service runs an image",
                                   "pass image=...; build from source in a Project")
        if fields.get("build") is not None:
            raise UnsupportedField("build", "a standalone Service runs an image (as Defang's)",
                                   "build from source in a Project")
        service = {"image": image, **{k: v for k, v in fields.items() if v is not None}}
        super().__init__("dockyard:index:Service", resource_name, {
            **wire_names(service, SERVICE), "projectName": project_name,
            "waitForSteadyState": wait_for_steady_state}, opts)
        inner = _deploy(self, resource_name, project_name or resource_name,
                        {resource_name: service}, None, None, server, wait_for_steady_state,
                        [resource_name])
        self.service_name = pulumi.Output.from_input(resource_name)
        self.endpoint = inner.endpoints.apply(lambda e: (e or {}).get(resource_name, ""))
        mine = inner.status.apply(lambda s: (s or {}).get(resource_name) or {})
        self.state = mine.apply(lambda s: str(s.get("state", "")))
        self.fqdn = mine.apply(lambda s: str(s.get("fqdn", "")))
        self.deployment = inner.deployment
        self.register_outputs({"endpoint": self.endpoint, "service_name": self.service_name,
                               "state": self.state, "fqdn": self.fqdn,
                               "deployment": self.deployment})
