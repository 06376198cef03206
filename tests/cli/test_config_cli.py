"""`dockyard compose config` end to end: the real console script, run as a subprocess.

Each run costs about 0.3 s, so the valid and the invalid project are each run once per module
(module-scoped fixtures) and their output is checked by several tests. The environment is
controlled: no COMPOSE_* or DOCKYARD_* variable leaks in from the caller, DOCKYARD_HOME is a
temporary directory, the user is alice, and colour is off (golden files compare plain text).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

import dockyard
from dockyard.exit_codes import ExitCode
from tests.support.cli import Result, run_cli, write_files
from tests.support.golden import check_golden

PLACEHOLDER = "<PROJECT>"


def as_mapping(value: Any) -> dict[str, Any]:
    assert isinstance(value, dict), f"expected a mapping, got {type(value).__name__}"
    return value


def service(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    return as_mapping(as_mapping(data["services"])[name])


def xd(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    return as_mapping(service(data, name)["x-dockyard"])


def lines_starting(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def placeholder(text: str, directory: Path) -> str:
    for form in {str(directory.resolve()), str(directory)}:
        text = text.replace(form, PLACEHOLDER)
    return text


# --- projects ---------------------------------------------------------------------------------

VALID_COMPOSE = """\
name: shop
services:
  web:
    image: "nginx:1${WEB_TAG}"  # unset, still a valid tag
    ports:
      - "8080"
    environment:
      API_URL: http://api:8000
      GREETING: ${GREETING}
  api:
    build: ./api
    ports:
      - target: 8000
    environment:
      DATABASE_PASSWORD: ${DB_PASSWORD}
      API_KEY:
      TRICKY_YES: "yes"
      TRICKY_TIME: "12:30"
      TRICKY_NEWLINE: "a\\nb"
      TRICKY_DOLLAR: "price $$5"
    healthcheck:
      test: ["CMD", "true"]
      interval: 5s
    depends_on:
      db:
        condition: service_healthy
  db:
    image: postgres:16
    healthcheck:
      test: ["CMD-SHELL", "pg_isready"]
  metrics:
    image: prom/node-exporter
    ports:
      - target: 9100
        published: 9100
        mode: host
  debugger:
    image: busybox
    profiles: [debug]
"""

VALID_FILES = {
    "compose.yaml": VALID_COMPOSE,
    ".env": "GREETING=hello from dotenv\n",
    "alt.env": "GREETING=hello from alt\nWEB_TAG=alt\n",
    "api/Dockerfile": "FROM busybox\n",
    "override.yaml": (
        "services:\n"
        "  web:\n"
        "    image: nginx:1.27\n"
        "  cache:\n"
        "    image: redis:7\n"
    ),
}

# Only errors of the validation phase (each with a hint), plus three warnings (one names the
# project directory: a writable bind mount of ./data).
INVALID_COMPOSE = """\
name: broken
services:
  web:
    image: nginx
    ports:
      - "8080"
      - "70000"
    depends_on:
      - ghost
  api:
    ports:
      - "8000"
    volumes:
      - ./data:/data
  my_app:
    image: app
    ports: ["80"]
    healthcheck:
      test: ["CMD", "true"]
  my-app:
    image: app
    ports: ["80"]
    healthcheck:
      test: ["CMD", "true"]
  worker:
    image: worker
    domainname: worker.example.com
  a:
    image: x
    depends_on: [b]
  b:
    image: x
    depends_on: [a]
