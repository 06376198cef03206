"""Hypothesis: whatever the Compose file holds, loading returns a project or raises
`ProjectInvalid`, never anything else, never hangs, and every diagnostic has a code and message.

Each example writes `compose.yaml` to a fresh temporary directory (hypothesis and function-scoped
fixtures do not mix) and runs `load_project` under a `signal.setitimer` time budget, so a hang
fails the example instead of the run.

Bugs found this way keep a regression test at the end of this file.
"""

from __future__ import annotations

import json
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dockyard import yamlout
from dockyard.compose import LoadOptions, LoadResult, NamingContext, load_project, project_to_dict
from dockyard.compose.codes import ALL_CODES, ERRORS, WARNINGS
from dockyard.compose.schema import SERVICE_KEYS
from dockyard.diagnostics import Diagnostic
from dockyard.errors import ProjectInvalid

BUDGET_SECONDS = 3.0
FUZZ = settings(
    deadline=None,
    max_examples=120,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class LoadTimeout(BaseException):
    """Raised by the timer; a BaseException so no `except Exception` in the loader hides it."""


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    def on_alarm(_signum: int, _frame: FrameType | None) -> None:
        raise LoadTimeout(f"load_project did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def check_diagnostic(d: Diagnostic) -> None:
    assert isinstance(d.code, str) and d.code, d
    assert isinstance(d.message, str) and d.message.strip(), d
    assert d.code in ALL_CODES, f"undocumented code {d.code!r}"
    assert (d.code in ERRORS) == d.is_error and (d.code in WARNINGS) != d.is_error, d
    assert d.hint is None or isinstance(d.hint, str)
    assert d.location.line is None or (isinstance(d.location.line, int) and d.location.line > 0)
    assert d.location.path is None or isinstance(d.location.path, str)
    assert d.render()


def load_files(files: dict[str, str], budget: float = BUDGET_SECONDS
               ) -> LoadResult | ProjectInvalid:
    """Write `files` to a fresh directory and load it; only a result or `ProjectInvalid` may
    come out, within `budget` seconds."""
    with tempfile.TemporaryDirectory(prefix="dockyard-fuzz-") as tmp:
        for name, text in files.items():
            Path(tmp, name).parent.mkdir(parents=True, exist_ok=True)
            Path(tmp, name).write_text(text, encoding="utf-8")
        outcome: LoadResult | ProjectInvalid
        with time_budget(budget):
            try:
                outcome = load_project(LoadOptions(working_dir=tmp, environ={}))
            except ProjectInvalid as exc:
                outcome = exc
    if isinstance(outcome, ProjectInvalid):
        assert outcome.errors, "a refused project names at least one error"
        for d in outcome.diagnostics:
            check_diagnostic(d)
    else:
        assert isinstance(outcome, LoadResult)
        for d in outcome.warnings:
            check_diagnostic(d)
            assert not d.is_error
    return outcome


def fuzz_text(text: str) -> LoadResult | ProjectInvalid | None:
    """`load_text` for the text fuzzers."""
    return load_text(text)


def load_text(text: str, budget: float = BUDGET_SECONDS) -> LoadResult | ProjectInvalid:
    """Load `text` as the only file, compose.yaml."""
    return load_files({"compose.yaml": text}, budget)


def render(result: LoadResult) -> None:
    """What `dockyard compose config` does with a valid project must not fail either."""
    data = project_to_dict(result.project, NamingContext(username="alice"))
    json.dumps(data)
    yamlout.dump(data)


# --- (a) text and malformed YAML ------------------------------------------------------------------

SEEDS: list[str] = [
    "services:\n  web:\n    image: nginx\n    ports:\n      - '8080:80'\n",
    (
        "x-base: &base\n  image: app\n  restart: always\n"
        "services:\n  web:\n    <<: *base\n    build: .\n    depends_on: [db]\n"
        "    environment:\n      - A=${B:-c}\n      - D=$$E\n    healthcheck:\n"
        "      test: [CMD, curl, -f, http://localhost]\n      interval: 1m30s\n"
        "  db:\n    image: postgres\n    volumes: ['data:/var/lib/postgresql/data']\n"
        "volumes:\n  data: {}\n"
    ),
    (
        "name: shop\nservices:\n  api:\n    image: api\n    ports: [{target: 80, published: 8080,"
        " protocol: tcp, mode: host}]\n    deploy:\n      resources:\n        limits: {cpus: '0.5',"
        " memory: 512M}\n    networks:\n      back: {aliases: [api]}\n    secrets: [token]\n"
        "networks:\n  back: {}\nsecrets:\n  token: {file: ./token.txt}\n"
    ),
    "services:\n  a:\n    image: x\n    ports: !reset []\n    labels: !override {a: b}\n",
]

FRAGMENTS: list[str] = [
    "services:", "web:", "image: nginx", "ports:", "- ", "'80:80'", "80", "{", "}", "[", "]",
    ":", ",", "&a", "*a", "<<: *a", "!reset", "!override", "\t", "'", '"', "${", "${X:-d}",
    "$$", "$", "#", "---", "...", "? ", "|", ">", "null", "~", "yes", "0o17", "0x1F", "012",
    "x-a:", "version: '3'", "build: .", "depends_on: [web]", "environment:", "A=${B}",
    "healthcheck:", "test: [CMD, x]", "interval: 1m", "%YAML 1.2", "!!binary", "!!str",
    "!!python/object:os.system", "*b", "&b", "extends: web", "profiles: [p]", "volumes:",
    "./x:/y", "networks:", "deploy:", "replicas: 2", "memory: 1g", "- A", "= ", "\\", "\x00",
    "\ufeff", "é", "\r", "  ", "include:", "name: X",
]


@st.composite
def yamlish(draw: st.DrawFn) -> str:
    lines = draw(st.lists(
        st.tuples(st.integers(0, 8), st.lists(st.sampled_from(FRAGMENTS), max_size=4)),
        max_size=20,
    ))
    return "\n".join(" " * indent + " ".join(parts) for indent, parts in lines)


@st.composite
def mutated_seed(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace", "duplicate-line"]))
        chunk = draw(st.sampled_from(["\t", " ", "  ", ":", "-", "'", '"', "{", "}", "[", "]",
                                      "\n", "$", "${", "&a ", "*a", "!reset ", "<<: ", "#",
                                      "0", "x", ",", "?", "|", "*"]))
        width = draw(st.integers(1, 5))
        if op == "insert":
            text = text[:pos] + chunk + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + width:]
        elif op == "replace":
            text = text[:pos] + chunk + text[pos + width:]
        else:
            lines = text.split("\n")
            index = pos % len(lines)
            lines.insert(index, lines[index])
            text = "\n".join(lines)
    return text


@FUZZ
@given(st.text(max_size=400))
@example("")
@example("\x00")
@example("\ufeff")
@example("[]")
@example("- services")
@example("services")
@example("services: 5")
@example("services: []")
@example("services:\n  web:\n")
@example("services:\n  web: 5\n")
@example("services:\n  '':\n    image: x\n")
def test_arbitrary_text(text: str) -> None:
    fuzz_text(text)


@FUZZ
@given(yamlish())
def test_yaml_like_text(text: str) -> None:
    fuzz_text(text)


@FUZZ
@given(mutated_seed())
def test_mutated_compose_files(text: str) -> None:
    outcome = fuzz_text(text)
    if isinstance(outcome, LoadResult):
        render(outcome)


def test_the_seeds_are_loadable() -> None:
    for seed in SEEDS:
        # the third needs its secret file; either way the loader must not crash
        load_text(seed)


# --- (b) malformed Compose structures ----------------------------------------------------------

SERVICE_NAMES = ["web", "db", "api", "my_app", "my-app", "Web", "x", "a.b", "ghost"]
SUBKEYS = [
    "target", "published", "protocol", "mode", "host_ip", "condition", "required", "restart",
    "test", "interval", "timeout", "start_period", "retries", "disable", "context",
    "dockerfile", "args", "source", "type", "read_only", "bind", "soft", "hard", "driver",
    "options", "aliases", "limits", "reservations", "memory", "cpus", "pids", "resources",
    "replicas", "restart_policy", "delay", "window", "external", "name", "file", "path",
    "service", "labels", "x-a", "", "1", "$", "${A}",
]
PORT_STRINGS = [
    "80", "8080:80", "127.0.0.1:8080:80", "127.0.0.1::5000", "[::1]:6001:6001", "[::1]::80",
    "3000-3005", "9090-9091:8080-8081", "9090-9091:8080-8082", "8000-8010:80", "80/udp",
    "53:53/udp", "80/sctp", "3-1", "65536", "0", "a:b:c:d", "80:", ":80", "[::1", "80/",
    "65530-65540", "1.2.3.4:80:80/tcp", "${PORT:-80}:80",
]
DURATIONS = ["1m30s", "500ms", "2h", "1.5s", "10", "-1s", "abc", "0", "1d", "1h2m3s4ms",
             ".5s", "1.s", "1e3s", "${D:-1s}"]
SIZES = ["512m", "1.5gb", "2GiB", "64k", "x", "1.5.5g", "-1k", "0", "1 k"]
ENV_ITEMS = ["A=1", "A", "A=", "A=${B}", "${X:-y}", "$$", "${", "${A:?m}", "=x", "A=$B",
             "A=${CFG}", "1BAD", "A B=c"]
VOLUMES = ["./data:/data", "/etc:/etc:ro", "data:/d", "~/x:/y", "C:\\x:/y", "/anon",
           "a:b:c:d", "data:/d:nocopy", ":/x", "x:"]
COMMANDS = ["echo hi", "sh -c 'a && b'", "'unclosed", ""]
CONDITIONS = ["service_started", "service_healthy", "service_completed_successfully", "ready"]
STRINGS = PORT_STRINGS + DURATIONS + SIZES + ENV_ITEMS + VOLUMES + COMMANDS + CONDITIONS + [
    "", " ", "yes", "true", "null", "$", "$$", "${", "${}", "${A:x}", "x" * 70, "é", "\x00",
    "CMD", "CMD-SHELL", "NONE", "host", "ingress", "bind", "volume", "tmpfs", "always",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.integers(-3, 70000),
    # NaN and infinities included: see test_infinite_numbers_are_refused.
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(STRINGS),
)
keys = st.one_of(st.sampled_from(SUBKEYS), st.sampled_from(SERVICE_NAMES), st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=4),
    ),
    max_leaves=12,
)

