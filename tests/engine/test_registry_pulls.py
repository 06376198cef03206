"""Pulls from real local registries through a real single-user server (marked `docker`).

Every test runs the `dockyard` CLI against its own local server (tests/engine/test_deployments
conventions) and real `docker-registry` processes (tests/engine/registry.py). Images are unique
per run (`Images.make`, a random layer over the base image), pushed under unique repositories,
and removed from the engine before `up` unless a test wants them there, so a pull really
downloads. Services run busybox's `nc` answering `ok` on port 5432, which is how "still
serving" is checked.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockyard.exit_codes import ExitCode
from tests.engine.registry import (
    BASE_IMAGE,
    Images,
    Pushed,
    Registry,
    auth_registry,
    images,
    registry,
    tls_registry,
)
from tests.support.deployments import (
    COMPLETED,
    DOCKYARD,
    FAILED,
    RUN,
    Dockyard,
    Result,
    by_service,
    cli_env,
    containers,
    docker,
    docker_exec,
    dockyard,
    eventually,
    ids_of,
    is_running,
    label,
    last_events,
)
from tests.support.engine import engine_ready

__all__ = ["auth_registry", "dockyard", "images", "registry", "tls_registry"]  # fixtures used

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1 (run scripts/setup "
                       "as root)"),
]

INVALID = int(ExitCode.INVALID_PROJECT)
DEPLOYMENT_FAILED = int(ExitCode.DEPLOYMENT_FAILED)
UPDATE_QUEUED = "UPDATE_QUEUED"
SERVE = ["nc", "-ll", "-p", "5432", "-e", "echo", "ok"]


# -- images in the registries ---------------------------------------------------------------------
def repo(what: str) -> str:
    """A repository no other test (nor run) uses: the registries are shared by the session."""
    return f"t{RUN}/{what}-{uuid.uuid4().hex[:6]}"


def publish(images: Images, reg: Registry, repo_tag: str, size: int = 300_000) -> Pushed:
    """A unique image pushed as `repo_tag` and then removed from the engine, so that only a
    pull brings it back."""
    local = images.make(size)
    pushed = reg.upload(local, repo_tag)
    reg.client.images.remove(local, force=True)
    return pushed


def on_engine(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False).returncode == 0


def repo_digests(ref: str) -> list[str]:
    found = json.loads(docker("image", "inspect", ref).stdout)[0]
    return list(found.get("RepoDigests") or [])


def drop_local(reg: Registry, pushed: Pushed) -> None:
    """Remove every reference of `pushed` from the engine (its tag and its digest)."""
    reg.remove_local(pushed.ref)
    reg.remove_local(pushed.pinned)


# -- projects -------------------------------------------------------------------------------------
def service(image: str, **extra: Any) -> dict[str, Any]:
    return {"image": image, "command": SERVE, "stop_grace_period": "1s", **extra}


def write_project(directory: Path, services: dict[str, dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "compose.yaml").write_text(yaml.safe_dump({"services": services},
                                                           sort_keys=False))
    return directory


def serves(container: dict[str, Any]) -> bool:
    return docker_exec(container, "nc -w 2 127.0.0.1 5432 </dev/null").stdout.strip() == "ok"


def ps_long(dy: Dockyard, project: str) -> dict[str, dict[str, str]]:
    """`ps --long` as rows of {HEADER: cell} per service (cells split on two spaces)."""
    result = dy.cli("compose", "ps", "--long", "-p", project)
    assert result.code == 0, str(result)
    lines = result.out.splitlines()
    header = lines[0]
    starts = [header.index(h) for h in header.split()]
    names = header.split()
    rows: dict[str, dict[str, str]] = {}
    for line in lines[1:]:
        cells = {name: line[start:(starts[i + 1] if i + 1 < len(starts) else None)].strip()
                 for i, (name, start) in enumerate(zip(names, starts, strict=True))}
        rows[cells["SERVICE"]] = cells
    return rows


def reasons(dy: Dockyard, deployment: str, service_name: str) -> list[tuple[str, str]]:
    return [(e["state"], e["reason"]) for e in dy.events(deployment)
            if e["service"] == service_name]


def statuses(dy: Dockyard, project: str) -> dict[str, str]:
    return {d["id"]: d["status"] for d in dy.deployments(project)}


def login(dy: Dockyard, host: str, username: str, password: str) -> Result:
    """`dockyard registry login HOST -u USER --password-stdin`, the password piped in."""
    proc = subprocess.run([str(DOCKYARD), "registry", "login", host, "-u", username,
                           "--password-stdin"], input=password + "\n",
                          env=cli_env(dy.home, dy.user, dy.env), cwd=dy.home.parent,
                          capture_output=True, text=True, timeout=120, check=False)
    dy.server()
    return Result(proc.returncode, proc.stdout, proc.stderr)


# -- 1. a missing image is pulled -----------------------------------------------------------------
def test_a_missing_image_is_pulled_and_run_by_digest(
        dockyard: Dockyard, registry: Registry, images: Images, tmp_path: Path) -> None:
    pushed = publish(images, registry, f"{repo('missing')}:1", size=1_000_000)
    assert not on_engine(pushed.ref)
    project = dockyard.name("pull")
    directory = write_project(tmp_path / "p", {"app": service(pushed.ref)})

    up = dockyard.up(directory, project)
    assert up.code == 0, str(up)
    assert on_engine(pushed.ref), "the pulled image keeps the name it was asked for"
    assert pushed.pinned in repo_digests(pushed.ref)
    row = dockyard.ps(project)["app"]
    assert row["state"] == COMPLETED, row
    assert row["image"] == f"{registry.host}/{pushed.ref.split('/', 1)[1].rpartition(':')[0]}" \
        f"@{pushed.digest}" == pushed.pinned, row
    (app,) = containers(project)
    assert app["Config"]["Image"] == pushed.pinned, "the container is made from the digest"
    assert is_running(app) and serves(app)
    # The progress was shown while it pulled: the service waited in UPDATE_QUEUED.
    seen = reasons(dockyard, up.deployment, "app")
    assert (UPDATE_QUEUED, f"pulling {pushed.ref}") in seen, seen


# -- 2. an unknown tag ----------------------------------------------------------------------------
def test_an_unknown_tag_is_refused_and_replaces_nothing(
        dockyard: Dockyard, registry: Registry, images: Images, tmp_path: Path) -> None:
    repository = repo("unknown")
    pushed = publish(images, registry, f"{repository}:1")
    project = dockyard.name("unknown")
    directory = write_project(tmp_path / "p", {"app": service(pushed.ref),
                                               "side": service(BASE_IMAGE)})
    first = dockyard.up(directory, project)
    assert first.code == 0, str(first)
    before = {str(c["Id"]): c for c in containers(project)}

    missing = f"{registry.host}/{repository}:nope"
    write_project(directory, {"app": service(missing), "side": service(BASE_IMAGE,
                                                                       environment={"V": "2"})})
    refused = dockyard.up(directory, project)
    assert refused.code == INVALID, str(refused)
    assert "image-not-found" in refused.err, str(refused)
    for said in ("app", missing, registry.host):
        assert said in refused.err, f"{said!r} is not named:\n{refused}"
    assert "Traceback" not in refused.err + refused.out

    after = {str(c["Id"]): c for c in containers(project)}
    assert set(after) == set(before), "a refused up replaced containers"
    for cid, container in after.items():
        assert is_running(container) and serves(container)
        assert container["State"]["StartedAt"] == before[cid]["State"]["StartedAt"]
    assert statuses(dockyard, project) == {first.deployment: "succeeded"}, "a refusal recorded"
    rows = dockyard.ps(project)
    assert {name: (row["state"], row["deployment"]) for name, row in rows.items()} == {
        "app": (COMPLETED, first.deployment), "side": (COMPLETED, first.deployment)}
    assert rows["app"]["image"] == pushed.pinned


# -- 3. a registry that wants a login -------------------------------------------------------------
def test_an_auth_registry_is_refused_until_registry_login(
        dockyard: Dockyard, auth_registry: Registry, images: Images, tmp_path: Path) -> None:
    assert auth_registry.username is not None and auth_registry.password is not None
    pushed = publish(images, auth_registry, f"{repo('auth')}:1")
    project = dockyard.name("auth")
    directory = write_project(tmp_path / "p", {"app": service(pushed.ref)})

    refused = dockyard.up(directory, project)
    assert refused.code == INVALID, str(refused)
    assert "registry-unauthorized" in refused.err, str(refused)
    for said in ("app", pushed.ref, auth_registry.host):
        assert said in refused.err, f"{said!r} is not named:\n{refused}"
    assert "registry login" in refused.err, f"no hint to log in:\n{refused}"
    assert containers(project) == [] and not on_engine(pushed.ref)

    logged = login(dockyard, auth_registry.host, auth_registry.username,
                   auth_registry.password)
    assert logged.code == 0, str(logged)
    up = dockyard.up(directory, project)
    assert up.code == 0, str(up)
    assert dockyard.ps(project)["app"]["image"] == pushed.pinned
    (app,) = containers(project)
    assert serves(app)
    for result in (refused, logged, up):
        assert auth_registry.password not in result.out + result.err


# -- 4. pull_policy and up --pull -----------------------------------------------------------------
def move_tag(images: Images, reg: Registry, repo_tag: str) -> Pushed:
    """Push a new image under `repo_tag`: the tag moves in the registry only. The new image
    is not left on the engine, and the engine's tag (when it had one) still names the old
    image, as on a server where someone else pushed."""
    ref = reg.ref(repo_tag)
    old = json.loads(docker("image", "inspect", ref).stdout)[0]["Id"] if on_engine(ref) \
        else None
    moved = publish(images, reg, repo_tag)
    assert reg.digest(repo_tag) == moved.digest
    if old is not None:
        docker("tag", old, ref)
    return moved


def test_pull_policy_always_pulls_at_every_up(
        dockyard: Dockyard, registry: Registry, images: Images, tmp_path: Path) -> None:
    repo_tag = f"{repo('always')}:1"
    first = publish(images, registry, repo_tag)
    project = dockyard.name("always")
    directory = write_project(tmp_path / "p", {"app": service(first.ref,
                                                              pull_policy="always")})
    up = dockyard.up(directory, project)
    assert up.code == 0, str(up)
    assert dockyard.ps(project)["app"]["image"] == first.pinned
    (old,) = containers(project)

    # The same file again: the registry is asked again, and the moved tag is pulled.
    moved = move_tag(images, registry, repo_tag)
    again = dockyard.up(directory, project)
    assert again.code == 0, str(again)
    assert (UPDATE_QUEUED, f"pulling {first.ref}") in reasons(dockyard, again.deployment, "app")
    assert dockyard.ps(project)["app"]["image"] == moved.pinned
    (new,) = containers(project)
    assert new["Id"] != old["Id"] and new["Config"]["Image"] == moved.pinned and serves(new)

    # Even with the image on the engine, `always` asks the registry: down, it is refused.
    with registry.down():
        refused = dockyard.up(directory, project)
    assert refused.code == INVALID, str(refused)
    assert "registry-unreachable" in refused.err and registry.host in refused.err, str(refused)
    assert ids_of(containers(project)) == {new["Id"]}


def test_pull_policy_missing_pulls_only_an_absent_image(
        dockyard: Dockyard, registry: Registry, images: Images, tmp_path: Path) -> None:
    repo_tag = f"{repo('missing')}:1"
    first = publish(images, registry, repo_tag)
    project = dockyard.name("missing")
    directory = write_project(tmp_path / "p", {"app": service(first.ref,
                                                              pull_policy="missing")})
    up = dockyard.up(directory, project)
    assert up.code == 0, str(up)
    assert on_engine(first.ref) and dockyard.ps(project)["app"]["image"] == first.pinned
    (old,) = containers(project)

    move_tag(images, registry, repo_tag)
    with registry.down():  # present: no pull, no question to the registry
        again = dockyard.up(directory, project)
    assert again.code == 0, str(again)
    assert not any(r.startswith("pulling") for _, r in reasons(dockyard, again.deployment, "app"))
    assert ids_of(containers(project)) == {old["Id"]}, "the moved tag replaced the service"
    assert dockyard.ps(project)["app"]["image"] == first.pinned


def test_pull_policy_never_uses_only_the_engines_copy(
        dockyard: Dockyard, registry: Registry, images: Images, tmp_path: Path) -> None:
    pushed = publish(images, registry, f"{repo('never')}:1")
    project = dockyard.name("never")
    directory = write_project(tmp_path / "p", {"app": service(pushed.ref,
                                                              pull_policy="never")})
    refused = dockyard.up(directory, project)
    assert refused.code == INVALID, str(refused)
    assert "image-missing" in refused.err and pushed.ref in refused.err, str(refused)
    assert "never" in refused.err, str(refused)
    assert not on_engine(pushed.ref) and containers(project) == []

    registry.pull(pushed.ref)  # the image arrives on the engine another way
    with registry.down():
        up = dockyard.up(directory, project)
    assert up.code == 0, str(up)
    assert dockyard.ps(project)["app"]["image"] == pushed.pinned
    (app,) = containers(project)
    assert serves(app)


def test_pull_policy_build_rebuilds_at_every_up(dockyard: Dockyard, tmp_path: Path) -> None:
    project = dockyard.name("rebuild")
    directory = tmp_path / "p"
    (directory / "app").mkdir(parents=True)
    (directory / "app" / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nRUN echo built > /built\nCMD {json.dumps(SERVE)}\n")
    built = {"build": "./app", "stop_grace_period": "1s"}
    write_project(directory, {"rebuilt": {**built, "pull_policy": "build"}, "reused": built})
    first = dockyard.up(directory, project)
    assert first.code == 0, str(first)
    again = dockyard.up(directory, project)
    assert again.code == 0, str(again)
    rebuilt = reasons(dockyard, again.deployment, "rebuilt")
    assert any(state == "BUILD_RUNNING" for state, _ in rebuilt), rebuilt
    reused = reasons(dockyard, again.deployment, "reused")
    assert not any(state == "BUILD_RUNNING" for state, _ in reused), reused
    assert any("image reused" in reason for _, reason in reused), reused
    assert all(serves(c) for c in containers(project))


@pytest.mark.parametrize("policy", ["daily", "every_1h"])
def test_pull_policy_daily_and_every_pull_once_per_interval(
        dockyard: Dockyard, registry: Registry, images: Images, tmp_path: Path,
        policy: str) -> None:
    # On the engine, but never pulled by Dockyard: stale, so the first up pulls it.
    local = images.make(300_000)
    repo_tag = f"{repo('refresh')}:1"
    digest = registry.push(local, repo_tag)
    ref = registry.ref(repo_tag)
    assert on_engine(ref)
    project = dockyard.name("refresh")
    directory = write_project(tmp_path / "p", {"app": service(ref, pull_policy=policy)})
    with registry.down():
        stale = dockyard.up(directory, project)
    assert stale.code == INVALID, str(stale)
    assert "registry-unreachable" in stale.err, str(stale)

    up = dockyard.up(directory, project)
    assert up.code == 0, str(up)
    assert (UPDATE_QUEUED, f"pulling {ref}") in reasons(dockyard, up.deployment, "app")
    assert dockyard.ps(project)["app"]["image"] == f"{ref.rpartition(':')[0]}@{digest}"
    (app,) = containers(project)

    # Within the interval: no pull, the registry is not even asked.
    with registry.down():
        again = dockyard.up(directory, project)
    assert again.code == 0, str(again)
    assert not any(r.startswith("pulling") for _, r in reasons(dockyard, again.deployment, "app"))
    assert ids_of(containers(project)) == {app["Id"]}


def test_up_pull_overrides_every_pull_policy(
        dockyard: Dockyard, registry: Registry, images: Images, tmp_path: Path) -> None:
    always_tag, missing_tag = f"{repo('ovalways')}:1", f"{repo('ovmissing')}:1"
    always, missing = (publish(images, registry, always_tag),
                       publish(images, registry, missing_tag))
    project = dockyard.name("override")
    directory = write_project(tmp_path / "p", {
        "eager": service(always.ref, pull_policy="always"),
        "lazy": service(missing.ref)})
    up = dockyard.up(directory, project)
    assert up.code == 0, str(up)
    before = by_service(containers(project))

    # --pull never: `always` is not pulled, the registry is not asked.
    with registry.down():
        never = dockyard.up(directory, project, "--pull", "never")
    assert never.code == 0, str(never)
    assert by_service(containers(project)).keys() == before.keys()
    assert ids_of(containers(project)) == ids_of([c for cs in before.values() for c in cs])

    # --pull always: the default (missing) service's moved tag is pulled and run.
    moved = move_tag(images, registry, missing_tag)
    pulled = dockyard.up(directory, project, "--pull", "always")
    assert pulled.code == 0, str(pulled)
    rows = dockyard.ps(project)
    assert rows["lazy"]["image"] == moved.pinned and rows["eager"]["image"] == always.pinned
    after = by_service(containers(project))
    assert ids_of(after["lazy"]) != ids_of(before["lazy"])
    assert ids_of(after["eager"]) == ids_of(before["eager"])

    # --pull missing: `always` is not pulled either when the image is there.
    with registry.down():
        lazy = dockyard.up(directory, project, "--pull", "missing")
    assert lazy.code == 0, str(lazy)
    assert ids_of(containers(project)) == ids_of([c for cs in after.values() for c in cs])


# -- 5. a moved tag replaces exactly its users ----------------------------------------------------
def test_a_moved_tag_replaces_only_the_services_that_use_it(
        dockyard: Dockyard, registry: Registry, images: Images, tmp_path: Path) -> None:
    repository = repo("moved")
    tag_a, tag_b = publish(images, registry, f"{repository}:a"), \
        publish(images, registry, f"{repository}:b")
    project = dockyard.name("moved")
    directory = write_project(tmp_path / "p", {
        "one": service(tag_a.ref), "two": service(tag_a.ref), "other": service(tag_b.ref)})
    up = dockyard.up(directory, project)
    assert up.code == 0, str(up)
    before = by_service(containers(project))

    moved = move_tag(images, registry, f"{repository}:a")
    assert moved.digest != tag_a.digest
    again = dockyard.up(directory, project, "--pull", "always")
    assert again.code == 0, str(again)
    after = by_service(containers(project))
    for name in ("one", "two"):
        assert ids_of(after[name]) != ids_of(before[name]), f"{name} was not replaced"
        (container,) = after[name]
        assert container["Config"]["Image"] == moved.pinned and serves(container)
        assert label(container, "deployment") == again.deployment
    assert ids_of(after["other"]) == ids_of(before["other"]), "the B service was replaced"
    rows = dockyard.ps(project)
    assert {name: row["image"] for name, row in rows.items()} == {
        "one": moved.pinned, "two": moved.pinned, "other": tag_b.pinned}
    last = last_events(dockyard.events(again.deployment))
    assert last["other"]["reason"].startswith("unchanged"), last["other"]
    for name in ("one", "two"):  # one pull for both, its progress shown on each
        seen = reasons(dockyard, again.deployment, name)
        assert (UPDATE_QUEUED, f"pulling {tag_a.ref}") in seen, (name, seen)
    assert all(row["state"] == COMPLETED for row in rows.values()), rows


# -- 6. digests recorded --------------------------------------------------------------------------
def test_each_deployment_records_the_digests_its_services_ran(
        dockyard: Dockyard, registry: Registry, images: Images, tmp_path: Path) -> None:
    pushed = publish(images, registry, f"{repo('digest')}:1")
    local = images.make(10_000)  # never in a registry: known by its id
    local_id = str(registry.client.images.get(local).id)
    project = dockyard.name("digest")
    directory = write_project(tmp_path / "p", {"remote": service(pushed.ref),
                                               "local": service(local)})
    up = dockyard.up(directory, project)
    assert up.code == 0, str(up)

    rows = dockyard.ps(project)
    assert rows["remote"]["image"] == pushed.pinned
    assert rows["local"]["image"] == local_id
    long = ps_long(dockyard, project)
    assert long["remote"]["IMAGE"] == f"{pushed.pinned.partition('@')[0]}@{pushed.digest[:19]}"
    assert long["local"]["IMAGE"] == local_id.removeprefix("sha256:")[:12]

    record = dockyard.api(f"/v1/deployments/{up.deployment}")["images"]
    assert record["remote"]["reference"] == pushed.ref
    assert record["remote"]["digest"] == pushed.pinned
    assert record["local"]["digest"] == local_id == record["local"]["image_id"]
    with sqlite3.connect(dockyard.data / "dockyard.db") as db:
        stored = dict(db.execute("SELECT service, digest FROM deployment_images "
                                 "WHERE deployment_id = ?", (up.deployment,)).fetchall())
    assert stored == {"remote": pushed.pinned, "local": local_id}


# -- 7. builds pull their bases -------------------------------------------------------------------
def layers(ref: str) -> list[str]:
    return list(json.loads(docker("image", "inspect", ref).stdout)[0]["RootFS"]["Layers"])


def built_layers(dy: Dockyard, project: str, name: str) -> list[str]:
    (container,) = containers(project, service=name)
    return layers(str(container["Image"]))


def test_a_build_pulls_its_missing_base_and_refreshes_it_when_asked(
        dockyard: Dockyard, registry: Registry, images: Images, tmp_path: Path) -> None:
    # Each build has its own base: a refreshed tag is the engine's, seen by every build.
    names = ("plain", "refresh")
    tags = {name: f"{repo('base')}:1" for name in names}
    bases = {name: publish(images, registry, tags[name]) for name in names}
    assert not any(on_engine(base.ref) for base in bases.values())
    project = dockyard.name("base")
    directory = tmp_path / "p"
    for name in names:
        (directory / name).mkdir(parents=True)
        (directory / name / "Dockerfile").write_text(
            f"FROM {bases[name].ref}\nRUN echo {name} > /which\nCMD {json.dumps(SERVE)}\n")
    write_project(directory, {
        "plain": {"build": "./plain", "stop_grace_period": "1s"},
        "refresh": {"build": {"context": "./refresh", "pull": True},
                    "stop_grace_period": "1s"}})
    up = dockyard.up(directory, project)
    assert up.code == 0, str(up)
    old: dict[str, list[str]] = {}
    for name, base in bases.items():
        assert on_engine(base.ref) and base.pinned in repo_digests(base.ref)
        seen = reasons(dockyard, up.deployment, name)
        assert ("BUILD_QUEUED", f"base image: pulling {base.ref}") in seen, seen
        old[name] = layers(base.ref)
        assert built_layers(dockyard, project, name)[:len(old[name])] == old[name]

    # The base tags move. `up --build` refreshes a base only for `build.pull: true` ...
    moved = {name: move_tag(images, registry, tags[name]) for name in names}
    new: dict[str, list[str]] = {}
    rebuilt = dockyard.up(directory, project, "--build")
    assert rebuilt.code == 0, str(rebuilt)
    new["refresh"] = layers(moved["refresh"].pinned)
    assert new["refresh"] != old["refresh"]
    assert built_layers(dockyard, project, "refresh")[:len(new["refresh"])] == new["refresh"]
    assert built_layers(dockyard, project, "plain")[:len(old["plain"])] == old["plain"]
    assert not on_engine(moved["plain"].pinned), "the plain build's base was pulled"

    # ... and `up --build --pull always` for every build.
    everything = dockyard.up(directory, project, "--build", "--pull", "always")
    assert everything.code == 0, str(everything)
    new["plain"] = layers(moved["plain"].pinned)
    for name in names:
        assert built_layers(dockyard, project, name)[:len(new[name])] == new[name], name


def test_a_missing_base_in_an_unknown_tag_is_refused(
        dockyard: Dockyard, registry: Registry, tmp_path: Path) -> None:
    """Every image to pull is checked with the registry before anything is recorded: a
    build's base too."""
    missing = registry.ref(f"{repo('nobase')}:1")
    project = dockyard.name("nobase")
    directory = tmp_path / "p"
    (directory / "app").mkdir(parents=True)
    (directory / "app" / "Dockerfile").write_text(f"FROM {missing}\n")
    write_project(directory, {"app": {"build": "./app"}})
    refused = dockyard.up(directory, project)
    assert refused.code == INVALID, str(refused)
    assert "image-not-found" in refused.err and missing in refused.err, str(refused)
    assert "app" in refused.err and registry.host in refused.err, str(refused)


