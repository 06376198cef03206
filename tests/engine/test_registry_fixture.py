"""The registry fixtures are real: the engine pushes to and pulls from them, auth and TLS are
enforced, and a stopped registry comes back with its content (marked `docker`)."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import time
import uuid

import docker
import httpx
import pytest

from tests.engine.registry import (
    BASE_IMAGE,
    Images,
    Registry,
    RegistryError,
    auth_registry,
    images,
    registry,
    tls_registry,
)
from tests.support.engine import DOCKER, engine_ready

__all__ = ["auth_registry", "images", "registry", "tls_registry"]  # the fixtures used here

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1 (run scripts/setup "
                       "as root)"),
]


def repo() -> str:
    """A repository name no other test uses (the registries are shared by the session)."""
    return f"fixture/{uuid.uuid4().hex[:10]}"


def fresh(images: Images, reg: Registry, size: int = 1_000_000) -> tuple[str, str]:
    """A unique image pushed as REPO:1 and then removed from the engine entirely, so a pull
    downloads it: (its reference in the registry, its manifest digest)."""
    local = images.make(size)
    pushed = reg.upload(local, f"{repo()}:1")
    reg.client.images.remove(local, force=True)
    return pushed.ref, pushed.digest


def engine_has(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_push_rmi_and_docker_pull(registry: Registry, images: Images) -> None:
    ref, digest = fresh(images, registry)
    repository, _, tag = ref.removeprefix(f"{registry.host}/").rpartition(":")
    assert registry.tags(repository) == [tag]
    assert registry.digest(f"{repository}:{tag}") == digest
    assert digest.startswith("sha256:") and not engine_has(registry.client, ref)
    subprocess.run([DOCKER, "pull", "-q", ref], check=True, capture_output=True, timeout=120)
    pulled = registry.client.images.get(ref)
    assert f"{ref.rpartition(':')[0]}@{digest}" in pulled.attrs["RepoDigests"]


def test_base_image_pushed_under_names_and_cleaned_by_reference(registry: Registry) -> None:
    base_id = registry.client.images.get(BASE_IMAGE).id
    names = [f"{repo()}:1", f"{repo()}:2"]
    digests = {registry.push(BASE_IMAGE, name) for name in names}
    assert len(digests) == 1  # the same manifest under two names
    assert all(registry.tags(name.rpartition(":")[0]) for name in names)
    registry.clean_engine()
    assert registry.local_refs() == []
    assert registry.client.images.get(BASE_IMAGE).id == base_id  # the shared ID stays


def test_auth_registry_refuses_anonymous_pulls_and_accepts_credentials(
        auth_registry: Registry, images: Images) -> None:
    ref, _ = fresh(images, auth_registry)
    with pytest.raises(docker.errors.APIError) as anonymous:
        auth_registry.pull(ref, auth=False)
    assert "no basic auth credentials" in str(anonymous.value.explanation)
    with httpx.Client() as http:
        assert http.get(f"{auth_registry.url}/v2/").status_code == 401
    assert auth_registry.password is not None
    password, auth_registry.password = auth_registry.password, "not-the-password"
    try:
        with pytest.raises(docker.errors.APIError) as wrong:
            auth_registry.pull(ref)
    finally:
        auth_registry.password = password
    assert "unauthorized" in str(wrong.value.explanation)
    assert auth_registry.pull(ref) == auth_registry.client.images.get(ref).id
    assert password not in f"{anonymous.value} {wrong.value} {auth_registry!r}"


def test_tls_registry_pulls_through_certs_d(tls_registry: Registry, images: Images) -> None:
    assert tls_registry.url.startswith("https://")
    assert not ipaddress.ip_address(tls_registry.ip).is_loopback  # not insecure for the engine
    assert (tls_registry.certs_dir / "ca.crt").is_file()
    ref, _ = fresh(images, tls_registry)
    tls_registry.pull(ref)
    assert engine_has(tls_registry.client, ref)


def test_tls_registry_without_its_ca_is_an_x509_error(
        tls_registry: Registry, images: Images) -> None:
    ref, _ = fresh(images, tls_registry)
    trusted = tls_registry.certs_dir / "ca.crt"
    aside = tls_registry.certs_dir.parent / f"{tls_registry.host}.ca.crt.aside"
    shutil.move(trusted, aside)
    try:
        with pytest.raises(docker.errors.APIError) as caught:
            tls_registry.pull(ref)
    finally:
        shutil.move(aside, trusted)
    assert "x509: certificate signed by unknown authority" in str(caught.value.explanation)
    tls_registry.pull(ref)  # trusted again: the engine reads certs.d per pull


def test_stop_and_start_keep_the_content_and_the_port(
        registry: Registry, images: Images) -> None:
    ref, digest = fresh(images, registry)
    repository = ref.removeprefix(f"{registry.host}/").rpartition(":")[0]
    port = registry.port
    with registry.down(), pytest.raises(docker.errors.APIError) as down:
        registry.pull(ref)
    assert "connection refused" in str(down.value.explanation)
    assert registry.port == port and registry.running
    assert registry.digest(f"{repository}:1") == digest
    registry.pull(ref)
    assert engine_has(registry.client, ref)


def test_deleted_and_unknown_tags_are_manifest_unknown(
        registry: Registry, images: Images) -> None:
    ref, _ = fresh(images, registry)
    repository = ref.removeprefix(f"{registry.host}/").rpartition(":")[0]
    registry.delete(f"{repository}:1")
    assert registry.tags(repository) == []
    with pytest.raises(docker.errors.APIError) as caught:
        registry.pull(ref)
    assert caught.value.response is not None and caught.value.response.status_code == 404
    assert "manifest unknown" in str(caught.value.explanation)
    with pytest.raises(RegistryError, match="is not in the registry"):
        registry.delete(f"{repository}:1")


def test_a_tag_moves_when_another_image_is_pushed(registry: Registry, images: Images) -> None:
    name = f"{repo()}:1"
    first = registry.push(images.make(), name)
    second = registry.push(images.make(), name)
    assert first != second and registry.digest(name) == second


def test_slow_registry_answers_late_with_the_same_content(registry: Registry) -> None:
    name = f"{repo()}:1"
    registry.push(BASE_IMAGE, name)
    with registry.slow(delay=1.0):
        started = time.monotonic()
        assert registry.tags(name.rpartition(":")[0]) == ["1"]
        assert time.monotonic() - started >= 1.0
    started = time.monotonic()
    assert registry.tags(name.rpartition(":")[0]) == ["1"]
    assert time.monotonic() - started < 1.0


def test_a_cut_slow_registry_refuses_connections_until_the_block_ends(registry: Registry) -> None:
    name = f"{repo()}:1"
    registry.push(BASE_IMAGE, name)
    with registry.slow(delay=0) as proxy:
        assert registry.tags(name.rpartition(":")[0]) == ["1"]
        proxy.cut()
        with pytest.raises(httpx.ConnectError):
            registry.tags(name.rpartition(":")[0])
    assert registry.tags(name.rpartition(":")[0]) == ["1"]
