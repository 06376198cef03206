"""Image references and registry hosts (`registry.reference`), as the engine and `docker login`
read them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.registry.reference import (
    auth_server_address,
    is_valid_reference,
    normalize_host,
    parse_reference,
    pinned,
    registry_host,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text", [
    "nginx", "nginx:1.27", "library/nginx:1.27-alpine", "ghcr.io/owner/app:v1",
    "127.0.0.1:5000/x:nope", "localhost:5000/team/app", "localhost/app",
    "Registry.Example.com/app", f"nginx@{DIGEST}", f"nginx:1.27@{DIGEST}",
    "a" * 255, "x:" + "t" * 128, "my_app__x/a-b.c", "nginx@sha512:" + "0" * 128,
])
def test_what_the_engine_takes_is_valid(text: str) -> None:
    assert is_valid_reference(text)


@pytest.mark.parametrize("text", [
    "", "Nginx", "nginx:", "a b", "-app", "app:/x", "a//b", "nginx@sha256:abc",
    "nginx@sha256:" + "AB" * 32, "nginx@md5:" + "0" * 32, "nginx@sha256:" + "0" * 63,
    "a" * 256, "x:" + "t" * 129, "x:-tag", "x:tä", "ghcr.io/Owner/app", "app:1:2",
    "https://ghcr.io/app", "nginx ", "user@host/app",
])
def test_what_the_engine_refuses_is_invalid(text: str) -> None:
    assert not is_valid_reference(text)


@pytest.mark.parametrize(("text", "host"), [
    ("nginx", "docker.io"), ("library/nginx:1", "docker.io"), ("owner/app", "docker.io"),
    ("docker.io/library/nginx", "docker.io"), ("index.docker.io/x/y", "docker.io"),
    ("registry-1.docker.io/x/y", "docker.io"), ("ghcr.io/owner/app:1", "ghcr.io"),
    ("GHCR.io/owner/app", "ghcr.io"), ("127.0.0.1:5000/x:nope", "127.0.0.1:5000"),
    ("localhost:5000/app", "localhost:5000"), ("localhost/app", "localhost"),
])
def test_the_registry_of_a_reference_is_keyed_as_credentials_are(text: str, host: str) -> None:
    assert registry_host(text) == host
    reference = parse_reference(text)
    assert reference is not None
    assert registry_host(reference) == host


def test_registry_host_refuses_what_is_no_reference() -> None:
    with pytest.raises(ValueError, match="not an image reference"):
        registry_host("Nope Nope")


@pytest.mark.parametrize(("text", "host"), [
    ("ghcr.io", "ghcr.io"), ("https://ghcr.io", "ghcr.io"), ("http://ghcr.io/", "ghcr.io"),
    ("https://index.docker.io/v1/", "docker.io"), ("docker.io", "docker.io"),
    ("index.docker.io", "docker.io"), ("registry-1.docker.io", "docker.io"),
    ("127.0.0.1:5000", "127.0.0.1:5000"), ("localhost:5000", "localhost:5000"),
    ("GHCR.IO", "ghcr.io"), ("ghcr.io/owner/app", "ghcr.io"), (" ghcr.io\n", "ghcr.io"),
    ("HTTPS://Registry.Example.com:443/v2/", "registry.example.com:443"),
    ("localhost", "localhost"),
])
def test_a_login_host_is_normalized_as_docker_login_does(text: str, host: str) -> None:
    assert normalize_host(text) == host


@pytest.mark.parametrize(("text", "says"), [
    ("", "no registry host"), ("   ", "no registry host"), ("ghcr io", "spaces"),
    ("user@ghcr.io", "user name"), ("https://user:secret@ghcr.io/v2/", "user name"),
    ("ftp://ghcr.io", "scheme"), ("ghcr.io:0", "port 0"), ("ghcr.io:70000", "port 70000"),
    ("ghcr.io:", "not a registry host"), ("-bad-.io", "not a registry host"),
    ("https://", "not a registry host"), ("gh_cr.io", "not a registry host"),
    ("[::1]:5000", "not a registry host"),
])
def test_junk_hosts_are_refused_with_a_message(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as raised:
        normalize_host(text)
    assert "ghcr.io" in str(raised.value)  # says what to write instead
    assert "secret" not in str(raised.value)


def test_the_engine_wants_the_legacy_address_for_docker_hub_only() -> None:
    assert auth_server_address("docker.io") == "https://index.docker.io/v1/"
    assert auth_server_address("ghcr.io") == "ghcr.io"
    assert auth_server_address("127.0.0.1:5000") == "127.0.0.1:5000"


@pytest.mark.parametrize(("text", "expected"), [
    ("nginx:1.27", f"nginx@{DIGEST}"), ("nginx", f"nginx@{DIGEST}"),
    ("docker.io/library/nginx:1", f"docker.io/library/nginx@{DIGEST}"),
    ("127.0.0.1:5000/team/app:v2", f"127.0.0.1:5000/team/app@{DIGEST}"),
    (f"nginx:1@sha256:{'cd' * 32}", f"nginx@{DIGEST}"),
    ("Registry.Example.com/app:1", f"Registry.Example.com/app@{DIGEST}"),
])
def test_pinned_drops_the_tag_and_keeps_the_domain_as_written(text: str, expected: str) -> None:
    assert pinned(text, DIGEST) == expected


def test_pinned_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="not an image reference"):
        pinned("Nginx", DIGEST)
    with pytest.raises(ValueError, match="not an image digest"):
        pinned("nginx", "sha256:abc")
    with pytest.raises(ValueError, match="not an image digest"):
        pinned("nginx", "ab" * 32)


_component = st.from_regex(r"[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,8}){0,2}", fullmatch=True)
_domain = st.sampled_from([None, "ghcr.io", "127.0.0.1:5000", "localhost", "Reg.Example.com",
                           "docker.io", "localhost:5000"])
_tag = st.none() | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)


@given(_domain, st.lists(_component, min_size=1, max_size=3), _tag,
       st.binary(min_size=32, max_size=32))
def test_generated_references_parse_back_and_pin(domain: str | None, parts: list[str],
                                                 tag: str | None, raw: bytes) -> None:
    path = "/".join(parts)
    if domain is None and len(parts) > 1 and "." in parts[0]:
        return  # the first part would name a registry
    text = (f"{domain}/" if domain else "") + path + (f":{tag}" if tag else "")
    reference = parse_reference(text)
    assert reference is not None
    assert (reference.tag, reference.digest) == (tag, None)
    digest = "sha256:" + raw.hex()
    pin = pinned(text, digest)
    again = parse_reference(pin)
    assert again is not None
    assert (again.name, again.tag, again.digest) == (reference.name, None, digest)
    assert registry_host(pin) == registry_host(text)


@given(st.text(max_size=40))
def test_normalize_host_is_idempotent_or_refuses(text: str) -> None:
    try:
        host = normalize_host(text)
    except ValueError:
        return
    assert normalize_host(host) == host
    assert host == host.lower()
    assert auth_server_address(host)
