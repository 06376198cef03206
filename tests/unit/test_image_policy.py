"""The playground image policy (`server.images`): own builds, operator patterns, and one answer
for everything else, decided without the engine."""

from __future__ import annotations

import pytest
from tests.fakes import FakeDriver

from dockyard.naming import NamingMode
from dockyard.runtime.driver import (
    LABEL_ACCOUNT,
    LABEL_IMAGE,
    LABEL_PROJECT,
    LABEL_SERVER,
    LABEL_SERVICE,
    ImageInfo,
)
from dockyard.runtime.specs import Placement, image_repository
from dockyard.server.images import (
    Verdict,
    build_labels,
    built_for,
    decide,
    image_id_of,
    image_label,
    operator_allows,
    own_images,
    parse_reference,
    resolve,
)

ALICE_ID = "sha256:" + "a1" * 32
BOB_ID = "sha256:" + "b0" * 32
ALICE = ImageInfo(id=ALICE_ID, tags=("dy-alice-shop-0123456789-web:k1",),
                  labels={LABEL_IMAGE: "docker.io/alice/app:1"}, created=10)
ALLOW = ("dockyard/busybox:*",)


@pytest.mark.parametrize(("text", "tagged", "normalized"), [
    ("busybox", "busybox:latest", "docker.io/library/busybox:latest"),
    ("busybox:1", "busybox:1", "docker.io/library/busybox:1"),
    ("dockyard/busybox:1", "dockyard/busybox:1", "docker.io/dockyard/busybox:1"),
    ("docker.io/library/busybox:1", "docker.io/library/busybox:1",
     "docker.io/library/busybox:1"),
    ("index.docker.io/busybox", "index.docker.io/busybox:latest",
     "docker.io/library/busybox:latest"),
    ("registry.example.com:5000/team/app", "registry.example.com:5000/team/app:latest",
     "registry.example.com:5000/team/app:latest"),
    ("localhost/app:2", "localhost/app:2", "localhost/app:2"),
    ("busybox@sha256:" + "c" * 64, "busybox@sha256:" + "c" * 64,
     "docker.io/library/busybox@sha256:" + "c" * 64),
])
def test_references_are_normalized_as_the_engine_does(text: str, tagged: str,
                                                      normalized: str) -> None:
    reference = parse_reference(text)
    assert reference is not None
    assert (reference.tagged, reference.normalized) == (tagged, normalized)


@pytest.mark.parametrize("text", ["Busybox", "a b", "", "app:", "-app", "app:/x", "a//b"])
def test_what_the_engine_would_not_take_is_no_reference(text: str) -> None:
    assert parse_reference(text) is None


@pytest.mark.parametrize(("text", "hex_id"), [
    ("cafe", "cafe"), ("0", "0"), ("sha256:" + "f" * 64, "f" * 64), ("a1b2c3", "a1b2c3"),
    ("cafe:latest", None), ("busybox", None), ("sha256:", None), ("g00d", None),
    ("f" * 65, None)])
def test_bare_hex_is_an_image_id_to_the_engine(text: str, hex_id: str | None) -> None:
    assert image_id_of(text) == hex_id


def test_operator_patterns_match_the_written_and_the_normalized_reference() -> None:
    assert operator_allows("dockyard/busybox:1", ALLOW)
    assert operator_allows("docker.io/dockyard/busybox:1", ALLOW)  # the same image
    assert operator_allows("docker.io/library/busybox:1", ("busybox:*",))
    assert not operator_allows("registry.example.com/dockyard/busybox:1", ALLOW)
    assert operator_allows("docker.io/dockyard/busybox:1", ("docker.io/dockyard/*",))
    assert operator_allows("busybox:1", ("docker.io/library/*",))
    assert operator_allows("busybox", ("busybox:latest",))
    assert not operator_allows("alice/app:1", ALLOW)
    assert not operator_allows("dockyard/busybox", ("dockyard/busybox:1",))
    assert not operator_allows("anything", ())


