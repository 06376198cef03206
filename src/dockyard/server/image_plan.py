"""Which image each service runs, and what must be pulled, decided before a deployment begins.

For every service that does not build, and for the base images (`FROM`, `COPY --from`) of
every build, admission (`admission.check_request`) decides:

- the reference the engine is given (a tag written out, so a bare hex string is never read
  as an image id);
- whether it is pulled, by the service's `pull_policy` (`registry.policy`; `up --pull`
  replaces it). Base images are pulled when missing, and refreshed when `build.pull: true`
  or `up --build --pull always` asks;
- the registry's answer for every image that will be pulled, asked now with the account's own
  credentials (`Driver.registry_digest`: a manifest request, nothing downloaded). An unknown
  tag, refused credentials or an unreachable registry are refused here, before anything is
  recorded or replaced, naming the service, the image and the registry. The digest the
  registry gave is what the deployment pulls and runs (`repo@sha256:...`), so a tag that
  moves between the check and the pull changes nothing.

On a playground server an image is one of: the account's own build, an image the operator
allows (`--allow-image`: used as it is on the engine), or any other registry image, which the
account may pull with its own access (`--tenant-pulls`, on by default). For those, the
registry is asked at every use, whatever the engine's cache holds: an image another account
pulled with its credentials is used only when this account's own request to the registry
gives the same digest (Kubernetes' AlwaysPullImages, without downloading again). A refused
answer names the registry's reply, which does not depend on what the engine holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from dockyard.build.dockerfile import DockerfileError, image_uses, read_dockerfile
from dockyard.compose.models import Project, Service
from dockyard.diagnostics import Diagnostic, Location, error
from dockyard.registry.failures import classify
from dockyard.registry.policy import PullKind, PullPolicy, must_pull, parse_pull_policy
from dockyard.registry.reference import (
    image_id_of,
    parse_reference,
    pinned,
    registry_host,
)
from dockyard.runtime.driver import ImageDetails, ImageInfo
from dockyard.runtime.errors import PullFailed
from dockyard.server.build_reuse import reusable_build
from dockyard.server.control import ControlPlane
from dockyard.server.deploy_request import BuildInput
from dockyard.server.images import (
    BUILD_REPOSITORY_PREFIX,
    NOT_AVAILABLE_HINT,
    Verdict,
    decide,
    own_images,
)
from dockyard.server.registry_access import ALLOW_HINT, refused_registry
from dockyard.store.store import Account

MISSING_HINT = ("remove `pull_policy: never` (or `up --pull never`) so it is pulled, add a "
                "`build:` section, or load the image on the server first")
CHECKS_AT_ONCE = 4  # registry checks run in parallel during one admission
CHECK_TIMEOUT = 30.0  # seconds a registry has to answer one check

_CODES = {"unknown": "image-not-found", "unauthorized": "registry-unauthorized",
          "unreachable": "registry-unreachable", "timeout": "registry-unreachable"}


@dataclass(frozen=True, slots=True)
class ImageUse:
    """One image a deployment uses: a service's `image:`, or a base image of its build."""

    service: str
    reference: str  # as the project (or the Dockerfile) wrote it
    engine_reference: str  # what the engine is given: tag written out, or pinned by digest
    registry: str  # where it is pulled from: whose credentials go with it
    pull: bool  # pulled before any service changes
    may_pull: bool = True  # pulled when the engine lacks it (not under `pull_policy: never`)
    check: bool = False  # the registry is asked first (every pull, and playground uses)
    digest: str | None = None  # the registry's answer at admission (sha256:...)
    image_id: str | None = None  # known at admission: an own build, or found on the engine
    base: bool = False  # a build's FROM / COPY --from image
    location: Location = field(default_factory=Location)

    @property
    def target(self) -> str:
        """What is pulled and run: pinned by the checked digest when there is one."""
        return pinned(self.engine_reference, self.digest) if self.digest \
            else self.engine_reference


@dataclass(frozen=True, slots=True)
class ImagePlan:
    uses: tuple[ImageUse, ...] = ()
    rebuild: frozenset[str] = frozenset()  # services whose pull_policy is `build`
    # What admission read of the images found on the engine (their tags and registry
    # digests), so the deployment records what runs without asking the engine again.
    details: tuple[ImageDetails, ...] = ()

    def service(self, name: str) -> ImageUse | None:
        return next((u for u in self.uses if u.service == name and not u.base), None)

    def bases(self, name: str) -> tuple[ImageUse, ...]:
        return tuple(u for u in self.uses if u.service == name and u.base)


