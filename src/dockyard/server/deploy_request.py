"""What one deployment is asked to do, as the API admitted it (the deployer's input)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dockyard.compose.models import Project

if TYPE_CHECKING:
    from dockyard.server.image_plan import ImagePlan


@dataclass(frozen=True, slots=True)
class BuildInput:
    digest: str
    dockerfile: str = "Dockerfile"
    args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    pull: bool = False  # `build.pull: true`: refresh the base images when it builds

    def key(self) -> str:
        """What decides a rebuild: the context's content and the build settings."""
        text = json.dumps([self.digest, self.dockerfile, sorted(self.args.items()), self.target])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class DeployRequest:
    project: Project
    builds: Mapping[str, BuildInput]
    force: bool = False  # replace every service even when unchanged
    rebuild: bool = False  # build even when an image of the same key exists
    configs: Mapping[str, str] = field(default_factory=dict)  # decrypted: never logged
    # What each service runs and what to pull: decided at admission, always given.
    images: ImagePlan = field(kw_only=True)
    # Redeploying a recorded deployment: service -> the digest (or local image id) it ran,
    # used instead of its `image:` tag or its build (`deployments.start_redeploy`).
    pins: Mapping[str, str] = field(default_factory=dict)
    # `up SERVICE...`: the services asked for (`project` holds them and what they depend on);
    # the plan touches nothing else. Empty: the whole project.
    services: tuple[str, ...] = ()
    # Networks admission made sure of already (the project's own): not asked again.
    ensured_networks: frozenset[str] = frozenset()
