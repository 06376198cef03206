"""The API's request and response bodies, as types both sides use: the server declares its
routes with them (FastAPI validates requests and describes every answer in the OpenAPI
document from them), and the client returns them instead of dictionaries.

Plain dataclasses, not pydantic models: FastAPI (through pydantic) takes them as bodies and
`response_model`s all the same, and the client reads them without importing pydantic, which
would add about 40-80 ms (measured here) to every `dockyard` command, `ps` included. Only
`__init__` is generated (`repr=False, eq=False`; `_Body` gives the others once): each generated
method costs an `exec` at import, and all of them made this module 13 ms instead of 3-5 ms.
`from_json` reads what a server sent (it does not validate: the server did); `to_json` gives
the same object back, keys in the order the server sends them, which the CLI's `--json` output
prints. Times are ISO 8601 strings, exactly as the server wrote them.

(`dockyard.wire` is another thing: the Compose project document a client sends.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Self

PullPolicy = Literal["always", "missing", "never"]


class _Body:
    """What every body can do: read one from the server's JSON, and give it back."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """The body `data` holds; keys it does not know are left out (a newer server)."""
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self) or not isinstance(other, _Body):
            return NotImplemented
        return self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]  # equal by value, and mutable

    def __repr__(self) -> str:
        """Fields marked `repr=False` (a password, a config value) are left out."""
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}"
                          for f in dataclasses.fields(self) if f.repr)  # type: ignore[arg-type]
        return f"{type(self).__name__}({shown})"


# -- requests -----------------------------------------------------------------------------------
@dataclass(repr=False, eq=False)
class BuildBody(_Body):
    """A service's build: its uploaded context (by digest) and `build:` options."""

    digest: str
    dockerfile: str = "Dockerfile"
    args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    pull: bool = False  # build.pull: refresh the base images


@dataclass(repr=False, eq=False)
class DeployOrigin(_Body):
    """Where a deployment was started from, as the client saw it (recorded with it): the
    client's version, the local user, and the project directory's git checkout if any."""

    client_version: str = ""
    user: str = ""
    git_commit: str | None = None
    git_dirty: bool | None = None
    git_branch: str | None = None  # None: not a checkout, or a detached HEAD


@dataclass(repr=False, eq=False)
class DeployBody(_Body):
    """`POST /v1/projects/<project>/deployments` and `.../plan` (`up --dry-run`)."""

    project: dict[str, Any]
    builds: dict[str, BuildBody] = field(default_factory=dict)
    force: bool = False
    build: bool = False
    pull: PullPolicy | None = None  # `up --pull`: every service's policy
    # `up SERVICE...`: only these and what they depend on (empty: every service)
    services: list[str] = field(default_factory=list)
    origin: DeployOrigin | None = None
    rollback_on_failure: bool = False  # `up --rollback-on-failure`
    # `up --ttl`: take the project down this many seconds after the deployment starts (None:
    # keep it, and forget an earlier deadline); `--ttl-volumes`: its volumes go too
    ttl: float | None = None
    ttl_volumes: bool = False


@dataclass(repr=False, eq=False)
class RedeployBody(_Body):
    pull: PullPolicy | None = None
    origin: DeployOrigin | None = None


@dataclass(repr=False, eq=False)
class RollbackBody(_Body):
    """`POST /v1/projects/<project>/rollback` (and `.../rollback/plan`, what it would do):
    back to `deployment`, by default the last one that completed before the current one."""

    deployment: str | None = None
    pull: PullPolicy | None = None
    origin: DeployOrigin | None = None


@dataclass(repr=False, eq=False)
class DownBody(_Body):
    volumes: bool = False
    services: list[str] = field(default_factory=list)  # `down SERVICE...` (empty: all)
    force: bool = False  # take them down even when a running service depends on one


@dataclass(repr=False, eq=False)
class RestartBody(_Body):
    """`POST /v1/projects/<project>/restart`: these services (empty: every service)."""

    services: list[str] = field(default_factory=list)


@dataclass(repr=False, eq=False)
class ConfigBody(_Body):
    value: str = field(repr=False)  # never in a repr, a log or a validation error
    if_not_set: bool = False


@dataclass(repr=False, eq=False)
class RegistryLoginBody(_Body):
    username: str
    password: str = field(repr=False)  # never in a repr, a log or a validation error


