"""Golden files: text a command prints, pinned in tests/cli/golden (`pytest --regen` rewrites
them after a reviewed change)."""

from __future__ import annotations

from pathlib import Path

GOLDEN = Path(__file__).parent.parent / "cli" / "golden"


def check_golden(name: str, actual: str, regen: bool) -> None:
    path = GOLDEN / name
    if regen or not path.exists():
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{path} differs; review the change, then run pytest --regen"
