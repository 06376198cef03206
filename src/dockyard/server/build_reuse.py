"""Whether a service's image must be built, or an earlier build of the same inputs is reused."""

from __future__ import annotations

from dockyard.compose.models import Service
from dockyard.runtime.driver import Driver
from dockyard.runtime.specs import Placement, image_repository, service_labels
from dockyard.server.deploy_request import BuildInput
from dockyard.server.images import build_labels


def build_tag(placement: Placement, name: str, build: BuildInput) -> str:
    """Where a build is tagged: the account's own repository, keyed by the build's inputs."""
    return f"{image_repository(placement, name)}:{build.key()}"


def reusable_build(driver: Driver, placement: Placement, name: str, service: Service,
                   build: BuildInput, *, playground: bool) -> str | None:
    """The id of an image built before from the same context and settings, or None. On a
    playground server it counts only when it was built for the same `image:` name by this
    account (its labels say so), so `image: NAME` never finds a stale or foreign build."""
    existing = driver.image_id(build_tag(placement, name, build))
    if existing is not None and playground and existing not in {
            i.id for i in driver.labelled_images(own_build_labels(placement, name, service))}:
        return None
    return existing


def own_build_labels(placement: Placement, name: str, service: Service) -> dict[str, str]:
    """What marks a build as this account's (and, by `dockyard.image`, its `image:`)."""
    return build_labels(service_labels(placement, name), service.image)
