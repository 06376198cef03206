"""Durations and sizes (Go semantics), the port syntaxes, and the YAML 1.2 reader."""

from __future__ import annotations

import pytest

from dockyard.compose.ports import (
    PortOutOfRange,
    PortSyntaxError,
    parse_long,
    parse_short,
    port_numbers,
)
from dockyard.compose.units import format_duration, parse_bytes, parse_duration
from dockyard.compose.yamlfile import Override, Reset, YamlFileError, parse_yaml

NS = 1
US = 1_000
MS = 1_000_000
S = 1_000_000_000
M = 60 * S
H = 60 * M

# --- durations ---------------------------------------------------------------------------------

DURATIONS: list[tuple[str, int, str]] = [
    # (text, nanoseconds, Go's Duration.String())
    ("2h", 2 * H, "2h0m0s"),
    ("90s", 90 * S, "1m30s"),
    ("1m30s", 90 * S, "1m30s"),
    ("1h2m3s4ms", H + 2 * M + 3 * S + 4 * MS, "1h2m3.004s"),
    ("500ms", 500 * MS, "500ms"),
    ("1.5s", 1500 * MS, "1.5s"),
    ("1.5h", 90 * M, "1h30m0s"),
    ("-1.5h", -90 * M, "-1h30m0s"),
    ("+5s", 5 * S, "5s"),
    ("0", 0, "0s"),
    ("0s", 0, "0s"),
    ("-0", 0, "0s"),
    ("60m", H, "1h0m0s"),
    ("61m", H + M, "1h1m0s"),
    ("59s", 59 * S, "59s"),
    ("1h1s", H + S, "1h0m1s"),
    ("100ns", 100 * NS, "100ns"),
    ("1us", US, "1µs"),
    ("1µs", US, "1µs"),
    ("1μs", US, "1µs"),  # Greek mu, as Go accepts
    ("1500us", 1500 * US, "1.5ms"),
    ("1.000000001s", S + 1, "1.000000001s"),
    (".5s", 500 * MS, "500ms"),
    ("1.s", S, "1s"),
    ("3h25m45.5s", 3 * H + 25 * M + 45 * S + 500 * MS, "3h25m45.5s"),
    ("1s500ms", 1500 * MS, "1.5s"),
    ("  10s ", 10 * S, "10s"),
]


@pytest.mark.parametrize(("text", "ns", "printed"), DURATIONS)
def test_parse_duration(text: str, ns: int, printed: str) -> None:
    assert parse_duration(text) == ns
    assert format_duration(ns) == printed


@pytest.mark.parametrize(("printed"), sorted({d[2] for d in DURATIONS}))
def test_format_duration_round_trips(printed: str) -> None:
    assert format_duration(parse_duration(printed)) == printed


FORMATS: list[tuple[int, str]] = [
    (0, "0s"),
    (1, "1ns"),
    (999, "999ns"),
    (1_500, "1.5µs"),
    (1_000_000, "1ms"),
    (1_234_567, "1.234567ms"),
    (S - 1, "999.999999ms"),
    (S, "1s"),
    (-S, "-1s"),
    (-1, "-1ns"),
    (24 * H, "24h0m0s"),
    (H + 500 * MS, "1h0m0.5s"),
]


@pytest.mark.parametrize(("ns", "printed"), FORMATS)
def test_format_duration(ns: int, printed: str) -> None:
    assert format_duration(ns) == printed


BAD_DURATIONS: list[str] = [
    "10",  # a string needs a unit (a YAML number is seconds, handled by the normalizer)
    "1d",
    "s",
    "-",
    "+",
    "1.5",
    "1h-1m",
    "1e3s",
    "5S",
    "1 s",
    "ten seconds",
    "1h 30m",
    "1m30",
]


@pytest.mark.parametrize("text", BAD_DURATIONS)
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_empty_duration_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_duration("")


def test_huge_duration_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_duration("1" + "0" * 400 + "s")


# --- sizes -------------------------------------------------------------------------------------

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30