# -- 8. built images pushed to the server's registry ----------------------------------------------
def build_project(directory: Path, text: str = "v1") -> Path:
    (directory / "app").mkdir(parents=True, exist_ok=True)
    (directory / "app" / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nRUN echo {text} > /version\nCMD {json.dumps(SERVE)}\n")
    return write_project(directory, {"app": {"build": "./app", "stop_grace_period": "1s"}})


def test_builds_are_pushed_to_the_servers_registry_and_run_by_digest(
        dockyard: Dockyard, registry: Registry, tmp_path: Path) -> None:
    prefix = f"t{RUN}{uuid.uuid4().hex[:4]}"
    dockyard.env["DOCKYARD_REGISTRY"] = f"{registry.host}/{prefix}"
    project = dockyard.name("push")
    directory = build_project(tmp_path / "p")
    up = dockyard.up(directory, project)
    assert up.code == 0, str(up)

    image = dockyard.ps(project)["app"]["image"]
    remote, _, digest = image.partition("@")
    assert remote.startswith(f"{registry.host}/{prefix}/") and digest.startswith("sha256:"), \
        image
    repository = remote.removeprefix(f"{registry.host}/")
    tags = registry.tags(repository)
    assert tags, f"nothing pushed to {remote}"
    assert digest in {registry.digest(f"{repository}:{tag}") for tag in tags}
    (app,) = containers(project)
    assert app["Config"]["Image"] == image and serves(app)
    assert docker_exec(app, "cat /version").stdout.strip() == "v1"
    seen = reasons(dockyard, up.deployment, "app")
    assert (UPDATE_QUEUED, f"pushed as {image}") in seen, seen

    # A changed build is pushed as a new image, and replaces the old one by its digest.
    build_project(directory, "v2")
    again = dockyard.up(directory, project)
    assert again.code == 0, str(again)
    second = dockyard.ps(project)["app"]["image"]
    assert second != image and second.partition("@")[0].startswith(f"{registry.host}/{prefix}/")
    (app2,) = containers(project)
    assert app2["Config"]["Image"] == second
    assert docker_exec(app2, "cat /version").stdout.strip() == "v2"


def test_builds_are_pushed_with_the_accounts_registry_login(
        dockyard: Dockyard, auth_registry: Registry, tmp_path: Path) -> None:
    assert auth_registry.username is not None and auth_registry.password is not None
    dockyard.env["DOCKYARD_REGISTRY"] = f"{auth_registry.host}/t{RUN}"
    project = dockyard.name("authpush")
    directory = build_project(tmp_path / "p")
    refused = dockyard.up(directory, project)  # built, then refused by the registry
    assert refused.code == DEPLOYMENT_FAILED, str(refused)
    assert f"the push of the built image to {auth_registry.host} failed" in refused.err, \
        str(refused)
    assert f"dockyard registry login {auth_registry.host}" in refused.err, str(refused)
    assert containers(project) == []

    logged = login(dockyard, auth_registry.host, auth_registry.username,
                   auth_registry.password)
    assert logged.code == 0, str(logged)
    up = dockyard.up(directory, project)
    assert up.code == 0, str(up)
    image = dockyard.ps(project)["app"]["image"]
    repository = image.partition("@")[0].removeprefix(f"{auth_registry.host}/")
    assert auth_registry.tags(repository), f"nothing pushed to {image}"
    (app,) = containers(project)
    assert app["Config"]["Image"] == image and serves(app)


# -- 9. a TLS registry ----------------------------------------------------------------------------
def test_a_tls_registry_trusted_through_certs_d_is_pulled_from(
        dockyard: Dockyard, tls_registry: Registry, images: Images, tmp_path: Path) -> None:
    pushed = publish(images, tls_registry, f"{repo('tls')}:1")
    assert not on_engine(pushed.ref) and not tls_registry.host.startswith("127.")
    project = dockyard.name("tls")
    directory = write_project(tmp_path / "p", {"app": service(pushed.ref)})
    up = dockyard.up(directory, project)
    assert up.code == 0, str(up)
    assert dockyard.ps(project)["app"]["image"] == pushed.pinned
    (app,) = containers(project)
    assert app["Config"]["Image"] == pushed.pinned and serves(app)


# -- 10. the registry goes down in the middle of an up --------------------------------------------
def test_the_registry_going_down_mid_pull_changes_nothing_that_runs(
        dockyard: Dockyard, registry: Registry, images: Images, tmp_path: Path) -> None:
    """The registry answers the admission check, then goes away while the new image
    downloads. What happens, step by step (seen in a run: 7.6 MiB at 200 kB/s, cut at 2 s):

    1. `up` is admitted: the registry gave the digest of `app`'s new tag (through the slow
       proxy). The deployment starts; nothing is changed yet.
    2. The pulls come first: `app` is UPDATE_QUEUED `pulling REF`, then
       `pulling REF (0.2/7.6 MiB)` (about 1 s in). `side` (changed) and `extra` (new) are not
       touched while it pulls.
    3. The registry goes down (`proxy.cut()`: open connections reset, new ones refused). The
       engine retries the layer 5 times over about 75 s, then fails the pull (`up` ended
       77 s after it started).
    4. `app` (still UPDATE_QUEUED): SERVICE_DEPLOYMENT_FAILED `the pull of REF failed: the
       registry HOST cannot be reached (dial tcp HOST: connect: connection refused); check
       that HOST is up ...`. `extra` (no previous version): UPDATE_QUEUED `queued`, then
       SERVICE_DEPLOYMENT_FAILED `not changed: the deployment stopped before changing
       anything: the image of app could not be pulled`.
       `side`: the same wait, then SERVICE_DEPLOYMENT_COMPLETED `kept the running version:
       the deployment stopped ...`. The deployment is failed; `up` exits 5 naming app and
       extra.
    5. Every container of the previous deployment still runs, unrestarted, and serves; ps
       shows app FAILED with 1 running and the image of the running (old) version.
    """
    repository = repo("down")
    v1 = publish(images, registry, f"{repository}:1")
    project = dockyard.name("down")
    directory = write_project(tmp_path / "p", {"app": service(v1.ref),
                                               "side": service(BASE_IMAGE)})
    first = dockyard.up(directory, project)
    assert first.code == 0, str(first)
    before = {str(c["Id"]): c for c in containers(project)}

    v2 = publish(images, registry, f"{repository}:2", size=8_000_000)
    write_project(directory, {"app": service(v2.ref),
                              "side": service(BASE_IMAGE, environment={"V": "2"}),
                              "extra": service(BASE_IMAGE)})
    log = tmp_path / "up.log"
    with registry.slow(delay=0.1, rate=200_000) as proxy:
        started = time.monotonic()
        up = dockyard.background("compose", "up", "-C", str(directory), "-p", project,
                                 "--json", output=log)
        try:
            def downloading() -> str | None:
                for item in dockyard.api("/v1/deployments", project=project):
                    if item["status"] != "running":
                        continue
                    for event in dockyard.events(item["id"]):
                        if event["service"] == "app" and "MiB)" in event["reason"]:
                            return str(item["id"])
                return None

            deployment = eventually(downloading, "app's pull to show progress", timeout=60)
            proxy.cut()
            cut_at = time.monotonic() - started
            code = up.wait(timeout=240)
        finally:
            if up.poll() is None:
                up.kill()
                up.wait()
        took = time.monotonic() - started
    output = log.read_text()
    assert code == DEPLOYMENT_FAILED, f"up exited {code} ({took:.0f} s, cut at " \
        f"{cut_at:.0f} s):\n{output}"

    events = dockyard.events(deployment)
    story = "\n".join(f"{e['service']}: {e['state']} {e['reason']}" for e in events)
    last = last_events(events)
    assert last["app"]["state"] == FAILED, story
    assert v2.ref in last["app"]["reason"] and registry.host in last["app"]["reason"], story
    assert last["side"]["state"] == COMPLETED, story
    assert last["side"]["reason"].startswith("kept the running version"), story
    assert last["extra"]["state"] == FAILED, story
    assert last["extra"]["reason"].startswith("not changed"), story
    assert statuses(dockyard, project)[deployment] == "failed"

    after = {str(c["Id"]): c for c in containers(project)}
    assert set(after) == set(before), f"containers changed:\n{story}"
    for cid, container in after.items():
        assert is_running(container) and serves(container)
        assert container["State"]["StartedAt"] == before[cid]["State"]["StartedAt"]
    assert containers(project, service="extra") == []
    rows = dockyard.ps(project)
    assert rows["side"]["state"] == COMPLETED and rows["side"]["image"]
    assert rows["app"]["running"] == 1 and rows["app"]["image"] == v1.pinned, rows["app"]


# -- 11. the server's limits on a pull ------------------------------------------------------------
def test_a_pull_larger_than_the_server_allows_fails_its_service(
        dockyard: Dockyard, registry: Registry, images: Images, tmp_path: Path) -> None:
    dockyard.env["DOCKYARD_MAX_PULL_SIZE"] = "100k"
    pushed = publish(images, registry, f"{repo('large')}:1", size=1_000_000)
    project = dockyard.name("large")
    directory = write_project(tmp_path / "p", {"app": service(pushed.ref),
                                               "small": service(BASE_IMAGE)})
    up = dockyard.up(directory, project)
    assert up.code == DEPLOYMENT_FAILED, str(up)
    row = dockyard.ps(project)["app"]
    assert row["state"] == FAILED, row
    assert "larger than the server allows" in row["reason"], row
    assert "at most 0.1 MiB" in row["reason"] and pushed.ref in row["reason"], row
    assert containers(project, service="app") == []
    assert containers(project, service="small") == [], "a service started despite the failure"


def test_a_pull_past_the_timeout_fails_its_service(
        dockyard: Dockyard, registry: Registry, images: Images, tmp_path: Path) -> None:
    dockyard.env["DOCKYARD_PULL_TIMEOUT"] = "2"
    pushed = publish(images, registry, f"{repo('slow')}:1", size=1_000_000)
    project = dockyard.name("slow")
    directory = write_project(tmp_path / "p", {"app": service(pushed.ref)})
    with registry.slow(delay=0, rate=50_000):
        started = time.monotonic()
        up = dockyard.up(directory, project)
        took = time.monotonic() - started
    assert up.code == DEPLOYMENT_FAILED, str(up)
    assert took < 30, f"the pull was not stopped at its timeout: up took {took:.0f} s"
    row = dockyard.ps(project)["app"]
    assert row["state"] == FAILED, row
    assert "took longer than the server's pull timeout (2 s)" in row["reason"], row
    assert containers(project) == []
