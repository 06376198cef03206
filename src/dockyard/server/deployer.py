"""One deployment, carried out: builds, then every service in `depends_on` order.

The request was validated before this runs (`server.requests`), so nothing here is a user's
mistake that could have been caught earlier; what can still fail (a build, a container that
crashes) fails that service alone and its dependents, and a changed service that fails leaves its
previous containers serving (start-first replacement).

Each service runs in its own thread: it waits for its image (built in the bounded build queue or
found on the engine), then for its dependencies' conditions, then does what `plan` decided.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from dockyard.compose.models import Condition, Service
from dockyard.lifecycle import BUILD_STATES, ServiceState, can_transition
from dockyard.plan import Action, ActionKind, Plan, plan
from dockyard.registry.failures import classify
from dockyard.registry.reference import Reference, parse_reference, pinned
from dockyard.runtime.driver import (
    LABEL_DEPLOYMENT,
    LABEL_REPLICA,
    BuildFence,
    ContainerInfo,
    ContainerSpec,
    ImageDetails,
)
from dockyard.runtime.errors import BuildFailed, BuildTimedOut, EngineError, PushFailed
from dockyard.runtime.model_env import provider_model
from dockyard.runtime.specs import (
    container_specs,
    is_job,
    network_name,
    project_labels,
    project_networks,
    service_labels,
    shared_service,
    volume_name,
)
from dockyard.secrets.resolve import configs_digests
from dockyard.server.build_log import BuildLogCap
from dockyard.server.build_reuse import build_tag, own_build_labels, reusable_build
from dockyard.server.configs import RedactText
from dockyard.server.control import ControlPlane, KeyedLocks
from dockyard.server.deploy_request import BuildInput, DeployRequest
from dockyard.server.health import Outcome, wait_healthy
from dockyard.server.image_plan import ImageUse
from dockyard.server.legacy import is_legacy, remove_legacy_network, with_legacy_volumes
from dockyard.server.model_endpoint import deployable
from dockyard.server.observe import by_service, global_nodes, healthy_as_is, observe
from dockyard.server.project_files import host_mounts
from dockyard.server.pull_phase import run_pulls
from dockyard.server.rollout import RolloutPolicy, rollout_policy
from dockyard.server.scrub import scrub_engine_text
from dockyard.store.store import Account

S = ServiceState
PROVIDER_IMAGE = "<provider>"  # the "image" of a provider service, which runs no container
DRAIN_SECONDS = 30.0  # the longest in-flight requests of a replaced replica may take to finish
BUILD_CPU_SHARES = 512  # a playground build step's CPU weight: half a container's (1024)


@dataclass(frozen=True, slots=True)
class ServiceJob:
    """One service's part of the plan, with what carrying it out needs."""

    name: str
    service: Service
    action: Action
    image_id: str
    live: list[ContainerInfo]  # its containers now (none being removed)


