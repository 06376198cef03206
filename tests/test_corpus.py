"""The corpus against Docker Compose v2 (reference.json) and against our golden files.

For each valid case our normalized output must equal the reference's `config --format json`
after both are put in one comparable form (empty values dropped; `x-dockyard` is ours alone).
Each invalid case must be refused with the expected codes at the expected places. The golden file
`golden.txt` of each case keeps our own output and diagnostics for review in diffs; run
`pytest tests/test_corpus.py --regen` to rewrite them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dockyard.cli.render import diagnostic_text
from dockyard.compose import NamingContext, load_project, project_to_dict
from dockyard.diagnostics import Diagnostic
from dockyard.errors import ProjectInvalid
from tests.corpus_cases import Case, load_cases

CASES = load_cases()


def comparable(value: Any, top: bool = True) -> Any:
    """Drop what carries no information (None, {}, []) so absent and empty compare equal.

    Below the top level, `x-*` extensions are dropped: Compose v2 leaves them out of its JSON
    output, Dockyard keeps them (the issue asks for it), so they cannot be compared. So are the
    top-level `models`: Compose's JSON leaves them out too (its YAML prints them, as ours).
    """
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "x-dockyard" or (not top and str(key).startswith("x-")) or (
                    top and key == "models"):
                continue
            item = comparable(item, top=False)
            if item is None or item == {} or item == []:
                continue
            out[key] = item
        return out
    if isinstance(value, list):
        return [comparable(v, top=False) for v in value]
    return value


def _load(case: Case) -> tuple[dict[str, Any] | None, list[Diagnostic]]:
    try:
        result = load_project(case.options())
    except ProjectInvalid as exc:
        return None, exc.diagnostics
    naming = NamingContext(username="alice")
    return project_to_dict(result.project, naming), list(result.warnings)


def _matches(d: Diagnostic, expected: dict[str, Any], case: Case) -> bool:
    if d.code != expected["code"]:
        return False
    if "path" in expected:
        # The expected path, or a more precise place inside it.
        path = d.location.path or ""
        want = str(expected["path"])
        if not (path == want or path.startswith((want + ".", want + "["))):
            return False
    if "file" in expected:
        if d.location.file is None or case.relative(d.location.file) != expected["file"]:
            return False
    return not ("line" in expected and d.location.line != expected["line"])


def _describe(diagnostics: list[Diagnostic], case: Case) -> str:
    return "\n".join(case.relative(diagnostic_text(d)) for d in diagnostics)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_expectations(case: Case) -> None:
    output, diagnostics = _load(case)
    if case.valid:
        assert output is not None, f"refused a valid project:\n{_describe(diagnostics, case)}"
    else:
        assert output is None, "accepted an invalid project"
        for expected in case.spec.get("errors") or []:
            assert any(_matches(d, expected, case) for d in diagnostics if d.is_error), (
                f"expected error {expected} not reported; got:\n{_describe(diagnostics, case)}"
            )
    for expected in case.spec.get("warnings") or []:
        assert any(_matches(d, expected, case) for d in diagnostics if not d.is_error), (
            f"expected warning {expected} not reported; got:\n{_describe(diagnostics, case)}"
        )


REFERENCE_CASES = [c for c in CASES if c.valid and c.compare_reference]


@pytest.mark.parametrize("case", REFERENCE_CASES, ids=[c.name for c in REFERENCE_CASES])
def test_equals_compose_v2(case: Case) -> None:
    reference = case.reference()
    assert reference is not None, "no reference.json: run tests/corpus/regenerate_reference.py"
    output, diagnostics = _load(case)
    assert output is not None, _describe(diagnostics, case)
    ours = json.dumps(comparable(output), indent=1, sort_keys=True)
    theirs = json.dumps(comparable(reference), indent=1, sort_keys=True)
    assert ours == theirs


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case: Case, regen: bool) -> None:
    output, diagnostics = _load(case)
    text = "# diagnostics\n" + (_describe(diagnostics, case) or "(none)") + "\n"
    if output is not None:
        text += "# config\n" + case.relative(json.dumps(output, indent=2, sort_keys=True)) + "\n"
    golden = case.directory / "golden.txt"
    if regen or not golden.exists():
        golden.write_text(text)
    assert golden.read_text() == text, "output changed: review, then rerun with --regen"
