"""The dashboard's vendored files are the ones its README names (by digest), each with its
licence, and every file a page asks for is shipped with the package."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from dockyard.server.dashboard.web import HERE

VENDOR = HERE / "static" / "vendor"


def test_vendored_files_match_their_recorded_digests_and_carry_a_licence() -> None:
    table = (VENDOR / "README.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \|.*\| ([0-9a-f]{64}) \|$", table, re.MULTILINE)
    assert {name for name, _ in rows} == {p.name for p in VENDOR.glob("*.js")}
    for name, digest in rows:
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
        licence = VENDOR / (name.removesuffix(".min.js") + ".LICENSE")
        assert "Permission to use, copy, modify" in licence.read_text(), licence


def test_every_static_file_a_template_names_exists() -> None:
    named = set()
    for template in (HERE / "templates").glob("*.html"):
        named |= set(re.findall(r'(?:src|href)="/static/([^"]+)"', template.read_text()))
    assert named, "no template names a static file"
    missing = [name for name in named if not (HERE / "static" / name).is_file()]
    assert not missing


def test_the_package_data_ships_templates_and_static_files() -> None:
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    for pattern in ("server/dashboard/templates/*.html", "server/dashboard/static/*.*",
                    "server/dashboard/static/vendor/*"):
        assert f'"{pattern}"' in pyproject
