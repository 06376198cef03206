"""Containment of tenant containers, the pure parts: log rotation and the service's
`logging:`, the pids limit, the host-port policy, and the iptables rules of egress."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.fakes import FakeDriver

from dockyard.compose import LoadOptions, load_project
from dockyard.compose.models import Project
from dockyard.diagnostics import Severity
from dockyard.naming import NamingMode
from dockyard.runtime.driver import LOG_MAX_FILES, LOG_MAX_SIZE
from dockyard.runtime.egress import (
    EgressError,
    EgressGuard,
    Rule,
    bridge_rules,
    check_host,
    parse_rules,
    plan,
)
from dockyard.runtime.specs import Placement, container_log, container_specs
from dockyard.server.containment import (
    host_port_numbers,
    host_port_problems,
    logging_problems,
    pids_problems,
)
from dockyard.server.deployer import _pids

MIB = 1024 * 1024
PLAYGROUND = Placement(account="bob", project="shop", mode=NamingMode.PLAYGROUND,
                       zone="prod1a.localhost", server="s1")


def load(tmp_path: Path, services: str) -> Project:
    (tmp_path / "compose.yaml").write_text("name: shop\nservices:\n" + services)
    return load_project(LoadOptions(working_dir=str(tmp_path), environ={})).project


# -- logs ---------------------------------------------------------------------------------------
def test_every_container_gets_rotated_json_file_logs_at_the_servers_bounds(
        tmp_path: Path) -> None:
    project = load(tmp_path, "  web: {image: busybox}\n")
    (spec,) = container_specs(project, project.services["web"], PLAYGROUND, image="i",
                              deployment="d" * 12, config_hash="h", replicas=1,
                              log_max_size=2 * MIB, log_max_files=2)
    assert (spec.log_driver, spec.log_max_size, spec.log_max_files) == ("json-file", 2 * MIB, 2)
    (default,) = container_specs(project, project.services["web"], PLAYGROUND, image="i",
                                 deployment="d" * 12, config_hash="h", replicas=1)
    assert (default.log_max_size, default.log_max_files) == (LOG_MAX_SIZE, LOG_MAX_FILES)


@pytest.mark.parametrize(("logging", "expected"), [
    ("{options: {max-size: 1m, max-file: '2'}}", ("json-file", MIB, 2)),  # smaller: honoured
    ("{options: {max-size: 1g, max-file: '50'}}", ("json-file", 10 * MIB, 3)),  # never larger
    ("{options: {max-size: '-1', max-file: '0'}}", ("json-file", 10 * MIB, 3)),  # unbounded: no
    ("{driver: local, options: {max-size: 512k}}", ("local", 512 * 1024, 3)),
    ("{driver: syslog, options: {syslog-address: 'udp://1.2.3.4:514'}}",
     ("json-file", 10 * MIB, 3)),  # a driver the engine cannot read back
])
def test_a_services_logging_is_honoured_within_the_servers_bounds(
        tmp_path: Path, logging: str, expected: tuple[str, int, int]) -> None:
    project = load(tmp_path, f"  web:\n    image: busybox\n    logging: {logging}\n")
    assert container_log(project.services["web"], 10 * MIB, 3) == expected


def test_a_foreign_logging_driver_is_refused_in_playground_and_only_warned_in_byoc(
        tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "name: shop\nservices:\n  web:\n    image: busybox\n"
        "    logging: {driver: syslog, options: {max-size: lots}}\n")
    result = load_project(LoadOptions(working_dir=str(tmp_path), environ={}))
    warned = [d for d in result.warnings if d.code == "logging-driver-replaced"]
    assert warned and warned[0].severity is Severity.WARNING
    assert not [d for d in result.warnings if d.code == "ignored-key"
                and "logging" in d.message]
    project = result.project
    refused = logging_problems(project, playground=True)
    assert {(d.code, d.location.path) for d in refused} == {
        ("logging-driver", "services.web.logging.driver"),
        ("logging-options", "services.web.logging.options.max-size")}
    assert all(d.is_error and d.hint for d in refused)
    byoc = logging_problems(project, playground=False)
    assert [d.code for d in byoc] == ["logging-options"]  # the driver is only replaced


def test_json_file_and_local_logging_pass(tmp_path: Path) -> None:
    project = load(tmp_path, "  a: {image: busybox, logging: {driver: json-file}}\n"
                             "  b: {image: busybox, logging: {driver: local, options: "
                             "{max-size: 1m, max-file: 2}}}\n")
    assert logging_problems(project, playground=True) == []


# -- processes ----------------------------------------------------------------------------------
def test_a_service_may_lower_the_pids_limit_but_never_raise_or_remove_it(
        tmp_path: Path) -> None:
    project = load(tmp_path, """\
  low: {image: busybox, deploy: {resources: {limits: {pids: 64}}}}
  high: {image: busybox, deploy: {resources: {limits: {pids: 100000}}}}
  unlimited: {image: busybox, deploy: {resources: {limits: {pids: -1}}}}
  none: {image: busybox}
