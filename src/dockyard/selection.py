"""Acting on some services: which services `up`, `down` and `restart` with names touch.

Pure: the project (or what each service depends on) and names in, names out.

- `up SERVICE...` deploys the named services and everything they depend on (`depends_on`,
  transitively: a service never starts without what it needs, `closure`); every other service
  is left exactly as it runs: not planned, not restarted, not removed (`narrowed` is the project
  a partial deployment carries out).
- `down SERVICE...` removes only the named services, and is refused while a running service
  that stays depends on one of them (`blockers`), unless forced.
- `restart SERVICE...` restarts only the named services.

A name that is not a service of the project is refused before anything happens, naming it and
the project's services (`check_known`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping

from dockyard.compose.models import Project
from dockyard.errors import UsageError


def check_known(names: Iterable[str], known: Collection[str], project: str) -> None:
    """Refuse (UsageError) any of `names` that is not in `known`, listing the known ones."""
    unknown = list(dict.fromkeys(n for n in names if n not in known))
    if not unknown:
        return
    noun = "service" if len(unknown) == 1 else "services"
    listed = ", ".join(repr(n) for n in unknown)
    raise UsageError(f"no {noun} {listed} in project {project!r}",
                     hint=f"its services: {', '.join(sorted(known))}" if known
                     else "it has no services")


def closure(project: Project, names: Iterable[str]) -> tuple[str, ...]:
    """The named services and everything they depend on, transitively, in the project's
    order. Refuses an unknown name (`check_known`)."""
    asked = list(names)
    check_known(asked, project.services, project.name)
    wanted: set[str] = set()
    todo = list(asked)
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        todo.extend(d for d in project.services[name].depends_on if d in project.services)
    return tuple(name for name in project.services if name in wanted)


def narrowed(project: Project, names: Collection[str]) -> Project:
    """The project with only the services `names` (closed under `depends_on`: `closure`)."""
    return dataclasses.replace(project, services={
        name: service for name, service in project.services.items() if name in names})


def blockers(depends: Mapping[str, Collection[str]], removing: Collection[str],
             running: Collection[str]) -> list[tuple[str, str]]:
    """(dependent, dependency) for each running service that stays and depends on one being
    removed: what refuses a partial `down` unless forced."""
    return sorted((name, dependency) for name in running if name not in removing
                  for dependency in depends.get(name, ()) if dependency in removing)


def blockers_text(found: Iterable[tuple[str, str]]) -> str:
    """`api depends on db; web depends on api`: the refusal's words."""
    return "; ".join(f"{dependent} depends on {dependency}" for dependent, dependency in found)