def test_a_pattern_never_opens_the_servers_own_build_repositories() -> None:
    for text in ("dy-alice-shop-0123456789-web:k1", "library/dy-x:1",
                 "docker.io/library/dy-x:1"):
        assert not operator_allows(text, ("*",)), text
    assert decide("dy-alice-shop-0123456789-web:k1", patterns=("*",), own=[]).verdict is \
        Verdict.REFUSED


def test_own_builds_by_image_name_tag_and_id() -> None:
    for text in ("alice/app:1", "docker.io/alice/app:1", "dy-alice-shop-0123456789-web:k1",
                 ALICE_ID, "a1a1", ALICE_ID.removeprefix("sha256:")):
        decision = decide(text, patterns=ALLOW, own=[ALICE])
        assert (decision.verdict, decision.image_id) == (Verdict.OWN, ALICE_ID), text


def test_another_accounts_images_are_refused_in_every_form() -> None:
    """Bob's own images are his (none here): alice's name, tag, id and digest are refused,
    and so is anything that does not exist: the same decision."""
    for text in ("alice/app:1", "dy-alice-shop-0123456789-web:k1", ALICE_ID, "a1a1", "a",
                 ALICE_ID.removeprefix("sha256:"), "alice/app@" + ALICE_ID, "nothing:1",
                 "ffff", "0"):
        decision = decide(text, patterns=ALLOW, own=[])
        assert decision == decide(text, patterns=ALLOW, own=[
            ImageInfo(BOB_ID, (), {}, 1)]), text
        assert decision.verdict is Verdict.REFUSED, text


def test_an_ambiguous_prefix_of_own_images_is_refused() -> None:
    other = ImageInfo(id="sha256:a1" + "0" * 62, tags=(), labels={}, created=1)
    assert decide("a1", patterns=(), own=[ALICE, other]).verdict is Verdict.REFUSED
    assert decide("a1a1", patterns=(), own=[ALICE, other]).image_id == ALICE_ID


def test_an_allowed_name_goes_to_the_engine_with_its_tag_written_out() -> None:
    decision = decide("dockyard/busybox:1", patterns=ALLOW, own=[])
    assert (decision.verdict, decision.engine_reference) == (Verdict.ALLOWED,
                                                              "dockyard/busybox:1")
    decision = decide("busybox", patterns=("busybox*",), own=[])
    assert decision.engine_reference == "busybox:latest"
    digested = "busybox@sha256:" + "c" * 64
    assert decide(digested, patterns=("docker.io/library/*",), own=[]).engine_reference == \
        digested
    assert decide(digested, patterns=("busybox:*",), own=[]).verdict is Verdict.REFUSED


def test_an_own_name_shadows_an_allowed_one() -> None:
    mine = ImageInfo(id=ALICE_ID, tags=(), created=3,
                     labels={LABEL_IMAGE: "docker.io/dockyard/busybox:1"})
    assert decide("dockyard/busybox:1", patterns=ALLOW, own=[mine]).image_id == ALICE_ID


def test_the_newest_own_build_of_a_name_wins() -> None:
    newer = ImageInfo(id="sha256:" + "c" * 64, tags=(), created=20,
                      labels={LABEL_IMAGE: "docker.io/alice/app:1"})
    assert decide("alice/app:1", patterns=(), own=[ALICE, newer]).image_id == newer.id


def test_in_a_dockerfile_only_what_the_engine_resolves_the_same_way_counts() -> None:
    """The engine resolves FROM itself: an own image counts by its full id or repository tag,
    not by the label name (the engine would find whatever has that tag) nor a short id."""
    def verdict(text: str) -> Verdict:
        return decide(text, patterns=ALLOW, own=[ALICE], in_dockerfile=True).verdict

    assert verdict(ALICE_ID) is Verdict.OWN
    assert verdict(ALICE_ID.removeprefix("sha256:")) is Verdict.OWN
    assert verdict("dy-alice-shop-0123456789-web:k1") is Verdict.OWN
    assert verdict("a1a1") is Verdict.REFUSED
    assert verdict("alice/app:1") is Verdict.REFUSED
    assert verdict("dockyard/busybox:1") is Verdict.ALLOWED
    assert verdict("Not/Valid") is Verdict.INVALID


