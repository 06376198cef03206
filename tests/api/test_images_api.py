"""Images on a playground server, over the API (fake engine): one account never runs, reads,
probes or renames another's images; the engine-level counterpart is
`tests/engine/test_security_images.py`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.naming import NamingMode
from dockyard.runtime.driver import LABEL_ACCOUNT, LABEL_IMAGE
from dockyard.server.settings import Limits
from tests.support.images import alices_app, build_up, diagnostics, finished, upload
from tests.support.server import IMAGE, Server, running_server

ALLOWED = ("dockyard/busybox:*",)


@pytest.fixture
def playground(tmp_path: Path) -> Iterator[Server]:
    """An operator who lets tenants run only their builds and allowed images
    (`--tenant-pulls off`): the refusal path. `test_pulls_api` covers tenant pulls."""
    with running_server(tmp_path, mode=NamingMode.PLAYGROUND, zone="prod1a.localhost",
                        limits=Limits(projects=3), allow_images=ALLOWED,
                        tenant_pulls=False) as running:
        yield running


@pytest.fixture
def byoc(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path) as running:
        yield running


def test_another_accounts_image_is_refused_in_every_form(playground: Server) -> None:
    image_id = alices_app(playground)
    (tag,) = [r for r, i in playground.driver.images.items() if i == image_id]
    assert tag.startswith("dy-alice-"), tag  # only in alice's own repository
    assert "alice/app:1" not in playground.driver.images
    lookups = len(playground.driver.image_lookups)
    for reference in ("alice/app:1", tag, tag.partition(":")[0], image_id,
                      image_id.removeprefix("sha256:"), image_id[7:12], image_id[7:8],
                      f"alice/app@{image_id}", f"{tag.partition(':')[0]}@{image_id}"):
        refused = playground.deploy("probe", {"web": {"image": reference}}, "bob")
        (problem,) = diagnostics(refused)
        assert (problem["code"], problem["message"], problem["path"]) == (
            "image-not-allowed", f"image {reference!r} is not available to this account",
            "services.web.image"), reference
    # The engine was never asked about any of them (its answer could tell existence).
    assert len(playground.driver.image_lookups) == lookups
    assert not playground.containers("probe", "bob")


def test_the_answer_is_the_same_whether_the_image_exists_or_not(playground: Server) -> None:
    def probe(reference: str) -> bytes:
        response = playground.deploy("probe", {"web": {"image": reference}}, "bob")
        assert response.status_code == 422
        return response.content.replace(reference.encode(), b"REF")

    before = [probe(r) for r in ("alice/app:1", "0", "ff", "sha256:" + "0" * 64)]
    image_id = alices_app(playground)
    after = [probe(r) for r in ("alice/app:1", image_id[7], image_id[7:9], image_id)]
    assert before == after
    assert len(set(after)) == 1


def test_own_builds_resolve_by_name_in_other_projects_and_nobody_elses(
        playground: Server) -> None:
    image_id = alices_app(playground)
    assert finished(playground, playground.deploy(
        "other", {"web": {"image": "alice/app:1"}}, "alice"), "alice") == "succeeded"
    assert playground.spec_of("other", "web").image == image_id
    for short in (image_id[7:13], image_id):
        assert finished(playground, playground.deploy(
            "other", {"web": {"image": short}}, "alice"), "alice") == "succeeded"
        assert playground.spec_of("other", "web").image == image_id


def test_a_build_naming_another_accounts_image_never_retags_it(playground: Server) -> None:
    alice_id = alices_app(playground)
    tags_before = dict(playground.driver.images)
    status = finished(playground, build_up(playground, "bob", "evil",
                                           "FROM dockyard/busybox:1\n", image="alice/app:1"),
                      "bob")
    assert status == "succeeded"
    (bob_id,) = {i for i, labels in playground.driver.image_labels.items()
                 if labels.get(LABEL_ACCOUNT) == "bob"}
    assert playground.driver.image_labels[bob_id][LABEL_IMAGE] == "docker.io/alice/app:1"
    changed = {r: i for r, i in playground.driver.images.items() if tags_before.get(r) != i}
    assert list(changed.values()) == [bob_id] and all(
        r.startswith("dy-bob-") for r in changed), changed
    # alice's `image: alice/app:1` still runs her own build, bob's his own.
    assert finished(playground, playground.deploy(
        "mine", {"web": {"image": "alice/app:1"}}, "alice"), "alice") == "succeeded"
    assert playground.spec_of("mine", "web").image == alice_id
    assert finished(playground, playground.deploy(
        "evil2", {"web": {"image": "alice/app:1"}}, "bob"), "bob") == "succeeded"
    assert playground.spec_of("evil2", "web", "bob").image == bob_id


def test_a_dockerfile_reading_another_accounts_image_is_refused_before_anything(
        playground: Server) -> None:
    image_id = alices_app(playground)
    (tag,) = [r for r, i in playground.driver.images.items() if i == image_id]
    cases = {
        f"FROM {tag}\n": (1, "FROM", tag),
        f"FROM dockyard/busybox:1\nCOPY --from={image_id[7:12]} /x /y\n":
            (2, "COPY --from", image_id[7:12]),
        "ARG BASE=alice/app:1\nFROM $BASE\n": (2, "FROM", "alice/app:1"),
        f"FROM dockyard/busybox:1 AS a\nFROM {image_id}\n": (2, "FROM", image_id),
    }
    for dockerfile, (line, instruction, reference) in cases.items():
        (problem,) = diagnostics(build_up(playground, "bob", "evil", dockerfile))
        assert problem["code"] == "image-not-allowed", problem
        assert (problem["file"], problem["line"], problem["path"]) == (
            "Dockerfile", line, "services.app.build"), problem
        assert f"line {line}: {instruction} {reference}" in problem["message"], problem
        assert "--allow-image" in problem["hint"]
    # a build arg cannot smuggle it in either, and what cannot be resolved is refused
    (problem,) = diagnostics(build_up(playground, "bob", "evil",
                                      "ARG BASE=dockyard/busybox:1\nFROM $BASE\n",
                                      args={"BASE": "alice/app:1"}))
    assert problem["code"] == "image-not-allowed"
    (problem,) = diagnostics(build_up(playground, "bob", "evil", "ARG BASE\nFROM $BASE\n"))
    assert (problem["code"], problem["line"]) == ("dockerfile-invalid", 2), problem
    assert not [b for b in playground.driver.builds if b.startswith("dy-bob-")]
    assert not playground.store.deployments(playground.accounts["bob"], "evil")


def test_allowed_bases_and_own_images_build(playground: Server) -> None:
    image_id = alices_app(playground)
    (tag,) = [r for r, i in playground.driver.images.items() if i == image_id]
    dockerfile = (f"FROM dockyard/busybox:1 AS base\nFROM base\nCOPY --from=0 /a /b\n"
                  f"COPY --from={tag} /x /y\nFROM {image_id}\nFROM scratch\n")
    assert finished(playground, build_up(playground, "alice", "more", dockerfile),
                    "alice") == "succeeded"


def test_a_missing_allowed_image_is_pulled_or_refused_with_the_registrys_answer(
        playground: Server) -> None:
    (problem,) = diagnostics(playground.deploy("shop", {"web": {"image":
                                                                "dockyard/busybox:9"}}))
    assert problem["code"] == "image-not-found", problem
    (problem,) = diagnostics(playground.deploy("shop", {"web": {
        "image": "dockyard/busybox:9", "pull_policy": "never"}}))
    assert problem["code"] == "image-missing", problem
    playground.driver.remote["dockyard/busybox:9"] = "sha256:" + "9" * 64
    assert finished(playground, playground.deploy("shop", {"web": {
        "image": "dockyard/busybox:9"}}), "alice") == "succeeded"
    assert playground.driver.pulls == [("dockyard/busybox@sha256:" + _sha("9" * 64), None)]
    (problem,) = diagnostics(playground.deploy("shop", {"web": {"image": "Not:Valid"}}))
    assert problem["code"] in ("image-invalid", "invalid-value"), problem


def test_byoc_keeps_tagging_the_image_name(byoc: Server) -> None:
    """One trusted user: `image:` with `build:` tags the build under that name, and any local
    image may be used, as before. A missing base image is pulled before the build."""
    byoc.driver.remote["anything:1"] = "sha256:" + "a" * 64
    assert finished(byoc, build_up(byoc, "alice", "shop", "FROM anything:1\n",
                                   image="alice/app:1"), "alice") == "succeeded"
    assert "alice/app:1" in byoc.driver.images
    assert finished(byoc, byoc.deploy("other", {"web": {"image": IMAGE}}), "alice") == \
        "succeeded"
    assert IMAGE in json.loads(json.dumps(byoc.driver.image_lookups))
    # checked with its registry first, then pulled pinned to the digest it answered
    assert [r for r, _ in byoc.driver.pulls] == ["anything@sha256:" + _sha("a" * 64)]
    assert byoc.driver.images["anything:1"] == "sha256:" + "a" * 64  # FROM finds it


def _sha(image_id_hex: str) -> str:
    """The digest the fake registry serves an image id under."""
    import hashlib

    return hashlib.sha256(("sha256:" + image_id_hex).encode()).hexdigest()


def test_an_unchanged_build_is_reused_only_with_the_same_image_name(playground: Server) -> None:
    """The build key does not cover `image:`: a reused image must carry the name asked now
    (its label), else it is built again, so `image: NAME` never finds a stale build."""
    digest = upload(playground, "alice", "FROM dockyard/busybox:1\n")

    def up(image: str) -> list[str]:
        response = playground.deploy("shop", {"app": {"build": {"context": "."},
                                                      "image": image}}, "alice",
                                     builds={"app": {"digest": digest}})
        events, status = playground.events(str(response.json()["deployment"]), "alice")
        assert status == "succeeded"
        return [str(e.get("reason", "")) for e in events]

    up("alice/app:1")
    builds = len(playground.driver.builds)
    assert any("image reused" in r for r in up("alice/app:1"))
    assert len(playground.driver.builds) == builds
    up("alice/other:2")
    assert len(playground.driver.builds) == builds + 1
    (image_id,) = set(playground.driver.image_labels)
    assert playground.driver.image_labels[image_id][LABEL_IMAGE] == "docker.io/alice/other:2"
