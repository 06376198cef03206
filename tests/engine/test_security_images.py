"""Images are no longer one namespace for every tenant: bob cannot read, probe or poison alice's.

One real `dockyard server --mode playground --allow-image 'dockyard/busybox:*' --tenant-pulls
off` (an operator who lets tenants run only their builds and the allowed base: the refusal
path; `test_registry_tenants.py` holds the same lines with tenant pulls on) runs for the
module, with accounts alice and bob. alice deploys a build with `image: alice/app:1` through the
CLI (its image holds the file /code = `alice-code-<run>`); bob attacks through the raw HTTP API
(the CLI would have checked some of it first).

Held here:
- bob's `image:` naming alice's image by her name, its repository tag, its repository, a short
  id, the full id or a digest is refused with 422 `image-not-allowed`, and nothing of his runs;
- the answer for an existing and a missing image is byte-identical (the reference aside): 256
  id prefixes probed while a config is missing, some matching images on the engine and some
  not, get one answer;
- bob's build with `image: alice/app:1` is tagged only in his own repository: alice's image and
  tags are untouched, and her next deployment of `image: alice/app:1` runs her own code (his
  runs his);
- labels bob forges in an earlier stage of his Dockerfile (alice's account, project, image
  name and the server id) make no image hers: she still runs her own build;
- bob's Dockerfile `FROM <alice's repository tag>` (or `COPY --from=<her short id>`) is refused
  with the Dockerfile line, before anything is built;
- so are the forms the engine reads differently from a shell-like parse: `COPY --"from"=<id>`,
  a raw 0xA0 byte that the engine splits `--chown=0<A0>--from=<id>` at, and a stage named by
  her id prefix that names itself (`FROM busybox AS <id>` then `COPY --from=<id>`): nothing
  of bob's is built and her file is never printed;
- the allowed base image (`dockyard/busybox:1`) works for bob's `image:` and `FROM`.

Cleanup: the server is stopped; its containers, networks and volumes are removed by its server
id, and so are the images it built (label `dockyard.server=<id>`).
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

from dockyard.build.context import pack_context
from tests.engine.playground import playground_server
from tests.support.deployments import docker
from tests.support.engine import engine_ready
from tests.support.tenants import (
    User,
)

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1 (run scripts/setup "
                       "as root)"),
]

ACCOUNTS = ("alice", "bob")
DOCKERFILE = "FROM dockyard/busybox:1\nRUN echo {marker} > /code\nCMD [\"sleep\", \"3600\"]\n"


@dataclass
class Server:
    url: str
    root: Path
    run: str
    server_id: str
    users: dict[str, User]
    alice_id: str = ""  # alice's built image
    alice_tag: str = ""  # its tag in her own repository
    alice_dir: Path | None = None  # her project's directory

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.users[who].token}"}

    def deploy(self, who: str, name: str, services: dict[str, Any],
               builds: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/projects/{name}/deployments", timeout=60,
                          headers=self.headers(who),
                          json={"project": {"name": name, "services": services},
                                "builds": builds or {}})

    def upload(self, who: str, directory: Path) -> str:
        packed = pack_context(str(directory))
        answer = httpx.put(f"{self.url}/v1/contexts/{packed.digest}", content=packed.data,
                           headers=self.headers(who), timeout=60)
        assert answer.status_code == 201, answer.text
        return packed.digest

    def build(self, who: str, name: str, dockerfile: str | bytes, image: str | None = None
              ) -> httpx.Response:
        """Deploy service `app` built from `dockerfile` (raw API, context uploaded first)."""
        directory = self.root / f"{who}-{name}-{uuid.uuid4().hex[:6]}"
        directory.mkdir()
        data = dockerfile if isinstance(dockerfile, bytes) else dockerfile.encode()
        (directory / "Dockerfile").write_bytes(data)
        service: dict[str, Any] = {"build": {"context": "."}, "stop_grace_period": "1s"}
        if image:
            service["image"] = image
        return self.deploy(who, name, {"app": service},
                           {"app": {"digest": self.upload(who, directory)}})

    def finish(self, who: str, response: httpx.Response) -> str:
        """Follow the deployment's events to its end: its final status."""
        assert response.status_code == 202, response.text
        deployment = response.json()["deployment"]
        kind = ""
        with httpx.stream("GET", f"{self.url}/v1/deployments/{deployment}/events",
                          headers=self.headers(who), timeout=120) as stream:
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "end":
                    return str(json.loads(line[6:])["status"])
        raise AssertionError(f"the events of {deployment} ended without an end event")