port_strategy = st.one_of(
    st.sampled_from(PORT_STRINGS),
    st.integers(-1, 70000),
    st.builds(lambda a, w, b: f"{a}-{a + w}:{b}-{b + w}", st.integers(0, 66000),
              st.integers(0, 3), st.integers(0, 66000)),
    st.fixed_dictionaries({"target": st.one_of(st.integers(0, 70000), st.sampled_from(STRINGS))},
                          optional={"published": st.one_of(st.integers(0, 70000),
                                                           st.sampled_from(PORT_STRINGS)),
                                    "protocol": st.sampled_from(["tcp", "udp", "sctp", ""]),
                                    "mode": st.sampled_from(["ingress", "host", "x"]),
                                    "host_ip": st.sampled_from(["127.0.0.1", "::1", ""])}),
    values,
)
environment_strategy = st.one_of(
    st.lists(st.one_of(st.sampled_from(ENV_ITEMS), scalars), max_size=5),
    st.dictionaries(st.one_of(st.sampled_from(["A", "B", "1BAD", "a-b", "", "_X"]),
                              st.text(max_size=6)),
                    st.one_of(st.sampled_from(ENV_ITEMS), scalars), max_size=5),
    values,
)
duration_strategy = st.one_of(st.sampled_from(DURATIONS), st.integers(-5, 10**6), values)
healthcheck_strategy = st.one_of(
    st.fixed_dictionaries({}, optional={
        "test": st.one_of(st.sampled_from(COMMANDS),
                          st.lists(st.sampled_from(["CMD", "CMD-SHELL", "NONE", "curl", "-f"]),
                                   max_size=4), values),
        "interval": duration_strategy, "timeout": duration_strategy,
        "start_period": duration_strategy, "retries": st.one_of(st.integers(-1, 5), values),
        "disable": st.one_of(st.booleans(), values),
    }),
    values,
)
depends_strategy = st.one_of(
    st.lists(st.sampled_from(SERVICE_NAMES), max_size=4),
    st.dictionaries(st.sampled_from(SERVICE_NAMES), st.one_of(
        st.fixed_dictionaries({}, optional={
            "condition": st.sampled_from(CONDITIONS), "required": st.booleans(),
            "restart": st.booleans()}),
        values), max_size=3),
    values,
)
deploy_strategy = st.one_of(
    st.fixed_dictionaries({}, optional={
        "replicas": st.one_of(st.integers(-1, 5), values),
        "resources": st.fixed_dictionaries({}, optional={
            "limits": st.fixed_dictionaries({}, optional={
                "cpus": st.one_of(st.sampled_from(["0.5", "x", "1"]), scalars),
                "memory": st.one_of(st.sampled_from(SIZES), scalars)}),
            "reservations": values}),
        "restart_policy": st.fixed_dictionaries({}, optional={
            "condition": st.sampled_from(["on-failure", "any", "none"]),
            "delay": duration_strategy, "max_attempts": st.one_of(st.integers(0, 3), values),
            "window": duration_strategy}),
        "placement": values, "mode": st.sampled_from(["replicated", "global", "x"]),
    }),
    values,
)
SPECIFIC: dict[str, st.SearchStrategy[Any]] = {
    "ports": st.one_of(st.lists(port_strategy, max_size=4), values),
    "environment": environment_strategy,
    "healthcheck": healthcheck_strategy,
    "depends_on": depends_strategy,
    "deploy": deploy_strategy,
    "stop_grace_period": duration_strategy,
    "volumes": st.one_of(st.lists(st.one_of(st.sampled_from(VOLUMES), values), max_size=3),
                         values),
    "command": st.one_of(st.sampled_from(COMMANDS), st.lists(scalars, max_size=3), values),
    "entrypoint": st.one_of(st.sampled_from(COMMANDS), st.lists(scalars, max_size=3), values),
    "image": st.one_of(st.sampled_from(["nginx", "${IMAGE}", "", "a:b"]), values),
    "build": st.one_of(st.sampled_from([".", "./app", ""]), values),
    "mem_limit": st.one_of(st.sampled_from(SIZES), scalars),
    "shm_size": st.one_of(st.sampled_from(SIZES), scalars),
    "extends": st.one_of(st.sampled_from(SERVICE_NAMES),
                         st.fixed_dictionaries({"service": st.sampled_from(SERVICE_NAMES)}),
                         values),
    "profiles": st.one_of(st.lists(st.sampled_from(["p", "dev", ""]), max_size=2), values),
    "networks": st.one_of(st.lists(st.sampled_from(["default", "back", "ghost"]), max_size=2),
                          values),
}
service_keys = st.sampled_from(sorted(SERVICE_KEYS))


