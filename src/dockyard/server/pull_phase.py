"""A deployment's pulls, all done before any service changes.

The deployer runs this first. Every image the admission decided to pull (`image_plan`) is
pulled once, however many services use it, in parallel (bounded server-wide by the
`Puller`). While a pull runs, its services stay in UPDATE_QUEUED (BUILD_QUEUED for a build's
base image) with the progress as their reason: `pulling nginx:1.27 (34/80 MiB)`.

When one pull fails, nothing of the running version changes: no container is created,
replaced or removed. The services whose pull failed are failed with the registry's answer;
every other service is settled too, as kept (it still runs its previous version) or not
started (it had none), and the deployment ends as failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dockyard.lifecycle import ServiceState
from dockyard.registry.failures import classify
from dockyard.runtime.errors import PullFailed
from dockyard.server.control import ControlPlane
from dockyard.server.image_plan import ImagePlan, ImageUse, pull_targets
from dockyard.server.puller import PullStopped
from dockyard.store.store import Account

S = ServiceState
Record = Callable[[str, ServiceState, str], None]


@dataclass(frozen=True, slots=True)
class PullOutcome:
    pulled: Mapping[str, str]  # target -> image id
    failed: Mapping[str, str]  # service -> why (the registry's answer, with its hint)

    @property
    def ok(self) -> bool:
        return not self.failed


def run_pulls(control: ControlPlane, account: Account, plan: ImagePlan,
              building: Sequence[str], record: Record) -> PullOutcome:
    """Pull every target of `plan` (the bases only of services in `building`)."""
    targets = pull_targets(plan, building)
    if not targets:
        return PullOutcome({}, {})
    users: dict[str, list[ImageUse]] = {}
    for use in plan.uses:
        if use.pull and (not use.base or use.service in building):
            users.setdefault(use.target, []).append(use)

    def pull(target: ImageUse) -> tuple[str, str | None, str | None]:
        mine = users[target.target]
        label = target.reference

        said: list[str] = []

        def report(text: str) -> None:
            if said and said[-1] == text:
                return  # the same words again are no news
            said.append(text)
            for use in mine:
                record(use.service, S.BUILD_QUEUED if use.base else S.UPDATE_QUEUED,
                       text if not use.base else f"base image: {text}")

        auth = control.registries.auth_for(account, target.registry) \
            if target.registry else None
        try:
            image_id = control.puller.pull(
                target.target, registry=target.registry or "docker.io",
                auth=auth.as_engine() if auth is not None else None, label=label,
                on_progress=report)
        except PullFailed as exc:
            return target.target, None, _why(target, exc)
        _name_it(control, target, image_id)
        control.store.mark_pulled(account, target.reference)
        return target.target, image_id, None

    with ThreadPoolExecutor(max_workers=len(targets), thread_name_prefix="pull") as pool:
        results = list(pool.map(pull, targets))
    pulled = {target: image_id for target, image_id, _ in results if image_id is not None}
    failed: dict[str, str] = {}
    for target, _, why in results:
        if why is not None:
            for use in users[target]:
                failed.setdefault(use.service, why)
    return PullOutcome(pulled, failed)


def _name_it(control: ControlPlane, use: ImageUse, image_id: str) -> None:
    """A pulled image keeps the name it was asked for, as `docker pull` leaves it (the
    target is pinned by digest): a build's `FROM` finds its base by that name. On a shared
    server a service's image is run by digest and never named in the engine's one namespace:
    a tag there would be anyone's to read."""
    if use.engine_reference != use.target and (use.base or not control.settings.playground):
        control.driver.tag_image(image_id, use.engine_reference)


def _why(use: ImageUse, exc: PullFailed) -> str:
    if isinstance(exc, PullStopped):
        return exc.message
    failure = classify(exc.engine_message or exc.message, host=use.registry or "docker.io")
    what = "base image " if use.base else ""
    return f"the pull of {what}{use.reference} failed: {failure.reason}; {failure.hint}"
