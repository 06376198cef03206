"""`dockyard config resolve`: the CLI in-process against an in-process server (as alice, through
`connect`). The project sets variables every way there is: a literal, `${VAR}` from `.env` and
from the environment, an override file, an `env_file`, a `${VAR:-default}`, a key with no value
(a config), `${NAME}` left for a config, and an external secret file. One config is set; its
value never reaches the CLI (the server is only asked for names)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.cli.main import main
from dockyard.client import api
from dockyard.compose import LoadOptions, load_project
from dockyard.compose.env_origins import SHELL, EnvOrigin, Variable, environment_origins
from dockyard.exit_codes import ExitCode
from dockyard.secrets.env_resolve import resolve_environment
from tests.support.cli import write_files
from tests.support.golden import check_golden
from tests.support.server import Server, running_server

SECRET = "sk-live-0f9e8d7c6b5a"  # the value of config API_KEY

FILES = {
    "compose.yaml": """\
name: shop
services:
  web:
    image: busybox
    env_file: [web.env]
    environment:
      API_URL: http://api:8000
      GREETING: hello-${USER_NAME}
      RELEASE: "${RELEASE:-dev}"
      PRICE: "$$5"
  api:
    image: busybox
    environment:
      - DATABASE_URL=postgres://${DB_USER}:${DB_PASSWORD}@db/${COMPOSE_PROJECT_NAME}
      - API_KEY
      - LOG_LEVEL=$LOG_LEVEL
    secrets: [db_password]
secrets:
  db_password:
    external: true
""",
    "compose.override.yaml": """\
services:
  web:
    environment:
      THEME: ${THEME}
""",
    ".env": "DB_USER=app\nLOG_LEVEL=debug\nUSER_NAME=from-dotenv\n",
    "web.env": "THEME=light\nAPI_URL=overridden-below\nTIMEOUT=30\n",
}
VARIABLES = ("USER_NAME", "RELEASE", "DB_USER", "DB_PASSWORD", "LOG_LEVEL", "THEME",
             "API_KEY", "COMPOSE_PROJECT_NAME", "COMPOSE_FILE", "COMPOSE_ENV_FILES",
             "COMPOSE_PROFILES")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Server]]:
    directory = write_files(tmp_path / "shop", FILES)
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("USER_NAME", "bob")  # the environment wins over .env
    monkeypatch.chdir(directory)
    with running_server(tmp_path) as server:
        server.set_config("shop", "API_KEY", SECRET)
        monkeypatch.setattr(api, "connect", lambda *_a, **_k: server.client_of("alice"))
        yield directory, server


def resolve(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["config", "resolve", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_golden_config_resolve_table(project: tuple[Path, Server], regen: bool,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = resolve(capsys)
    assert code == ExitCode.OK, err
    check_golden("config_resolve.txt", out, regen)
    assert SECRET not in out + err
    # The configs that are needed and not set are named, with what to do.
    assert "config DB_PASSWORD is not set (needed by api)" in err
    assert "config db_password is not set (needed by api)" in err
    assert "dockyard config set DB_PASSWORD -p shop" in err
    assert "API_KEY is not set" not in err


def test_json_says_where_each_value_comes_from(project: tuple[Path, Server],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    directory, server = project
    code, out, err = resolve(capsys, "--json", "-C", str(directory))
    assert code == ExitCode.OK, err
    data = json.loads(out)
    rows = {(r["service"], r["name"]): r for r in data["variables"]}
    assert rows["api", "API_KEY"] == {
        "service": "api", "name": "API_KEY", "value": None, "source": "config",
        "origin": None, "secret_file": False, "configs": [{"name": "API_KEY", "set": True}]}
    url = rows["api", "DATABASE_URL"]
    assert url["value"] == "postgres://app:${DB_PASSWORD}@db/shop"
    assert url["origin"]["file"] == "compose.yaml" and url["origin"]["line"] == 14
    assert url["origin"]["variables"] == [
        {"name": "DB_USER", "from": ".env"},
        {"name": "COMPOSE_PROJECT_NAME", "from": "the project's name"}]
    assert url["configs"] == [{"name": "DB_PASSWORD", "set": False}]
    assert rows["web", "GREETING"]["origin"]["variables"] == [
        {"name": "USER_NAME", "from": "environment"}]
    assert rows["web", "GREETING"]["value"] == "hello-bob"
    assert rows["web", "THEME"]["origin"]["file"] == "compose.override.yaml"
    assert rows["web", "TIMEOUT"]["origin"] == {"kind": "env_file", "file": "web.env",
                                               "line": None, "variables": []}
    assert rows["web", "API_URL"]["origin"]["kind"] == "compose"  # environment wins
    assert rows["api", "/run/secrets/db_password"]["secret_file"] is True
    # web.env is no interpolation source (only .env and the environment are): ${THEME} in
    # the override is a config, and it wins over the env_file's THEME.
    assert rows["web", "THEME"]["configs"] == [{"name": "THEME", "set": False}]
    assert data["missing"] == {"DB_PASSWORD": ["api"], "THEME": ["web"],
                               "db_password": ["api"]}
    assert SECRET not in out and not any(SECRET in body for body in server.bodies)


def test_an_invalid_project_is_refused_before_the_server_is_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    write_files(tmp_path, {"compose.yaml": "services:\n  web: {}\n"})

    def connect(*_args: object, **_kwargs: object) -> api.Client:
        raise AssertionError("the server was asked about an invalid project")

    monkeypatch.setattr(api, "connect", connect)
    code, _, err = resolve(capsys, "-C", str(tmp_path))
    assert code == ExitCode.INVALID_PROJECT and "no-image-or-build" in err


def test_origins_follow_extends_and_env_file_order(tmp_path: Path) -> None:
    """The pure part, from Python: an `extends`d value is traced to its base, and a later
    env_file wins over an earlier one."""
    write_files(tmp_path, {
        "compose.yaml": "services:\n  base:\n    image: busybox\n    environment:\n"
                        "      MODE: ${MODE}\n  web:\n    extends: base\n"
                        "    env_file: [a.env, b.env]\n",
        "a.env": "COLOR=red\nSIZE=1\n", "b.env": "COLOR=blue\n"})
    options = LoadOptions(working_dir=str(tmp_path), environ={"MODE": "fast"})
    origins = environment_origins(options)
    assert origins["web"]["MODE"].variables == (Variable("MODE", SHELL),)
    assert origins["web"]["COLOR"] == EnvOrigin("env_file", "b.env")
    assert origins["web"]["SIZE"] == EnvOrigin("env_file", "a.env")
    project = load_project(options).project
    rows = resolve_environment(project, origins, []).variables
    assert [(r.service, r.name, r.shown_value) for r in rows if r.service == "web"] == [
        ("web", "COLOR", "blue"), ("web", "SIZE", "1"), ("web", "MODE", "fast")]
