"""Dockyard's validation rules, one small project each: code, key path, line and hint."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.compose import load

from dockyard.compose import LoadOptions, load_project
from dockyard.compose.codes import ERRORS, WARNINGS
from dockyard.diagnostics import Diagnostic
from dockyard.errors import ProjectInvalid


def assert_at(d: Diagnostic, path: str, line: int | None, file: str | None) -> None:
    assert d.location.path == path, d.render()
    assert d.location.line == line, d.render()
    assert d.location.file == file, d.render()
    assert d.hint, d.render()


# --- errors --------------------------------------------------------------------------------------

def test_no_image_or_build(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  web:\n    restart: always\n  ok:\n    build: .\n")
    assert not out.valid
    d = out.one("no-image-or-build")
    assert_at(d, "services.web", 2, out.compose_file)
    assert "web" in d.message


def test_depends_on_unknown_list_form(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  web:\n    image: x\n    depends_on: [db, ghost]\n"
                         "  db:\n    image: pg\n")
    d = out.one("depends-on-unknown")
    assert_at(d, "services.web.depends_on[1]", 4, out.compose_file)
    assert "ghost" in d.message


def test_depends_on_unknown_map_form(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  web:\n    image: x\n    depends_on:\n"
                         "      ghost:\n        condition: service_started\n")
    d = out.one("depends-on-unknown")
    assert_at(d, "services.web.depends_on.ghost", 5, out.compose_file)


def test_depends_on_a_service_disabled_by_a_profile(tmp_path: Path) -> None:
    text = ("services:\n  web:\n    image: x\n    depends_on: [debug]\n"
            "  debug:\n    image: y\n    profiles: [dev]\n")
    out = load(tmp_path, text)
    d = out.one("depends-on-unknown")
    assert_at(d, "services.web.depends_on[0]", 4, out.compose_file)
    assert "debug" in d.message
    assert d.hint and "--profile" in d.hint
    # enabling the profile makes the project valid
    assert load(tmp_path, text, profiles=["dev"]).valid
    assert load(tmp_path, text, environ={"COMPOSE_PROFILES": "dev"}).valid


def test_depends_on_unknown_but_not_required_is_fine(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  web:\n    image: x\n    depends_on:\n"
                         "      ghost: {condition: service_started, required: false}\n")
    assert out.valid
    assert "depends-on-unknown" not in out.codes()


def test_depends_on_condition(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  web:\n    image: x\n    depends_on:\n"
                         "      db:\n        condition: service_ready\n  db:\n    image: pg\n")
    d = out.one("depends-on-condition")
    assert_at(d, "services.web.depends_on.db.condition", 6, out.compose_file)
    assert "service_ready" in d.message
    assert d.hint and "service_healthy" in d.hint


@pytest.mark.parametrize("condition", [
    "service_started", "service_healthy", "service_completed_successfully",
])
def test_depends_on_valid_conditions(tmp_path: Path, condition: str) -> None:
    out = load(tmp_path, "services:\n  web:\n    image: x\n    depends_on:\n"
                         f"      db: {{condition: {condition}}}\n  db:\n    image: pg\n")
    assert out.valid


def test_dependency_cycle_names_the_whole_cycle(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n"
                         "  a:\n    image: x\n    depends_on: [b]\n"
                         "  b:\n    image: x\n    depends_on: [c]\n"
                         "  c:\n    image: x\n    depends_on: [a]\n"
                         "  d:\n    image: x\n    depends_on: [a]\n")
    d = out.one("dependency-cycle")
    assert "a -> b -> c -> a" in d.message
    assert "-> d" not in d.message and "d ->" not in d.message  # d only depends on the cycle
    assert_at(d, "services.a.depends_on[0]", 4, out.compose_file)


def test_dependency_cycle_of_one(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  a:\n    image: x\n    depends_on: [a]\n")
    assert "a -> a" in out.one("dependency-cycle").message


def test_two_dependency_cycles_are_both_reported(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n"
                         "  a:\n    image: x\n    depends_on: [b]\n"
                         "  b:\n    image: x\n    depends_on: [a]\n"
                         "  c:\n    image: x\n    depends_on: {d: {condition: service_started}}\n"
                         "  d:\n    image: x\n    depends_on: [c]\n")
    cycles = sorted(d.message for d in out.of("dependency-cycle"))
    assert len(cycles) == 2
    assert "a -> b -> a" in cycles[0]
    assert "c -> d -> c" in cycles[1]


@pytest.mark.parametrize(("ports", "bad"), [
    ("['70000:80']", "70000"),
    ("['80:70000']", "70000"),
    ("['0']", "0"),
    ("[{target: 0}]", "0"),
    ("[{target: 80, published: 65536}]", "65536"),
])
def test_port_range(tmp_path: Path, ports: str, bad: str) -> None:
    out = load(tmp_path, f"services:\n  web:\n    image: x\n    ports: {ports}\n")
    d = out.one("port-range")
    assert_at(d, "services.web.ports[0]", 4, out.compose_file)
    assert bad in d.message


def test_port_range_entry_is_reported_once(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  web:\n    image: x\n    ports: ['60000-70000']\n")
    assert len(out.of("port-range")) == 1


def test_duplicate_ingress_port(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  web:\n    image: x\n"
                         "    healthcheck: {test: [CMD, 'true']}\n"
                         "    ports:\n      - '80'\n      - target: 80\n        published: 8080\n")
    d = out.one("duplicate-ingress-port")
    assert_at(d, "services.web.ports[1]", 7, out.compose_file)
    assert "80" in d.message


@pytest.mark.parametrize("ports", [
    "['80', '80/udp']",  # UDP is not ingress
    "[{target: 80, mode: host}, {target: 80, published: 81, mode: host}]",
    "['80', '80']",  # the same entry twice is one port, as Compose merges it
    "['80', '81']",
])
def test_not_duplicate_ingress_ports(tmp_path: Path, ports: str) -> None:
    out = load(tmp_path, "services:\n  web:\n    image: x\n"
                         f"    healthcheck: {{test: [CMD, 'true']}}\n    ports: {ports}\n")
    assert "duplicate-ingress-port" not in out.codes()
    assert out.valid


def test_domain_collision_names_both(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  my_app:\n    image: x\n  my-app:\n    image: y\n")
    d = out.one("domain-collision")
    assert "'my_app'" in d.message and "'my-app'" in d.message
    assert d.location.path in ("services.my_app", "services.my-app")
    assert d.location.file == out.compose_file
    assert d.location.line in (2, 4)
    assert d.hint and "my_app" in d.hint and "my-app" in d.hint


def test_domainname_without_ingress(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  web:\n    image: x\n    domainname: example.com\n"
                         "    ports: ['53/udp', {target: 81, mode: host}]\n")
    d = out.one("domainname-without-ingress")
    assert_at(d, "services.web.domainname", 4, out.compose_file)
    assert "example.com" in d.message


def test_domainname_with_ingress_is_fine(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  web:\n    image: x\n    domainname: example.com\n"
                         "    ports: ['80']\n    healthcheck: {test: [CMD, 'true']}\n")
    assert out.valid
    assert out.diagnostics == []


@pytest.mark.parametrize(("volume", "code"), [
    ("'./data:/data'", "project-files-writable"),
    ("'./data:/data:ro'", None),
    ("{type: bind, source: ./data, target: /data, read_only: true}", None),
    ("{type: bind, source: ./data, target: /data}", "project-files-writable"),
    ("'/etc/app:/data:ro'", "host-path"),
    ("'../..:/data'", "host-path"),
])
def test_bind_mount(tmp_path: Path, volume: str, code: str | None) -> None:
    """Inside the project: deployed with it (a writable one is warned); outside: warned
    that a server refuses it. Neither stops `config`, which prints what Compose prints."""
    out = load(tmp_path, f"services:\n  web:\n    image: x\n    volumes:\n      - {volume}\n")
    assert out.valid and not out.of("bind-mount")
    assert [d.code for d in out.diagnostics] == ([code] if code else [])
    if code is not None:
        d = out.one(code)
        assert_at(d, "services.web.volumes[0]", 5, out.compose_file)
        assert "server" in d.message
        assert d.hint and "named volume" in d.hint and "/data" in d.message
    if code == "host-path":
        assert d.hint and "--allow-host-paths" in d.hint


def test_named_volumes_are_fine(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  web:\n    image: x\n    volumes:\n"
                         "      - data:/data\n      - {type: volume, source: data, target: /b}\n"
                         "      - /anonymous\n      - {type: tmpfs, target: /tmp}\n"
                         "volumes:\n  data: {}\n")
    assert out.valid


@pytest.mark.parametrize(("environment", "path", "line"), [
    ("{1BAD: }", "services.web.environment.1BAD", 4),
    ("['1BAD']", "services.web.environment[0]", 4),
    ("{GOOD: 'x-${%s}'}" % ("A" * 65), "services.web.environment.GOOD", 4),
    ("['GOOD=${%s}']" % ("A" * 65), "services.web.environment[0]", 4),
    ("{bad-dash: }", "services.web.environment.bad-dash", 4),
])
def test_invalid_config_name(tmp_path: Path, environment: str, path: str, line: int) -> None:
    out = load(tmp_path, f"services:\n  web:\n    image: x\n    environment: {environment}\n")
    d = out.one("invalid-config-name")
    assert_at(d, path, line, out.compose_file)


def test_valid_config_references(tmp_path: Path) -> None:
    name64 = "A" * 64
    out = load(tmp_path, "services:\n  web:\n    image: x\n    environment:\n"
                         f"      {name64}:\n      _X:\n      URL: 'pg://${{DB_USER}}@${{{name64}}}'\n")
    assert out.valid
    assert out.diagnostics == []


@pytest.mark.parametrize(("service_key", "what"), [
    ("networks: [back]", "network"),
    ("volumes: ['data:/data']", "volume"),
    ("secrets: [token]", "secret"),
    ("configs: [settings]", "config"),
])
def test_undefined_reference(tmp_path: Path, service_key: str, what: str) -> None:
    out = load(tmp_path, f"services:\n  web:\n    image: x\n    {service_key}\n")
    d = out.one("undefined-reference")
    key = service_key.split(":")[0]
    assert_at(d, f"services.web.{key}[0]", 4, out.compose_file)
    assert what in d.message


def test_declared_references_are_fine(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  web:\n    image: x\n    networks: [back]\n"
                         "    volumes: ['data:/data']\n"
                         "networks:\n  back: {}\nvolumes:\n  data: {}\n")
    assert out.valid


# --- warnings ------------------------------------------------------------------------------------

def test_ignored_keys(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  web:\n    image: x\n    privileged: true\n"
                         "    container_name: c\n    x-mine: 1\n"
                         "    deploy:\n      replicas: 1\n      endpoint_mode: vip\n")
    assert out.valid
    unused = {d.location.path: d for d in out.of("ignored-key")}
    assert set(unused) == {
        "services.web.privileged", "services.web.container_name",
        "services.web.deploy.endpoint_mode",
    }
    assert unused["services.web.privileged"].location.line == 4
    assert unused["services.web.deploy.endpoint_mode"].location.line == 9
    assert all(d.hint for d in unused.values())


def test_ingress_published_ignored(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  web:\n    image: x\n"
                         "    healthcheck: {test: [CMD, 'true']}\n    ports: ['8080:80']\n")
    assert out.valid
    d = out.one("ingress-published-ignored")
    assert_at(d, "services.web.ports[0]", 5, out.compose_file)
    assert "8080" in d.message


@pytest.mark.parametrize("ports", ["['80:80']", "['80']", "[{target: 80, published: 80}]",
                                   "[{target: 80, published: 8080, mode: host}]"])
def test_ingress_published_not_warned(tmp_path: Path, ports: str) -> None:
    out = load(tmp_path, "services:\n  web:\n    image: x\n"
                         f"    healthcheck: {{test: [CMD, 'true']}}\n    ports: {ports}\n")
    assert "ingress-published-ignored" not in out.codes()


def test_udp_ingress_to_host(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  dns:\n    image: x\n    ports: ['53:53/udp']\n")
    assert out.valid
    d = out.one("udp-ingress-to-host")
    assert_at(d, "services.dns.ports[0]", 4, out.compose_file)
    assert d.hint and "mode: host" in d.hint
    # a UDP-only service is not public: no healthcheck warning
    assert "ingress-no-healthcheck" not in out.codes()


def test_udp_host_mode_is_not_warned(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  dns:\n    image: x\n"
                         "    ports: [{target: 53, protocol: udp, mode: host}]\n")
    assert out.valid
    assert out.diagnostics == []


@pytest.mark.parametrize("healthcheck", ["", "    healthcheck: {disable: true}\n",
                                         "    healthcheck: {interval: 10s}\n"])
def test_ingress_no_healthcheck(tmp_path: Path, healthcheck: str) -> None:
    out = load(tmp_path, "services:\n  web:\n    image: x\n"
                         f"    ports: ['80', '443']\n{healthcheck}")
    assert out.valid
    d = out.one("ingress-no-healthcheck")
    assert_at(d, "services.web.ports[0]", 4, out.compose_file)


def test_unset_variable(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  web:\n    image: repo/app:1${TAG}\n"
                         "    environment:\n      CFG: '${FROM_SERVER}'\n      B: '$UNBRACED'\n")
    assert out.valid
    found = sorted((d.location.path or "", d.location.line) for d in out.of("unset-variable"))
    assert found == [("services.web.environment.B", 6), ("services.web.image", 3)]
    assert all(d.location.file == out.compose_file and d.hint for d in out.warnings)
    assert not any("FROM_SERVER" in d.message for d in out.diagnostics)


def test_set_variables_are_not_warned(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TAG=1\n", encoding="utf-8")
    out = load(tmp_path, "services:\n  web:\n    image: repo/app:${TAG}\n    user: ${U}\n",
               environ={"U": "me"})
    assert out.valid
    assert out.diagnostics == []


def test_version_obsolete(tmp_path: Path) -> None:
    out = load(tmp_path, "version: '3.8'\nservices:\n  web:\n    image: x\n")
    assert out.valid
    d = out.one("version-obsolete")
    assert_at(d, "version", 1, out.compose_file)


def test_required_variable_shows_the_message(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  web:\n    image: ${IMAGE:?set IMAGE to the image}\n")
    d = out.one("required-variable")
    assert_at(d, "services.web.image", 3, out.compose_file)
    assert "set IMAGE to the image" in d.message


# --- every problem in one run, each once ---------------------------------------------------------

MULTI_ERROR_PROJECT = """\
services:
  a:
    restart: always
  b:
    image: x
    depends_on: [ghost, c]
    ports: ['70000:80']
    volumes: ['./data:/data', 'undeclared:/u']
    domainname: example.com
  c:
    image: x
    depends_on:
      b: {condition: service_done}
    networks: [nowhere]
    environment:
      9LIVES:
  my_c:
    image: x
  my-c:
    image: x
