"""What to load: the Compose CLI's project options as one value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """`-C`, `-f`, `-p`, `--profile`, `--env-file`, `--project-directory`, and the OS
    environment to read.

    `environ` is explicit so loading is a function of its inputs: the CLI passes `os.environ`,
    tests pass exactly what a case needs. `project_directory` (relative to `working_dir`) is
    Compose's `--project-directory`: the project's directory (its name, `.env`, the base of
    relative paths, where Compose files are looked for without `-f`), while `-f` and
    `--env-file` stay relative to `working_dir`.
    """

    working_dir: str = "."
    files: tuple[str, ...] = ()
    project_name: str | None = None
    profiles: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    environ: Mapping[str, str] = field(default_factory=dict)
    project_directory: str | None = None
