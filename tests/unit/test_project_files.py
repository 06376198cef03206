"""Project files (issue 13): the client's packing, the wire, the plan's `project files` part,
the server's allow-list of host paths."""

from __future__ import annotations

import argparse
import dataclasses
import os
import tarfile
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from dockyard.build.context import BuildContextError
from dockyard.build.project_files import pack_content, pack_path, pack_project_files
from dockyard.compose import LoadOptions, load_project, project_to_dict
from dockyard.compose.models import Project
from dockyard.errors import UsageError
from dockyard.exit_codes import ExitCode
from dockyard.plan import RunningService, config_hash, config_parts, plan
from dockyard.server.arguments import add_server_arguments, server_options
from dockyard.server.main import run
from dockyard.server.project_files import host_path_allowed
from dockyard.server.settings import settings_from
from dockyard.wire import FILES_KEY, check_wire, to_wire

DIGEST = "sha256:" + "a" * 64


def _members(data: bytes) -> dict[str, int]:
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        return {m.name: m.mode for m in tar.getmembers()}


def _project(root: Path, compose: str) -> Project:
    (root / "compose.yaml").write_text(compose)
    return load_project(LoadOptions(working_dir=str(root), environ={})).project


def test_a_directory_packs_reproducibly_without_what_dockerignore_excludes(
        tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("hi")
    (tmp_path / "www" / "app.key").write_text("k")
    (tmp_path / "www" / ".dockerignore").write_text("*.key\n")
    first, member = pack_path(str(tmp_path / "www"))
    assert member == "." and set(_members(first.data)) == {".dockerignore", "index.html"}
    os.utime(tmp_path / "www" / "index.html", (1, 1))  # times are not packed
    assert pack_path(str(tmp_path / "www"))[0].digest == first.digest
    (tmp_path / "www" / "index.html").write_text("changed")
    assert pack_path(str(tmp_path / "www"))[0].digest != first.digest


def test_a_file_packs_under_its_name_and_content_with_its_mode(tmp_path: Path) -> None:
    (tmp_path / "nginx.conf").write_text("x")
    packed, member = pack_path(str(tmp_path / "nginx.conf"))
    assert member == "nginx.conf" and set(_members(packed.data)) == {"nginx.conf"}
    assert _members(pack_content("inline", b"v", 0o400).data) == {"inline": 0o400}
    with pytest.raises(BuildContextError, match="does not exist"):
        pack_path(str(tmp_path / "missing.conf"))


def test_a_missing_short_syntax_source_is_an_empty_directory(tmp_path: Path) -> None:
    project = _project(tmp_path, "services:\n  db:\n    image: busybox\n"
                       "    volumes: ['./data:/var/lib/data']\n")
    files = pack_project_files(project)
    (entry,) = files.services["db"].entries
    assert entry["path"] == "." and entry["target"] == "/var/lib/data"
    (packed,) = files.packs
    assert _members(packed.data) == {}
    long_form = _project(tmp_path, "services:\n  db:\n    image: busybox\n    volumes:\n"
                         "      - {type: bind, source: ./data, target: /d}\n")
    with pytest.raises(BuildContextError, match="does not exist"):
        pack_project_files(long_form)


COMPOSE = """
services:
  web:
    image: busybox
    volumes:
      - ./conf/nginx.conf:/etc/nginx/nginx.conf:ro
      - ./static:/usr/share/nginx/html
      - data:/data
      - /var/run/docker.sock:/var/run/docker.sock
    configs: [site, {source: inline, target: etc/inline, mode: 0440}]
  other:
    image: busybox
volumes: {data: {}}
configs:
  site: {file: ./conf/site.txt}
  inline: {content: "v=1"}
"""


@pytest.fixture
def shop(tmp_path: Path) -> Project:
    (tmp_path / "conf").mkdir()
    (tmp_path / "static").mkdir()
    (tmp_path / "conf" / "nginx.conf").write_text("events {}")
    (tmp_path / "conf" / "site.txt").write_text("site")
    (tmp_path / "static" / "index.html").write_text("hi")
    return _project(tmp_path, COMPOSE)


def test_the_wire_replaces_project_mounts_and_configs_with_digests(shop: Project) -> None:
    files = pack_project_files(shop)
    assert set(files.services) == {"web"} and len(files.packs) == 4
    data, problems = to_wire(project_to_dict(shop), files.services)
    assert problems == []
    web = data["services"]["web"]
    assert [v.get("source") for v in web["volumes"]] == ["data", "/var/run/docker.sock"]
    assert "configs" not in web and "configs" not in data
    assert [(e["source"], e["path"], e["target"], e["read_only"]) for e in web[FILES_KEY]] == [
        ("./conf/nginx.conf", "nginx.conf", "/etc/nginx/nginx.conf", True),
        ("./static", ".", "/usr/share/nginx/html", False),
        ("./conf/site.txt", "site", "/site", True),
        ("configs.inline.content", "inline", "/etc/inline", True)]
    assert shop.working_dir not in repr(web[FILES_KEY])


def test_a_config_file_outside_the_project_is_refused(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "outside.txt").write_text("x")
    project = _project(tmp_path / "p", "services: {web: {image: busybox, configs: [c]}}\n"
                       "configs: {c: {file: ../outside.txt}}\n")
    with pytest.raises(BuildContextError, match="outside the project directory"):
        pack_project_files(project)


def _entry(**changes: Any) -> dict[str, Any]:
    return {"digest": DIGEST, "path": ".", "target": "/www", "read_only": False, **changes}


@pytest.mark.parametrize("entry", [
    _entry(digest="sha256:xyz"), _entry(path="../../etc"), _entry(path="/etc"),
    _entry(target="www"), _entry(read_only="yes"), _entry(host="/etc"), "./static:/www",
])
def test_the_server_refuses_a_malformed_project_file(entry: Any) -> None:
    problems = check_wire({"services": {"web": {"image": "x", FILES_KEY: [entry]}}})
    assert problems and all(p.code == "server-path" for p in problems)
    assert str(problems[0].location.path).startswith(f"services.web.{FILES_KEY}[0]")


def test_a_relative_bind_source_never_reaches_a_server() -> None:
    relative = {"type": "bind", "source": "static", "target": "/www"}
    absolute = {"type": "bind", "source": "/srv/www", "target": "/www"}
    assert check_wire({"services": {"web": {"image": "x", "volumes": [relative]}}})
    assert check_wire({"services": {"web": {"image": "x", "volumes": [absolute]}}}) == []


def test_a_changed_file_is_its_own_part_of_the_plan(shop: Project) -> None:
    files = pack_project_files(shop)
    data, _ = to_wire(project_to_dict(shop), files.services)
    web = shop.services["web"]
    sent = dataclasses.replace(web, extensions={FILES_KEY: data["services"]["web"][FILES_KEY]})
    changed_entries = [dict(e) for e in data["services"]["web"][FILES_KEY]]
    changed_entries[0]["digest"] = DIGEST
    changed = dataclasses.replace(web, extensions={FILES_KEY: changed_entries})
    before, after = config_parts(sent), config_parts(changed)
    assert {k for k in before if before[k] != after.get(k)} == {"project files"}
    running = {"web": RunningService("web", config_hash(sent), 1, before)}
    project = dataclasses.replace(shop, services={"web": changed})
    (action,) = plan(project, running)
    assert action.kind.value == "replace" and action.reasons == ("project files changed",)
    same = dataclasses.replace(shop, services={"web": sent})
    assert plan(same, running)[0].kind.value == "keep"


@pytest.mark.parametrize(("path", "allowed"), [
    ("/srv/media", True), ("/srv/media/films", True), ("/srv/media/../../etc", False),
    ("/srv/mediax", False), ("/", False), ("/var/run/docker.sock", False)])
def test_host_paths_are_allowed_only_below_the_operators_directories(
        path: str, allowed: bool) -> None:
    assert host_path_allowed(path, ("/srv/media",)) is allowed


def test_allow_host_paths_is_refused_in_playground_mode() -> None:
    assert settings_from({"allow_host_paths": "/srv/b,/srv/a/"}).allow_host_paths == (
        "/srv/a", "/srv/b")
    with pytest.raises(UsageError, match="cannot be used in playground mode"):
        settings_from({"mode": "playground", "allow_host_paths": "/srv"})
    with pytest.raises(UsageError, match="not an absolute directory"):
        settings_from({"allow_host_paths": "srv"})


def test_the_server_option_takes_several_directories_and_refuses_a_playground(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_server_arguments(parser)
    options = server_options(parser.parse_args(
        ["--allow-host-paths", "/srv/media", "/var/log", "--allow-host-paths", "/opt"]))
    assert settings_from(options, environ={}).allow_host_paths == (
        "/opt", "/srv/media", "/var/log")
    code = run(["--mode", "playground", "--data", str(tmp_path), "--allow-host-paths", "/srv"])
    assert code == int(ExitCode.USAGE)
    assert "--allow-host-paths cannot be used in playground mode" in capsys.readouterr().err
