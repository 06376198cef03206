"""`dockyard compose up` and `dockyard compose down`: thin adapters over the client.

What only `up` needs (loading and packing the project, git) is imported by the functions of
`up`: `down`, `restart`, `redeploy` and `rollback` follow deployments from here too, and
would otherwise import the whole Compose loader and the build packer (about 60 ms each run).
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from dockyard.cli.render import LiveStates, note, print_diagnostics, write_stdout
from dockyard.cli.tables import endpoints_text, plan_table, ps_table
from dockyard.errors import DockyardError
from dockyard.exit_codes import ExitCode
from dockyard.wire_models import PlanAnswer, PullPolicy

if TYPE_CHECKING:
    from dockyard.client.api import Client
    from dockyard.compose import LoadOptions
    from dockyard.diagnostics import Diagnostic

T = TypeVar("T")


class DeploymentFailed(DockyardError):
    exit_code = ExitCode.DEPLOYMENT_FAILED


class WaitTimeout(DockyardError):
    exit_code = ExitCode.WAIT_TIMEOUT


@dataclass(frozen=True, slots=True)
class UpOptions:
    detach: bool = False
    build: bool = False
    force: bool = False
    pull: PullPolicy | None = None  # every service's pull_policy
    dry_run: bool = False  # print the plan; change nothing
    wait_timeout: float | None = None
    as_json: bool = False
    services: tuple[str, ...] = ()  # `up SERVICE...`: those and their dependencies only
    ttl: float | None = None  # `--ttl`, in seconds: the server takes the project down then
    ttl_volumes: bool = False  # `--ttl-volumes`: its volumes too
    rollback_on_failure: bool = False  # a failed deployment goes back to the one before


def project_directory(options: LoadOptions) -> str:
    """The project's directory, whose git checkout a deployment records: Compose's, the
    first file's directory when files are named, else the working directory."""
    if options.files:
        return os.path.dirname(os.path.join(options.working_dir, options.files[0])) or "."
    return options.working_dir


def _emit_json(item: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(item) + "\n")
    sys.stdout.flush()


def prepare(options: LoadOptions, services: Sequence[str] = ()
            ) -> tuple[str, dict[str, Any], dict[str, Any], list[Any], list[Diagnostic]]:
    """Load and validate locally, pack every build context (with `services`, `up
    SERVICE...`: only theirs and their dependencies', after refusing an unknown name) and
    the project files services mount (`build.project_files`), uploaded as contexts are.

    Returns (name, project, builds, packs, unset): `unset` are the warnings of variables a build
    arg uses that are not set here, which `check_build_args` holds against the stored configs.
    """
    from dockyard.build.context import pack_context
    from dockyard.build.project_files import pack_project_files
    from dockyard.compose import load_project, project_to_dict
    from dockyard.errors import ProjectInvalid
    from dockyard.secrets.resolve import build_arg_config_problems, config_users
    from dockyard.selection import closure
    from dockyard.wire import to_wire

    result = load_project(options)
    project = result.project
    chosen = set(closure(project, services)) if services else set(project.services)
    unset = [d for d in result.warnings if d.code == "unset-variable"
             and ".build.args" in (d.location.path or "")]
    local = build_arg_config_problems(unset, config_users(project))
    if local:
        raise ProjectInvalid([*local, *result.warnings])
    files = pack_project_files(project)  # bind mounts inside the project, file configs
    data, refused = to_wire(project_to_dict(project), files.services)
    if refused:
        raise ProjectInvalid([*refused, *result.warnings])
    print_diagnostics(result.warnings)
    builds: dict[str, Any] = {}
    packs = list(files.packs)
    for name, service in project.services.items():
        if service.build is None or name not in chosen:
            continue
        dockerfile = service.build.dockerfile or "Dockerfile"
        packed = pack_context(service.build.context, dockerfile)
        packs.append(packed)
        builds[name] = {"digest": packed.digest, "dockerfile": dockerfile,
                        "args": {k: v for k, v in service.build.args.items() if v is not None},
                        "target": service.build.target,
                        "pull": service.build.extra.get("pull") is True}
    return project.name, data, builds, packs, unset


def check_build_args(client: Client, project: str, unset: list[Diagnostic]) -> None:
    """Refuse a build arg that references one of the project's stored configs."""
    from dockyard.errors import ProjectInvalid
    from dockyard.secrets.resolve import build_arg_config_problems

    if unset:
        stored = [c.name for c in client.configs(project)]
        problems = build_arg_config_problems(unset, stored)
        if problems:
            raise ProjectInvalid(problems)