""")
    problems = pids_problems(project, 512)
    assert [(d.code, d.location.path) for d in problems] == [
        ("limit-exceeded", "services.high.deploy.resources.limits.pids"),
        ("limit-exceeded", "services.unlimited.deploy.resources.limits.pids")]
    assert "100000 processes" in problems[0].message and "512" in problems[0].message
    assert "unlimited" in problems[1].message
    assert pids_problems(project, 0) == []  # no limit on this server
    # What the deployer gives each container.
    assert _pids(64, 512) == 64
    assert _pids(None, 512) == 512
    assert _pids(100000, 512) == 512
    assert _pids(-1, 512) == 512 and _pids(0, 512) == 512
    assert _pids(64, 0) == 64


# -- host ports ---------------------------------------------------------------------------------
def test_host_ports_are_refused_unless_in_the_accounts_range(tmp_path: Path) -> None:
    project = load(tmp_path, """\
  web:
    image: busybox
    ports:
      - "8080"
      - {target: 80, published: "81", mode: host}
      - {target: 9000, published: "30000-30099", mode: host}
      - {target: 53, published: "30005", protocol: udp}
      - {target: 30001, mode: host}
""")
    refused = host_port_problems(project, None)
    assert [d.location.path for d in refused] == [
        "services.web.ports[1]", "services.web.ports[2]", "services.web.ports[3]",
        "services.web.ports[4]"]
    assert all(d.code == "host-port-refused" and d.is_error and "'web'" in d.message
               and d.hint for d in refused)
    assert "host port 81/tcp" in refused[0].message
    assert "30000-30099 (100 of them" in refused[1].message
    assert "UDP" in refused[2].message
    allowed = host_port_problems(project, (30000, 30009))
    assert [d.location.path for d in allowed] == ["services.web.ports[1]",
                                                  "services.web.ports[2]"]
    assert "(90 of them outside" in allowed[1].message
    assert "30000-30009" in allowed[0].message and "30000" in (allowed[0].hint or "")
    assert host_port_problems(project, (1, 65535)) == []


def test_host_port_numbers_count_a_range_port_by_port(tmp_path: Path) -> None:
    project = load(tmp_path, "  web: {image: busybox, ports: [{target: 80, published: "
                             "'30000-30002', mode: host}, {target: 81, mode: host}]}\n")
    first, second = project.services["web"].ports
    assert host_port_numbers(first) == [30000, 30001, 30002]
    assert host_port_numbers(second) == [81]


# -- egress -------------------------------------------------------------------------------------
def test_the_rules_of_a_bridge() -> None:
    input_rule, metadata_rule = bridge_rules("br-0123456789ab", "s1")
    assert input_rule == Rule("INPUT", "br-0123456789ab", (
        "-i", "br-0123456789ab", "-m", "conntrack", "--ctstate", "NEW",
        "-m", "comment", "--comment", "dockyard-egress:s1", "-j", "DROP"))
    assert metadata_rule.chain == "DOCKER-USER"
    assert metadata_rule.spec[:4] == ("-i", "br-0123456789ab", "-d", "169.254.0.0/16")
    assert metadata_rule.spec[-2:] == ("-j", "DROP")


LISTING = """\
-P INPUT ACCEPT
-A INPUT -i br-aaaaaaaaaaaa -m conntrack --ctstate NEW -m comment --comment "dockyard-egress:s1" -j DROP
-A INPUT -i br-gonegonegone -m conntrack --ctstate NEW -m comment --comment dockyard-egress:s1 -j DROP
-A INPUT -i br-otherserver1 -m conntrack --ctstate NEW -m comment --comment "dockyard-egress:s2" -j DROP
-A INPUT -i eth0 -p tcp --dport 22 -j ACCEPT
"""  # noqa: E501


def test_parse_keeps_only_this_servers_rules() -> None:
    found = parse_rules("INPUT", LISTING, "s1")
    assert [r.bridge for r in found] == ["br-aaaaaaaaaaaa", "br-gonegonegone"]
    assert parse_rules("INPUT", LISTING, "s3") == []


def test_plan_adds_what_is_missing_and_removes_what_is_stale_or_doubled() -> None:
    existing = parse_rules("INPUT", LISTING, "s1") + parse_rules("INPUT", LISTING, "s1")[:1]
    add, delete = plan({"net-a": "br-aaaaaaaaaaaa", "net-b": "br-bbbbbbbbbbbb"}, existing, "s1")
    assert {(r.chain, r.bridge) for r in add} == {
        ("DOCKER-USER", "br-aaaaaaaaaaaa"), ("INPUT", "br-bbbbbbbbbbbb"),
        ("DOCKER-USER", "br-bbbbbbbbbbbb")}
    assert [r.bridge for r in delete] == ["br-gonegonegone", "br-aaaaaaaaaaaa"]
    assert plan([], existing, "s1")[1] == existing


class FakeIptables:
    """Chains as lists of `-A` lines; records every command."""

    def __init__(self) -> None:
        self.chains: dict[str, list[str]] = {"INPUT": [], "DOCKER-USER": ["-j RETURN"]}
        self.commands: list[list[str]] = []

    def __call__(self, args: list[str]) -> str:
        self.commands.append(args)
        op, chain, *rest = args
        if chain not in self.chains:
            raise EgressError(f"iptables: no chain {chain}")
        if op == "-S":
            return "".join(f"-A {chain} {line}\n" for line in self.chains[chain])
        if op == "-I":
            self.chains[chain].insert(int(rest[0]) - 1, " ".join(_quote(a) for a in rest[1:]))
        elif op == "-D":
            self.chains[chain].remove(" ".join(_quote(a) for a in rest))
        return ""


def _quote(arg: str) -> str:
    return f'"{arg}"' if ":" in arg else arg


def test_the_guard_follows_the_servers_networks() -> None:
    driver, iptables = FakeDriver(), FakeIptables()
    guard = EgressGuard("s1", driver, iptables)
    driver.ensure_network("dy-bob-shop-1", {})
    guard.protect("dy-bob-shop-1")
    bridge = driver.network_bridges({})["dy-bob-shop-1"]
    assert iptables.chains["INPUT"][0].startswith(f"-i {bridge} -m conntrack --ctstate NEW")
    assert iptables.chains["DOCKER-USER"][0].startswith(f"-i {bridge} -d 169.254.0.0/16")
    assert iptables.chains["DOCKER-USER"][-1] == "-j RETURN"  # Docker's own stays last
    guard.protect("dy-bob-shop-1")  # idempotent
    assert len(iptables.chains["INPUT"]) == 1
    driver.remove_network("dy-bob-shop-1")
    guard.forget()
    assert iptables.chains == {"INPUT": [], "DOCKER-USER": ["-j RETURN"]}
    with pytest.raises(EgressError, match="not on the engine"):
        guard.protect("dy-never-made")


def test_a_guard_that_is_off_touches_nothing() -> None:
    guard = EgressGuard.off()
    guard.protect("anything")
    guard.forget()
    assert guard.sync() == {}


def test_the_host_check_says_what_is_missing() -> None:
    with pytest.raises(EgressError, match="needs root") as raised:
        check_host(FakeIptables(), euid=1000)
    assert "--egress open" in (raised.value.hint or "")
    no_docker = FakeIptables()
    del no_docker.chains["DOCKER-USER"]
    with pytest.raises(EgressError, match="DOCKER-USER") as raised:
        check_host(no_docker, euid=0)
    assert "iptables integration" in (raised.value.hint or "")
    check_host(FakeIptables(), euid=0)
