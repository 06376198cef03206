"""Which images an account may use on a shared (playground) server, decided without the engine.

The engine's image names are one namespace for every tenant, and it resolves a bare hex string
as an image id prefix. So on a playground server a tenant may use only:

- images built by its own account: labelled so (server, account; the name a service gave with
  `image:` is the label `dockyard.image`) and tagged in the account's own repository
  (`runtime.specs.image_repository`; labels alone can be forged, see `built_for`), named by
  that label, by that repository tag or by id; an id may be a prefix for `image:` (the server
  passes the full id on), but must be whole in a Dockerfile (the engine resolves it there);
- base images the operator allows: `--allow-image PATTERN` (fnmatch, case-sensitive), matched
  against the reference as written, with its default tag (`busybox` -> `busybox:latest`) and
  fully qualified (`docker.io/library/busybox:latest`). A pattern never makes the server's own
  build repositories (`dy-...`) available: they belong to one account each;
- images pulled with the account's own registry credentials: not yet (no pulls at all today).

Everything else is refused with one answer, the same whether the image exists or not, and the
engine is never asked about a reference this policy refuses (an answer that differed would tell
one tenant what another has). An allowed name is passed to the engine with its tag written out,
so the engine cannot fall back to reading it as an id prefix.

In byoc mode (one trusted user) every reference is passed to the engine as written.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from dockyard.naming import NamingMode
from dockyard.registry.reference import Reference as Reference  # re-exported: moved there
from dockyard.registry.reference import image_id_of as image_id_of
from dockyard.registry.reference import parse_reference as parse_reference
from dockyard.runtime.driver import (
    LABEL_ACCOUNT,
    LABEL_IMAGE,
    LABEL_PROJECT,
    LABEL_SERVER,
    LABEL_SERVICE,
    Driver,
    ImageInfo,
)
from dockyard.runtime.specs import Placement, image_repository, server_labels

NOT_AVAILABLE_HINT = ("use an image one of your own services builds, or ask the server's "
                      "operator to allow it (dockyard server --allow-image PATTERN)")
BUILD_REPOSITORY_PREFIX = "dy-"  # `runtime.specs.scope`: the server's own build repositories

def match_forms(reference: Reference, text: str) -> tuple[str, ...]:
    """What an operator's pattern is matched against: as written, tagged, fully qualified,
    and (for Docker Hub) the short form (`docker.io/library/busybox:1` is `busybox:1`)."""
    forms = [text, reference.tagged, reference.normalized]
    if reference.normalized.startswith("docker.io/"):
        forms.append(reference.normalized.removeprefix("docker.io/").removeprefix("library/"))
    return tuple(dict.fromkeys(forms))


def operator_allows(text: str, patterns: Sequence[str]) -> bool:
    reference = parse_reference(text)
    if reference is None or reference.normalized.startswith(
            f"docker.io/library/{BUILD_REPOSITORY_PREFIX}"):
        return False
    forms = match_forms(reference, text)
    return any(fnmatch.fnmatchcase(form, pattern) for pattern in patterns for form in forms)


def image_label(text: str) -> str:
    """The `dockyard.image` label a build records for a service's `image:` name."""
    reference = parse_reference(text)
    return reference.normalized if reference is not None else text


class Verdict(Enum):
    OWN = "own"  # one of the account's builds: `image_id` says which
    ALLOWED = "allowed"  # the operator allows it: ask the engine for `engine_reference`
    REFUSED = "refused"  # not available to this account (one answer, whatever exists)
    INVALID = "invalid"  # not an image reference at all


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    image_id: str | None = None
    engine_reference: str | None = None