class _Beside(Generic[T]):
    """A call run in a thread of its own while the caller goes on (asking git where the
    project comes from takes a process or three: they run while the project loads)."""

    def __init__(self, call: Callable[[], T]) -> None:
        self._outcome: list[T] = []
        self._failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], T]) -> None:
        try:
            self._outcome.append(call())
        except BaseException as exc:  # handed to whoever asks for the result
            self._failure.append(exc)

    def result(self) -> T:
        self._thread.join()
        if self._failure:
            raise self._failure[0]
        return self._outcome[0]


def run_up(options: LoadOptions, client_factory: Any, up: UpOptions) -> int:
    from dockyard.client.origin import local_origin

    origin = None if up.dry_run else _Beside(
        lambda: local_origin(project_directory(options), options.environ))
    name, data, builds, packs, unset = prepare(options, up.services)
    client: Client = client_factory()
    with client:
        check_build_args(client, name, unset)
        sent = 0
        for packed in {p.digest: p for p in packs}.values():
            if not client.has_context(packed.digest):
                client.upload_context(packed.digest, packed.data)
                sent += 1
        if up.dry_run:
            return print_plan(client.plan(name, data, builds, force=up.force, build=up.build,
                                           pull=up.pull, services=up.services),
                               as_json=up.as_json)
        deployment = client.deploy(name, data, builds, force=up.force, build=up.build,
                                   pull=up.pull, ttl=up.ttl, ttl_volumes=up.ttl_volumes,
                                   origin=None if origin is None else origin.result(),
                                   rollback_on_failure=up.rollback_on_failure,
                                   services=up.services)
        return follow_deployment(client, name, deployment, up, {"contexts_uploaded": sent})


def print_plan(found: PlanAnswer, *, as_json: bool) -> int:
    """The plan: one JSON object per service (`--json`), or a table and what would be built
    and pulled."""
    if as_json:
        for item in found.services:
            _emit_json(item.to_json())
        return int(ExitCode.OK)
    write_stdout(plan_table(found.services))
    for what, items in (("build", found.builds), ("pull", found.pulls)):
        if items:
            write_stdout(f"would {what}: {', '.join(items)}\n")
    note(f"dry run: nothing was changed (project {found.project})")
    return int(ExitCode.OK)


def run_redeploy(deployment_id: str, client_factory: Any, up: UpOptions) -> int:
    """`dockyard redeploy ID`: the recorded deployment's images again, followed like `up`."""
    from dockyard.client.origin import local_origin

    client: Client = client_factory()
    with client:
        started = client.redeploy(deployment_id, pull=up.pull,
                                  origin=local_origin(None))
        return follow_deployment(client, started.project, started.deployment, up,
                       {"redeploys": deployment_id})


def follow_deployment(client: Client, name: str, deployment: str, up: UpOptions,
            extra: dict[str, Any]) -> int:
    """Show a started deployment to its end (unless detached), then `ps` and the endpoints."""
    if up.as_json:
        _emit_json({"event": "deployment", "deployment": deployment, "project": name,
                    **extra})
    else:
        note(f"deployment {deployment} of project {name} started")
    if up.detach:
        if not up.as_json:
            note(f"follow it with `dockyard compose ps -p {name}` or `dockyard tail -p "
                 f"{name}`")
        return int(ExitCode.OK)
    try:
        status = _watch(client, deployment, up)
        undone = _rolled_back(client, deployment, up) if status == "failed" else None
    except KeyboardInterrupt:
        note(f"detached: deployment {deployment} goes on; follow it with `dockyard "
             f"compose ps -p {name}` or `dockyard tail -p {name}`")
        return int(ExitCode.INTERRUPTED)
    rows = client.services(name)
    if up.as_json:
        _emit_json({"event": "services", "services": [row.to_json() for row in rows],
                    "status": status})
    else:
        from dockyard.cli.commands.projects import expiry_line

        write_stdout(ps_table(rows) + expiry_line(rows) + endpoints_text(rows))
    if status == "timeout":
        raise WaitTimeout(f"deployment {deployment} did not settle within "
                          f"{up.wait_timeout:g}s; it goes on",
                          hint=f"follow it with `dockyard compose ps -p {name}`")
    # Acting on some services (`up SERVICE...`, `restart`): only those this deployment moved
    # count; the others were left as they are.
    failed = [r for r in rows if r.state != "SERVICE_DEPLOYMENT_COMPLETED"
              and (not (up.services or "restarts" in extra) or r.deployment == deployment)]
    if undone is not None:
        raise DeploymentFailed(f"deployment {deployment} failed and was rolled back: {undone}",
                               hint=f"`dockyard deployments show {deployment}` says what "
                               f"failed; `dockyard logs -p {name}` shows the output")
    if status != "succeeded" or failed:
        details = "; ".join(f"{r.service}: {r.state} ({r.reason})" for r in failed)
        raise DeploymentFailed(f"deployment {deployment} failed: {details or status}",
                               hint=f"see `dockyard logs -p {name}` for the services' output")
    return int(ExitCode.OK)


