"""Registry pulls on a real playground server: each account pulls with its own access.

One real `dockyard server --mode playground --allow-image 'dockyard/busybox:*'
--allow-registry 127.0.0.1:PORT` (tenant pulls on, the default; the registry is on loopback,
which a shared server refuses unless its operator allows it) runs for the module, with accounts
alice and bob, beside a real htpasswd registry (Debian's docker-registry) that knows two users:
`dockyard` (alice's login) and `second` (bob's). `private/app:1` is pushed there by the
fixture and is not on the engine before alice's deployment.

Held here (the same lines as `test_security_images.py`, with tenant pulls on):
- alice logs in with the CLI (`dockyard registry login HOST -u USER --password-stdin`) and
  deploys `image: HOST/private/app:1`: it is pulled with her login and runs pinned by digest,
  and no tag of it is left in the engine's one namespace;
- bob, without a login, deploying the same reference is refused (exit code 3,
  `registry-unauthorized`), although the image is in the engine's cache now, and nothing of
  his runs; his answer is byte-identical to the one he got before alice pulled it;
- bob logs in as the registry's second user: then it runs, without downloading it again;
- ids and the server's build repositories stay `image-not-allowed`, tenant pulls or not;
- on a second server with `--tenant-pulls off`, the same reference is `image-not-allowed`,
  and the registry is never asked.

Cleanup: the servers are stopped and their containers, networks, volumes and images removed
by server id (`playground_server`); the registry is stopped and every reference under its host
removed from the engine (`running_registry`); the test image by its label (`images`).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engine.playground import RunningServer, playground_server
from tests.engine.registry import (
    Images,
    Registry,
    htpasswd_line,
    images,
    require_binary,
    running_registry,
)
from tests.support.deployments import Result, docker
from tests.support.engine import engine_ready
from tests.support.tenants import User

__all__ = ["images"]  # the fixtures used here

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1 (run scripts/setup "
                       "as root)"),
]

ACCOUNTS = ("alice", "bob")
SERVER_OPTIONS = ("--http-port", "0", "--https-port", "0", "--ingress-host", "127.0.0.1",
                  "--max-projects", "6", "--allow-image", "dockyard/busybox:*")
SECOND_USER = "second"
SECOND_PASSWORD = uuid.uuid4().hex


@dataclass
class Scene:
    server: RunningServer
    registry: Registry
    users: dict[str, User]
    passwords: dict[str, tuple[str, str]]  # account -> its registry login (user, password)
    ref: str  # HOST/private/app:1
    pinned: str  # HOST/private/app@sha256:...
    run: str

    def project(self, who: str, name: str, image: str) -> Path:
        """A project directory whose one service `web` runs `image` (sleeping)."""
        directory = self.server.root / f"{who}-{name}-{uuid.uuid4().hex[:6]}"
        directory.mkdir()
        (directory / "compose.yaml").write_text(
            f"services:\n  web:\n    image: {image}\n    command: [\"sleep\", \"3600\"]\n"
            "    stop_grace_period: 1s\n")
        return directory

    def login(self, who: str) -> Result:
        username, password = self.passwords[who]
        return self.users[who].remote("registry", "login", self.registry.host, "-u",
                                      username, "--password-stdin", stdin=password + "\n")

    def deploy(self, who: str, name: str, image: str) -> httpx.Response:
        """The raw API, as a probe would send it."""
        return httpx.post(f"{self.server.url}/v1/projects/{name}/deployments", timeout=60,
                          headers={"Authorization": f"Bearer {self.users[who].token}"},
                          json={"project": {"name": name, "services": {"web": {
                              "image": image, "command": ["sleep", "60"]}}}, "builds": {}})


    def probe(self, who: str, image: str) -> bytes:
        """A refused deployment's answer, with the reference (and the repository path the
        registry's words name) written R."""
        response = self.deploy(who, f"probe-{self.run}", image)
        assert response.status_code == 422, response.text
        path = image.partition("/")[2].rpartition(":")[0]
        return response.content.replace(image.encode(), b"R").replace(path.encode(), b"R")


def containers(who: str, project: str) -> list[dict[str, Any]]:
    ids = docker("ps", "-aq", "--filter", f"label=dockyard.account={who}",
                 "--filter", f"label=dockyard.project={project}").stdout.split()
    if not ids:
        return []
    found: list[dict[str, Any]] = json.loads(docker("inspect", *ids).stdout)
    return found


def on_engine(reference: str) -> bool:
    return docker("image", "inspect", reference, check=False).returncode == 0


def reasons(result: Result) -> list[str]:
    return [str(item.get("reason", "")) for item in result.json_lines()]


def problem_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    (problem,) = response.json()["diagnostics"]
    found: dict[str, Any] = problem
    return found


