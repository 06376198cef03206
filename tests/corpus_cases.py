"""The corpus of Compose projects under tests/corpus: one directory per case, with case.yaml."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dockyard.compose import LoadOptions

CORPUS = Path(__file__).parent / "corpus"


@dataclass(frozen=True)
class Case:
    name: str
    directory: Path
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return bool(self.spec.get("expect", "valid") == "valid")

    @property
    def compare_reference(self) -> bool:
        return bool(self.spec.get("reference", "compare") == "compare")

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.spec.get("args") or {})

    @property
    def environ(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.spec.get("environ") or {}).items()}

    def options(self) -> LoadOptions:
        args = self.args
        return LoadOptions(
            working_dir=str(self.directory / args.get("workdir", ".")),
            files=tuple(args.get("files") or ()),
            project_name=args.get("project_name"),
            profiles=tuple(args.get("profiles") or ()),
            env_files=tuple(args.get("env_files") or ()),
            environ=self.environ,
        )

    def reference(self) -> dict[str, Any] | None:
        path = self.directory / "reference.json"
        if not path.exists():
            return None
        text = path.read_text().replace("${CASE_DIR}", str(self.directory))
        data: dict[str, Any] = json.loads(text)
        return data

    def relative(self, text: str) -> str:
        return text.replace(str(self.directory) + os.sep, "").replace(str(self.directory), ".")


def load_cases() -> list[Case]:
    cases = []
    for directory in sorted(CORPUS.iterdir()):
        spec_path = directory / "case.yaml"
        if spec_path.is_file():
            spec = yaml.safe_load(spec_path.read_text()) or {}
            cases.append(Case(directory.name, directory, spec))
    return cases