# -- answers ------------------------------------------------------------------------------------
@dataclass(repr=False, eq=False)
class Health(_Body):
    status: str
    version: str


@dataclass(repr=False, eq=False)
class WhoAmI(_Body):
    """The token's account, and the server's naming mode, zone and version."""

    account: str
    mode: str
    zone: str
    version: str


@dataclass(repr=False, eq=False)
class IngressInfo(_Body):
    """Whether the server runs its ingress, its ports, and its local CA certificate (PEM)."""

    enabled: bool
    http_port: int | None = None
    https_port: int | None = None
    ca_certificate: str | None = None


@dataclass(repr=False, eq=False)
class ContextStored(_Body):
    digest: str


@dataclass(repr=False, eq=False)
class DeploymentStarted(_Body):
    """A deployment (`up`, `redeploy` or `down`) the server recorded and started."""

    deployment: str
    project: str
    rollback_of: str | None = None  # a rollback or redeploy: the deployment it runs again


@dataclass(repr=False, eq=False)
class PlannedService(_Body):
    """One service of a plan (`up --dry-run --json` prints these)."""

    service: str
    action: str  # create, replace, scale, keep or remove (a `compose restart`: restart)
    reasons: list[str] = field(default_factory=list)
    replicas: int = 0


@dataclass(repr=False, eq=False)
class PlanAnswer(_Body):
    """What a deployment would do: each service's action, the builds and pulls it would run."""

    project: str
    builds: list[str] = field(default_factory=list)
    pulls: list[str] = field(default_factory=list)
    services: list[PlannedService] = field(default_factory=list)
    rollback_of: str | None = None  # a rollback's plan: the deployment it would run again

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(project=str(data.get("project", "")), builds=list(data.get("builds") or []),
                   pulls=list(data.get("pulls") or []),
                   services=[PlannedService.from_json(s) for s in data.get("services") or []],
                   rollback_of=data.get("rollback_of"))


@dataclass(repr=False, eq=False)
class ConfigItem(_Body):
    """A config's name and when it was set: never its value."""

    name: str
    updated_at: str


@dataclass(repr=False, eq=False)
class ConfigWritten(_Body):
    name: str
    set: bool  # False: `if_not_set` and it was already set
    updated_at: str | None = None


@dataclass(repr=False, eq=False)
class RegistryItem(_Body):
    """A registry login of the account: never its password."""

    host: str
    username: str
    updated_at: str


@dataclass(repr=False, eq=False)
class RegistryStored(_Body):
    host: str  # as the server keys it
    username: str


@dataclass(repr=False, eq=False)
class RegistryRemoved(_Body):
    host: str


@dataclass(repr=False, eq=False)
class ServiceStatus(_Body):
    """One service of `ps`: its recorded state, names and endpoints, and what runs."""

    service: str
    deployment: str
    state: str  # the ServiceState's name
    state_number: int = 0  # its number (Defang's)
    reason: str = ""
    since: str = ""
    fqdn: str = ""
    endpoint: str = ""  # the first of `endpoints`, or ""
    endpoints: list[str] = field(default_factory=list)
    replicas: int = 0
    running: int = 0
    exposure: str = ""  # public, host or private
    image: str = ""  # what its containers run: repo@sha256:... (or the image id, local)
    nodes: list[str] = field(default_factory=list)  # where replicas run (driver swarm)
    pinned_node: str = ""  # the node a named volume keeps it on (driver swarm)
    expires_at: str | None = None  # the project's `up --ttl` deadline, if any


@dataclass(repr=False, eq=False)
class DashboardLink(_Body):
    """`POST /v1/dashboard/links`: a one-time login link to the dashboard for the caller's
    token (`dockyard dashboard`), as a path of the server; valid once, for `expires_in` s."""

    path: str
    expires_in: int = 0


@dataclass(repr=False, eq=False)
class ProjectSummary(_Body):
    """A project of the account (`compose ls`): its latest deployment, how many services are
    in each state (as recorded), and its `up --ttl` deadline."""

    name: str
    deployment: str | None = None  # the latest deployment (None: never deployed)
    action: str | None = None  # up, redeploy, down ...
    status: str | None = None
    created_at: str | None = None
    services: dict[str, int] = field(default_factory=dict)  # state name -> how many
    expires_at: str | None = None
    expire_volumes: bool = False  # the volumes go too when it expires (`--ttl-volumes`)


