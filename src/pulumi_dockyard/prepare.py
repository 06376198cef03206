"""A program's project as the CLI sends one: loaded and checked by Dockyard's Compose loader,
normalized (`dockyard.wire`), and each build context packed (`dockyard.build.context`).

The Compose document (`fields.to_compose`) is written to a private temporary directory and
loaded from there with an empty environment: the program's values are the whole input, and
its build contexts are absolute paths under the program's directory.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.build.context import PackedContext, pack_context
from dockyard.compose import LoadOptions, load_project, project_to_dict
from dockyard.errors import ProjectInvalid
from dockyard.wire import to_wire
from pulumi_dockyard.errors import ServicesInvalid


@dataclass(frozen=True)
class Prepared:
    """What a deployment or a plan of the program's project sends."""

    name: str
    data: dict[str, Any]
    builds: dict[str, Any] = field(default_factory=dict)
    packs: tuple[PackedContext, ...] = ()
    warnings: tuple[str, ...] = ()


def prepare(document: Mapping[str, Any]) -> Prepared:
    """Load `document` (a Compose project as a mapping) as `dockyard compose up` loads a file,
    and pack its build contexts. Raises `ServicesInvalid` with every problem found."""
    name = str(document["name"])
    with tempfile.TemporaryDirectory(prefix="pulumi-dockyard-") as directory:
        path = os.path.join(directory, "compose.yaml")
        with open(path, "w", encoding="utf-8") as out:
            json.dump(document, out)  # JSON is YAML
        try:
            result = load_project(LoadOptions(working_dir=directory, files=(path,),
                                              project_name=name, environ={}))
        except ProjectInvalid as exc:
            raise _invalid(name, exc) from None
    project = result.project
    data, refused = to_wire(project_to_dict(project))
    if refused:
        raise _invalid(name, ProjectInvalid(refused))
    builds: dict[str, Any] = {}
    packs: list[PackedContext] = []
    for service_name, service in project.services.items():
        if service.build is None:
            continue
        dockerfile = service.build.dockerfile or "Dockerfile"
        packed = pack_context(service.build.context, dockerfile)
        packs.append(packed)
        builds[service_name] = {
            "digest": packed.digest, "dockerfile": dockerfile,
            "args": {k: v for k, v in service.build.args.items() if v is not None},
            "target": service.build.target, "pull": service.build.extra.get("pull") is True}
    warnings = tuple(f"{d.location.path or name}: {d.message}" for d in result.warnings)
    return Prepared(name, data, builds, tuple(packs), warnings)


def _invalid(name: str, exc: ProjectInvalid) -> ServicesInvalid:
    problems = "; ".join(f"{d.location.path or 'services'}: {d.message}" for d in exc.errors)
    hints = sorted({d.hint for d in exc.errors if d.hint})
    return ServicesInvalid(f"the services of project {name!r} are invalid: {problems}",
                           hint="; ".join(hints) or "fix them in the program")