class _Progress:
    """What a service's dependents wait on."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.settled = threading.Event()
        self.ok = False
        self.started_ok = False  # containers were started (service_started holds)
        self.reason = ""

    def settle(self, ok: bool, reason: str) -> None:
        self.ok, self.reason = ok, reason
        self.started.set()
        self.settled.set()


class Deployer:
    def __init__(self, control: ControlPlane, account: Account, deployment: str,
                 request: DeployRequest) -> None:
        self.control = control
        self.driver = control.driver
        self.account = account
        self.deployment = deployment
        # Model providers' variables in their users' environments, the key among the configs
        project, configs = deployable(control.settings, request.project, request.configs)
        self.request = request = dataclasses.replace(request, project=project, configs=configs)
        self.project = request.project
        self.placement = control.placement(account, request.project.name)
        self.progress = {name: _Progress() for name in self.project.services}
        self._running_by_service: dict[str, list[ContainerInfo]] = {}  # when it began
        self.redact = RedactText(list(request.configs.values()))
        self.log_caps: dict[str, BuildLogCap] = {}  # stored build output, per service
        self.pulled: dict[str, str] = {}  # pull target -> image id (`_pull_images`)
        self.run_as: dict[str, str] = {}  # service -> reference its containers are made from
        # (service, reference, digest, image id) of each service's image, recorded at once
        self.image_records: list[tuple[str, str, str, str]] = []
        # The engine's answers about images, per deployment (a lost race only asks twice).
        self._ids: dict[str, str | None] = {}
        self._image_details: dict[str, ImageDetails | None] = {
            found.id: found for found in request.images.details}  # read at admission
        self._asking = KeyedLocks()  # one engine question per image, however many ask
        self._records_lock = threading.Lock()

    def _record(self, service: str, state: ServiceState, reason: str) -> None:
        self.control.record(self.account, self.deployment, service, state,
                            self.redact(scrub_engine_text(reason, self.control.settings.data)))

    def run(self) -> str:
        """Deploy; returns the deployment's final status (succeeded or failed)."""
        project = self.project
        labels = project_labels(self.placement)
        for network, internal in project_networks(project, self.placement).items():
            if network not in self.request.ensured_networks or internal:
                self.driver.ensure_network(network, labels, internal=internal)
            self.control.egress.protect(network)  # before any container
        if project.volumes:  # else nothing to keep, and no engine call to find out
            self.placement = with_legacy_volumes(self.driver, self.placement, project)
        for volume, resource in project.volumes.items():
            if not resource.external:
                self.driver.ensure_volume(volume_name(self.placement, project, volume), labels)
        running = self._running_by_service = self._running()
        if not self._pull_images(running):
            return "failed"  # nothing changed: every service was settled as it is
        for pulled in self.pulled.values():  # a pull may have given a known image its digest
            self._image_details.pop(pulled, None)
        images = self._images()
        self.control.store.record_images(self.account, self.deployment, self.image_records)
        decided = plan(project, observe(project, self.placement, running), {
            name: image_id for name, image_id in images.items() if image_id is not None},
            configs_digests(self.control.configs.digest_key, project, self.request.configs),
            force=self.request.force, services=self.request.services or None,
            global_nodes=global_nodes(self.driver, project))
        self.decided = decided
        self.control.store.set_deployment_plan(self.account, self.deployment,
                                               [action.to_json() for action in decided])
        kept = self._keep_at_once(decided, images)
        services = [name for name in project.services if name not in kept]
        with ThreadPoolExecutor(max_workers=max(1, len(services)),
                                thread_name_prefix=f"deploy-{self.deployment}") as pool:
            futures = [pool.submit(self._service, name, decided.action(name),
                                   images.get(name), running.get(name, []))
                       for name in services]
            for future in futures:
                future.result()
        for action in decided.removals:
            self._remove_service(action.service, running[action.service])
        if not self.request.services and any(  # a partial `up` leaves the others' network
                is_legacy(self.placement, c) for found in running.values() for c in found):
            remove_legacy_network(self.driver, self.placement)
        # Nothing carried out nor removed (a no-op `up`): what runs is what `_running` found.
        left = [c for found in running.values() for c in found] \
            if not services and not decided.removals \
            else self.driver.containers(labels, detail=False, fresh=True)  # files go by it
        self.control.secret_files.prune(self.placement, left)  # replaced containers' files
        self.control.project_files.prune(self.placement, left)  # go with them
        ok = all(p.ok for p in self.progress.values())
        return "succeeded" if ok else "failed"

    def _keep_at_once(self, decided: Plan, images: Mapping[str, str | None]) -> set[str]:
        """Settle in one write the services the plan keeps that are COMPLETED already and
        depend only on such services: nothing of theirs changes, so nothing needs a thread
        of its own, and a no-op `up` costs one store write whatever the project's size
        (the others are carried out by `_service`). Returns the services settled."""
        states = {s.service: s.state
                  for s in self.control.store.statuses(self.account, self.project.name)}
        kept: list[str] = []
        for action in decided:
            service = self.project.services.get(action.service)
            if service is None or action.kind is not ActionKind.KEEP or action.replicas == 0 \
                    or images.get(action.service) is None \
                    or states.get(action.service) is not S.SERVICE_DEPLOYMENT_COMPLETED \
                    or any(dep not in kept for dep in service.depends_on):
                continue
            kept.append(action.service)  # the plan's order: dependencies come first
        running = self._running_by_service
        for name in kept:
            self.control.ingress.serve(self.account.name, self.project, name,
                                       [c for c in running.get(name, [])
                                        if c.status == "running"])
        self.control.record_all(self.account, self.deployment, self.project.name,
                                [(name, S.SERVICE_DEPLOYMENT_COMPLETED,
                                  "unchanged: not restarted") for name in kept])
        for name in kept:
            self.progress[name].settle(True, "unchanged")
        return set(kept)

    def _pull_images(self, running: Mapping[str, list[ContainerInfo]]) -> bool:
        """Pull what the admission decided (`pull_phase`), before any service changes. On a
        failure, every service is settled and False returned: nothing else is done."""
        plan = self.request.images
        building = [name for name in self.request.builds
                    if name not in self.request.pins and self._needs_build(name)]
        outcome = run_pulls(self.control, self.account, plan, building, self._record)
        self.pulled = dict(outcome.pulled)
        if outcome.ok:
            return True
        first = sorted(outcome.failed.items())[0]
        stopped = (f"the deployment stopped before changing anything: the image of "
                   f"{first[0]} could not be pulled")
        for name, service in self.project.services.items():
            progress = self.progress[name]
            why = outcome.failed.get(name)
            if why is not None:
                self._fail(name, why)
                progress.settle(False, why)
                continue
            live = [c for c in running.get(name, []) if c.status != "removing"]
            if healthy_as_is(service, live) and self._state(name) not in BUILD_STATES:
                self._record(name, S.UPDATE_QUEUED, "waiting for the deployment's pulls")
                self._record(name, S.SERVICE_DEPLOYMENT_COMPLETED,
                             f"kept the running version: {stopped}")
            else:
                self._fail(name, f"not changed: {stopped}")
            progress.settle(False, stopped)
        return False

    def _state(self, name: str) -> ServiceState:
        return self.control.current_state(self.account, self.deployment, name)

    def _fail(self, name: str, reason: str) -> None:
        """Settle a service that goes no further, by the moves the state machine allows: a
        build (or a build's base pull) ends as BUILD_FAILED; anything else is queued first if
        it was not, then SERVICE_DEPLOYMENT_FAILED."""
        if self._state(name) in BUILD_STATES:
            self._record(name, S.BUILD_FAILED, reason)
            return
        if self._state(name) is not S.UPDATE_QUEUED:
            self._record(name, S.UPDATE_QUEUED, "queued")
        self._record(name, S.SERVICE_DEPLOYMENT_FAILED, reason)

    def _enter(self, name: str, state: ServiceState, reason: str) -> None:
        """Record `state`, queued first when the state machine asks for it (a service that
        comes from a build state, or from nothing)."""
        current = self._state(name)
        if current is not state and not can_transition(current, state):
            self._record(name, S.UPDATE_QUEUED, "queued")
        self._record(name, state, reason)

    def _needs_build(self, name: str) -> bool:
        """Whether the service's image will be built now (else an earlier build is reused)."""
        return self._reusable_build(name, self.project.services[name],
                                    self.request.builds[name]) is None

    def _rebuild(self, name: str) -> bool:
        return self.request.rebuild or name in self.request.images.rebuild

    def _running(self) -> dict[str, list[ContainerInfo]]:
        # One engine call, whatever the project's size: the summary says all a plan needs
        # (labels, state, health, exit code, address).
        return by_service(self.driver.containers(project_labels(self.placement), detail=False,
                                                 fresh=True))

    # -- what runs, and the images ---------------------------------------------------------------
    def _images(self) -> dict[str, str | None]:
        """Every service's image id, built or found (builds in parallel within the server's
        build slots); None for a service whose image failed (recorded already)."""
        def one(name: str) -> str | None:
            if "provider" in self.project.services[name].extra:
                return PROVIDER_IMAGE  # runs no container
            try:
                return self._image(name, self.project.services[name])
            except Exception as exc:  # an engine error: fail this service, say why
                reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                self._fail(name, str(reason))
                return None

        # Builds, and images admission did not read (pulled since), ask the engine, in
        # parallel; the others are looked up in what admission read (a thread per service
        # cost more than the work).
        names = list(self.project.services)
        asking = [n for n in names if self._asks_engine(n)]
        found = {name: one(name) for name in names if name not in asking}
        if asking:
            with ThreadPoolExecutor(max_workers=len(asking),
                                    thread_name_prefix=f"image-{self.deployment}") as pool:
                found.update(zip(asking, pool.map(one, asking), strict=True))
        return {name: found[name] for name in names}

    def _asks_engine(self, name: str) -> bool:
        """Whether finding the service's image asks the engine (a build, or details of an
        image admission did not read)."""
        if name in self.request.builds and name not in self.request.pins:
            return True
        use = self.request.images.service(name)
        if use is None:
            return False
        image_id = self.pulled.get(use.target) or use.image_id
        return image_id is None or image_id not in self._image_details

    # -- one service ---------------------------------------------------------------------------
    def _service(self, name: str, action: Action | None, image_id: str | None,
                 current: list[ContainerInfo]) -> None:
        progress = self.progress[name]
        try:
            if image_id is None or action is None:
                progress.settle(False, "its image failed")
            else:
                self._carry_out(ServiceJob(name, self.project.services[name], action, image_id,
                                           [c for c in current if c.status != "removing"]),
                                progress)
        except Exception as exc:  # a bug or an engine error: fail this service, say why
            reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            self._record(name, S.SERVICE_DEPLOYMENT_FAILED, str(reason))
            progress.settle(False, str(reason))
        finally:
            if not progress.settled.is_set():
                progress.settle(False, "stopped")

    def _carry_out(self, job: ServiceJob, progress: _Progress) -> None:
        """Do what the plan decided for one service, once its dependencies allow."""
        name, service, action = job.name, job.service, job.action
        failed = self._wait_dependencies(service)
        if failed:
            self._fail(name, failed)
            progress.settle(False, failed)
            return
        if "provider" in service.extra:
            model = provider_model(service)
            self._enter(name, S.SERVICE_DEPLOYMENT_COMPLETED,
                        f"model {model} served by the server's model endpoint (no container)"
                        if model else "a provider service: no container")
            progress.settle(True, "provider")
            return
        if action.kind is ActionKind.KEEP:
            # One event, not two: a no-op `up` of a large project writes one per service.
            if action.replicas == 0:
                self._enter(name, S.DEPLOYMENT_SCALED_IN, "scaled to 0 replicas")
                progress.settle(True, "scaled to zero")
                return
            self.control.ingress.serve(self.account.name, self.project, name,
                                       [c for c in job.live if c.status == "running"])
            self._enter(name, S.SERVICE_DEPLOYMENT_COMPLETED, "unchanged: not restarted")
            progress.settle(True, "unchanged")
            return
        self._record(name, S.UPDATE_QUEUED, f"{action.kind.value}: {action.reason}")
        if action.kind is ActionKind.SCALE and action.replicas == 0:
            self._withdraw(name, service, job.live)
            self._stop_all(job.live)
            self._record(name, S.DEPLOYMENT_SCALED_IN, "scaled to 0 replicas")
            progress.settle(True, "scaled to zero")
            return
        if action.kind is ActionKind.SCALE:
            self._scale(job, progress)
            return
        self._replace(job, progress, fresh=action.kind is ActionKind.CREATE)

    # -- images ----------------------------------------------------------------------------------
    def _image(self, name: str, service: Service) -> str | None:
        """The image id the service runs (and, in `run_as`, the reference its containers are
        created from: pinned by digest when a registry gave one). An `image:` was decided at
        admission (`image_plan`: the account's own build, an allowed image, or a registry
        image checked with the account's access) and pulled by `_pull_images`; a build is
        tagged only in the account's own repository, never under a name the tenant chose."""
        build = self.request.builds.get(name)
        if build is None or name in self.request.pins:
            reference = self.request.pins.get(name) or service.image or ""
            use = self.request.images.service(name)
            image_id = self._planned_image(use) if use is not None else None
            if image_id is None:  # checked before the deployment began; removed since
                self._record(name, S.UPDATE_QUEUED, f"image {reference}")
                self._record(name, S.SERVICE_DEPLOYMENT_FAILED,
                             f"image {reference!r} is no longer on the engine; run `up` "
                             "again to pull it")
                return None
            by_digest = use.target if use is not None and "@" in use.target else None
            if by_digest is not None:
                self.run_as[name] = by_digest  # pinned: the registry's digest, not a tag
            self._note_image(name, reference, image_id, by_digest)
            return image_id  # queued (or kept) by `_carry_out`, with the plan's reasons
        tag = build_tag(self.placement, name, build)
        existing = self._reusable_build(name, service, build)
        if existing is not None:
            if service.image and not self.control.settings.playground:
                self.driver.tag_image(existing, service.image)
            self._record(name, S.UPDATE_QUEUED, "build context and settings unchanged: "
                         "image reused")
            return self._pushed(name, service, tag, existing)
        built = self._build(name, service, build, tag)
        return None if built is None else self._pushed(name, service, tag, built)

    def _planned_image(self, use: ImageUse) -> str | None:
        return (self.pulled.get(use.target) or use.image_id
                or self._engine_image_id(use.target))

    def _reusable_build(self, name: str, service: Service, build: BuildInput) -> str | None:
        """An earlier build of the same inputs, unless a rebuild is asked (`--build`,
        `pull_policy: build`)."""
        if self._rebuild(name):
            return None
        return reusable_build(self.driver, self.placement, name, service, build,
                              playground=self.control.settings.playground)

    def _pushed(self, name: str, service: Service, tag: str, image_id: str) -> str | None:
        """With a registry configured (`--registry`), the built image is pushed there and
        its containers run it by digest; else it stays on this engine, known by its id."""
        registry = self.control.settings.registry
        if registry is None:
            self._note_image(name, tag, image_id, None)
            return image_id
        remote = f"{registry}/{tag}"
        self.driver.tag_image(image_id, remote)
        host = registry.partition("/")[0]
        auth = self.control.registries.auth_for(self.account, host)
        self._record(name, S.UPDATE_QUEUED, f"pushing {remote}")
        try:
            digest = self.driver.push(remote, auth=auth.as_engine() if auth else None)
        except PushFailed as exc:
            failure = classify(exc.engine_message or exc.message, host=host)
            self._record(name, S.SERVICE_DEPLOYMENT_FAILED,
                         f"the push of the built image to {host} failed: {failure.reason}; "
                         f"{failure.hint}")
            return None
        self.run_as[name] = pinned(remote, digest)
        self._note_image(name, tag, image_id, self.run_as[name])
        self._record(name, S.UPDATE_QUEUED, f"pushed as {self.run_as[name]}")
        return image_id

    def _engine_image_id(self, reference: str) -> str | None:
        """Asked once per deployment and reference (many services name the same image); the
        one answer holds the image's details too (`_details` then asks nothing)."""
        with self._asking(f"id\0{reference}"):  # the services' threads ask at once
            if reference not in self._ids:
                details = self.driver.image_details(reference)
                self._ids[reference] = details.id if details is not None else None
                if details is not None:
                    with self._asking(f"details\0{details.id}"):
                        self._image_details.setdefault(details.id, details)
            return self._ids[reference]

    def _details(self, image_id: str) -> ImageDetails | None:
        with self._asking(f"details\0{image_id}"):
            if image_id not in self._image_details:
                self._image_details[image_id] = self.driver.image_details(image_id)
            return self._image_details[image_id]

    def _note_image(self, name: str, reference: str, image_id: str,
                    digest: str | None) -> None:
        """Record what the service runs: its registry digest when it has one (the image's
        own, for an image found on the engine that came from a registry), else its id."""
        if digest is None:
            details = self._details(image_id)
            digest = _digest_for(reference, details.digests) if details else None
        with self._records_lock:
            self.image_records.append((name, reference, digest or image_id, image_id))

    def _build(self, name: str, service: Service, build: BuildInput, tag: str) -> str | None:
        with self._build_turn(name), self.control.build_slots:
            context = self.control.contexts.get(build.digest, str(self.account.id))
            if context is None:
                self._record(name, S.BUILD_FAILED, f"the build context {build.digest} is gone "
                             "from the server; run `up` again to upload it")
                return None
            self._record(name, S.BUILD_PROVISIONING,
                         f"context {build.digest[:19]} received and checked")
            self._record(name, S.BUILD_PENDING, "build slot reserved")
            self._record(name, S.BUILD_ACTIVATING, f"starting the build of {tag}")
            running = [False]
            buffer: list[str] = []

            def on_log(line: str) -> None:
                if not line.strip():
                    return
                if not running[0]:
                    running[0] = True
                    self._record(name, S.BUILD_RUNNING, "building")
                buffer.append(line)
                if len(buffer) >= 20 or line.startswith("Step "):
                    self._flush(name, buffer)

            try:
                image_id = self.driver.build(
                    context, tag=tag, dockerfile=build.dockerfile, build_args=build.args,
                    target=build.target,
                    labels={**self._build_labels(name, service),
                            LABEL_DEPLOYMENT: self.deployment},
                    on_log=on_log, fence=self._build_fence())
            except BuildFailed as exc:
                self._flush(name, buffer, final=True)
                tail = " | ".join(exc.last_lines[-5:])
                self._record(name, S.BUILD_FAILED, exc.message
                             if isinstance(exc, BuildTimedOut) or not tail
                             else f"{exc.step or 'the build'} failed: {tail}")
                return None
            self._flush(name, buffer, final=True)
            if not running[0]:
                self._record(name, S.BUILD_RUNNING, "building")
            self._record(name, S.BUILD_STOPPING, f"image {image_id[:19]} tagged {tag}")
            if service.image and not self.control.settings.playground:
                self.driver.tag_image(image_id, service.image)  # byoc: one trusted user
        self._record(name, S.UPDATE_QUEUED, "image built")
        return image_id

    @contextmanager
    def _build_turn(self, name: str) -> Iterator[None]:
        """Wait for the account's turn (playground: one build per account at a time, taken
        before a shared slot so a waiting build holds none), then for a shared build slot."""
        if not self.control.settings.playground:
            self._record(name, S.BUILD_QUEUED, "waiting for a build slot")
            yield
            return
        turn = self.control.build_turn(self.account.name)
        if not turn.acquire(blocking=False):
            self._record(name, S.BUILD_QUEUED, "waiting for this account's other build to "
                         "finish (one build at a time per account)")
            turn.acquire()
        try:
            self._record(name, S.BUILD_QUEUED, "waiting for a build slot")
            yield
        finally:
            turn.release()

    def _build_fence(self) -> BuildFence:
        """Playground: the build's steps run on the project's own network (ensured and fenced
        by `run` before any service thread starts), under the account's memory limit, with
        half a container's CPU weight. Byoc builds keep the engine's default bridge and no
        limits (one trusted user). Both stop at the server's build timeout."""
        settings = self.control.settings
        timeout = settings.build_timeout_seconds or None
        limits = settings.limits
        if not settings.playground or limits is None:
            return BuildFence(timeout=timeout)
        return BuildFence(network=network_name(self.placement), memory=limits.memory or None,
                          cpu_shares=BUILD_CPU_SHARES, timeout=timeout)

    def _build_labels(self, name: str, service: Service) -> dict[str, str]:
        return own_build_labels(self.placement, name, service)

    def _flush(self, name: str, buffer: list[str], final: bool = False) -> None:
        """Store the buffered build lines within the service's budget (`BuildLogCap`): past
        it, one note says how much was dropped (written once, brought up to date at the end)."""
        cap = self.log_caps.setdefault(
            name, BuildLogCap(self.control.settings.max_build_log_bytes))
        store = self.control.store
        kept = cap.admit(buffer)
        if kept:
            store.append_build_log(self.account, self.deployment, name, kept)
        if cap.truncated and not cap.note_id:
            cap.note_id = store.append_build_log(self.account, self.deployment, name,
                                                 [cap.note()])
        elif cap.truncated and final:
            store.replace_build_log_line(self.account, self.deployment, cap.note_id,
                                         cap.note())
        if buffer:
            buffer.clear()
            self.control.notify()

    # -- dependencies ------------------------------------------------------------------------------
    def _wait_dependencies(self, service: Service) -> str | None:
        """None when every dependency's condition holds, else why the service cannot start."""
        for dep, spec in service.depends_on.items():
            progress = self.progress.get(dep)
            if progress is None:
                continue
            if spec.condition == Condition.STARTED:
                progress.started.wait()
                if progress.settled.is_set() and not progress.ok and spec.required \
                        and not progress.started_ok:
                    return f"dependency {dep!r} failed: {progress.reason}"
                continue
            progress.settled.wait()
            if not progress.ok and spec.required:
                return f"dependency {dep!r} failed: {progress.reason}"
        return None

    # -- containers --------------------------------------------------------------------------------
    def _start(self, job: ServiceJob, replicas: int, first_index: int) -> list[str]:
        name, service = job.name, job.service
        mounts = self.control.secret_files.write(self.placement, self.project, service,
                                                 self.deployment, self.request.configs)
        settings = self.control.settings
        mounts += self.control.project_files.mounts(  # project files, then allowed host paths
            self.placement, service, self.deployment, self.control.contexts,
            str(self.account.id)) + tuple(host_mounts(service, settings.allow_host_paths))
        specs = container_specs(self.project, service, self.placement,
                                image=self.run_as.get(name, job.image_id),
                                deployment=self.deployment,
                                config_hash=job.action.config_hash,
                                config_parts=job.action.parts,
                                replicas=replicas, first_index=first_index,
                                configs=self.request.configs, extra_mounts=mounts,
                                log_max_size=settings.log_max_size,
                                log_max_files=settings.log_max_files)
        limits = settings.limits
        if limits is not None:  # a service that sets no limit gets the account's maximum
            specs = [dataclasses.replace(
                spec, nano_cpus=spec.nano_cpus or (int(limits.cpus * 1e9) or None),
                memory=spec.memory or limits.memory or None,
                pids_limit=_pids(spec.pids_limit, limits.pids)) for spec in specs]
        return [self.driver.run(self._joined(spec)) for spec in specs]

    def _joined(self, spec: ContainerSpec) -> ContainerSpec:
        """`service:X` namespace modes as the engine takes them: `container:<id>` of X's
        first running container (this deployment's, when X was just replaced)."""
        network, ipc = shared_service(spec.network_mode), shared_service(spec.ipc_mode)
        if network is not None:
            spec = dataclasses.replace(
                spec, network_mode=f"container:{self._namespace_holder(network)}")
        if ipc is not None:
            spec = dataclasses.replace(
                spec, ipc_mode=f"container:{self._namespace_holder(ipc)}")
        return spec

    def _namespace_holder(self, service: str) -> str:
        found = [c for c in self.driver.containers(service_labels(self.placement, service),
                                                   detail=False) if c.status == "running"]
        fresh = [c for c in found if c.deployment == self.deployment] or found
        if not fresh:
            raise EngineError(f"service {service!r} has no running container whose "
                              "namespaces this one could join",
                              hint=f"check why {service} is not running (`dockyard compose "
                              f"ps`, `dockyard logs {service}`)")
        return min(fresh, key=lambda c: int(c.labels.get(LABEL_REPLICA, "0") or 0)).id

    def _settle(self, service: Service, ids: list[str]) -> Outcome:
        settings = self.control.settings
        http_port = (service.ingress_ports[0].target
                     if service.ingress_ports and service.healthcheck is None else None)
        check = service.healthcheck
        test = check.test if check is not None and not check.disable else None
        has_check = bool(test) and test is not None and test[0] != "NONE"
        monitor = self._policy(service).monitor_seconds  # update_config.monitor, if given
        return wait_healthy(self.driver, ids, job=is_job(service), has_healthcheck=has_check,
                            http_port=http_port, stabilization=settings.stabilization_seconds
                            if monitor is None else monitor,
                            timeout=settings.deploy_timeout_seconds,
                            cancelled=self.control.shutting_down.is_set,
                            events=self.control.engine_events)

    def _stop_all(self, containers: list[ContainerInfo]) -> None:
        for info in containers:
            self.control.expect_stop(info.id)
        timeout_threads = [threading.Thread(target=self._stop_one, args=(info,))
                           for info in containers]
        for thread in timeout_threads:
            thread.start()
        for thread in timeout_threads:
            thread.join()

    def _stop_one(self, info: ContainerInfo) -> None:
        self.driver.stop(info.id)
        self.driver.remove(info.id)

    # -- the ingress -------------------------------------------------------------------------------
    def _publish(self, name: str, service: Service, new: list[ContainerInfo]) -> str | None:
        """Put healthy new replicas of a public service in rotation (beside the old ones, which
        `_withdraw` then drains). None when they serve; else why not."""
        if not service.is_public or not self.control.ingress.enabled:
            return None
        ingress = self.control.ingress
        running = [c for c in new if c.status == "running"]
        if ingress.add(self.account.name, self.project, name, running):
            return None
        ports = ", ".join(str(p.target) for p in service.ingress_ports)
        return (f"the ingress proxy cannot reach the new replicas on port {ports} "
                f"(its checks fail)")

    def _withdraw(self, name: str, service: Service, old: list[ContainerInfo]) -> None:
        """Take replicas out of rotation and let their in-flight requests finish."""
        if old and service.is_public:
            self.control.ingress.drain(self.account.name, self.project.name, name, old,
                                       timeout=DRAIN_SECONDS)

    def _replace(self, job: ServiceJob, progress: _Progress, fresh: bool) -> None:
        """Start-first: new containers, healthy and in rotation, then the old ones drain and
        go. Stop-first where `replacement_order` says so (jobs, host ports, written volumes).
        A changed service goes in batches of `update_config.parallelism` replicas, `delay`
        apart (`rollout`; the driver's default when unset: all at once on one engine); what
        a failed batch does to the rest is its `failure_action`."""
        name, service, replicas = job.name, job.service, job.action.replicas
        policy = self._policy(service)
        batches = policy.batches(replicas) if job.live and not fresh else \
            [range(1, replicas + 1)]
        old = sorted(job.live, key=_replica_number)
        verb = "starting" if fresh else "replacing the previous version" + \
            (f" ({job.action.reason})" if job.action.reason else "")
        done, settled = 0, ""  # replicas updated, how the last batch settled
        failed: list[tuple[int, str]] = []  # each failed batch: its number, why
        for index, numbers in enumerate(batches):
            last = index == len(batches) - 1
            retired, old = (old, []) if last else (old[:len(numbers)], old[len(numbers):])
            count = len(numbers)
            note = f"{verb}: {count} container{'s' if count != 1 else ''} started" \
                if len(batches) == 1 else \
                f"{verb}: {done} of {replicas} replicas updated, {count} more started"
            ok, why = self._replace_batch(job, progress, policy, numbers, retired, note)
            if ok:
                done, settled = done + count, why
            else:
                failed.append((index + 1, why))
                if policy.failure_action != "continue":
                    break
            if not last:
                if ok:
                    self._record(name, S.SERVICE_DEPLOYMENT_PENDING,
                                 f"{verb}: {done} of {replicas} replicas updated")
                self.control.shutting_down.wait(policy.delay_seconds)
        if not failed:
            self._record(name, S.SERVICE_DEPLOYMENT_COMPLETED, settled)
            progress.settle(True, settled)
            return
        reason = failed[0][1] if len(batches) == 1 else \
            _partial(failed, len(batches), done, replicas, policy)
        self._record(name, S.SERVICE_DEPLOYMENT_FAILED, reason)
        progress.settle(False, reason)

    def _replace_batch(self, job: ServiceJob, progress: _Progress, policy: RolloutPolicy,
                       numbers: range, old: list[ContainerInfo], note: str
                       ) -> tuple[bool, str]:
        """Replace `old` by the new replicas `numbers`: (True, how they settled) when they
        serve, else (False, why not), a start-first batch's new replicas removed (its old
        ones keep serving)."""
        name, service = job.name, job.service
        stop_first = policy.order == "stop-first"
        if stop_first:
            self._withdraw(name, service, old)
            self._stop_all(old)
        # Names carry the deployment id, so new replicas number from 1 beside the old ones.
        ids = self._start(job, len(numbers), numbers.start)
        self._record(name, S.SERVICE_DEPLOYMENT_PENDING, note + self._pinned(service, ids))
        progress.started_ok = True
        progress.started.set()
        outcome = self._settle(service, ids)
        if not outcome.ok:
            if old and not stop_first:
                self._stop_all([i for i in (self.driver.inspect(c) for c in ids)
                                if i is not None])
                return False, f"{outcome.reason}; the previous version keeps running"
            return False, outcome.reason
        new = [i for i in (self.driver.inspect(c) for c in ids) if i is not None]
        unreachable = self._publish(name, service, new)
        if unreachable:
            self._stop_all(new)
            return False, unreachable + ("; the previous version keeps serving"
                                         if old and not stop_first else "")
        if not stop_first:
            self._withdraw(name, service, old)
            self._stop_all(old)
        return True, outcome.reason

    @functools.cached_property
    def _rolling_back(self) -> bool:
        """Whether this deployment is a rollback (it reads `rollback_config`)."""
        record = self.control.store.deployment(self.account, self.deployment)
        return record is not None and record.action == "rollback"

    def _policy(self, service: Service) -> RolloutPolicy:
        return rollout_policy(service, rollback=self._rolling_back,
                              default_parallelism=self.driver.default_update_parallelism)

    def _pinned(self, service: Service, ids: list[str]) -> str:
        """The warning for a service a multi-node driver pinned to its volume's node."""
        if not ids or not any(m.type == "volume" and m.source and not m.read_only
                              for m in service.volumes):
            return ""
        info = self.driver.inspect(ids[0])
        node = info.pinned_node if info is not None else ""
        return (f"; warning: pinned to node {node}, which holds its named volume: it cannot "
                f"move if {node} is lost") if node else ""

    def _scale(self, job: ServiceJob, progress: _Progress) -> None:
        name, service, live, replicas = job.name, job.service, job.live, job.action.replicas
        # Scaling in removes the replicas that do not run first (a global service's replica
        # on a node that left), then the highest numbers.
        keep = sorted(live, key=lambda c: (c.status != "running", _replica_number(c)))
        if replicas < len(keep):
            self._withdraw(name, service, keep[replicas:])
            self._stop_all(keep[replicas:])
            self._record(name, S.SERVICE_DEPLOYMENT_COMPLETED,
                         f"scaled in to {replicas} replicas")
            progress.settle(True, "scaled in")
            return
        first = 1 + max((_replica_number(c) for c in keep), default=0)
        ids = self._start(job, replicas - len(keep), first)
        self._record(name, S.SERVICE_DEPLOYMENT_PENDING, f"scaling out to {replicas} replicas")
        progress.started_ok = True
        progress.started.set()
        outcome = self._settle(service, ids)
        new = [i for i in (self.driver.inspect(c) for c in ids) if i is not None]
        unreachable = None if not outcome.ok else self._publish(name, service, new)
        if not outcome.ok or unreachable:
            reason = unreachable or outcome.reason
            if unreachable:
                self._stop_all(new)
            self._record(name, S.SERVICE_DEPLOYMENT_FAILED, reason)
            progress.settle(False, reason)
            return
        self._record(name, S.SERVICE_DEPLOYMENT_COMPLETED, f"scaled out: {outcome.reason}")
        progress.settle(True, outcome.reason)

    def _remove_service(self, name: str, containers: list[ContainerInfo]) -> None:
        self.control.ingress.forget(self.account.name, self.project.name, name)
        self._stop_all(containers)
        self._record(name, S.DEPLOYMENT_SCALED_IN, "removed: no longer in the project")
        self.control.store.forget_services(self.account, self.project.name, [name])


