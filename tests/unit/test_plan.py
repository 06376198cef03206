"""The plan: desired project against what runs, and the order services start in."""

from __future__ import annotations

from pathlib import Path

from dockyard.compose import LoadOptions, Project, load_project
from dockyard.ids import LENGTH, is_deployment_id, new_deployment_id
from dockyard.plan import ActionKind, RunningService, config_hash, plan, start_order


def _project(tmp_path: Path, text: str) -> Project:
    (tmp_path / "compose.yaml").write_text(text)
    return load_project(LoadOptions(working_dir=str(tmp_path), environ={})).project


BASE = """\
services:
  db: {image: postgres}
  migrate: {image: app, restart: "no", depends_on: {db: {condition: service_healthy}}}
  api:
    image: app
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
    deploy: {replicas: 2}
  web: {image: web, depends_on: [api]}
  cache: {image: redis}
"""


def _running(project: Project) -> dict[str, RunningService]:
    return {name: RunningService(name, config_hash(s),
                                 2 if name == "api" else 1)
            for name, s in project.services.items()}


def test_start_order_levels(tmp_path: Path) -> None:
    assert start_order(_project(tmp_path, BASE)) == [["cache", "db"], ["migrate"], ["api"],
                                                     ["web"]]


def test_first_deploy_creates_everything_in_order(tmp_path: Path) -> None:
    actions = plan(_project(tmp_path, BASE), {})
    assert [(a.kind, a.service) for a in actions] == [
        (ActionKind.CREATE, "cache"), (ActionKind.CREATE, "db"), (ActionKind.CREATE, "migrate"),
        (ActionKind.CREATE, "api"), (ActionKind.CREATE, "web")]
    assert next(a for a in actions if a.service == "api").replicas == 2


def test_noop_up_keeps_everything(tmp_path: Path) -> None:
    project = _project(tmp_path, BASE)
    assert {a.kind for a in plan(project, _running(project))} == {ActionKind.KEEP}


def test_changed_service_is_replaced_scaled_one_only_scaled(tmp_path: Path) -> None:
    running = _running(_project(tmp_path, BASE))
    changed = _project(tmp_path, BASE.replace("image: web", "image: web:2")
                       .replace("replicas: 2", "replicas: 3"))
    kinds = {a.service: a.kind for a in plan(changed, running)}
    assert kinds["web"] is ActionKind.REPLACE
    assert kinds["api"] is ActionKind.SCALE
    assert kinds["db"] is ActionKind.KEEP


def test_rebuilt_image_replaces(tmp_path: Path) -> None:
    project = _project(tmp_path, BASE)
    kinds = {a.service: a.kind for a in plan(project, _running(project), {"web": "sha256:new"})}
    assert kinds["web"] is ActionKind.REPLACE and kinds["api"] is ActionKind.KEEP


def test_removed_service_is_removed_last(tmp_path: Path) -> None:
    running = _running(_project(tmp_path, BASE))
    smaller = _project(tmp_path, BASE.replace("  cache: {image: redis}\n", ""))
    actions = plan(smaller, running)
    assert actions[-1].kind is ActionKind.REMOVE and actions[-1].service == "cache"


def test_deployment_ids() -> None:
    ids = {new_deployment_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == LENGTH and is_deployment_id(i) for i in ids)
    assert not is_deployment_id("ABCDEFGHIJKL") and not is_deployment_id("abc")
