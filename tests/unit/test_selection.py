"""Acting on some services (`dockyard.selection`, and `plan(services=...)`): the dependency
closure of `up SERVICE...`, the refusal of unknown names, and what blocks `down SERVICE...`."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.compose import LoadOptions, Project, load_project
from dockyard.errors import UsageError
from dockyard.exit_codes import ExitCode
from dockyard.plan import ActionKind, RunningService, config_hash, plan
from dockyard.selection import blockers, blockers_text, check_known, closure, narrowed

SHOP = """\
services:
  db: {image: postgres}
  cache: {image: redis}
  migrate: {image: app, restart: "no", depends_on: {db: {condition: service_healthy}}}
  api:
    image: app
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
  web: {image: web, depends_on: [api]}
  metrics: {image: metrics}
"""


@pytest.fixture
def shop(tmp_path: Path) -> Project:
    (tmp_path / "compose.yaml").write_text(SHOP)
    return load_project(LoadOptions(working_dir=str(tmp_path), environ={})).project


def test_the_closure_follows_depends_on_transitively_in_the_projects_order(
        shop: Project) -> None:
    assert list(shop.services) == ["api", "cache", "db", "metrics", "migrate", "web"]
    assert closure(shop, ["web"]) == ("api", "db", "migrate", "web")
    assert closure(shop, ["api"]) == ("api", "db", "migrate")
    assert closure(shop, ["migrate"]) == ("db", "migrate")
    assert closure(shop, ["cache", "metrics"]) == ("cache", "metrics")
    assert closure(shop, ["db", "db"]) == ("db",)


def test_an_unknown_service_is_refused_naming_it_and_the_known_ones(shop: Project) -> None:
    with pytest.raises(UsageError) as refused:
        closure(shop, ["web", "wbe", "nope", "wbe"])
    assert refused.value.message == "no services 'wbe', 'nope' in project " \
        f"{shop.name!r}"
    assert refused.value.hint == "its services: api, cache, db, metrics, migrate, web"
    assert refused.value.exit_code is ExitCode.USAGE
    with pytest.raises(UsageError, match="no service 'x' in project 'p'"):
        check_known(["x"], set(), "p")
    check_known(["a"], {"a", "b"}, "p")  # known: nothing raised


def test_narrowed_keeps_only_the_chosen_services(shop: Project) -> None:
    part = narrowed(shop, closure(shop, ["api"]))
    assert list(part.services) == ["api", "db", "migrate"]
    assert part.name == shop.name and part.volumes == shop.volumes


def test_a_partial_plan_touches_only_the_selection_and_removes_nothing(shop: Project) -> None:
    running = {name: RunningService(name, config_hash(s), 1)
               for name, s in shop.services.items()}
    running["gone"] = RunningService("gone", "0" * 16, 1)  # no longer in the file
    running.pop("api")
    whole = plan(shop, running)
    assert whole.removals and whole.removals[0].service == "gone"

    part = plan(shop, running, services=["api"])
    assert [(a.service, a.kind) for a in part] == [
        ("db", ActionKind.KEEP), ("migrate", ActionKind.KEEP), ("api", ActionKind.CREATE)]
    assert part.removals == ()
    assert part.action("web") is None and part.action("gone") is None
    # Forced, only the selection is replaced.
    forced = plan(shop, running, services=["cache"], force=True)
    assert [(a.service, a.kind) for a in forced] == [("cache", ActionKind.REPLACE)]
    with pytest.raises(UsageError):
        plan(shop, running, services=["nope"])


def test_down_is_blocked_by_a_running_dependent_that_stays() -> None:
    depends = {"web": ["api"], "api": ["db", "migrate"], "migrate": ["db"], "db": []}
    running = {"web", "api", "db"}  # migrate, a job, has exited
    assert blockers(depends, {"db"}, running) == [("api", "db")]
    assert blockers(depends, {"api"}, running) == [("web", "api")]
    # Taking the dependents down too, or a dependent that is not running, blocks nothing.
    assert blockers(depends, {"db", "api", "web"}, running) == []
    assert blockers(depends, {"db"}, {"db", "web"}) == []
    assert blockers(depends, {"web"}, running) == []
    assert blockers_text([("api", "db"), ("web", "api")]) == \
        "api depends on db; web depends on api"