def _replica_number(info: ContainerInfo) -> int:
    return int(info.labels.get(LABEL_REPLICA, "0") or 0)


def _partial(failed: Sequence[tuple[int, str]], batches: int, done: int, replicas: int,
             policy: RolloutPolicy) -> str:
    """Why a service replaced in batches failed: what runs now first (a reason is cut at
    `scrub.MAX_CHARS`), then the first failed batch (number, why)."""
    at, why = failed[0]
    if done == 0 and policy.order == "start-first" and policy.failure_action != "continue":
        return why  # its first batch failed: nothing changed
    now = f"{done} of {replicas} replicas run the new version, the others the previous one"
    if policy.failure_action == "continue":
        return (f"{now}; {len(failed)} of {batches} batches failed (`dockyard rollback` "
                f"restores the previous version), the first, batch {at}: {why}")
    then = "the deployment rolls back to the previous one" \
        if policy.failure_action == "rollback" else \
        "paused there: `dockyard rollback` restores the previous version"
    return f"{now}; batch {at} of {batches} failed, {then}: {why}"


def _digest_for(reference: str, digests: Sequence[str]) -> str | None:
    """The `repo@sha256:...` of `digests` that belongs to `reference`'s repository (an image
    can come from several), else None."""
    parsed = parse_reference(reference)
    if parsed is not None:
        for digest in digests:
            found = parse_reference(digest)
            if found is not None and _repository(found) == _repository(parsed):
                return digest
    return None  # another repository's digest says nothing of this name


def _repository(reference: Reference) -> str:
    """The fully qualified repository, without tag or digest (a registry's port kept):
    `busybox:1` is `docker.io/library/busybox`, `127.0.0.1:5000/a/b@sha256:..` is
    `127.0.0.1:5000/a/b`."""
    qualified = Reference(reference.domain, reference.path, None, None).normalized
    return qualified.removesuffix(":latest")


def _pids(asked: int | None, limit: int) -> int | None:
    """The processes a container may run: the service's own limit when it is lower than the
    account's, else the account's (0: none). 0 or less means unlimited to the engine, so it
    never passes as "lower" (the request check refuses it first)."""
    if not limit:
        return asked
    return asked if asked is not None and 0 < asked < limit else limit