SIZES: list[tuple[str | int | float, int]] = [
    ("512M", 512 * MIB),
    ("512m", 512 * MIB),
    ("1g", GIB),
    ("1G", GIB),
    ("1.5gb", GIB + GIB // 2),
    ("64k", 64 * KIB),
    ("64K", 64 * KIB),
    ("64kb", 64 * KIB),
    ("1KiB", KIB),
    ("2GiB", 2 * GIB),
    ("2gib", 2 * GIB),
    ("1t", 1 << 40),
    ("1p", 1 << 50),
    ("1 k", KIB),  # Docker's RAMInBytes allows one space
    ("1b", 1),
    ("1B", 1),
    ("1024", 1024),
    ("0", 0),
    ("  2m  ", 2 * MIB),
    (1024, 1024),
    (0, 0),
    (1.5, 1),
    (1e3, 1000),
]


@pytest.mark.parametrize(("value", "size"), SIZES)
def test_parse_bytes(value: str | int | float, size: int) -> None:
    assert parse_bytes(value) == size


BAD_SIZES: list[str | int | float | bool] = [
    "", "abc", "-1k", "1x", "1.5.5g", "k", "1kk", "1  k", "1e3", "0x10", True, False,
]


@pytest.mark.parametrize("value", BAD_SIZES)
def test_bad_sizes(value: str | int | float | bool) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_bytes(value)


def test_huge_size_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_bytes("1" + "0" * 400 + "k")


# --- ports ---------------------------------------------------------------------------------------

PortTuple = tuple[int, str | None, str | None, str]  # target, published, host_ip, protocol

SHORT_PORTS: list[tuple[str | int | float, list[PortTuple]]] = [
    ("80", [(80, None, None, "tcp")]),
    (80, [(80, None, None, "tcp")]),
    (80.0, [(80, None, None, "tcp")]),
    (" 80 ", [(80, None, None, "tcp")]),
    ("80/udp", [(80, None, None, "udp")]),
    ("80/tcp", [(80, None, None, "tcp")]),
    ("8080:80", [(80, "8080", None, "tcp")]),
    ("49100:22", [(22, "49100", None, "tcp")]),
    ("6060:6060/udp", [(6060, "6060", None, "udp")]),
    ("127.0.0.1:8080:80", [(80, "8080", "127.0.0.1", "tcp")]),
    ("0.0.0.0:80:80/tcp", [(80, "80", "0.0.0.0", "tcp")]),
    ("127.0.0.1::5000", [(5000, None, "127.0.0.1", "tcp")]),
    ("127.0.0.1::5000/udp", [(5000, None, "127.0.0.1", "udp")]),
    ("[::1]:6001:6001", [(6001, "6001", "::1", "tcp")]),
    ("[::1]::6001", [(6001, None, "::1", "tcp")]),
    ("[::1]:6001", [(6001, None, "::1", "tcp")]),
    ("[fe80::1]:80:80/udp", [(80, "80", "fe80::1", "udp")]),
    (":80", [(80, None, None, "tcp")]),
    # ranges of targets expand to one port each
    ("3000-3002", [(3000, None, None, "tcp"), (3001, None, None, "tcp"),
                   (3002, None, None, "tcp")]),
    ("3000-3000", [(3000, None, None, "tcp")]),
    ("9090-9091:8080-8081", [(8080, "9090", None, "tcp"), (8081, "9091", None, "tcp")]),
    ("127.0.0.1:5000-5001:6000-6001/udp", [(6000, "5000", "127.0.0.1", "udp"),
                                           (6001, "5001", "127.0.0.1", "udp")]),
    ("[::1]:5000-5001:6000-6001", [(6000, "5000", "::1", "tcp"), (6001, "5001", "::1", "tcp")]),
    # a published range for one target is kept as a range (the engine picks one)
    ("8000-8010:80", [(80, "8000-8010", None, "tcp")]),
    ("127.0.0.1:8000-8010:80", [(80, "8000-8010", "127.0.0.1", "tcp")]),
]


def _tuples(spec: str | int | float) -> list[PortTuple]:
    return [(p.target, p.published, p.host_ip, p.protocol) for p in parse_short(spec)]


@pytest.mark.parametrize(("spec", "expected"), SHORT_PORTS)
def test_parse_short(spec: str | int | float, expected: list[PortTuple]) -> None:
    assert _tuples(spec) == expected
    assert all(p.mode == "ingress" for p in parse_short(spec))


BAD_SHORT_PORTS: list[tuple[str | int | float | bool, str]] = [
    ("9090-9091:8080-8082", "differ in size"),
    ("9090-9092:8080-8081", "differ in size"),
    ("3-1", "end before start"),
    ("8080:90-80", "end before start"),
    ("90-80:80", "end before start"),
    ("a", "invalid"),
    ("80:b", "invalid"),
    ("1:2:3:4", "invalid"),
    ("80/", "protocol"),
    ("80:", "invalid"),
    ("80-", "invalid"),
    ("-80", "invalid"),
    ("", "invalid"),
    ("[::1", "IPv6"),
    ("[::1]6001", "IPv6"),
    ("[::1]:1:2:3", "invalid"),
    ("::1:80:80", "invalid"),
    (80.5, "invalid"),
    (True, "invalid"),
]


@pytest.mark.parametrize(("spec", "fragment"), BAD_SHORT_PORTS)
def test_parse_short_errors(spec: str | int | float | bool, fragment: str) -> None:
    with pytest.raises(PortSyntaxError, match=fragment):
        parse_short(spec)


def test_port_syntax_error_is_a_value_error() -> None:
    assert issubclass(PortSyntaxError, ValueError)


def test_parse_short_refuses_a_range_beyond_65535() -> None:
    with pytest.raises(PortSyntaxError):
        parse_short("60000-70000")


LONG_PORTS: list[tuple[dict[str, object], tuple[object, ...]]] = [
    # (spec, (target, published, host_ip, protocol, mode, app_protocol, name))
    ({"target": 80}, (80, None, None, "tcp", "ingress", None, None)),
    ({"target": "80"}, (80, None, None, "tcp", "ingress", None, None)),
    ({"target": 80, "published": 8080}, (80, "8080", None, "tcp", "ingress", None, None)),
    ({"target": 80, "published": "8080"}, (80, "8080", None, "tcp", "ingress", None, None)),
    ({"target": 80, "published": ""}, (80, None, None, "tcp", "ingress", None, None)),
    ({"target": 80, "published": "8000-8010"},
     (80, "8000-8010", None, "tcp", "ingress", None, None)),
    ({"target": 53, "protocol": "udp", "mode": "host"},
     (53, None, None, "udp", "host", None, None)),
    ({"target": "80", "published": 8080, "protocol": "tcp", "mode": "host",
      "host_ip": "1.2.3.4", "app_protocol": "http", "name": "web"},
     (80, "8080", "1.2.3.4", "tcp", "host", "http", "web")),
]


@pytest.mark.parametrize(("spec", "expected"), LONG_PORTS)
def test_parse_long(spec: dict[str, object], expected: tuple[object, ...]) -> None:
    p = parse_long(spec)
    assert (p.target, p.published, p.host_ip, p.protocol, p.mode, p.app_protocol,
            p.name) == expected


@pytest.mark.parametrize(("spec", "fragment"), [
    ({"published": 80}, "target"),
    ({}, "target"),
    ({"target": "x"}, "container port"),
    ({"target": 80.5}, "container port"),
    ({"target": 80, "published": "x"}, "published port"),
    ({"target": 80, "published": "9-8"}, "end before start"),
])
def test_parse_long_errors(spec: dict[str, object], fragment: str) -> None:
    with pytest.raises(PortSyntaxError, match=fragment):
        parse_long(spec)


@pytest.mark.parametrize(("spec", "numbers"), [
    ("80", [80]),
    ("8080:80", [80, 8080]),
    ("8000-8010:80", [80, 8000, 8010]),
    ("65535:80", [80, 65535]),
])
def test_port_numbers(spec: str, numbers: list[int]) -> None:
    assert port_numbers(parse_short(spec)[0]) == numbers


@pytest.mark.parametrize("spec", ["70000:80", "0", "80:0", "1-70000:1-70000"])
def test_out_of_range_numbers_are_refused_while_parsing(spec: str) -> None:
    with pytest.raises(PortOutOfRange):
        parse_short(spec)


# --- YAML 1.2 -----------------------------------------------------------------------------------

def load(text: str) -> object:
    data, _ = parse_yaml(text, "/p/compose.yaml")
    return data


def value(text: str) -> object:
    data = load(f"v: {text}\n")
    assert isinstance(data, dict)
    return data["v"]


SCALARS: list[tuple[str, object]] = [
    # YAML 1.1 booleans are strings in YAML 1.2
    ("yes", "yes"), ("no", "no"), ("on", "on"), ("off", "off"), ("y", "y"), ("n", "n"),
    ("Yes", "Yes"), ("NO", "NO"),
    ("true", True), ("True", True), ("TRUE", True), ("false", False), ("FALSE", False),
    ("tRUE", "tRUE"),
    # no base 60
    ("22:22", "22:22"), ("1:2:3", "1:2:3"), ("190:20:30", "190:20:30"),
    # integers as Go's ParseInt(base 0) reads them
    ("012", 10), ("-012", -10), ("0o17", 15), ("0x1F", 31), ("0b101", 5), ("1_000", 1000),
    ("+1", 1), ("0", 0), ("-0", 0), ("09", 9.0),
    ("0o8", "0o8"), ("0x", "0x"), ("1_000.5", "1_000.5"),
    # floats
    ("1.5", 1.5), (".5", 0.5), ("1.", 1.0), ("1e3", 1000.0), ("-1.5e-3", -0.0015),
    (".inf", float("inf")), ("-.Inf", float("-inf")), ("+.INF", float("inf")),
    # dates and times stay strings
    ("2024-01-02", "2024-01-02"), ("2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z"),
    ("2001-12-14 21:59:43.10 -5", "2001-12-14 21:59:43.10 -5"),
    # nulls
    ("null", None), ("Null", None), ("NULL", None), ("~", None), ("", None),
    ("nULL", "nULL"),
    # explicit tags and quotes
    ("!!str 1", "1"), ("'012'", "012"), ('"yes"', "yes"), ("'true'", "true"),
    ("=", "="), ("<<a", "<<a"),
]


@pytest.mark.parametrize(("text", "expected"), SCALARS)
def test_yaml_1_2_scalars(text: str, expected: object) -> None:
    got = value(text)
    assert got == expected
    assert type(got) is type(expected)


def test_nan() -> None:
    got = value(".nan")
    assert isinstance(got, float) and got != got


def test_keys_are_strings() -> None:
    assert load("1: a\ntrue: b\nnull: c\n1.5: d\nyes: e\n") == {
        "1": "a", "true": "b", "null": "c", "1.5": "d", "yes": "e",
    }


def test_empty_documents() -> None:
    assert parse_yaml("", "/f") == (None, {})
    assert parse_yaml("# only a comment\n", "/f") == (None, {})


def test_line_map_for_keys_and_list_items() -> None:
    text = (
        "services:\n"            # 1
        "  web:\n"               # 2
        "    image: x\n"         # 3
        "    ports:\n"           # 4
        "      - 80\n"           # 5
        "      - '81'\n"         # 6
        "      - target: 82\n"   # 7
        "        mode: host\n"   # 8
        "    environment:\n"     # 9
        "      A: 1\n"           # 10
        "x-e: [a, b]\n"          # 11
    )
    data, lines = parse_yaml(text, "/p/compose.yaml")
    assert data == {"services": {"web": {
        "image": "x", "ports": [80, "81", {"target": 82, "mode": "host"}],
        "environment": {"A": 1},
    }}, "x-e": ["a", "b"]}
    assert lines == {
        ("services",): 1,
        ("services", "web"): 2,
        ("services", "web", "image"): 3,
        ("services", "web", "ports"): 4,
        ("services", "web", "ports", 0): 5,
        ("services", "web", "ports", 1): 6,
        ("services", "web", "ports", 2): 7,
        ("services", "web", "ports", 2, "target"): 7,
        ("services", "web", "ports", 2, "mode"): 8,
        ("services", "web", "environment"): 9,
        ("services", "web", "environment", "A"): 10,
        ("x-e",): 11,
        ("x-e", 0): 11,
        ("x-e", 1): 11,
    }


def test_duplicate_keys_are_an_error_with_the_line() -> None:
    text = "services:\n  web:\n    image: a\n    user: x\n    image: b\n"
    with pytest.raises(YamlFileError) as info:
        parse_yaml(text, "/p/compose.yaml")
    d = info.value.diagnostic
    assert d.code == "yaml-syntax"
    assert d.is_error
    assert d.location.file == "/p/compose.yaml"
    assert d.location.line == 5
    assert "image" in d.message
    assert d.hint


def test_duplicate_top_level_keys() -> None:
    with pytest.raises(YamlFileError) as info:
        parse_yaml("services: {}\nname: a\nservices: {}\n", "/f")
    assert info.value.diagnostic.location.line == 3


MERGE_KEYS: list[tuple[str, dict[str, object]]] = [
    ("x: &b {a: 1, b: 2}\ny:\n  <<: *b\n  a: 3\n", {"a": 3, "b": 2}),
    ("x: &b {a: 1, b: 2}\ny:\n  a: 3\n  <<: *b\n", {"a": 3, "b": 2}),  # local wins either way
    ("x: &b {a: 1}\nz: &c {a: 2, c: 3}\ny:\n  <<: [*b, *c]\n", {"a": 1, "c": 3}),
    ("x: &b {a: 1}\nz: &c {a: 2, c: 3}\ny:\n  <<: [*b, *c]\n  c: 4\n", {"a": 1, "c": 4}),
    ("x: &b {a: {deep: 1}}\ny:\n  <<: *b\n  a: {other: 2}\n", {"a": {"other": 2}}),
]


@pytest.mark.parametrize(("text", "merged"), MERGE_KEYS)
def test_merge_keys_may_be_overridden_by_local_keys(text: str, merged: dict[str, object]
                                                    ) -> None:
    data = load(text)
    assert isinstance(data, dict)
    assert data["y"] == merged


def test_merge_key_lines() -> None:
    text = "x-base: &b\n  image: a\n  user: u\nservices:\n  web:\n    <<: *b\n    user: v\n"
    data, lines = parse_yaml(text, "/f")
    assert data["services"]["web"] == {"image": "a", "user": "v"}
    assert lines[("services", "web", "user")] == 7  # the local key
    assert lines[("services", "web", "image")] == 2  # where the merged key is written


def test_local_keys_must_still_be_unique_with_merge_keys() -> None:
    with pytest.raises(YamlFileError) as info:
        parse_yaml("x: &b {a: 1}\ny:\n  <<: *b\n  a: 3\n  a: 4\n", "/f")
    assert info.value.diagnostic.location.line == 5


def test_anchors_are_copied_not_shared_by_later_stages() -> None:
    data = load("x: &l [1, 2]\ny: *l\n")
    assert data == {"x": [1, 2], "y": [1, 2]}


def test_reset_and_override_tags() -> None:
    data = load(
        "a: !reset []\n"
        "b: !override {c: 1}\n"
        "c: !reset null\n"
        "d: !override [1, x]\n"
        "e: !reset\n"
        "f: !override 5\n"
        "g: !override\n  nested: !reset {}\n"
    )
    assert data == {
        "a": Reset([]),
        "b": Override({"c": 1}),
        "c": Reset(None),
        "d": Override([1, "x"]),
        "e": Reset(None),
        "f": Override("5"),
        "g": Override({"nested": Reset({})}),
    }


SYNTAX_ERRORS: list[tuple[str, str, int | None]] = [
    # (id, text, line)
    ("tab-indentation", "services:\n  web:\n\timage: x\n", 3),
    ("tab-indentation-first", "a:\n\tb: 1\n", 2),
    ("unclosed-single-quote", "a: 1\nb: 'unclosed\nc: 3\nd: 4\n", 2),
    ("unclosed-double-quote", "a: 1\nb: 2\nc: \"unclosed\nd: 4\n", 3),
    ("unclosed-flow-sequence", "a: [1, 2\nb: 3\n", 2),
    ("bad-indentation", "a: 1\n  b: 2\n", 2),
    ("undefined-alias", "a: 1\nb: *nope\n", 2),
    ("unknown-tag", "a: 1\nb: !custom 1\n", 2),
    ("complex-key", "a: 1\n[1]: x\n", 2),
    ("two-documents", "a: 1\n---\nb: 2\n", 2),
]


@pytest.mark.parametrize(("text", "line"), [s[1:] for s in SYNTAX_ERRORS],
                         ids=[s[0] for s in SYNTAX_ERRORS])
def test_syntax_errors_have_lines(text: str, line: int | None) -> None:
    with pytest.raises(YamlFileError) as info:
        parse_yaml(text, "/p/compose.yaml")
    d = info.value.diagnostic
    assert d.code == "yaml-syntax"
    assert d.message
    assert d.location.file == "/p/compose.yaml"
    assert d.location.line == line


def test_recursive_alias_is_an_error_not_a_crash() -> None:
    with pytest.raises(YamlFileError) as info:
        parse_yaml("a: &x [*x]\n", "/f")
    assert info.value.diagnostic.code == "yaml-syntax"