"""

# (code, line, key path) of every error in INVALID_COMPOSE.
INVALID_ERRORS = [
    ("port-range", 7, "services.web.ports[1]"),
    ("depends-on-unknown", 9, "services.web.depends_on[0]"),
    ("no-image-or-build", 10, "services.api"),
    ("domain-collision", 20, "services.my-app"),
    ("domainname-without-ingress", 27, "services.worker.domainname"),
    ("dependency-cycle", 30, "services.a.depends_on[0]"),
]


# --- module-wide runs -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dockyard-home")


@pytest.fixture(scope="module")
def valid_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_files(tmp_path_factory.mktemp("valid").resolve(), VALID_FILES)


@pytest.fixture(scope="module")
def invalid_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_files(tmp_path_factory.mktemp("invalid").resolve(),
                       {"compose.yaml": INVALID_COMPOSE})


@pytest.fixture(scope="module")
def valid_yaml(valid_dir: Path, home: Path) -> Result:
    return run_cli("compose", "config", cwd=valid_dir, home=home)


@pytest.fixture(scope="module")
def valid_json(valid_dir: Path, home: Path) -> Result:
    return run_cli("compose", "config", "--json", cwd=valid_dir, home=home)


@pytest.fixture(scope="module")
def config(valid_yaml: Result) -> dict[str, Any]:
    assert valid_yaml.code == ExitCode.OK, valid_yaml.err
    return as_mapping(yaml.safe_load(valid_yaml.out))


@pytest.fixture(scope="module")
def invalid_run(invalid_dir: Path, home: Path) -> Result:
    return run_cli("compose", "config", cwd=invalid_dir, home=home)


# --- a valid project --------------------------------------------------------------------------

def test_valid_project_exits_0_and_prints_yaml(valid_yaml: Result, config: dict[str, Any]
                                               ) -> None:
    assert valid_yaml.code == ExitCode.OK
    assert "Traceback" not in valid_yaml.err
    assert config["name"] == "shop"
    # `debugger` is in a profile that is not enabled.
    assert set(as_mapping(config["services"])) == {"web", "api", "db", "metrics"}
    for name in ("web", "api", "db", "metrics"):
        assert "x-dockyard" in service(config, name)


def test_exposure(config: dict[str, Any]) -> None:
    assert xd(config, "web")["exposure"] == "public"
    assert xd(config, "api")["exposure"] == "public"
    assert xd(config, "db")["exposure"] == "private"
    assert xd(config, "metrics")["exposure"] == "host"


def test_domains_in_both_naming_modes(config: dict[str, Any]) -> None:
    assert xd(config, "web")["domains"] == {
        "playground": ["alice-web--8080.prod1a.localhost"],
        "byoc": ["web--8080.shop.alice.localhost"],
    }
    assert xd(config, "api")["domains"] == {
        "playground": ["alice-api--8000.prod1a.localhost"],
        "byoc": ["api--8000.shop.alice.localhost"],
    }
    for name in ("db", "metrics"):  # no ingress port: no domain
        assert xd(config, name)["domains"] == {"playground": [], "byoc": []}


def test_private_hostnames(config: dict[str, Any]) -> None:
    for name in ("web", "api", "db", "metrics"):
        hostnames = as_mapping(xd(config, name)["private_hostnames"])
        assert set(hostnames) == {"playground", "byoc"}
        for mode_names in hostnames.values():
            assert name in mode_names
            assert f"{name}.shop.internal" in mode_names
        assert f"alice-{name}" in hostnames["playground"]


def test_ports_in_long_form_with_published_as_string(config: dict[str, Any]) -> None:
    assert service(config, "web")["ports"] == [
        {"mode": "ingress", "target": 8080, "protocol": "tcp"}]
    assert service(config, "metrics")["ports"] == [
        {"mode": "host", "target": 9100, "published": "9100", "protocol": "tcp"}]
    for name in ("web", "api", "metrics"):
        for port in service(config, name)["ports"]:
            assert isinstance(port["target"], int)
            assert isinstance(port.get("published", ""), str)
    assert xd(config, "metrics")["host_ports"] == ["9100/tcp"]
    assert xd(config, "web")["ingress_ports"] == [8080]


def test_compose_shapes(config: dict[str, Any]) -> None:
    api = service(config, "api")
    assert api["depends_on"] == {"db": {"condition": "service_healthy", "required": True}}
    assert isinstance(api["environment"], dict)
    assert service(config, "web")["environment"]["GREETING"] == "hello from dotenv"


def test_json_has_the_same_content(valid_json: Result, valid_yaml: Result,
                                   config: dict[str, Any]) -> None:
    assert valid_json.code == ExitCode.OK
    assert json.loads(valid_json.out) == config
    assert valid_json.err == valid_yaml.err


def test_strings_read_back_identically(valid_json: Result, config: dict[str, Any]) -> None:
    env = service(config, "api")["environment"]
    assert env["TRICKY_YES"] == "yes"
    assert env["TRICKY_TIME"] == "12:30"
    assert env["TRICKY_NEWLINE"] == "a\nb"
    assert env["TRICKY_DOLLAR"] == "price $$5"  # a literal `$` is written `$$`, as Compose
    assert service(json.loads(valid_json.out), "api")["environment"] == env


def test_warnings_go_to_stderr_once_each(valid_yaml: Result) -> None:
    warnings = lines_starting(valid_yaml.err, "warning[")
    assert len(warnings) == len(set(warnings)), valid_yaml.err
    assert [w.split(":")[0:3] for w in warnings] == [
        ["warning[unset-variable] compose.yaml", "4", " services.web.image"],
        ["warning[ingress-no-healthcheck] compose.yaml", "6", " services.web.ports[0]"],
    ]
    assert '"WEB_TAG"' in warnings[0]
    assert valid_yaml.err.count("    hint: ") == 2
    assert "warning" not in valid_yaml.out
    assert "hint" not in valid_yaml.out
    assert "error" not in valid_yaml.err


def test_config_reference_is_kept_literally(valid_yaml: Result, valid_json: Result,
                                            config: dict[str, Any]) -> None:
    # ${DB_PASSWORD} is defined nowhere: the server resolves it from the account's configs.
    assert '"${DB_PASSWORD}"' in valid_yaml.out
    assert service(config, "api")["environment"]["DATABASE_PASSWORD"] == "${DB_PASSWORD}"
    assert service(json.loads(valid_json.out), "api")["environment"][
        "DATABASE_PASSWORD"] == "${DB_PASSWORD}"
    assert service(config, "api")["environment"]["API_KEY"] is None
    assert xd(config, "api")["configs"] == ["API_KEY", "DB_PASSWORD"]
    assert xd(config, "web")["configs"] == []
    assert "DB_PASSWORD" not in valid_yaml.err  # a config reference is not an unset variable


# --- options ----------------------------------------------------------------------------------

def test_file_option_repeated(valid_dir: Path, home: Path) -> None:
    result = run_cli("compose", "config", "--json", "-f", "compose.yaml", "-f", "override.yaml",
                     cwd=valid_dir, home=home)
    assert result.code == ExitCode.OK, result.err
    data = json.loads(result.out)
    assert service(data, "web")["image"] == "nginx:1.27"
    assert service(data, "web")["ports"] == [
        {"mode": "ingress", "target": 8080, "protocol": "tcp"}]
    assert service(data, "cache")["image"] == "redis:7"


def test_project_name_option(valid_dir: Path, home: Path) -> None:
    result = run_cli("compose", "config", "--json", "-p", "other", cwd=valid_dir, home=home)
    assert result.code == ExitCode.OK, result.err
    data = json.loads(result.out)
    assert data["name"] == "other"
    assert xd(data, "web")["domains"]["byoc"] == ["web--8080.other.alice.localhost"]
    assert "web.other.internal" in xd(data, "web")["private_hostnames"]["byoc"]


def test_cwd_option(valid_dir: Path, home: Path, config: dict[str, Any]) -> None:
    result = run_cli("compose", "config", "--json", "-C", valid_dir.name,
                     "-f", "override.yaml", "-f", "compose.yaml",
                     cwd=valid_dir.parent, home=home)
    assert result.code == ExitCode.OK, result.err
    data = json.loads(result.out)
    # -f is relative to the -C directory, and later files override earlier ones.
    assert service(data, "web")["image"] == "nginx:1"
    assert "cache" in data["services"]
    assert service(data, "api")["build"] == service(config, "api")["build"]
    assert service(data, "web")["environment"]["GREETING"] == "hello from dotenv"


def test_profile_option(valid_dir: Path, home: Path) -> None:
    result = run_cli("compose", "config", "--json", "--profile", "debug",
                     cwd=valid_dir, home=home)
    assert result.code == ExitCode.OK, result.err
    data = json.loads(result.out)
    assert service(data, "debugger")["image"] == "busybox"
    assert service(data, "debugger")["profiles"] == ["debug"]


def test_env_file_option(valid_dir: Path, home: Path) -> None:
    result = run_cli("compose", "config", "--json", "--env-file", "alt.env",
                     cwd=valid_dir, home=home)
    assert result.code == ExitCode.OK, result.err
    data = json.loads(result.out)
    assert service(data, "web")["environment"]["GREETING"] == "hello from alt"
    assert service(data, "web")["image"] == "nginx:1alt"
    assert "unset-variable" not in result.err


def test_username_comes_from_the_environment(valid_dir: Path, home: Path) -> None:
    result = run_cli("compose", "config", "--json", cwd=valid_dir, home=home,
                     DOCKYARD_USER="bob")
    assert result.code == ExitCode.OK, result.err
    assert xd(json.loads(result.out), "web")["domains"] == {
        "playground": ["bob-web--8080.prod1a.localhost"],
        "byoc": ["web--8080.shop.bob.localhost"],
    }


# --- invalid input ----------------------------------------------------------------------------

def test_invalid_project_exits_3_with_nothing_on_stdout(invalid_run: Result) -> None:
    assert invalid_run.code == ExitCode.INVALID_PROJECT
    assert invalid_run.out == ""
    assert "Traceback" not in invalid_run.err


def test_invalid_project_lists_every_error_with_location_and_hint(invalid_run: Result) -> None:
    lines = invalid_run.err.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("error[")]
    assert len(errors) == len(INVALID_ERRORS), invalid_run.err
    for code, line, path in INVALID_ERRORS:
        head = f"error[{code}] compose.yaml:{line}: {path}: "
        found = [i for i in errors if lines[i].startswith(head)]
        assert len(found) == 1, f"{head!r} not reported once in:\n{invalid_run.err}"
        assert lines[found[0] + 1].startswith("    hint: "), f"no hint for {head!r}"
    assert "dependency cycle: a -> b -> a" in invalid_run.err
    assert "'my-app' and 'my_app'" in invalid_run.err
    assert f"is invalid ({len(INVALID_ERRORS)} problems)" in invalid_run.err
    # Warnings are still reported next to the errors, once each.
    warnings = lines_starting(invalid_run.err, "warning[")
    assert len(warnings) == len(set(warnings)) == 3


def test_no_compose_file(tmp_path: Path, dockyard_home: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    names = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
    if any((d / n).exists() for d in empty.resolve().parents for n in names):
        pytest.skip("a parent of the temporary directory holds a Compose file")
    result = run_cli("compose", "config", cwd=empty, home=dockyard_home)
    assert result.code == ExitCode.INVALID_PROJECT
    assert result.out == ""
    assert "Traceback" not in result.err
    lines = result.err.splitlines()
    assert lines[0].startswith("error[no-compose-file]"), result.err
    assert lines[1].startswith("    hint: ")


def test_missing_file_option(tmp_path: Path, dockyard_home: Path) -> None:
    result = run_cli("compose", "config", "-f", "missing.yaml", cwd=tmp_path,
                     home=dockyard_home)
    assert result.code == ExitCode.INVALID_PROJECT
    assert result.out == ""
    assert "Traceback" not in result.err
    lines = result.err.splitlines()
    assert lines[0].startswith("error[file-not-found] missing.yaml"), result.err
    assert "missing.yaml" in lines[0]
    assert lines[1].startswith("    hint: ")


@pytest.mark.parametrize("args", [
    ["compose", "config", "--bogus"],
    ["--bogus"],
    ["compose", "nope"],
    ["compose", "config", "-f"],
], ids=["config-option", "global-option", "subcommand", "missing-value"])
def test_usage_error(args: list[str], tmp_path: Path, dockyard_home: Path) -> None:
    result = run_cli(*args, cwd=tmp_path, home=dockyard_home)
    assert result.code == ExitCode.USAGE
    assert result.out == ""
    assert "Traceback" not in result.err
    assert "error:" in result.err
    assert "--help" in result.err


# --- help, version, debug ---------------------------------------------------------------------

@pytest.mark.parametrize(("args", "mentions"), [
    (["--help"], ["compose", "--debug", "--version"]),
    (["compose", "--help"], ["config"]),
    (["compose", "config", "--help"],
     ["-f", "--file", "-p", "--project-name", "-C", "--cwd", "--profile", "--env-file",
      "--json", "--debug"]),
], ids=["dockyard", "compose", "config"])
def test_help(args: list[str], mentions: list[str], tmp_path: Path, dockyard_home: Path) -> None:
    result = run_cli(*args, cwd=tmp_path, home=dockyard_home)
    assert result.code == ExitCode.OK
    assert result.err == ""
    assert result.out.startswith("usage: dockyard")
    for option in mentions:
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", result.out), option


def test_version(tmp_path: Path, dockyard_home: Path) -> None:
    result = run_cli("--version", cwd=tmp_path, home=dockyard_home)
    assert result.code == ExitCode.OK
    assert result.out.strip() == f"dockyard {dockyard.__version__}"


def test_debug_on_invalid_project_still_exits_3(invalid_dir: Path, home: Path,
                                                invalid_run: Result) -> None:
    result = run_cli("compose", "config", "--debug", cwd=invalid_dir, home=home)
    assert result.code == ExitCode.INVALID_PROJECT
    assert result.out == ""
    # The diagnostics are rendered as without --debug (a traceback may come first).
    for line in invalid_run.err.splitlines():
        assert line in result.err


def test_global_debug_is_the_same_as_the_command_debug(invalid_dir: Path, home: Path) -> None:
    local = run_cli("compose", "config", "--debug", cwd=invalid_dir, home=home)
    global_ = run_cli("--debug", "compose", "config", cwd=invalid_dir, home=home)
    assert global_.code == local.code == ExitCode.INVALID_PROJECT
    assert ("Traceback" in global_.err) == ("Traceback" in local.err)


# --- errors found before validation (schema, interpolation) -----------------------------------

SCHEMA_COMPOSE = """\
services:
  web:
    image: nginx
    restart: 5
  api:
    image: api
    ports:
      - "70000"
