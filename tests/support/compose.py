"""A Compose project loaded from text in a temporary directory, and what validation said."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dockyard.compose import LoadOptions, load_project
from dockyard.compose.codes import ALL_CODES, ERRORS
from dockyard.diagnostics import Diagnostic
from dockyard.errors import ProjectInvalid


@dataclass
class Outcome:
    valid: bool
    diagnostics: list[Diagnostic]
    compose_file: str

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    def of(self, code: str) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.code == code]

    def one(self, code: str) -> Diagnostic:
        found = self.of(code)
        assert len(found) == 1, [d.render() for d in self.diagnostics]
        return found[0]

    def codes(self) -> set[str]:
        return {d.code for d in self.diagnostics}


def load(tmp_path: Path, text: str, *, override: str | None = None,
         profiles: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> Outcome:
    compose = tmp_path / "compose.yaml"
    compose.write_text(text, encoding="utf-8")
    if override is not None:
        (tmp_path / "compose.override.yaml").write_text(override, encoding="utf-8")
    options = LoadOptions(working_dir=str(tmp_path), profiles=tuple(profiles),
                          environ=dict(environ or {}))
    try:
        result = load_project(options)
    except ProjectInvalid as exc:
        assert exc.errors, "a refused project names at least one error"
        outcome = Outcome(False, exc.diagnostics, str(compose))
    else:
        assert all(not w.is_error for w in result.warnings)
        outcome = Outcome(True, list(result.warnings), str(compose))
    for d in outcome.diagnostics:
        assert d.code in ALL_CODES, d.code
        assert (d.code in ERRORS) == d.is_error, d.code
        assert d.message
    return outcome