def plan_images(control: ControlPlane, project: Project, builds: Mapping[str, BuildInput],
                account: Account | None, context_owner: str | None,
                pull: str | None = None, rebuild: bool = False,
                pins: Mapping[str, str] | None = None,
                ) -> tuple[ImagePlan, list[Diagnostic]]:
    """The project's images and what to pull, or why it cannot deploy (diagnostics).
    `pins` (a redeployment) name, per service, the exact image it must run instead."""
    planner = _Planner(control, account, pull, rebuild)
    for name, service in sorted(project.services.items()):
        pin = (pins or {}).get(name)
        if pin is not None:
            planner.pinned_image(name, pin)
        elif service.build is None:
            if service.image:
                planner.service_image(name, service)
        else:
            if _policy(service).kind is PullKind.BUILD:
                planner.rebuild.add(name)
            build = builds.get(name)
            if build is not None and (control.settings.playground or rebuild
                                      or name in planner.rebuild
                                      or not _reused(control, account, project, name, build)):
                # A build that will run: its bases are checked (and pulled) now. A single
                # user's build reused as it is reads no base, so none is asked for.
                planner.build_bases(name, build, context_owner)
    uses = planner.check_registries()
    return ImagePlan(tuple(uses), frozenset(planner.rebuild),
                     tuple(planner.details.values())), planner.problems


def _reused(control: ControlPlane, account: Account | None, project: Project, name: str,
            build: BuildInput) -> bool:
    """Whether an earlier build of the same inputs will be reused (no build runs)."""
    if account is None:
        return False
    placement = control.placement(account, project.name)
    return reusable_build(control.driver, placement, name, project.services[name], build,
                          playground=control.settings.playground) is not None


def _policy(service: Service) -> PullPolicy:
    return parse_pull_policy(str(service.extra.get("pull_policy") or "missing"))


