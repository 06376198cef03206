"""`~` in a Compose path is the HOME of `LoadOptions.environ`, never the process's own `$HOME`:
loading is a function of its inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.compose import LoadOptions, load_project
from dockyard.compose.normalize import Normalizer, expand_home
from dockyard.compose.paths import KeyPath

PROCESS_HOME = "/process/home"
GIVEN_HOME = "/home/alice"


@pytest.fixture(autouse=True)
def _process_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", PROCESS_HOME)


def _load(tmp_path: Path, text: str, environ: dict[str, str]) -> LoadOptions:
    (tmp_path / "compose.yaml").write_text(text, encoding="utf-8")
    return LoadOptions(working_dir=str(tmp_path), environ=environ)


def test_build_contexts_expand_with_the_given_home(tmp_path: Path) -> None:
    options = _load(tmp_path, "services:\n  web:\n    build: ~/app\n"
                              "  db:\n    build: {context: ~/ctx}\n", {"HOME": GIVEN_HOME})
    services = load_project(options).project.services
    assert services["web"].build is not None and services["db"].build is not None
    assert services["web"].build.context == f"{GIVEN_HOME}/app"
    assert services["db"].build.context == f"{GIVEN_HOME}/ctx"


def test_a_bind_mount_names_the_given_home(tmp_path: Path) -> None:
    options = _load(tmp_path, "services:\n  web:\n    image: x\n    volumes: ['~/x:/data']\n",
                    {"HOME": GIVEN_HOME})
    (mount,) = [d for d in load_project(options).warnings if d.code == "host-path"]
    assert f"{GIVEN_HOME}/x" in mount.message
    assert PROCESS_HOME not in mount.message


def test_without_a_home_the_tilde_is_not_the_process_home(tmp_path: Path) -> None:
    options = _load(tmp_path, "services:\n  web:\n    build: ~/app\n", {})
    build = load_project(options).project.services["web"].build
    assert build is not None
    assert build.context == str(tmp_path / "~" / "app")


def test_the_normalizer_expands_with_its_home() -> None:
    def report(code: str, message: str, path: KeyPath, hint: str | None) -> None:
        raise AssertionError(message)

    normalizer = Normalizer(report, "p", "/project", home=GIVEN_HOME)
    assert normalizer.abspath("~/x") == f"{GIVEN_HOME}/x"
    assert Normalizer(report, "p", "/project").abspath("~/x") == "/project/~/x"


@pytest.mark.parametrize(("path", "home", "expected"), [
    ("~", "/h", "/h"),
    ("~/a/b", "/h/", "/h/a/b"),
    ("~/a", "/", "/a"),
    ("~", "/", "/"),
    ("~/a", None, "~/a"),
    ("~/a", "", "~/a"),
    ("~bob/a", "/h", "~bob/a"),
    ("a/~/b", "/h", "a/~/b"),
    ("/abs", "/h", "/abs"),
])
def test_expand_home(path: str, home: str | None, expected: str) -> None:
    assert expand_home(path, home) == expected
