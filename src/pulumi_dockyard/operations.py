"""What the provider does, over `dockyard.client.Client` as the CLI does it: deploy and wait,
plan, `ps`, take down. No Pulumi here: the provider (`provider.py`) is a thin adapter.

The properties (`props`) are the inputs of a Project resource, plain values:
`project_name`, `services` (Defang's or Compose's spelling), optional `networks`, `volumes`,
`configs` (config name -> value: the program's secrets), `server` (a URL; none: the CLI's
choice, `DOCKYARD_SERVER` or the local server), `program_dir` (where relative paths start),
`wait` (False: start the deployment and return) and `only` (a standalone `Service`: act on
those services of the project and leave the others as they run).

A resource owns its project through its id, recorded in each deployment's Compose document
(`x-pulumi-dockyard`). When Pulumi replaces a resource it creates the new one first, then
deletes the old: that delete finds the project now deployed by another resource and leaves
it running, where a `down` would take down what the new resource just deployed.
"""

from __future__ import annotations

import secrets as _random
from collections.abc import Mapping, Sequence
from typing import Any

from dockyard.client.api import Client, connect
from dockyard.client.origin import local_origin
from dockyard.errors import DockyardError
from dockyard.wire_models import ServiceStatus
from pulumi_dockyard.errors import DeploymentFailed
from pulumi_dockyard.fields import to_compose
from pulumi_dockyard.prepare import Prepared, prepare

OWNER_KEY = "x-pulumi-dockyard"
COMPLETED = "SERVICE_DEPLOYMENT_COMPLETED"
# The inputs whose change makes another project (or another server's): a replacement.
IDENTITY = ("project_name", "server")
# The inputs a diff compares (`program_dir` is where the program happens to be checked out).
COMPARED = ("project_name", "server", "services", "networks", "volumes", "configs", "only")
_DEPLOYING = ("up", "redeploy", "rollback")


def new_id(project: str) -> str:
    """A resource's id: its project and a token of its own (see the module's docstring)."""
    return f"{project}/{_random.token_hex(6)}"


def client_for(props: Mapping[str, Any]) -> Client:
    """A client of the server the CLI would use, or of `props["server"]`."""
    server = props.get("server")
    return connect(str(server) if server else None)


def document(props: Mapping[str, Any], resource_id: str) -> dict[str, Any]:
    """The project's Compose document, marked with the resource that deploys it."""
    return to_compose(str(props["project_name"]), props.get("services") or {},
                      str(props.get("program_dir") or "."), props.get("networks"),
                      props.get("volumes"),
                      {OWNER_KEY: {"resource": resource_id, "services": _only(props)}})


def upload(client: Client, prepared: Prepared) -> None:
    for packed in {p.digest: p for p in prepared.packs}.values():
        if not client.has_context(packed.digest):
            client.upload_context(packed.digest, packed.data)


