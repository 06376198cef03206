"""Finding the Compose files and the project directory, with Compose v2's rules."""

from __future__ import annotations

import os
from collections.abc import Mapping

from dockyard.diagnostics import Diagnostic, Location, error, warning

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDE_FILES = (
    "compose.override.yaml", "compose.override.yml",
    "docker-compose.override.yaml", "docker-compose.override.yml",
)


class DiscoveryError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def find_compose_files(
    working_dir: str, files: tuple[str, ...], variables: Mapping[str, str]
) -> tuple[list[str], list[Diagnostic]]:
    """The absolute paths of the files to load, in merge order, plus discovery warnings.

    Explicit `-f` files win, then `COMPOSE_FILE` (split on `COMPOSE_PATH_SEPARATOR`, default
    `:`), then the first default name found in the working directory or its parents, followed
    by its override file when one exists beside it.
    """
    notes: list[Diagnostic] = []
    if files:
        return [_existing(os.path.join(working_dir, f), "-f") for f in files], notes
    if variables.get("COMPOSE_FILE"):
        sep = variables.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
        names = [f for f in variables["COMPOSE_FILE"].split(sep) if f]
        return [_existing(os.path.join(working_dir, f), "COMPOSE_FILE") for f in names], notes
    directory = os.path.abspath(working_dir)
    while True:
        found = [n for n in DEFAULT_FILES if os.path.isfile(os.path.join(directory, n))]
        if found:
            if len(found) > 1:
                notes.append(warning(
                    "multiple-compose-files",
                    f"found several Compose files ({', '.join(found)}); using {found[0]}",
                    Location(os.path.join(directory, found[0])),
                    hint="remove the ones you do not use, or choose one with -f",
                ))
            chosen = [os.path.join(directory, found[0])]
            for name in OVERRIDE_FILES:
                path = os.path.join(directory, name)
                if os.path.isfile(path):
                    chosen.append(path)
                    break
            return chosen, notes
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    raise DiscoveryError(error(
        "no-compose-file",
        f"no Compose file found in {os.path.abspath(working_dir)} or any parent directory",
        Location(os.path.abspath(working_dir)),
        hint=f"create {DEFAULT_FILES[0]}, run from the project's directory (-C DIR), "
        "or name the file with -f",
    ))


def _existing(path: str, origin: str) -> str:
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise DiscoveryError(error(
            "file-not-found", f"the Compose file {path} (from {origin}) does not exist",
            Location(path), hint="check the path; relative paths start at the working directory",
        ))
    return path
