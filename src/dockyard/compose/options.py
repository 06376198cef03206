"""What to load: the Compose CLI's project options as one value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """`-C`, `-f`, `-p`, `--profile`, `--env-file`, and the OS environment to read.

    `environ` is explicit so loading is a function of its inputs: the CLI passes `os.environ`,
    tests pass exactly what a case needs.
    """

    working_dir: str = "."
    files: tuple[str, ...] = ()
    project_name: str | None = None
    profiles: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    environ: Mapping[str, str] = field(default_factory=dict)
