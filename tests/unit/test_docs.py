"""The docs say what the code does: every diagnostic code is documented."""

from __future__ import annotations

import re
from pathlib import Path

from dockyard.compose.codes import ALL_CODES

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "dockyard"


def test_every_code_in_source_is_registered_and_documented() -> None:
    text = "\n".join(p.read_text() for p in SRC.rglob("*.py"))
    emitted = set(re.findall(r'(?:error|warning|add|report)\(\s*"([a-z][a-z-]+)"', text))
    emitted |= set(re.findall(r'InterpolationError\(\s*"([a-z-]+)"', text))
    assert emitted, "the scan found no codes"
    assert emitted <= ALL_CODES, f"codes missing from codes.py: {sorted(emitted - ALL_CODES)}"
    doc = (ROOT / "docs" / "diagnostics.md").read_text()
    missing = [code for code in ALL_CODES if f"`{code}`" not in doc]
    assert not missing, f"codes missing from docs/diagnostics.md: {missing}"

# The table of Compose keys (docs/compose-support.md) is checked by test_compose_support.py.
