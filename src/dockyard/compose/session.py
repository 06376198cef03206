"""Finding a Compose project: its files, variables and name, and the session of one load.

Split from `loader` so that commands needing only the project's name (`ps`, `logs`, `down`)
import a tenth of the loader: no normalizer, validator or renderer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from dockyard.compose.codes import WARNINGS
from dockyard.compose.discovery import DiscoveryError, find_compose_files
from dockyard.compose.dotenv import DotenvError, parse_dotenv, parse_raw_env
from dockyard.compose.interpolation import InterpolationError, Interpolator
from dockyard.compose.options import LoadOptions
from dockyard.compose.paths import KeyPath, format_path
from dockyard.compose.yamlfile import LineMap, YamlFileError, parse_yaml
from dockyard.diagnostics import Diagnostic, Location, Severity, dedupe
from dockyard.errors import ProjectInvalid
from dockyard.naming import is_valid_project_name, normalize_project_name

Report = Callable[[str, str, KeyPath, str | None], None]

_WARNING_CODES = frozenset(WARNINGS)


class Abort(Exception):
    """Stop loading: what follows would only repeat the problems already recorded."""


MAX_FILE_BYTES = 4 * 1024 * 1024  # the largest Compose file read (real ones are kilobytes)


class Session:
    """Diagnostics and line maps of one load (a plain class: a faster start than a dataclass)."""

    def __init__(self, home: str | None = None) -> None:
        self.diagnostics: list[Diagnostic] = []
        self.sources: list[tuple[str, LineMap]] = []
        self.parsed: dict[str, tuple[Any, LineMap] | None] = {}
        self.unreadable = False  # a file could not be read or parsed
        # Services whose definition is incomplete because of an error already reported (a key
        # of the wrong type was removed, an `extends` failed): consequences are not reported
        # again.
        self.incomplete: set[str] = set()
        # `~` in a path is this HOME (from `LoadOptions.environ`), never the process's own.
        self.home = home

    def parse(self, path: str) -> tuple[Any, LineMap] | None:
        """Read and parse a file once per load; problems are recorded, None returned."""
        if path in self.parsed:
            return self.parsed[path]
        result: tuple[Any, LineMap] | None = None
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read(MAX_FILE_BYTES + 1)
            if len(text) > MAX_FILE_BYTES:
                self.add("yaml-syntax", f"{path} is larger than {MAX_FILE_BYTES // (1 << 20)} "
                         "MiB; no Compose file needs that", Location(path),
                         "check that this is the right file (not a data or log file)")
                self.parsed[path] = None
                self.unreadable = True
                return None
        except OSError as exc:
            self.add("file-not-found", f"cannot read the Compose file {path}: {exc.strerror}",
                     Location(path), "check the path given with -f, COMPOSE_FILE or include")
        except UnicodeDecodeError:
            self.add("yaml-syntax", f"{path} is not UTF-8 text", Location(path),
                     "save the file as UTF-8")
        else:
            try:
                result = parse_yaml(text, path)
            except YamlFileError as exc:
                self.diagnostics.append(exc.diagnostic)
        self.parsed[path] = result
        if result is None:
            self.unreadable = True
        return result

    def reporter(self, file: str | None, lines: LineMap | None = None) -> Report:
        def report(code: str, message: str, path: KeyPath, hint: str | None) -> None:
            found = line_for(lines, path) if lines is not None else None
            line = found[1] if found else None
            self.add(code, message, Location(file, line, format_path(path) or None), hint)
        return report

    def add(self, code: str, message: str, location: Location, hint: str | None) -> None:
        severity = Severity.WARNING if code in _WARNING_CODES else Severity.ERROR
        self.diagnostics.append(Diagnostic(severity, code, message, location, hint))

    def locate(self, path: KeyPath) -> Location:
        """The file and line that last defined `path` (or its closest parent)."""
        best: tuple[int, str, int] | None = None
        for file, lines in self.sources:
            found = line_for(lines, path)
            if found is not None and (best is None or found[0] >= best[0]):
                best = (found[0], file, found[1])
        if best is None:
            return Location(None, None, format_path(path) or None)
        return Location(best[1], best[2], format_path(path) or None)

    def located_reporter(self) -> Report:
        def report(code: str, message: str, path: KeyPath, hint: str | None) -> None:
            self.add(code, message, self.locate(path), hint)
        return report


def line_for(lines: LineMap, path: KeyPath) -> tuple[int, int] | None:
    """(depth, line) of `path` or of its closest parent written in the file."""
    for depth in range(len(path), 0, -1):
        line = lines.get(path[:depth])
        if line is not None:
            return depth, line
    return None


def load_project_name(options: LoadOptions) -> str:
    """Only the project's name, as `load_project` would find it, without loading services.

    For commands that need nothing else (`ps`, `logs`, `down`): a tenth of the time of a full
    load. Raises `ProjectInvalid` when no name can be found (no Compose file, bad name).
    """
    session = Session()
    try:
        _files, _project_dir, _variables, name = locate_project(options, session)
    except Abort:
        raise ProjectInvalid(sorted(dedupe(session.diagnostics),
                                    key=Diagnostic.sort_key)) from None
    return name


def locate_project(options: LoadOptions, session: Session
            ) -> tuple[list[str], str, dict[str, str], str]:
    """The files, the project directory, the variables and the project's name."""
    working_dir = os.path.abspath(options.working_dir)
    chosen_dir = (os.path.normpath(os.path.join(working_dir, options.project_directory))
                  if options.project_directory else None)
    # Without -f, the files are looked for in --project-directory, if given.
    search_dir = chosen_dir if chosen_dir and not options.files else working_dir
    environ = dict(options.environ)
    # COMPOSE_FILE may come from .env in the working (or project) directory, as in Compose.
    dotenv_dir = chosen_dir or working_dir
    working_dotenv = read_env_file(os.path.join(dotenv_dir, ".env"), environ, session, False)
    try:
        files, notes = find_compose_files(search_dir, options.files,
                                          {**working_dotenv, **environ})
    except DiscoveryError as exc:
        session.diagnostics.append(exc.diagnostic)
        raise Abort() from None
    session.diagnostics.extend(notes)
    project_dir = chosen_dir or os.path.dirname(files[0])

    variables = project_variables(options, working_dir, project_dir, environ, session,
                                   working_dotenv if project_dir == dotenv_dir else None)
    name = _project_name(options, variables, files, project_dir, session)
    if name is None:
        raise Abort()
    # As in Compose, the files may use the project's name in their variables.
    variables["COMPOSE_PROJECT_NAME"] = name
    return files, project_dir, variables, name


