"""Project files over the HTTP API in-process (issue 13): bind mounts inside the project
directory and file/content configs are packed by the client (`deploy.prepare`), uploaded as
contexts, checked, unpacked per service and deployment, and mounted; host paths outside the
project are refused at admission unless the operator allows them."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.cli.commands.deploy import prepare
from dockyard.compose import LoadOptions
from dockyard.naming import NamingMode
from dockyard.server.settings import Limits
from tests.support.server import IMAGE, Server, digest_of, make_tar, running_server

HOME = {"HOME": "/home/alice"}
COMPOSE = f"""
services:
  web:
    image: {IMAGE}
    command: [sleep, 1d]
    volumes:
      - ./conf/httpd.conf:/etc/httpd.conf:ro
      - type: bind
        source: ./static
        target: /www
  data:
    image: {IMAGE}
    command: [sleep, 1d]
    volumes: ["./state:/state"]
    configs:
      - app
      - source: inline
        target: /etc/inline.txt
        mode: 0400
configs:
  app:
    file: ./conf/app.ini
  inline:
    content: hello $$USER
"""


def _fresh(tmp_path: Path) -> Path:
    (tmp_path / "s").mkdir()
    return tmp_path / "s"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with running_server(_fresh(tmp_path)) as running:
        yield running


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    (root / "conf").mkdir(parents=True)
    (root / "static").mkdir()
    (root / "state").mkdir()
    (root / "conf" / "httpd.conf").write_text("H:/www\n")
    (root / "conf" / "app.ini").write_text("[app]\nx=1\n")
    (root / "static" / "index.html").write_text("<h1>shop</h1>\n")
    (root / "static" / "secret.key").write_text("not for the server\n")
    (root / "static" / ".dockerignore").write_text("*.key\n")
    (root / "state" / "seed.txt").write_text("seed\n")
    (root / "compose.yaml").write_text(COMPOSE)
    return root


def _up(server: Server, root: Path, *, upload: bool = True,
        who: str = "alice") -> Any:
    name, data, builds, packs, _ = prepare(LoadOptions(working_dir=str(root), environ=HOME))
    client = server.client_of(who)
    for packed in packs:
        if upload and not client.has_context(packed.digest):
            client.upload_context(packed.digest, packed.data)
    data["name"] = name
    return server.call("POST", f"/v1/projects/{name}/deployments", who,
                       json={"project": data, "builds": builds}), data


def _deployed(server: Server, root: Path) -> str:
    response, _ = _up(server, root)
    assert response.status_code == 202, response.text
    deployment = str(response.json()["deployment"])
    assert server.events(deployment)[1] == "succeeded"
    return deployment


def _mount(server: Server, service: str, target: str) -> Any:
    (mount,) = [m for m in server.spec_of("shop", service).mounts if m.target == target]
    assert mount.type == "bind" and mount.source
    return mount


def test_the_wire_carries_digests_not_host_paths(server: Server, project: Path) -> None:
    _, data = _up(server, project)
    text = json.dumps(data)
    assert str(project) not in text
    entries = data["services"]["web"]["x-dockyard-files"]
    assert [(e["source"], e["target"], e["read_only"]) for e in entries] == [
        ("./conf/httpd.conf", "/etc/httpd.conf", True), ("./static", "/www", False)]
    assert all(e["digest"].startswith("sha256:") for e in entries)
    assert "volumes" not in data["services"]["web"] and "configs" not in data


def test_files_and_configs_are_mounted_read_only_or_copied(server: Server,
                                                           project: Path) -> None:
    _deployed(server, project)
    conf = _mount(server, "web", "/etc/httpd.conf")
    assert conf.read_only and Path(conf.source).read_text() == "H:/www\n"
    www = _mount(server, "web", "/www")
    assert not www.read_only
    assert sorted(p.name for p in Path(www.source).iterdir()) == [".dockerignore",
                                                                  "index.html"]
    app = _mount(server, "data", "/app")  # a config's default target: /<name>
    assert app.read_only and Path(app.source).read_text() == "[app]\nx=1\n"
    assert stat.S_IMODE(Path(app.source).stat().st_mode) == 0o444
    inline = _mount(server, "data", "/etc/inline.txt")
    assert inline.read_only and Path(inline.source).read_text() == "hello $USER"
    assert stat.S_IMODE(Path(inline.source).stat().st_mode) == 0o400
    assert Path(conf.source).is_relative_to(server.settings.data / "project-files")
    assert server.down("shop") == "succeeded"
    assert not Path(conf.source).exists()


def test_a_changed_file_replaces_only_the_services_mounting_it(server: Server,
                                                              project: Path) -> None:
    _deployed(server, project)
    before = server.containers("shop")
    state = Path(_mount(server, "data", "/state").source)
    (state / "written.txt").write_text("by the container")  # as the service writes

    _deployed(server, project)  # nothing changed: nothing restarts
    assert server.containers("shop") == before
    assert (state / "written.txt").read_text() == "by the container"

    (project / "conf" / "httpd.conf").write_text("H:/srv\n")
    _deployed(server, project)
    after = server.containers("shop")
    assert after["data"] == before["data"] and after["web"] != before["web"]
    assert Path(_mount(server, "web", "/etc/httpd.conf").source).read_text() == "H:/srv\n"
    assert (state / "written.txt").exists()  # data was kept: its copy is still in use


def test_the_plan_names_project_files_as_the_reason(server: Server, project: Path) -> None:
    _deployed(server, project)
    (project / "static" / "index.html").write_text("<h1>new</h1>\n")
    name, data, builds, packs, _ = prepare(LoadOptions(working_dir=str(project), environ=HOME))
    client = server.client_of()
    for packed in packs:
        if not client.has_context(packed.digest):
            client.upload_context(packed.digest, packed.data)
    found = client.plan(name, data, builds)
    actions = {item.service: (item.action, tuple(item.reasons)) for item in found.services}
    assert actions == {"web": ("replace", ("project files changed",)),
                       "data": ("keep", ("unchanged",))}


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another user needs root")
def test_a_writable_copy_belongs_to_the_services_numeric_user(server: Server,
                                                              project: Path) -> None:
    text = (project / "compose.yaml").read_text()
    volumes = '    volumes: ["./state:/state"]'
    (project / "compose.yaml").write_text(
        text.replace(volumes, '    user: "4321:4322"\n' + volumes))
    _deployed(server, project)
    state = Path(_mount(server, "data", "/state").source)
    for path in (state, state / "seed.txt"):
        assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4322)
    app = Path(_mount(server, "data", "/app").source)  # read-only: left as unpacked
    assert app.stat().st_uid == os.geteuid()


def test_the_uploads_a_deployment_mounts_are_kept_from_collection(server: Server,
                                                                  project: Path) -> None:
    _deployed(server, project)
    data = prepare(LoadOptions(working_dir=str(project), environ=HOME))[1]
    digests = {e["digest"] for s in data["services"].values() for e in s["x-dockyard-files"]}
    account = server.accounts["alice"].id
    assert {(account, d) for d in digests} <= server.store.contexts_in_use()
    found = server.control.contexts.collect(
        {(str(account), d) for d in digests}, ttl=0.0)
    assert found.markers == 0 and all(server.control.contexts.has(d) for d in digests)


def test_files_not_uploaded_are_refused(server: Server, project: Path) -> None:
    response, _ = _up(server, project, upload=False)
    assert response.status_code == 422, response.text
    codes = {d["code"] for d in response.json()["diagnostics"]}
    assert codes == {"project-files-missing"}


def test_another_accounts_upload_is_not_yours(server: Server, project: Path) -> None:
    _up(server, project, who="bob")  # bob uploads the same files
    response, _ = _up(server, project, upload=False)
    assert response.status_code == 422 and "project-files-missing" in response.text


@pytest.mark.parametrize("volume", ["/var/run/docker.sock:/var/run/docker.sock", "/:/host",
                                    "~/.aws:/root/.aws", "../..:/up"])
def test_host_paths_outside_the_project_are_refused(server: Server, project: Path,
                                                    volume: str) -> None:
    (project / "compose.yaml").write_text(
        f"services:\n  web:\n    image: {IMAGE}\n    volumes: ['{volume}']\n")
    response, data = _up(server, project)
    assert response.status_code == 422, response.text
    (problem,) = response.json()["diagnostics"]
    source = data["services"]["web"]["volumes"][0]["source"]
    assert problem["code"] == "bind-mount" and problem["path"] == "services.web.volumes[0]"
    assert f"host path {source} at" in problem["message"]
    assert "--allow-host-paths" in problem["hint"]
    assert not server.containers("shop")


def test_an_allowed_host_path_is_mounted(tmp_path: Path, project: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (project / "compose.yaml").write_text(
        f"services:\n  web:\n    image: {IMAGE}\n    command: [sleep, 1d]\n"
        f"    volumes: ['{media}/films:/films:ro', '/etc:/etc2']\n")
    with running_server(_fresh(tmp_path), allow_host_paths=(str(media),)) as server:
        response, _ = _up(server, project)
        assert response.status_code == 422  # /etc is not allowed
        assert [d["path"] for d in response.json()["diagnostics"]] == ["services.web.volumes[1]"]
        (project / "compose.yaml").write_text(
            f"services:\n  web:\n    image: {IMAGE}\n    command: [sleep, 1d]\n"
            f"    volumes: ['{media}/films:/films:ro']\n")
        _deployed(server, project)
        mount = _mount(server, "web", "/films")
        assert mount.source == f"{media}/films" and mount.read_only


def test_a_playground_never_mounts_host_paths(tmp_path: Path, project: Path) -> None:
    (project / "compose.yaml").write_text(
        f"services:\n  web:\n    image: {IMAGE}\n    volumes: ['/srv:/srv']\n")
    with running_server(_fresh(tmp_path), mode=NamingMode.PLAYGROUND, zone="prod1a.localhost",
                        limits=Limits(), allow_images=("dockyard/busybox:*",),
                        allow_host_paths=("/srv",)) as server:
        response, _ = _up(server, project)
        assert response.status_code == 422
        assert "a shared server never mounts" in response.json()["diagnostics"][0]["hint"]


def test_the_swarm_driver_refuses_project_files_naming_the_service(
        tmp_path: Path, project: Path) -> None:
    with running_server(_fresh(tmp_path), driver="swarm") as server:
        response, _ = _up(server, project)
        assert response.status_code == 422
        found = {(d["code"], d["path"]) for d in response.json()["diagnostics"]}
        assert found == {("project-files-unsupported", "services.web.volumes"),
                         ("project-files-unsupported", "services.data.volumes")}
        assert "service 'web'" in response.text


@pytest.mark.parametrize("members", [{"../escape": b"x"}, {"/etc/passwd": b"x"}])
def test_a_hostile_upload_is_refused(server: Server, members: dict[str, bytes]) -> None:
    data = make_tar(members)
    digest = digest_of(data)
    response = server.call("PUT", f"/v1/contexts/{digest}", content=data)
    assert response.status_code == 422, response.text
    assert server.call("HEAD", f"/v1/contexts/{digest}").status_code == 404
