"""Every decision of the plan, pure (no threads, no engine): what changes, why, and that a
plan carried out and planned again keeps everything."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard.compose import LoadOptions, Project, load_project
from dockyard.plan import (
    UNKNOWN_IMAGE,
    ActionKind,
    RunningService,
    apply,
    config_hash,
    config_parts,
    plan,
)

TEXT = """\
services:
  db: {image: postgres, environment: {A: "1"}}
  api:
    image: app
    ports: ["8000"]
    depends_on: [db]
    deploy: {replicas: 2}
  job: {image: app, restart: "no", depends_on: [db]}
"""


def load(tmp_path: Path, text: str = TEXT) -> Project:
    (tmp_path / "compose.yaml").write_text(text)
    return load_project(LoadOptions(working_dir=str(tmp_path), environ={})).project


def running(project: Project, images: dict[str, str] | None = None,
            **changes: object) -> dict[str, RunningService]:
    images = images or {}
    out = {}
    for name, service in project.services.items():
        out[name] = RunningService(name, config_hash(service, images.get(name)),
                                   2 if name == "api" else 1,
                                   config_parts(service, images.get(name)))
    for name, value in changes.items():
        out[name] = value  # type: ignore[assignment]
    return out


def kinds(result: object) -> dict[str, ActionKind]:
    return {a.service: a.kind for a in result}  # type: ignore[attr-defined]


def test_the_plan_is_levels_then_removals(tmp_path: Path) -> None:
    project = load(tmp_path)
    result = plan(project, {"gone": RunningService("gone", "x", 1)})
    assert [[a.service for a in level] for level in result.levels] == [["db"], ["api", "job"]]
    assert [a.service for a in result.removals] == ["gone"]
    assert result[-1].kind is ActionKind.REMOVE and len(result) == 4


def test_a_replacement_names_each_part_that_changed(tmp_path: Path) -> None:
    before = running(load(tmp_path), {"api": "sha256:1"})
    changed = load(tmp_path, TEXT.replace('A: "1"', 'A: "2"').replace('["8000"]', '["9000"]'))
    result = plan(changed, before, {"api": "sha256:2"})
    assert result.action("db").reasons == ("environment changed",)  # type: ignore[union-attr]
    api = result.action("api")
    assert api is not None and api.kind is ActionKind.REPLACE
    assert set(api.reasons) == {"image changed", "ports changed"}
    assert result.action("job").kind is ActionKind.KEEP  # type: ignore[union-attr]


def test_config_values_changed_is_a_reason(tmp_path: Path) -> None:
    project = load(tmp_path)
    before = running(project)
    result = plan(project, before, configs_digests={"db": "new-digest"})
    assert result.action("db").reasons == ("config values changed",)  # type: ignore[union-attr]


def test_an_image_yet_to_be_built_is_said_so(tmp_path: Path) -> None:
    project = load(tmp_path)
    result = plan(project, running(project), {"api": UNKNOWN_IMAGE})
    assert result.action("api").reasons == ("image to be built",)  # type: ignore[union-attr]


@pytest.mark.parametrize(("observed", "kind", "reason"), [
    (RunningService("db", "?", 1, mixed=True), ActionKind.REPLACE, "mixed versions running"),
    (RunningService("db", "?", 1, renamed=True), ActionKind.REPLACE,
     "engine names now carry the server, account and project (upgrade)"),
])
def test_mixed_versions_and_old_names_are_replaced(tmp_path: Path, observed: RunningService,
                                                   kind: ActionKind, reason: str) -> None:
    project = load(tmp_path)
    action = plan(project, running(project, db=observed)).action("db")
    assert action is not None and (action.kind, action.reason) == (kind, reason)


def test_health_force_scale_and_zero(tmp_path: Path) -> None:
    project = load(tmp_path)
    base = running(project)
    sick = RunningService("db", base["db"].config_hash, 1, base["db"].parts, healthy=False)
    restarted = plan(project, {**base, "db": sick}).action("db")
    assert restarted is not None
    assert restarted.reason == "not healthy as it runs: started again"
    forced = plan(project, base, force=True)
    assert set(kinds(forced).values()) == {ActionKind.REPLACE}
    fewer = RunningService("api", base["api"].config_hash, 1, base["api"].parts)
    scaled = plan(project, {**base, "api": fewer}).action("api")
    assert scaled is not None and (scaled.kind, scaled.reason) == (ActionKind.SCALE,
                                                                   "replicas 1 -> 2")
    zero = load(tmp_path, TEXT.replace("replicas: 2", "replicas: 0"))
    assert plan(zero, base).action("api").kind is ActionKind.SCALE  # type: ignore[union-attr]
    assert plan(zero, {}).action("api").kind is ActionKind.KEEP  # type: ignore[union-attr]


def test_older_containers_without_parts_still_get_a_reason(tmp_path: Path) -> None:
    project = load(tmp_path)
    old = RunningService("db", "an-old-hash", 1)
    assert plan(project, {"db": old}).action("db").reasons == (  # type: ignore[union-attr]
        "configuration or image changed",)


def test_dry_run_json_shape(tmp_path: Path) -> None:
    item = plan(load(tmp_path), {}).action("api").to_json()  # type: ignore[union-attr]
    assert item == {"service": "api", "action": "create", "reasons": ["new service"],
                    "replicas": 2}


SERVICE = st.fixed_dictionaries({
    "environment": st.dictionaries(st.sampled_from(["A", "B"]), st.sampled_from(["1", "2"]),
                                   max_size=2),
    "replicas": st.integers(min_value=0, max_value=3),
    "image": st.sampled_from(["app", "app:2"]),
})


@settings(max_examples=60, deadline=None)
@given(first=st.dictionaries(st.sampled_from(["a", "b", "c"]), SERVICE, min_size=1),
       second=st.dictionaries(st.sampled_from(["a", "b", "c"]), SERVICE, min_size=1),
       image_ids=st.dictionaries(st.sampled_from(["a", "b", "c"]),
                                 st.sampled_from(["sha256:1", "sha256:2"])))
def test_a_plan_carried_out_then_planned_again_keeps_everything(
        tmp_path_factory: pytest.TempPathFactory, first: dict[str, dict[str, object]],
        second: dict[str, dict[str, object]], image_ids: dict[str, str]) -> None:
    directory = tmp_path_factory.mktemp("plan")

    def project(spec: dict[str, dict[str, object]]) -> Project:
        lines = ["services:"]
        for name, s in spec.items():
            lines.append(f"  {name}:")
            lines.append(f"    image: {s['image']}")
            lines.append(f"    deploy: {{replicas: {s['replicas']}}}")
            if s["environment"]:
                lines.append(f"    environment: {s['environment']}")
        return load(directory, "\n".join(lines) + "\n")

    after_first = apply(plan(project(first), {}, image_ids), {})
    wanted = project(second)
    result = plan(wanted, after_first, image_ids)
    after_second = apply(result, after_first)
    assert set(after_second) <= set(wanted.services)
    again = plan(wanted, after_second, image_ids)
    assert set(kinds(again).values()) <= {ActionKind.KEEP}, [
        (a.service, a.kind, a.reason) for a in again]


def test_a_global_service_runs_one_replica_per_node_the_driver_counts(tmp_path: Path) -> None:
    project = load(tmp_path, TEXT.replace("deploy: {replicas: 2}", "deploy: {mode: global}"))
    base = running(project)
    one = plan(project, {}).action("api")
    assert one is not None and one.replicas == 1  # one engine: one node
    created = plan(project, {}, global_nodes={"api": 3}).action("api")
    assert created is not None and (created.kind, created.replicas) == (ActionKind.CREATE, 3)
    joined = plan(project, base, global_nodes={"api": 3}).action("api")  # a node joined
    assert joined is not None and (joined.kind, joined.reason) == (ActionKind.SCALE,
                                                                   "replicas 2 -> 3")
    same = plan(project, base, global_nodes={"api": 2}).action("api")
    assert same is not None and same.kind is ActionKind.KEEP