def decide(text: str, *, patterns: Sequence[str], own: Sequence[ImageInfo],
           in_dockerfile: bool = False) -> Decision:
    """Whether an account may use the image `text` (its own builds are `own`).

    `in_dockerfile`: the engine itself resolves the reference (FROM, COPY --from), so an own
    image counts only by its full id or the repository tag the server gave it, never by the
    `image:` name recorded in a label (the engine knows nothing of labels).
    """
    hex_id = image_id_of(text)
    if hex_id is not None:
        matches = [i for i in own if i.id.removeprefix("sha256:").startswith(hex_id)]
        if len(matches) == 1 and (not in_dockerfile or len(hex_id) == 64):
            return Decision(Verdict.OWN, image_id=matches[0].id)
        return Decision(Verdict.REFUSED)
    reference = parse_reference(text)
    if reference is None:
        return Decision(Verdict.INVALID)
    if reference.digest is None:
        tagged = reference.tagged
        by_tag = [i for i in own if tagged in i.tags]
        by_label = [] if in_dockerfile else [
            i for i in own if i.labels.get(LABEL_IMAGE) == reference.normalized]
        found = by_tag or by_label
        if found:
            newest = max(found, key=lambda i: (i.created, i.id))
            return Decision(Verdict.OWN, image_id=newest.id)
    if operator_allows(text, patterns):
        return Decision(Verdict.ALLOWED, engine_reference=reference.tagged)
    return Decision(Verdict.REFUSED)


def own_image_labels(server: str, account: str) -> dict[str, str]:
    """The labels every image the server built for `account` carries."""
    return {**server_labels(server), LABEL_ACCOUNT: account}


def built_for(image: ImageInfo, server: str, account: str) -> bool:
    """Whether the server built `image` for `account`: its labels say so AND it is tagged in
    that account's own repository for the project and service the labels name.

    Labels alone prove nothing: a Dockerfile may set any label, and the server's own labels
    are applied to the last stage only, so an earlier stage of a tenant's build is an untagged
    image carrying whatever labels the tenant wrote (another account's included). Only the
    server tags, and only in the building account's repository, whose name hashes the server,
    the account and the project (`runtime.specs.scope`)."""
    labels = image.labels
    if labels.get(LABEL_SERVER) != server or labels.get(LABEL_ACCOUNT) != account:
        return False
    project, service = labels.get(LABEL_PROJECT), labels.get(LABEL_SERVICE)
    if not project or not service:
        return False
    placement = Placement(account=account, project=project, mode=NamingMode.PLAYGROUND,
                          zone="", server=server)
    repository = image_repository(placement, service)
    return any(tag.rpartition(":")[0] == repository for tag in image.tags)


def own_images(driver: Driver, server: str, account: str) -> list[ImageInfo]:
    """The images the server built for `account` (the only engine question asked of them)."""
    return [i for i in driver.labelled_images(own_image_labels(server, account))
            if built_for(i, server, account)]


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a service's `image:` runs: an image id, or why not (`refused`, `missing`)."""

    image_id: str | None
    refused: bool = False  # not available to this account
    invalid: bool = False


def resolve(driver: Driver, reference: str, *, playground: bool, patterns: Sequence[str],
            server: str, account: str) -> Resolution:
    """The image a service's `image: reference` runs, as this account may see it."""
    if not playground:
        return Resolution(driver.image_id(reference))
    decision = decide(reference, patterns=patterns, own=own_images(driver, server, account))
    if decision.verdict is Verdict.OWN:
        return Resolution(decision.image_id)
    if decision.verdict is Verdict.ALLOWED and decision.engine_reference is not None:
        return Resolution(driver.image_id(decision.engine_reference))
    return Resolution(None, refused=decision.verdict is Verdict.REFUSED,
                      invalid=decision.verdict is Verdict.INVALID)


def build_labels(base: Mapping[str, str], image: str | None) -> dict[str, str]:
    """A build's labels: `base` and the service's `image:` name (empty when it gives none), so
    the same account's `image: NAME` elsewhere finds this build and nobody else's."""
    return {**base, LABEL_IMAGE: image_label(image) if image else ""}