def code_in(who: str, project: str) -> str:
    """The /code file of the one container of `who`'s `project`."""
    ids = docker("ps", "-q", "--filter", f"label=dockyard.account={who}",
                 "--filter", f"label=dockyard.project={project}").stdout.split()
    assert len(ids) == 1, f"{who}/{project}: {ids}"
    return docker("exec", ids[0], "cat", "/code").stdout.strip()


def image_of(who: str, project: str) -> str:
    ids = docker("ps", "-q", "--filter", f"label=dockyard.account={who}",
                 "--filter", f"label=dockyard.project={project}").stdout.split()
    assert len(ids) == 1, f"{who}/{project}: {ids}"
    return docker("inspect", "--format", "{{.Image}}", ids[0]).stdout.strip()


def tags_of(image_id: str) -> list[str]:
    found = json.loads(docker("image", "inspect", image_id).stdout)[0]
    return sorted(found.get("RepoTags") or [])


def diagnostics(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    found: list[dict[str, Any]] = response.json()["diagnostics"]
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("security-images")
    with playground_server(root, "--http-port", "0", "--https-port", "0",
                           "--ingress-host", "127.0.0.1", "--max-projects", "6",
                           "--allow-image", "dockyard/busybox:*", "--tenant-pulls", "off",
                           accounts=ACCOUNTS) as running:
        url, server_id, log = running.url, running.server_id, running.log
        users = {name: running.user(name) for name in ACCOUNTS}
        found = Server(url, root, uuid.uuid4().hex[:6], server_id, users)

        # alice builds `image: alice/app:1` with the CLI, as a user does.
        project = root / "alice-app"
        project.mkdir()
        (project / "Dockerfile").write_text(DOCKERFILE.format(marker=f"alice-code-{found.run}"))
        (project / "compose.yaml").write_text(
            "services:\n  app:\n    build: .\n    image: alice/app:1\n"
            "    stop_grace_period: 1s\n")
        up = users["alice"].up(project, f"app-{found.run}")
        assert up.code == 0, f"{up}\n{log.read_text(errors='replace')[-3000:]}"
        found.alice_dir = project
        found.alice_id = image_of("alice", f"app-{found.run}")
        (found.alice_tag,) = tags_of(found.alice_id)
        yield found


def test_alices_build_is_tagged_only_in_her_own_repository(server: Server) -> None:
    assert code_in("alice", f"app-{server.run}") == f"alice-code-{server.run}"
    assert server.alice_tag.startswith("dy-alice-"), server.alice_tag
    assert docker("image", "inspect", "alice/app:1", check=False).returncode != 0
    labels = json.loads(docker("image", "inspect", server.alice_id).stdout)[0]["Config"][
        "Labels"]
    assert (labels["dockyard.account"], labels["dockyard.image"]) == (
        "alice", "docker.io/alice/app:1"), labels
    # Unchanged, it is reused (found by its labels), not built again.
    assert server.alice_dir is not None
    again = server.users["alice"].up(server.alice_dir, f"app-{server.run}")
    assert again.code == 0, str(again)
    assert image_of("alice", f"app-{server.run}") == server.alice_id
    built = docker("images", "-q", "--no-trunc", "--filter", "label=dockyard.account=alice",
                   "--filter", f"label=dockyard.server={server.server_id}").stdout.split()
    assert built == [server.alice_id], built


def test_bob_cannot_run_alices_image_in_any_form(server: Server) -> None:
    hex_id = server.alice_id.removeprefix("sha256:")
    repository = server.alice_tag.partition(":")[0]
    for reference in ("alice/app:1", server.alice_tag, repository, server.alice_id, hex_id,
                      hex_id[:12], hex_id[:4], f"alice/app@{server.alice_id}",
                      f"{repository}@{server.alice_id}"):
        (problem,) = diagnostics(server.deploy("bob", f"probe-{server.run}", {
            "web": {"image": reference, "command": ["sleep", "60"]}}))
        assert (problem["code"], problem["path"]) == ("image-not-allowed",
                                                      "services.web.image"), reference
        assert problem["message"] == f"image {reference!r} is not available to this account"
    assert not docker("ps", "-aq", "--filter", "label=dockyard.account=bob", "--filter",
                      f"label=dockyard.project=probe-{server.run}").stdout.split()


def test_existing_and_missing_images_get_the_same_answer(server: Server) -> None:
    """The enumeration of the issue: every 2-hex id prefix, with a config missing so nothing
    could deploy anyway. The engine has images under some prefixes and not under others."""
    engine_ids = docker("images", "-aq", "--no-trunc").stdout.split()
    present = {i.removeprefix("sha256:")[:2] for i in engine_ids}
    prefixes = [f"{n:02x}" for n in range(256)]
    assert present and set(prefixes) - present, "the probe needs both kinds of prefix"
    answers: dict[bytes, list[str]] = {}
    for prefix in prefixes:
        response = server.deploy("bob", f"enum-{server.run}", {
            "web": {"image": prefix, "environment": {"MISSING_CONFIG": None}}})
        assert response.status_code == 422, response.text
        answers.setdefault(response.content.replace(f"'{prefix}'".encode(), b"'P'"),
                           []).append(prefix)
    assert len(answers) == 1, {k[:300]: v[:5] for k, v in answers.items()}
    # and a name: alice's existing one, and one nobody has
    named = [server.deploy("bob", f"enum-{server.run}", {"web": {"image": name}}).content
             .replace(name.encode(), b"NAME") for name in ("alice/app:1", "alice/nothing:1")]
    assert named[0] == named[1]
    exists, missing = (server.deploy("bob", f"enum-{server.run}", {"web": {"image": ref}})
                       for ref in (server.alice_tag, server.alice_tag + "x"))
    assert exists.content.replace(server.alice_tag.encode(), b"T") == \
        missing.content.replace(server.alice_tag.encode() + b"x", b"T")


def test_bobs_build_never_retags_alices_image(server: Server) -> None:
    before = tags_of(server.alice_id)
    status = server.finish("bob", server.build(
        "bob", f"evil-{server.run}", DOCKERFILE.format(marker=f"bob-code-{server.run}"),
        image="alice/app:1"))
    assert status == "succeeded"
    assert tags_of(server.alice_id) == before
    assert docker("image", "inspect", "alice/app:1", check=False).returncode != 0
    bob_image = image_of("bob", f"evil-{server.run}")
    assert bob_image != server.alice_id
    assert all(t.startswith("dy-bob-") for t in tags_of(bob_image)), tags_of(bob_image)
    # alice's next deployment that says `image: alice/app:1` runs her code; bob's his.
    for who in ("alice", "bob"):
        status = server.finish(who, server.deploy(who, f"use-{server.run}", {
            "app": {"image": "alice/app:1", "stop_grace_period": "1s"}}))
        assert status == "succeeded", who
        assert code_in(who, f"use-{server.run}") == f"{who}-code-{server.run}", who


def test_labels_bob_forges_in_an_earlier_stage_make_nothing_alices(server: Server) -> None:
    """The server's labels go on a build's last stage only: an earlier stage is an untagged
    image with whatever labels bob wrote, alice's included (the server id too, at worst).
    Ownership also needs the tag only the server gives, so alice still runs her own code."""
    forged = (f"dockyard.managed=true dockyard.server={server.server_id} "
              f"dockyard.account=alice dockyard.project=app-{server.run} "
              "dockyard.service=app dockyard.image=docker.io/alice/app:1")
    dockerfile = (f"FROM dockyard/busybox:1 AS forged\nRUN echo bob-forged-{server.run} > /code\n"
                  f"LABEL {forged}\nCMD [\"sleep\", \"3600\"]\n"
                  "FROM dockyard/busybox:1\nRUN echo bob > /code\nCMD [\"sleep\", \"3600\"]\n")
    status = server.finish("bob", server.build("bob", f"forge-{server.run}", dockerfile))
    assert status == "succeeded"
    labelled = docker("images", "-q", "--no-trunc", "--filter", "label=dockyard.account=alice",
                      "--filter", f"label=dockyard.server={server.server_id}").stdout.split()
    decoys = [i for i in labelled if i != server.alice_id]
    assert decoys, "the forged stage image is on the engine (the attack is set up)"
    status = server.finish("alice", server.deploy("alice", f"use2-{server.run}", {
        "app": {"image": "alice/app:1", "stop_grace_period": "1s"}}))
    assert status == "succeeded"
    assert code_in("alice", f"use2-{server.run}") == f"alice-code-{server.run}"
    (problem,) = diagnostics(server.deploy("alice", f"use3-{server.run}", {
        "app": {"image": decoys[0].removeprefix("sha256:")[:12]}}))
    assert problem["code"] == "image-not-allowed"


def test_bobs_dockerfile_cannot_read_alices_image(server: Server) -> None:
    hex_id = server.alice_id.removeprefix("sha256:")
    cases = {
        f"FROM {server.alice_tag}\n": (1, server.alice_tag),
        f"FROM dockyard/busybox:1\nCOPY --from={hex_id[:12]} /code /code\n": (2, hex_id[:12]),
        "FROM dockyard/busybox:1 AS base\nFROM alice/app:1\n": (2, "alice/app:1"),
        f"FROM {server.alice_id}\n": (1, server.alice_id),
    }
    for dockerfile, (line, reference) in cases.items():
        (problem,) = diagnostics(server.build("bob", f"read-{server.run}", dockerfile))
        assert (problem["code"], problem["file"], problem["line"]) == (
            "image-not-allowed", "Dockerfile", line), problem
        assert reference in problem["message"] and "--allow-image" in problem["hint"]
    deployments = httpx.get(f"{server.url}/v1/deployments", headers=server.headers("bob"),
                            timeout=10).json()
    assert not [d for d in deployments if d["project"] == f"read-{server.run}"], deployments


def test_the_allowed_base_image_works(server: Server) -> None:
    status = server.finish("bob", server.deploy("bob", f"base-{server.run}", {
        "web": {"image": "dockyard/busybox:1", "command": ["sleep", "3600"],
                "stop_grace_period": "1s"}}))
    assert status == "succeeded"
    busybox = docker("image", "inspect", "--format", "{{.Id}}", "dockyard/busybox:1")
    assert image_of("bob", f"base-{server.run}") == busybox.stdout.strip()


def alice_id_starting_with_a_letter(server: Server) -> str:
    """The hex id of an image of alice's that starts with a letter (a stage name must): her
    build's, or one more build of hers until one does (ids are random: 10 in 16 do)."""
    hex_id = server.alice_id.removeprefix("sha256:")
    for attempt in range(12):
        if hex_id[0] in "abcdef":
            return hex_id
        project = f"letter-{server.run}"
        marker = f"alice-code-{server.run}-{attempt}"
        status = server.finish("alice", server.build("alice", project,
                                                     DOCKERFILE.format(marker=marker)))
        assert status == "succeeded"
        hex_id = image_of("alice", project).removeprefix("sha256:")
    raise AssertionError("no image id of alice's starting with a letter after 12 builds")


def test_bobs_dockerfile_cannot_smuggle_a_copy_from_alices_image(server: Server) -> None:
    """The bypasses of the adversarial review, each of which copied alice's /code into bob's
    image on a real server: a quoted flag name (a), a 0xA0 byte the engine splits flags at
    (c), and a stage that names itself, which the engine then looks up as an image id prefix
    (d); and an ADD from a URL on the host's loopback. Each is refused before anything is
    built, and nothing of alice's is printed."""
    hex_id = server.alice_id.removeprefix("sha256:")
    letter = alice_id_starting_with_a_letter(server)[:12]
    steal = b" /code /stolen\nRUN cat /stolen\n"
    cases: dict[bytes, tuple[str, int]] = {
        b'FROM dockyard/busybox:1\nCOPY --"from"=' + hex_id[:12].encode() + steal:
            ("dockerfile-invalid", 2),
        b"FROM dockyard/busybox:1\nCOPY --chown=0\xa0--from=" + hex_id[:12].encode() + steal:
            ("dockerfile-invalid", 2),
        f"FROM dockyard/busybox:1 AS {letter}\nCOPY --from={letter}".encode() + steal:
            ("image-not-allowed", 2),
        # dockerd would fetch it from the host's loopback, and print it in its error
        b"FROM dockyard/busybox:1\nADD http://127.0.0.1:7612/s.txt /stolen\n":
            ("dockerfile-invalid", 2),
    }
    project = f"smuggle-{server.run}"
    for dockerfile, (code, line) in cases.items():
        response = server.build("bob", project, dockerfile)
        (problem,) = diagnostics(response)
        assert (problem["code"], problem["file"], problem["line"]) == (
            code, "Dockerfile", line), (dockerfile, problem)
        assert "alice-code-" not in response.text
    deployments = httpx.get(f"{server.url}/v1/deployments", headers=server.headers("bob"),
                            timeout=10).json()
    assert not [d for d in deployments if d["project"] == project], deployments
    built = docker("images", "-aq", "--filter", "label=dockyard.account=bob",
                   "--filter", f"label=dockyard.project={project}").stdout.split()
    assert not built, built