def deploy(props: Mapping[str, Any], resource_id: str, *, first: bool,
           old_configs: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Set the configs, deploy, wait, and return the outputs (`status`, `endpoints`,
    `deployment`). A failed service fails it with its reason; when `first` created the
    project (or `only` its services), they are taken down again with the configs, so that
    nothing is left behind."""
    prepared = prepare(document(props, resource_id))
    name, only = prepared.name, _only(props)
    configs = dict(props.get("configs") or {})
    with client_for(props) as client:
        existed = any(not only or r.service in only for r in client.services(name))
        upload(client, prepared)
        for config, value in configs.items():
            client.set_config(name, config, str(value))
        deployment = client.deploy(name, prepared.data, prepared.builds, services=only,
                                   origin=local_origin(props.get("program_dir")))
        if props.get("wait", True) is False:
            return {"deployment": deployment, **outputs(client.services(name), only)}
        status = wait(client, deployment)
        rows = client.services(name)
        mine = [r for r in rows if not only or r.service in only]
        failed = [r for r in mine if r.state != COMPLETED]
        if status != "succeeded" or failed:
            reasons = "; ".join(f"{r.service}: {r.state} ({r.reason})" for r in failed)
            if first and not existed:
                _down(client, name, only, configs)
            raise DeploymentFailed(
                f"deployment {deployment} of project {name} failed: {reasons or status}",
                hint=f"`dockyard logs -p {name} --deployment {deployment}` shows the "
                "services' output")
        for config in set(old_configs or {}) - set(configs):
            _forget_config(client, name, config)
        return {"deployment": deployment, **outputs(rows, only)}


def wait(client: Client, deployment: str) -> str:
    """Follow the deployment's events to its end: its status (succeeded, failed ...)."""
    for kind, data in client.events(deployment):
        if kind == "end":
            return str(data.get("status"))
    return "unknown"


def outputs(rows: Sequence[ServiceStatus], only: Sequence[str] = ()) -> dict[str, Any]:
    """`status` (per service: state, fqdn, endpoint ...) and `endpoints` (service -> URL)."""
    mine = [r for r in rows if not only or r.service in only]
    status = {r.service: {"state": r.state, "fqdn": r.fqdn, "endpoint": r.endpoint,
                          "endpoints": list(r.endpoints), "reason": r.reason,
                          "replicas": r.replicas, "deployment": r.deployment}
              for r in mine}
    return {"status": status, "endpoints": {r.service: r.endpoint for r in mine if r.endpoint}}


def read(props: Mapping[str, Any]) -> dict[str, Any] | None:
    """`ps` of the project as outputs; None when none of its services exists any more."""
    with client_for(props) as client:
        rows = client.services(str(props["project_name"]))
    found = outputs(rows, _only(props))
    return found if found["status"] else None


def changes(olds: Mapping[str, Any], news: Mapping[str, Any], resource_id: str
            ) -> tuple[bool, list[str]]:
    """(whether anything would change, the inputs that make it a replacement). Dockyard's own
    plan decides: a service it would replace (new containers: image, command, a config value
    ...) is a replacement; one it would only create, scale or remove is an in-place update."""
    replaces = [k for k in IDENTITY if olds.get(k) != news.get(k)]
    if replaces:
        return True, replaces
    differs = any(olds.get(k) != news.get(k) for k in COMPARED)
    old_configs, new_configs = dict(olds.get("configs") or {}), dict(news.get("configs") or {})
    changed_configs = any(old_configs.get(k) != v for k, v in new_configs.items())
    prepared = prepare(document(news, resource_id))
    with client_for(news) as client:
        upload(client, prepared)
        try:
            found = client.plan(prepared.name, prepared.data, prepared.builds,
                                services=_only(news))
        except DockyardError:
            if not changed_configs:
                raise
            # A config the program sets is not stored yet: the services using it change.
            return True, ["configs"]
    actions = {s.service: s.action for s in found.services}
    replaced = any(a == "replace" for a in actions.values())
    if changed_configs and old_configs:
        replaced = True  # a new value replaces the services using it, as Dockyard does
    moved = replaced or any(a != "keep" for a in actions.values())
    return differs or moved, (["services"] if replaced else [])


def delete(props: Mapping[str, Any], resource_id: str) -> bool:
    """Take the project (or `only` its services) down, with the configs the resource set,
    unless another resource deployed it since (a replacement). Whether it did."""
    name, only = str(props["project_name"]), _only(props)
    configs = dict(props.get("configs") or {})
    with client_for(props) as client:
        owner = _owner(client, name, only)
        if owner is not None and owner != resource_id:
            return False
        _down(client, name, only, configs)
    return True


def _down(client: Client, name: str, only: Sequence[str], configs: Mapping[str, Any]) -> None:
    """`down` of `only` those services while others stay (their volumes may be shared, so
    they are kept), else of the whole project with its volumes."""
    running = {r.service for r in client.services(name)}
    if running:
        partial = sorted(set(only)) if running - set(only) else []
        deployment = client.down(name, volumes=not partial, services=partial,
                                 force=bool(partial))
        status = wait(client, deployment)
        if status != "succeeded":
            notes = "; ".join(client.deployment(deployment).notes)
            raise DeploymentFailed(f"taking {name} down failed ({status}): {notes}",
                                   hint="see `dockyard deployments` and the server log")
    for config in configs:
        _forget_config(client, name, config)


def _forget_config(client: Client, project: str, name: str) -> None:
    try:
        client.remove_config(project, name)
    except DockyardError:
        pass  # already gone


def _owner(client: Client, project: str, only: Sequence[str]) -> str | None:
    """The resource id recorded by the latest deployment that ran the project (or one of
    `only`'s services); None when it was deployed otherwise (the CLI) or never."""
    for summary in client.deployments(project, limit=20):
        if summary.action not in _DEPLOYING:
            continue
        if only and summary.services and not set(only) & set(summary.services):
            continue
        mark = client.deployment(summary.id).compose.get(OWNER_KEY)
        return str(mark["resource"]) if isinstance(mark, Mapping) and "resource" in mark \
            else None
    return None


def _only(props: Mapping[str, Any]) -> list[str]:
    return [str(s) for s in props.get("only") or ()]