ROLLBACK_START_WAIT = 60.0  # seconds the server may take to admit an automatic rollback


def _rolled_back(client: Client, deployment: str, up: UpOptions) -> str | None:
    """When the failed `deployment` rolls back by itself (`--rollback-on-failure`,
    `failure_action: rollback`), follow the rollback too; what became of it, or None."""
    deadline = time.monotonic() + ROLLBACK_START_WAIT
    record = client.deployment(deployment).record
    while record.rollback_pending and time.monotonic() < deadline:
        time.sleep(0.2)
        record = client.deployment(deployment).record
    if record.rollback_refused:
        return f"no: the rollback was refused ({record.rollback_refused})"
    if not record.rolled_back_by:
        return None
    rollback = record.rolled_back_by
    if up.as_json:
        _emit_json({"event": "rollback", "deployment": rollback,
                    "failed": deployment, "rollback_of": record.rolled_back_to})
    else:
        note(f"deployment {deployment} failed; rolling back to {record.rolled_back_to} "
             f"(deployment {rollback})")
    status = _watch(client, rollback, up)
    return f"rollback {rollback} to {record.rolled_back_to} {status}"


def _watch(client: Client, deployment: str, up: UpOptions) -> str:
    """Show each state change until the deployment ends; returns its status or "timeout"."""
    items: queue.Queue[tuple[str, Any] | BaseException] = queue.Queue()

    def pump() -> None:
        try:
            for item in client.events(deployment):
                items.put(item)
        except BaseException as exc:  # handed to the main thread
            items.put(exc)

    threading.Thread(target=pump, daemon=True).start()
    deadline = None if up.wait_timeout is None else time.monotonic() + up.wait_timeout
    live = None if up.as_json else LiveStates()
    try:
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = items.get(timeout=wait)
            except queue.Empty:
                return "timeout"
            if isinstance(item, BaseException):
                raise item
            kind, data = item
            if kind == "end":
                return str(data.get("status"))
            if up.as_json:
                _emit_json({"event": "state", **data})
            elif live is not None:
                live.update(str(data["service"]), str(data["state"]), str(data["at"]),
                            str(data.get("reason", "")))
    finally:
        if live is not None:
            live.close()


def run_down(project: str, client_factory: Any, *, volumes: bool, detach: bool,
             as_json: bool, services: Sequence[str] = (), force: bool = False) -> int:
    client: Client = client_factory()
    with client:
        deployment = client.down(project, volumes=volumes, services=services, force=force)
        notes: list[str] = []
        if not detach:
            status = _watch(client, deployment, UpOptions(as_json=as_json))
            notes = client.deployment(deployment).notes
            if status != "succeeded":
                raise DeploymentFailed(
                    f"taking {project} down failed ({status})"
                    + "".join(f"\n  {n}" for n in notes),
                    hint="the lines above say what was kept or what stopped it (a volume "
                    "still in use by a container is kept); `dockyard deployments` and the "
                    "server log say more")
    if as_json:
        _emit_json({"event": "down", "deployment": deployment, "project": project,
                    "notes": notes, "services": list(services)})
    elif services:
        note(f"{', '.join(services)} of project {project} "
             f"{'is' if len(services) == 1 else 'are'} down (deployment {deployment}); the "
             "other services are left as they run")
    else:
        for line in notes:
            note(line)
        note(f"project {project} is down (deployment {deployment})"
             + ("" if volumes else "; its volumes are kept (use --volumes to remove them)"))
    return int(ExitCode.OK)


def run_restart(project: str, client_factory: Any, services: Sequence[str],
                up: UpOptions) -> int:
    """`compose restart [SERVICE...]`: replicas one at a time through the ingress rotation,
    followed like `up` (its states, then `ps`); exit codes are `up`'s."""
    client: Client = client_factory()
    with client:
        deployment = client.restart(project, services)
        return follow_deployment(client, project, deployment, up, {"restarts": list(services)})