def test_build_labels_record_the_image_name_normalized() -> None:
    assert build_labels({"a": "1"}, "alice/app:1") == {"a": "1",
                                                       LABEL_IMAGE: "docker.io/alice/app:1"}
    assert build_labels({}, None) == {LABEL_IMAGE: ""}
    assert image_label("busybox") == "docker.io/library/busybox:latest"


def _alices_build_labels(server: str = "s1") -> dict[str, str]:
    return {LABEL_SERVER: server, LABEL_ACCOUNT: "alice", "dockyard.managed": "true",
            LABEL_PROJECT: "shop", LABEL_SERVICE: "web", LABEL_IMAGE: "docker.io/alice/app:1"}


def _alices_repository(server: str = "s1") -> str:
    return image_repository(Placement("alice", "shop", NamingMode.PLAYGROUND, "", server),
                            "web")


def test_only_images_tagged_in_the_accounts_own_repository_are_its_own() -> None:
    """Labels can be forged (a Dockerfile's earlier stage keeps the labels it wrote): an own
    image must also carry the tag only the server gives, in the account's repository."""
    labels = _alices_build_labels()
    tag = f"{_alices_repository()}:k1"
    assert built_for(ImageInfo(ALICE_ID, (tag,), labels, 1), "s1", "alice")
    assert not built_for(ImageInfo(ALICE_ID, (), labels, 1), "s1", "alice")  # dangling
    assert not built_for(ImageInfo(ALICE_ID, ("alice/app:1",), labels, 1), "s1", "alice")
    assert not built_for(ImageInfo(ALICE_ID, (tag,), labels, 1), "s2", "alice")
    assert not built_for(ImageInfo(ALICE_ID, (tag,), labels, 1), "s1", "bob")
    bobs_tag = image_repository(Placement("bob", "shop", NamingMode.PLAYGROUND, "", "s1"),
                                "web") + ":k1"
    assert not built_for(ImageInfo(ALICE_ID, (bobs_tag,), labels, 1), "s1", "alice")
    moved = {**labels, LABEL_PROJECT: "other"}
    assert not built_for(ImageInfo(ALICE_ID, (tag,), moved, 1), "s1", "alice")


def test_resolve_never_asks_the_engine_about_a_refused_reference() -> None:
    driver = FakeDriver()
    driver.images[f"{_alices_repository()}:k1"] = ALICE_ID
    driver.image_labels[ALICE_ID] = _alices_build_labels()
    forged = "sha256:" + "f0" * 32  # labelled as alice's, newer, but never tagged by the server
    driver.image_labels[forged] = _alices_build_labels()
    kwargs = {"playground": True, "patterns": ALLOW, "server": "s1"}
    refused = resolve(driver, "alice/app:1", account="bob", **kwargs)  # type: ignore[arg-type]
    assert refused.image_id is None and refused.refused
    assert resolve(driver, "a1", account="bob", **kwargs).refused  # type: ignore[arg-type]
    assert resolve(driver, "f0", account="alice", **kwargs).refused  # type: ignore[arg-type]
    assert driver.image_lookups == []
    mine = resolve(driver, "alice/app:1", account="alice", **kwargs)  # type: ignore[arg-type]
    assert mine.image_id == ALICE_ID
    assert resolve(driver, "dockyard/busybox:1", account="bob",
                   **kwargs).image_id == driver.images["dockyard/busybox:1"]  # type: ignore[arg-type]
    assert driver.image_lookups == ["dockyard/busybox:1"]
    assert [i.id for i in own_images(driver, "s1", "alice")] == [ALICE_ID]
    assert own_images(driver, "s2", "alice") == []
    driver.images["alice/app:1"] = ALICE_ID
    byoc = resolve(driver, "alice/app:1", playground=False, patterns=(), server="s1",
                   account="bob")
    assert byoc.image_id == ALICE_ID  # one trusted user: today's behaviour