def project_variables(
    options: LoadOptions, working_dir: str, project_dir: str, environ: dict[str, str],
    session: Session, project_dotenv: dict[str, str] | None = None,
) -> dict[str, str]:
    """Interpolation variables: the env files (or `.env`), overridden by the OS environment.

    `project_dotenv` is the project directory's `.env` when it was already read."""
    dotenv: dict[str, str] = {}
    env_files = list(options.env_files)
    if not env_files and environ.get("COMPOSE_ENV_FILES"):
        env_files = [f for f in environ["COMPOSE_ENV_FILES"].split(",") if f]
    if env_files:
        for env_file in env_files:
            path = os.path.join(working_dir, env_file)
            dotenv.update(read_env_file(path, {**dotenv, **environ}, session, True))
    elif project_dotenv is not None:
        dotenv = project_dotenv
    else:
        dotenv = read_env_file(os.path.join(project_dir, ".env"), environ, session, False)
    return {**dotenv, **environ}


def read_env_file(path: str, lookup: Mapping[str, str], session: Session, required: bool,
                   origin: Location | None = None, raw: bool = False) -> dict[str, str]:
    """A `.env` or `env_file` (with `raw`, an env_file of `format: raw`); problems recorded."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        if required:
            where = origin or Location(os.path.abspath(path))
            session.add("file-not-found", f"the env file {os.path.abspath(path)} does not exist",
                        where, "create it, fix the path, or mark it `required: false`")
        return {}
    except (IsADirectoryError, UnicodeDecodeError, PermissionError) as exc:
        session.add("file-not-found", f"cannot read the env file {path}: {exc}",
                    origin or Location(path), None)
        return {}
    try:
        return (parse_raw_env if raw else parse_dotenv)(text, lookup.get)
    except DotenvError as exc:
        session.add("env-file-syntax", f"invalid env file: {exc.message}",
                    Location(os.path.abspath(path), exc.line),
                    "lines look like KEY=value; quote values that contain spaces or '#'")
        return {}


def _declared_name(files: list[str], variables: Mapping[str, str], session: Session
                   ) -> tuple[str | None, Location]:
    """The top-level `name:` of the last file that sets one, interpolated."""
    declared: tuple[str | None, Location] = (None, Location())
    for path in files:
        parsed = session.parse(path)
        if parsed is None or not isinstance(parsed[0], dict):
            continue
        value = parsed[0].get("name")
        if isinstance(value, str | int) and not isinstance(value, bool):
            location = Location(path, parsed[1].get(("name",)), "name")
            try:
                text = Interpolator(variables).substitute(str(value))
            except InterpolationError as exc:
                session.add(exc.code, exc.message, location, exc.hint)
                continue
            declared = (text, location)
    return declared


def _project_name(options: LoadOptions, variables: Mapping[str, str], files: list[str],
                  project_dir: str, session: Session) -> str | None:
    explicit = (
        (options.project_name, "-p/--project-name"),
        (variables.get("COMPOSE_PROJECT_NAME"), "COMPOSE_PROJECT_NAME"),
    )
    for value, origin in explicit:
        if value:
            if not is_valid_project_name(value):
                session.add(
                    "invalid-project-name",
                    f"invalid project name {value!r} from {origin}: it must contain only "
                    "lowercase letters, digits, dashes and underscores, and start with a "
                    "letter or digit", Location(),
                    f"use {normalize_project_name(value) or 'a name like my-app'!r}")
                return None
            return value
    # `name:` and the directory name are normalized, as Compose does.
    declared, where = _declared_name(files, variables, session)
    source = declared if declared else os.path.basename(project_dir)
    try:
        name = normalize_project_name(source)
    except ValueError:  # nothing usable is left of `source` (hypothesis found `name: ':'`)
        name = ""
    if not name:
        where = where if declared else Location(project_dir)
        session.add("invalid-project-name", f"cannot make a project name from {source!r}",
                    where, "give one with -p NAME or a top-level `name:`")
        return None
    return name