"""


def test_all_errors_are_reported_in_one_project_invalid(tmp_path: Path) -> None:
    out = load(tmp_path, MULTI_ERROR_PROJECT)
    assert not out.valid
    assert out.codes() >= {
        "no-image-or-build", "depends-on-unknown", "depends-on-condition", "dependency-cycle",
        "port-range", "undefined-reference", "domainname-without-ingress",
        "invalid-config-name", "domain-collision",
    }
    assert len(out.of("undefined-reference")) == 2
    for d in out.errors:
        assert d.location.file == out.compose_file
        assert d.location.line is not None
        assert d.location.path
        assert d.hint


def test_errors_of_several_stages_are_reported_together(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  web:\n    image: x\n    restart: [always]\n"
                         "    volumes: ['./d:/d']\n    ports: ['70000']\n")
    assert out.codes() >= {"schema", "port-range"}
    assert out.one("schema").location.path == "services.web.restart"


def test_project_invalid_carries_the_warnings_too(tmp_path: Path) -> None:
    out = load(tmp_path, "version: '3'\nservices:\n  web:\n    privileged: true\n")
    assert not out.valid
    assert {"version-obsolete", "ignored-key", "no-image-or-build"} <= out.codes()


def test_project_invalid_error_list(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(MULTI_ERROR_PROJECT, encoding="utf-8")
    with pytest.raises(ProjectInvalid) as info:
        load_project(LoadOptions(working_dir=str(tmp_path), environ={}))
    exc = info.value
    assert exc.errors and all(d.is_error for d in exc.errors)
    assert all(not d.is_error for d in exc.warnings)
    assert str(len(exc.errors)) in exc.message
    assert exc.hint
    keys = [d.sort_key() for d in exc.diagnostics]
    assert keys == sorted(keys)


def test_warnings_are_deduplicated_per_key(tmp_path: Path) -> None:
    out = load(
        tmp_path,
        "services:\n  web:\n    image: a${U}-${U}-${U}b\n    privileged: true\n"
        "    labels: ['${U}', '${U}']\n",
        override="services:\n  web:\n    image: a${U}-${U}b\n    privileged: true\n",
    )
    assert out.valid
    unset = sorted(d.location.path or "" for d in out.of("unset-variable"))
    assert unset == ["services.web.image", "services.web.labels[0]", "services.web.labels[1]"]
    assert len(out.of("ignored-key")) == 1
    seen = [(d.code, d.message, d.location.path) for d in out.diagnostics]
    assert len(seen) == len(set(seen))


def test_a_warning_per_service_is_not_merged_away(tmp_path: Path) -> None:
    out = load(tmp_path, "services:\n  a:\n    image: x\n    privileged: true\n"
                         "  b:\n    image: x\n    privileged: true\n")
    assert sorted(d.location.path or "" for d in out.of("ignored-key")) == [
        "services.a.privileged", "services.b.privileged",
    ]


def test_codes_are_documented_as_errors_or_warnings() -> None:
    assert not set(ERRORS) & set(WARNINGS)
    for code in (
        "no-image-or-build", "depends-on-unknown", "depends-on-condition", "dependency-cycle",
        "port-range", "duplicate-ingress-port", "domain-collision", "domainname-without-ingress",
        "bind-mount", "invalid-config-name", "undefined-reference", "required-variable",
    ):
        assert code in ERRORS
    for code in ("ignored-key", "ingress-published-ignored", "udp-ingress-to-host",
                 "ingress-no-healthcheck", "unset-variable", "version-obsolete"):
        assert code in WARNINGS
