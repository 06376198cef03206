"""Registry input refused when a Compose file is loaded: an `image:` that is no reference, and a
`pull_policy` Compose does not know, each with the file and line; `pull_policy` is used."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.compose import load

from dockyard.registry.reference import why_invalid


@pytest.mark.parametrize(("image", "why"), [
    ("Nginx:1.27", "lower case"), ("nginx:", "not of the form"), ("nginx@sha256:abc", "digest"),
    ("ghcr.io/Owner/app:1", "lower case"), ("my app", "spaces"), ("x:" + "t" * 129, "tag"),
])
def test_an_image_that_is_no_reference_is_refused_at_its_line(tmp_path: Path, image: str,
                                                              why: str) -> None:
    out = load(tmp_path, f"services:\n  db:\n    image: redis:7\n  web:\n    image: '{image}'\n")
    assert not out.valid
    found = out.one("image-invalid")
    assert (found.location.file, found.location.line, found.location.path) == (
        out.compose_file, 5, "services.web.image")
    assert repr(image) in found.message and why in found.message
    assert found.hint is not None and "nginx:1.27" in found.hint and "lower case" in found.hint


def test_the_image_is_checked_after_interpolation(tmp_path: Path) -> None:
    text = "services:\n  web:\n    image: ${NAME}:1\n"
    assert load(tmp_path, text, environ={"NAME": "nginx"}).valid
    out = load(tmp_path, text, environ={"NAME": "Nginx"})
    assert out.one("image-invalid").location.line == 3


@pytest.mark.parametrize("image", [
    "nginx", "nginx:1.27", "127.0.0.1:5000/team/app:v1", "localhost/app",
    "Registry.Example.com:5000/app", "nginx@sha256:" + "ab" * 32, "sha256:" + "cd" * 32,
    "cafe", "docker.io/library/redis:7-alpine",
])
def test_what_the_engine_takes_loads(tmp_path: Path, image: str) -> None:
    out = load(tmp_path, f"services:\n  web:\n    image: '{image}'\n")
    assert out.valid, [d.render() for d in out.diagnostics]


def test_a_failed_interpolation_is_not_reported_twice(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  web:\n    image: ${TAG:?set TAG}\n")
    assert out.codes() == {"required-variable"}


@pytest.mark.parametrize("policy", [
    "always", "never", "missing", "if_not_present", "build", "daily", "weekly", "every_12h",
    "every_1h30m", "every_2d", "refresh",
])
def test_pull_policy_is_used_not_warned(tmp_path: Path, policy: str) -> None:
    out = load(tmp_path, f"services:\n  web:\n    image: nginx\n    pull_policy: {policy}\n")
    assert out.valid
    assert out.diagnostics == []


@pytest.mark.parametrize("policy", ["sometimes", "Always", "every_1.5h", "every_1h never"])
def test_an_unknown_pull_policy_is_refused_at_its_line(tmp_path: Path, policy: str) -> None:
    out = load(tmp_path, f"services:\n  web:\n    image: nginx\n    pull_policy: '{policy}'\n")
    found = out.one("pull-policy-invalid")
    assert (found.location.line, found.location.path) == (4, "services.web.pull_policy")
    assert repr(policy) in found.message and "every_" in found.message
    assert found.hint is not None and "missing" in found.hint


@pytest.mark.parametrize(("text", "why"), [
    ("", "empty"), ("a b", "spaces"), ("Nginx", "lower case"), ("x@sha256:1", "digest"),
    ("a" * 256, "255"), ("x:" + "t" * 129, "128"), ("a//b", "[REGISTRY/]NAME[:TAG][@DIGEST]"),
])
def test_why_invalid_says_what_is_wrong(text: str, why: str) -> None:
    assert why in why_invalid(text)