"""

REQUIRED_COMPOSE = """\
services:
  web:
    image: nginx
    environment:
      TOKEN: ${TOKEN:?set TOKEN first}
  api:
    image: api
    ports:
      - "70000"
"""


@pytest.fixture(scope="module")
def schema_run(tmp_path_factory: pytest.TempPathFactory, home: Path) -> Result:
    project = write_files(tmp_path_factory.mktemp("schema"), {"compose.yaml": SCHEMA_COMPOSE})
    return run_cli("compose", "config", cwd=project, home=home)


def test_schema_error_is_located(schema_run: Result) -> None:
    assert schema_run.code == ExitCode.INVALID_PROJECT
    assert schema_run.out == ""
    assert "Traceback" not in schema_run.err
    assert lines_starting(schema_run.err, "error[schema] compose.yaml:4: services.web.restart: ")


def test_schema_error_has_a_hint(schema_run: Result) -> None:
    lines = schema_run.err.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("error[schema]"))
    assert lines[index + 1].startswith("    hint: ")


def test_schema_error_names_the_key_path_once(schema_run: Result) -> None:
    (line,) = lines_starting(schema_run.err, "error[schema]")
    assert line.count("services.web.restart") == 1, line


@pytest.mark.parametrize("compose", [SCHEMA_COMPOSE, REQUIRED_COMPOSE],
                         ids=["schema", "required-variable"])
def test_every_error_is_reported_together(compose: str, tmp_path: Path,
                                          dockyard_home: Path) -> None:
    write_files(tmp_path, {"compose.yaml": compose})
    result = run_cli("compose", "config", cwd=tmp_path, home=dockyard_home)
    assert result.code == ExitCode.INVALID_PROJECT
    assert len(lines_starting(result.err, "error[")) == 2, result.err
    (line,) = lines_starting(result.err, "error[port-range] compose.yaml:")
    assert "services.api.ports[0]:" in line


# --- golden files -----------------------------------------------------------------------------

def test_golden_config_stdout(valid_yaml: Result, valid_dir: Path, regen: bool) -> None:
    assert valid_yaml.code == ExitCode.OK
    text = placeholder(valid_yaml.out, valid_dir)
    assert f"context: {PLACEHOLDER}/api" in text
    check_golden("config_stdout.yaml", text, regen)


def test_golden_invalid_stderr(invalid_run: Result, invalid_dir: Path, regen: bool) -> None:
    assert invalid_run.code == ExitCode.INVALID_PROJECT
    text = placeholder(invalid_run.err, invalid_dir)
    assert "\x1b[" not in text  # no colour or style escapes
    assert f"{PLACEHOLDER}/data" in text
    check_golden("invalid_stderr.txt", text, regen)
