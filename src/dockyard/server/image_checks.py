"""The images a deployment would use, checked before it is recorded (`operations.check_request`).

A service's `image:` must be on the engine (there may be no registry to pull from). On a
playground server it must also be available to the account (`server.images`), and a build's
Dockerfile is read from the uploaded context and every image it names (`FROM`, `COPY --from`)
is held to the same policy: otherwise a tenant's build could read another tenant's image. A
refused reference gets one answer, `image-not-allowed`, whether or not the image exists: the
engine is not asked about it. A Dockerfile the engine would read differently from the check
(flags, bytes, stages: `build/dockerfile.py`), or whose `ADD` would have dockerd fetch a URL
from the host's network, is `dockerfile-invalid` at its line: nothing of it is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dockyard.build.dockerfile import DockerfileError, image_uses, read_dockerfile
from dockyard.compose.models import Project
from dockyard.diagnostics import Diagnostic, Location, error
from dockyard.runtime.driver import ImageInfo
from dockyard.server.control import ControlPlane
from dockyard.server.deployer import BuildInput
from dockyard.server.images import NOT_AVAILABLE_HINT, Verdict, decide, own_images

MISSING_HINT = "add a `build:` section, or build or load the image on the server first"


def not_available(reference: str, location: Location) -> Diagnostic:
    """The one answer for a reference the account may not use (whether or not it exists)."""
    return error("image-not-allowed", f"image {reference!r} is not available to this account",
                 location, NOT_AVAILABLE_HINT)


def image_problems(control: ControlPlane, project: Project, builds: Mapping[str, BuildInput],
                   account: str | None, context_owner: str | None) -> list[Diagnostic]:
    """What in the project's images would fail or is not this account's to use."""
    settings = control.settings
    problems: list[Diagnostic] = []
    if not settings.playground:
        for name, service in sorted(project.services.items()):
            if service.build is None and service.image and \
                    control.driver.image_id(service.image) is None:
                problems.append(_missing(name, service.image))
        return problems
    own: list[ImageInfo] = (own_images(control.driver, control.server_id, account)
                            if account is not None else [])
    for name, service in sorted(project.services.items()):
        if service.build is None:
            if service.image:
                problems += _image_problem(control, name, service.image, own)
            continue
        build = builds.get(name)
        if build is not None:
            problems += dockerfile_problems(control, name, build, own, context_owner)
    return problems


def _missing(service: str, reference: str) -> Diagnostic:
    return error("image-missing", f"image {reference!r} is not on the server's engine and "
                 "there is no registry to pull it from",
                 Location(path=f"services.{service}.image"), MISSING_HINT)


def _image_problem(control: ControlPlane, service: str, reference: str,
                   own: Sequence[ImageInfo]) -> list[Diagnostic]:
    decision = decide(reference, patterns=control.settings.allow_images, own=own)
    where = Location(path=f"services.{service}.image")
    if decision.verdict is Verdict.OWN:
        return []
    if decision.verdict is Verdict.INVALID:
        return [error("image-invalid", f"{reference!r} is not an image reference", where,
                      "write NAME[:TAG] in lower case, such as busybox:1")]
    if decision.verdict is Verdict.ALLOWED and decision.engine_reference is not None:
        found = control.driver.image_id(decision.engine_reference)
        return [] if found is not None else [_missing(service, reference)]
    return [not_available(reference, where)]


def dockerfile_problems(control: ControlPlane, service: str, build: BuildInput,
                        own: Sequence[ImageInfo], owner: str | None) -> list[Diagnostic]:
    """Every image the service's Dockerfile reads that the account may not use. A context
    that is not there is `context-missing`'s to report, not this check's."""
    context = control.contexts.open(build.digest, owner)
    if context is None:
        return []
    where = Location(path=f"services.{service}.build")
    try:
        with context:
            text = read_dockerfile(context, build.dockerfile)
        uses = image_uses(text, build.args)
    except DockerfileError as exc:
        return [error("dockerfile-invalid", f"{build.dockerfile}"
                      f"{f' line {exc.line}' if exc.line else ''}: {exc.message}",
                      Location(file=build.dockerfile, line=exc.line, path=where.path),
                      exc.hint or "fix the Dockerfile, then run the command again")]
    problems: list[Diagnostic] = []
    for use in uses:
        decision = decide(use.reference, patterns=control.settings.allow_images, own=own,
                          in_dockerfile=True)
        at = Location(file=build.dockerfile, line=use.line, path=where.path)
        if decision.verdict is Verdict.INVALID:
            problems.append(error(
                "image-invalid", f"{build.dockerfile} line {use.line}: {use.instruction} "
                f"{use.reference!r} is not an image reference", at,
                "write NAME[:TAG] in lower case, such as busybox:1"))
        elif decision.verdict is Verdict.REFUSED:
            problems.append(error(
                "image-not-allowed", f"{build.dockerfile} line {use.line}: {use.instruction} "
                f"{use.reference}: image {use.reference!r} is not available to this account",
                at, "ask the server's operator to allow it (dockyard server --allow-image "
                "PATTERN); in a Dockerfile your own builds count by their full image id"))
    return problems