class _Planner:
    def __init__(self, control: ControlPlane, account: Account | None, pull: str | None,
                 rebuild: bool) -> None:
        self.control = control
        self.settings = control.settings
        self.driver = control.driver
        self.account = account
        self.override = pull
        self.refresh_bases = rebuild and pull == "always"
        self.uses: list[ImageUse] = []
        self.problems: list[Diagnostic] = []
        self.rebuild: set[str] = set()
        self._own: list[ImageInfo] | None = None
        self._ids: dict[str, str | None] = {}  # reference -> image id (`_image_id`)
        self.details: dict[str, ImageDetails] = {}  # image id -> what the engine said of it

    def _image_id(self, reference: str) -> str | None:
        """The engine's answer for `reference`, asked once per admission (many services of a
        project name the same image)."""
        if reference not in self._ids:
            found = self.driver.image_details(reference)
            self._ids[reference] = None if found is None else found.id
            if found is not None:
                self.details.setdefault(found.id, found)
        return self._ids[reference]

    @property
    def own(self) -> list[ImageInfo]:
        if self._own is None:
            self._own = (own_images(self.driver, self.control.server_id, self.account.name)
                         if self.account is not None and self.settings.playground else [])
        return self._own

    # -- services that run an image ------------------------------------------------------------
    def pinned_image(self, name: str, pin: str) -> None:
        """The exact image a recorded deployment ran: found on the engine (by digest or
        id), else pulled by digest (checked with the account's access like any pull). On a
        playground server an id counts only as one of the account's own builds."""
        where = Location(path=f"services.{name}.image")
        if image_id_of(pin) is not None:
            found = self._image_id(pin)
            if self.settings.playground:
                decision = decide(pin, patterns=(), own=self.own)
                found = decision.image_id if decision.verdict is Verdict.OWN else None
            if found is None:
                self.problems.append(error(
                    "image-missing", f"service {name}: the image it ran ({pin[:19]}) is no "
                    "longer on the server's engine and was in no registry", where,
                    "deploy the project again with `dockyard compose up` (it builds anew), "
                    "or configure a registry for builds (`dockyard server --registry`)"))
                return
            self.uses.append(ImageUse(name, pin, pin, "", False, image_id=found,
                                      location=where))
            return
        parsed = parse_reference(pin)
        if parsed is None or parsed.digest is None:
            self.problems.append(_invalid(pin, where))
            return
        if self.settings.playground and not self._pullable(pin):
            self.problems.append(_not_available(pin, where))
            return
        if self.settings.playground and self._registry_refused(registry_host(parsed), where):
            return
        self.uses.append(ImageUse(name, pin, pin, registry_host(parsed), pull=False,
                                  check=self.settings.playground
                                  or self._image_id(pin) is None,
                                  location=where))

    def service_image(self, name: str, service: Service) -> None:
        reference = str(service.image)
        where = Location(path=f"services.{name}.image")
        policy = _policy(service)
        if self.settings.playground:
            decision = decide(reference, patterns=self.settings.allow_images, own=self.own)
            if decision.verdict is Verdict.OWN:
                self.uses.append(ImageUse(name, reference, reference, "", False,
                                          image_id=decision.image_id, location=where))
                return
            if decision.verdict is Verdict.INVALID:
                self.problems.append(_invalid(reference, where))
                return
            if decision.verdict is Verdict.REFUSED:
                if not self._pullable(reference):
                    self.problems.append(_not_available(reference, where))
                    return
                # Any registry image, with the account's own access, asked at every use.
                parsed = parse_reference(reference)
                assert parsed is not None
                if self._registry_refused(registry_host(parsed), where):
                    return
                self.uses.append(ImageUse(
                    name, reference, parsed.tagged, registry_host(parsed),
                    pull=self._must_pull(policy, reference, present=True),
                    may_pull=self._must_pull(policy, reference, present=False),
                    check=True, location=where))
                return
            engine = decision.engine_reference or reference
        else:
            parsed = parse_reference(reference)
            if parsed is None and image_id_of(reference) is None:
                self.problems.append(_invalid(reference, where))
                return
            engine = parsed.tagged if parsed is not None else reference
        found = self._image_id(engine)
        parsed = parse_reference(engine)
        wanted = parsed is not None and self._must_pull(policy, reference,
                                                         present=found is not None)
        if not wanted and found is None:
            self.problems.append(error(
                "image-missing", f"image {reference!r} is not on the server's engine and its "
                "pull_policy is never" if policy.kind is not PullKind.MISSING or
                self.override == "never" else f"image {reference!r} is not on the server's "
                "engine", where, MISSING_HINT))
            return
        self.uses.append(ImageUse(
            name, reference, engine, registry_host(parsed) if parsed is not None else "",
            pull=wanted, check=wanted, image_id=None if wanted else found, location=where))

    def _registry_refused(self, registry: str, where: Location) -> bool:
        """Playground: a registry at a private or local address is refused (the engine would
        reach it from the host's network), unless the operator allows it."""
        why = refused_registry(registry, patterns=self.settings.allow_registries)
        if why is not None:
            self.problems.append(error("registry-not-allowed", why, where, ALLOW_HINT))
        return why is not None

    def _pullable(self, reference: str) -> bool:
        """Playground: a name (not an id) that is not one of the server's build repositories,
        when the operator lets tenants pull."""
        parsed = parse_reference(reference)
        return (self.settings.tenant_pulls and parsed is not None
                and image_id_of(reference) is None
                and not parsed.normalized.startswith(
                    f"docker.io/library/{BUILD_REPOSITORY_PREFIX}"))

    def _must_pull(self, policy: PullPolicy, reference: str, *, present: bool) -> bool:
        last = (self.control.store.last_pulled(self.account, reference)
                if self.account is not None and policy.kind is PullKind.REFRESH
                and self.override is None else None)  # only a refresh policy reads it
        return must_pull(policy, present=present, last_pulled=last, now=datetime.now(UTC),
                         override=self.override)

    # -- base images of builds ---------------------------------------------------------------
    def build_bases(self, name: str, build: BuildInput, owner: str | None) -> None:
        """Every image the build's Dockerfile reads; a Dockerfile a shared server cannot
        read is refused (`dockerfile-invalid`), while a single user's server lets the engine
        judge it (its bases are then not pulled ahead)."""
        context = self.control.contexts.open(build.digest, owner)
        if context is None:
            return  # `context-missing` is reported by the request check
        where = Location(path=f"services.{name}.build")
        try:
            with context:
                text = read_dockerfile(context, build.dockerfile)
            found = image_uses(text, build.args)
        except DockerfileError as exc:
            if self.settings.playground:
                self.problems.append(error(
                    "dockerfile-invalid", f"{build.dockerfile}"
                    f"{f' line {exc.line}' if exc.line else ''}: {exc.message}",
                    Location(file=build.dockerfile, line=exc.line, path=where.path),
                    exc.hint or "fix the Dockerfile, then run the command again"))
            return
        refresh = build.pull or self.refresh_bases
        for use in found:
            at = Location(file=build.dockerfile, line=use.line, path=where.path)
            self._base(name, build, use.reference, use.instruction, use.line, at, refresh)

    def _base(self, name: str, build: BuildInput, reference: str, instruction: str,
              line: int, at: Location, refresh: bool) -> None:
        said = f"{build.dockerfile} line {line}: {instruction} {reference}"
        check = False
        if self.settings.playground:
            decision = decide(reference, patterns=self.settings.allow_images, own=self.own,
                              in_dockerfile=True)
            if decision.verdict is Verdict.OWN:
                return
            if decision.verdict is Verdict.INVALID:
                self.problems.append(error(
                    "image-invalid", f"{said}: {reference!r} is not an image reference", at,
                    "write NAME[:TAG] in lower case, such as busybox:1"))
                return
            if decision.verdict is Verdict.REFUSED:
                if not self._pullable(reference):
                    self.problems.append(error(
                        "image-not-allowed", f"{said}: image {reference!r} is not available "
                        "to this account", at, "ask the server's operator to allow it "
                        "(dockyard server --allow-image PATTERN); in a Dockerfile your own "
                        "builds count by their full image id"))
                    return
                check = True
        parsed = parse_reference(reference)
        if parsed is None:
            return  # an id (byoc): the engine resolves it
        if check and self._registry_refused(registry_host(parsed), at):
            return
        engine = parsed.tagged
        present = self._image_id(engine) is not None
        pull = refresh or not present
        self.uses.append(ImageUse(
            name, reference, engine, registry_host(parsed), pull=pull,
            check=check or pull, base=True, location=at))

    # -- the registries' answers ---------------------------------------------------------------
    def check_registries(self) -> list[ImageUse]:
        """Ask the registries about every use to check (in parallel, once per reference);
        uses whose answer is a refusal become problems."""
        wanted = sorted({(u.engine_reference, u.registry) for u in self.uses if u.check})
        if not wanted:
            return self.uses
        with ThreadPoolExecutor(max_workers=min(CHECKS_AT_ONCE, len(wanted))) as pool:
            answers = dict(zip(wanted, pool.map(lambda item: self._ask(*item), wanted),
                               strict=True))
        out: list[ImageUse] = []
        for use in self.uses:
            if not use.check:
                out.append(use)
                continue
            digest, failure = answers[(use.engine_reference, use.registry)]
            if failure is not None:
                self.problems.append(_refused(use, failure))
                continue
            out.append(self._with_digest(use, digest))
        return out

    def _ask(self, reference: str, registry: str) -> tuple[str, str | None]:
        auth = self._auth(registry)
        try:
            return self.driver.registry_digest(reference, auth=auth, timeout=CHECK_TIMEOUT), None
        except PullFailed as exc:
            return "", exc.engine_message or exc.message

    def _auth(self, registry: str) -> dict[str, str] | None:
        if self.account is None or not registry:
            return None
        found = self.control.registries.auth_for(self.account, registry)
        return found.as_engine() if found is not None else None

    def _with_digest(self, use: ImageUse, digest: str) -> ImageUse:
        """A checked use, pinned: found on the engine by that digest unless it must be
        pulled (a playground use of the cache counts only with this account's digest)."""
        if use.base or use.pull:
            return replace(use, digest=digest)
        found = self._image_id(pinned(use.engine_reference, digest))
        if found is not None:
            return replace(use, digest=digest, image_id=found)
        if not use.may_pull:
            self.problems.append(error(
                "image-missing", f"image {use.reference!r} is not on the server's engine and "
                "its pull_policy is never", use.location, MISSING_HINT))
        return replace(use, digest=digest, pull=True)


def _invalid(reference: str, where: Location) -> Diagnostic:
    return error("image-invalid", f"{reference!r} is not an image reference", where,
                 "write [REGISTRY/]NAME[:TAG][@DIGEST] in lower case, such as nginx:1.27")


def _not_available(reference: str, where: Location) -> Diagnostic:
    return error("image-not-allowed", f"image {reference!r} is not available to this account",
                 where, NOT_AVAILABLE_HINT)


def _refused(use: ImageUse, engine_message: str) -> Diagnostic:
    failure = classify(engine_message, host=use.registry or "docker.io")
    what = (f"base image {use.reference!r} of the build" if use.base
            else f"image {use.reference!r}")
    return error(_CODES.get(failure.kind, "image-pull-failed"),
                 f"service {use.service}: {what} cannot be pulled: {failure.reason}",
                 use.location, failure.hint)


def pull_targets(plan: ImagePlan, building: Sequence[str]) -> list[ImageUse]:
    """What the deployment pulls, once per target: service images, and the bases of the
    services that will build (`building`)."""
    seen: dict[str, ImageUse] = {}
    for use in plan.uses:
        if use.pull and (not use.base or use.service in building):
            seen.setdefault(use.target, use)
    return list(seen.values())