@dataclass(repr=False, eq=False)
class DeploymentSummary(_Body):
    """A deployment of the history (`dockyard deployments`)."""

    id: str
    project: str
    action: str  # up, redeploy or down
    status: str
    created_at: str
    finished_at: str | None = None
    services: list[str] = field(default_factory=list)


@dataclass(repr=False, eq=False)
class DeploymentImage(_Body):
    """The image a deployment ran for a service: as named, its digest, its local id."""

    reference: str
    digest: str
    image_id: str


@dataclass(repr=False, eq=False)
class StateEvent(_Body):
    """A recorded state change of a service (`id` orders them within the deployment)."""

    service: str
    state: str
    state_number: int
    at: str
    reason: str = ""
    deployment: str | None = None
    id: int = 0


@dataclass(repr=False, eq=False)
class DeploymentRecordBody(_Body):
    """Who ran a deployment, with what and from where (`dockyard deployments show`)."""

    account: str = ""
    server_version: str = ""
    client_version: str = ""
    user: str = ""
    git_commit: str | None = None
    git_dirty: bool | None = None
    git_branch: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # force, build, pull, ...
    rollback_of: str | None = None  # the deployment a rollback or redeploy ran again
    rolled_back_by: str | None = None  # the rollback that undid this deployment
    rolled_back_to: str | None = None  # ... and the deployment that rollback ran again
    rollback_pending: bool = False  # failed, and its automatic rollback is being started
    rollback_refused: str | None = None  # why its automatic rollback could not start


@dataclass(repr=False, eq=False)
class DeploymentDetail(_Body):
    """One deployment, all it recorded: who ran it and from what, the normalized project,
    each service's image and each config's version (never a value), the plan it carried
    out, the outcome per service, its state events and what a `down` noted."""

    id: str
    project: str
    action: str
    status: str
    created_at: str
    images: dict[str, DeploymentImage] = field(default_factory=dict)
    events: list[StateEvent] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    finished_at: str | None = None
    record: DeploymentRecordBody = field(default_factory=DeploymentRecordBody)
    configs: dict[str, int] = field(default_factory=dict)
    plan: list[PlannedService] | None = None  # None: it never got as far as planning
    outcome: dict[str, str] = field(default_factory=dict)  # service -> its last state
    compose: dict[str, Any] = field(default_factory=dict)  # the normalized project

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        plan = data.get("plan")
        return cls(id=str(data["id"]), project=str(data["project"]),
                   action=str(data["action"]), status=str(data["status"]),
                   created_at=str(data["created_at"]),
                   images={k: DeploymentImage.from_json(v)
                           for k, v in (data.get("images") or {}).items()},
                   events=[StateEvent.from_json(e) for e in data.get("events") or []],
                   notes=[str(n) for n in data.get("notes") or []],
                   finished_at=data.get("finished_at"),
                   record=DeploymentRecordBody.from_json(data.get("record") or {}),
                   configs={str(k): int(v) for k, v in (data.get("configs") or {}).items()},
                   plan=None if plan is None else [PlannedService.from_json(p) for p in plan],
                   outcome={str(k): str(v) for k, v in (data.get("outcome") or {}).items()},
                   compose=dict(data.get("compose") or {}))


# -- errors -------------------------------------------------------------------------------------
@dataclass(repr=False, eq=False)
class DiagnosticBody(_Body):
    """One problem of a refused project (`ProjectInvalid`)."""

    severity: str  # error or warning
    code: str
    message: str
    file: str | None = None
    line: int | None = None
    path: str | None = None  # where in the project: services.web.image
    hint: str | None = None


@dataclass(repr=False, eq=False)
class ErrorBody(_Body):
    """Every error answer: what is wrong, what to do, and the error's class (`kind`), by which
    the client rebuilds it (`dockyard.error_kinds`). Written by `DockyardError.to_wire`; this
    type describes it in the OpenAPI document."""

    error: str
    hint: str | None
    kind: str
    diagnostics: list[DiagnosticBody] | None = None  # ProjectInvalid: every problem
    detail: list[dict[str, Any]] | None = None  # RequestInvalid: where and what, never a value