@pytest.fixture(scope="module")
def two_user_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An htpasswd registry (`running_registry`: its file is DIRECTORY/htpasswd) with a
    second user beside its own: `SECOND_USER`, `SECOND_PASSWORD`."""
    require_binary()
    directory = tmp_path_factory.mktemp("registry-tenants")
    with running_registry(directory, auth=True) as reg:
        with (directory / "htpasswd").open("a") as htpasswd:
            htpasswd.write(htpasswd_line(SECOND_USER, SECOND_PASSWORD))
        reg.stop()
        reg.start()  # the registry reads its htpasswd file when it starts
        yield reg


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory, two_user_registry: Registry,
          images: Images) -> Iterator[Scene]:
    registry = two_user_registry
    root = tmp_path_factory.mktemp("registry-tenants-server")
    local = images.make(size=200_000)
    pushed = registry.upload(local, "private/app:1")
    registry.remove_local(local)  # nothing of it stays on the engine: alice's up pulls it
    assert not on_engine(pushed.ref) and not on_engine(pushed.pinned)
    assert registry.username is not None and registry.password is not None
    with playground_server(root, *SERVER_OPTIONS, "--allow-registry", registry.host,
                           accounts=ACCOUNTS) as running:
        yield Scene(running, registry, {name: running.user(name) for name in ACCOUNTS},
                    {"alice": (registry.username, registry.password),
                     "bob": (SECOND_USER, SECOND_PASSWORD)},
                    pushed.ref, pushed.pinned, uuid.uuid4().hex[:6])


def test_each_account_pulls_a_private_image_with_its_own_login(scene: Scene) -> None:
    alice, bob = scene.users["alice"], scene.users["bob"]
    project = f"app-{scene.run}"
    missing = f"{scene.registry.host}/private/nothing:1"
    # bob probes first: the answers he gets before alice pulled it are kept to compare.
    before = [scene.probe("bob", ref) for ref in (scene.ref, missing)]

    logged_in = scene.login("alice")
    assert logged_in.code == 0, str(logged_in)
    up = alice.up(scene.project("alice", "app", scene.ref), project)
    assert up.code == 0, f"{up}\n{scene.server.log_text()[-3000:]}"
    assert any(r.startswith("pulling ") for r in reasons(up)), reasons(up)
    (web,) = containers("alice", project)
    assert web["State"]["Running"], web["State"]
    assert web["Config"]["Image"] == scene.pinned  # run by digest, never by the tag
    assert on_engine(scene.pinned) and not on_engine(scene.ref)

    # bob, without a login: refused, though the engine holds the image now.
    refused = bob.up(scene.project("bob", "app", scene.ref), project)
    assert refused.code == 3, str(refused)  # a refused project (docs/diagnostics.md)
    assert "registry-unauthorized" in refused.out + refused.err, str(refused)
    assert scene.passwords["alice"][1] not in refused.out + refused.err
    assert containers("bob", project) == []
    for image in (scene.ref, scene.pinned):
        problem = problem_of(scene.deploy("bob", f"probe-{scene.run}", image))
        assert problem["code"] == "registry-unauthorized", (image, problem)
    assert containers("bob", f"probe-{scene.run}") == []
    after = [scene.probe("bob", ref) for ref in (scene.ref, missing)]
    assert after == before and len(set(after)) == 1, after

    # bob logs in as the registry's second user: it runs, from the engine's cache.
    logged_in = scene.login("bob")
    assert logged_in.code == 0, str(logged_in)
    up = bob.up(scene.project("bob", "app", scene.ref), project)
    assert up.code == 0, f"{up}\n{scene.server.log_text()[-3000:]}"
    assert not any(r.startswith("pulling ") for r in reasons(up)), reasons(up)
    (his,) = containers("bob", project)
    assert his["State"]["Running"] and his["Config"]["Image"] == scene.pinned
    assert his["Image"] == web["Image"]
    for said in (*scene.users["alice"].transcript, scene.server.log_text()):
        for _, password in scene.passwords.values():
            assert password not in said


def test_ids_and_build_repositories_stay_not_allowed_with_tenant_pulls(scene: Scene) -> None:
    alice = scene.users["alice"]
    directory = scene.server.root / f"alice-built-{scene.run}"
    directory.mkdir()
    (directory / "Dockerfile").write_text(
        f"FROM dockyard/busybox:1\nRUN echo alice-{scene.run} > /code\n")
    (directory / "compose.yaml").write_text(
        "services:\n  app:\n    build: .\n    command: [\"sleep\", \"3600\"]\n"
        "    stop_grace_period: 1s\n")
    project = f"built-{scene.run}"
    up = alice.up(directory, project)
    assert up.code == 0, str(up)
    (app,) = containers("alice", project)
    image_id = str(app["Image"])
    (tag,) = json.loads(docker("image", "inspect", image_id).stdout)[0]["RepoTags"]
    assert tag.startswith("dy-alice-"), tag
    for reference in (image_id, image_id[7:], image_id[7:19], tag, tag.partition(":")[0],
                      f"docker.io/library/{tag}"):
        problem = problem_of(scene.deploy("bob", f"probe-{scene.run}", reference))
        assert problem["code"] == "image-not-allowed", (reference, problem)
    assert containers("bob", f"probe-{scene.run}") == []


def test_without_tenant_pulls_a_registry_image_is_not_allowed(
        scene: Scene, tmp_path: Path) -> None:
    with playground_server(tmp_path, *SERVER_OPTIONS, "--tenant-pulls", "off",
                           "--allow-registry", scene.registry.host,
                           accounts=("bob",)) as running:
        bob = running.user("bob")
        username, password = scene.passwords["bob"]
        logged_in = bob.remote("registry", "login", scene.registry.host, "-u", username,
                               "--password-stdin", stdin=password + "\n")
        assert logged_in.code == 0, str(logged_in)
        refused = bob.up(scene.project("bob", "off", scene.ref), f"off-{scene.run}")
        assert refused.code == 3, str(refused)  # a refused project (docs/diagnostics.md)
        assert "image-not-allowed" in refused.out + refused.err, str(refused)
        assert "registry-unauthorized" not in refused.out + refused.err
        assert containers("bob", f"off-{scene.run}") == []