@st.composite
def service(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(values)  # not even a mapping
    chosen = draw(st.lists(service_keys, max_size=7, unique=True))
    result: dict[str, Any] = {}
    if draw(st.booleans()):
        result["image"] = "nginx"
    for key in chosen:
        strategy = SPECIFIC.get(key, values)
        result[key] = draw(strategy)
    if draw(st.integers(0, 4)) == 0:
        result[draw(st.text(max_size=8))] = draw(values)  # an unknown or x- key
    return result


@dataclass(frozen=True)
class Tagged:
    """A value written with a Compose merge tag."""

    tag: str  # "!reset" or "!override"
    value: Any


def flow(value: Any) -> str:
    """YAML flow syntax that, unlike `yaml.safe_dump`, can write the merge tags."""
    if isinstance(value, Tagged):
        return f"{value.tag} {flow(value.value)}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{flow(str(k))}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return ".nan" if value != value else repr(value)
    return json.dumps(str(value), ensure_ascii=False)


@st.composite
def with_tags(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """`value` with some of its nodes (never the root) wrapped in !reset or !override."""
    if isinstance(value, dict):
        value = {k: draw(with_tags(v, depth + 1)) for k, v in value.items()}
    elif isinstance(value, list):
        value = [draw(with_tags(v, depth + 1)) for v in value]
    if depth > 0 and draw(st.integers(0, 5)) == 0:
        return Tagged(draw(st.sampled_from(["!reset", "!override"])), value)
    return value


@st.composite
def project(draw: st.DrawFn) -> Any:
    services = draw(st.dictionaries(st.sampled_from(SERVICE_NAMES), service(), max_size=4))
    data: dict[str, Any] = {"services": services}
    for top in ("networks", "volumes", "secrets", "configs"):
        if draw(st.integers(0, 3)) == 0:
            data[top] = draw(st.one_of(
                st.dictionaries(st.sampled_from(["back", "data", "token", "ghost"]),
                                st.one_of(st.none(), st.just({}), values), max_size=2),
                values))
    if draw(st.integers(0, 5)) == 0:
        data[draw(st.sampled_from(["version", "name", "x-top", "unknown"]))] = draw(values)
    return data


def dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


@FUZZ
@given(project())
def test_malformed_compose_structures(data: Any) -> None:
    outcome = load_text(dump(data))
    if isinstance(outcome, LoadResult):
        render(outcome)


@settings(FUZZ, max_examples=40)
@given(st.data())
def test_two_files_with_merge_tags(data: st.DataObject) -> None:
    base = data.draw(project())
    override = data.draw(project().flatmap(with_tags))
    if data.draw(st.booleans()):
        base = data.draw(with_tags(base))
    outcome = load_files({
        "compose.yaml": flow(base),
        "compose.override.yaml": flow(override),
    })
    if isinstance(outcome, LoadResult):
        render(outcome)


DOTENV_FRAGMENTS = ["A", "B", "TAG", "export ", "=", ":", " ", "\t", "'", '"', "#", " #",
                    "${", "}", "$", "$$", "${A:-x}", "${B:?m}", "\\", "\n", "\n", "1",
                    "x y", "9", "-", "."]


@FUZZ
@given(st.lists(st.sampled_from(DOTENV_FRAGMENTS), max_size=30).map("".join))
def test_env_file_text(env_text: str) -> None:
    compose = ("services:\n  web:\n    image: app:${TAG:-1}\n    user: ${A}\n"
               "    environment:\n      B: ${B}\n      C: $$B\n")
    outcome = load_files({"compose.yaml": compose, ".env": env_text})
    if isinstance(outcome, LoadResult):
        render(outcome)


OTHER_FILES = ["b.yaml", "sub/c.yaml", "missing.yaml", "", ".", "sub", "/nonexistent/x.yaml"]
other_file = st.sampled_from(OTHER_FILES)
extends_strategy = st.one_of(
    st.sampled_from(SERVICE_NAMES),
    st.fixed_dictionaries({"service": st.sampled_from(SERVICE_NAMES)},
                          optional={"file": st.sampled_from([*OTHER_FILES, "compose.yaml"])}),
    values,
)
# Every file may include any other, itself included: cycles must be refused, not recurse.
include_strategy = st.lists(st.one_of(
    st.sampled_from([*OTHER_FILES, "compose.yaml"]),
    st.fixed_dictionaries({}, optional={
        "path": st.one_of(other_file, st.lists(other_file, max_size=2)),
        "project_directory": st.sampled_from([".", "sub", "x"]),
        "env_file": st.one_of(other_file, st.lists(other_file, max_size=2))}),
    values,
), max_size=3)


@st.composite
def linked_project(draw: st.DrawFn, includes: bool) -> Any:
    """A project whose services extend services of other files, and that includes files."""
    data = draw(project())
    services = data.get("services")
    if isinstance(services, dict):
        for svc in services.values():
            if isinstance(svc, dict) and draw(st.booleans()):
                svc["extends"] = draw(extends_strategy)
    if includes and draw(st.booleans()):
        data["include"] = draw(include_strategy)
    return draw(with_tags(data)) if draw(st.booleans()) else data


@settings(FUZZ, max_examples=40)
@given(linked_project(includes=True), linked_project(includes=True),
       linked_project(includes=True), st.booleans())
def test_extends_and_include_across_files(main: Any, other: Any, nested: Any,
                                          with_override: bool) -> None:
    files = {"compose.yaml": flow(main), "b.yaml": flow(other), "sub/c.yaml": flow(nested)}
    if with_override:
        files["compose.override.yaml"] = flow(nested)
    outcome = load_files(files)
    if isinstance(outcome, LoadResult):
        render(outcome)


@settings(deadline=None, max_examples=60,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(sorted(SERVICE_KEYS)), values)
def test_every_service_key_with_any_value(key: str, value: Any) -> None:
    data = {"services": {"web": {"image": "nginx", key: value}}}
    outcome = load_text(dump(data))
    if isinstance(outcome, LoadResult):
        render(outcome)


def test_every_service_key_with_each_kind_of_value() -> None:
    """Deterministic sweep: every key of the specification with one value of each type."""
    samples: list[Any] = [None, True, -1, 1.5, "", "80:80", ["x", 1], {"x": 1}, [{"a": None}]]
    started = time.monotonic()
    for key in sorted(SERVICE_KEYS):
        for sample in samples:
            data = {"services": {"web": {"image": "nginx", key: sample}}}
            outcome = load_text(dump(data))
            if isinstance(outcome, LoadResult):
                render(outcome)
    assert time.monotonic() - started < 30


# --- regressions: bugs found by fuzzing, now fixed ------------------------------------------------

@pytest.mark.parametrize("text", [
    "services:\n  web:\n    image: x\n    stop_grace_period: ''\n",
    "services:\n  web:\n    image: x\n    healthcheck: {interval: ' '}\n",
])
def test_blank_duration_is_refused(text: str) -> None:
    outcome = load_text(text)
    assert isinstance(outcome, ProjectInvalid)
    assert [d.code for d in outcome.errors] == ["invalid-duration"]


@pytest.mark.parametrize("text", [
    "services: !override {web: {image: x}}\n",
    "services: !reset {}\n",
    "services: {web: {image: x}}\nsecrets: !override {}\n",
    "services: {web: {image: x}}\nconfigs: !reset {}\n",
    "services: {web: {image: x}}\ninclude: !reset []\n",
    "services: {web: {image: x, extends: !override {service: db}}, db: {image: y}}\n",
])
def test_merge_tag_on_a_section_is_handled(text: str) -> None:
    load_text(text)


@pytest.mark.parametrize("field", [
    "cpu_shares: .inf",
    "pids_limit: -.inf",
    "mem_limit: .inf",
    "shm_size: .inf",
    "healthcheck: {retries: .inf}",
    "stop_grace_period: '1%ss'" % ("0" * 400),
    "mem_reservation: '1%sk'" % ("0" * 400),
    "deploy: {resources: {limits: {memory: '%sk'}}}" % ("9" * 30),
])
def test_infinite_numbers_are_refused(field: str) -> None:
    outcome = load_text(f"services:\n  web:\n    image: x\n    {field}\n")
    assert isinstance(outcome, ProjectInvalid)


@pytest.mark.parametrize("files", [
    {"compose.yaml": "include: [compose.yaml]\nservices: {web: {image: x}}\n"},
    {"compose.yaml": "include: [b.yaml]\nservices: {web: {image: x}}\n",
     "b.yaml": "include: [compose.yaml]\nservices: {db: {image: y}}\n"},
    {"compose.yaml": "include: [b.yaml]\nservices: {web: {image: x}}\n",
     "b.yaml": "include: [{path: b.yaml}]\nservices: {db: {image: y}}\n"},
])
def test_include_cycle_is_refused(files: dict[str, str]) -> None:
    outcome = load_files(files)
    assert isinstance(outcome, ProjectInvalid)
    assert "include-cycle" in [d.code for d in outcome.errors]


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["x-a0: &a0 [" + ", ".join(["lol"] * 10) + "]"]
    for level in range(1, 9):
        lines.append(f"x-a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    lines.append("services:\n  web:\n    image: x")
    outcome = load_text("\n".join(lines) + "\n", budget=2.0)
    assert isinstance(outcome, ProjectInvalid)
    assert [d.code for d in outcome.errors] == ["yaml-syntax"]


def test_huge_port_range_is_refused_quickly() -> None:
    load_text("services:\n  web:\n    image: x\n    ports: ['1-2000000']\n", budget=1.0)


def test_time_budget_fires() -> None:
    with pytest.raises(LoadTimeout), time_budget(0.05):
        time.sleep(1)
    # and it was disarmed
    time.sleep(0.1)



def test_a_name_with_nothing_usable_is_a_diagnostic_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("name: ':'\nservices: {web: {image: x}}\n")
    with pytest.raises(ProjectInvalid) as caught:
        load_project(LoadOptions(working_dir=str(tmp_path), environ={}))
    assert [d.code for d in caught.value.errors] == ["invalid-project-name"]
