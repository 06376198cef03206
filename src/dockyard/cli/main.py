"""Entry point of the `dockyard` command.

The one place where a `DockyardError` becomes a message and an exit code
(`dockyard.exit_codes`). Any other exception is a bug: it is reported as one, with the
traceback only under `--debug`.

Why argparse and not Typer (DESIGN section 7 names Typer): Typer 0.29 builds a pydantic
`TypeAdapter` for every parameter, so each run imports pydantic; measured here, `dockyard --help`
took 0.23-0.34 s and `compose config` spent about 0.25 s in the command-line layer alone,
against the issue's budget of 0.3 s for `--help` and 1.5x Docker Compose for `config`.
argparse costs a few milliseconds. Commands import what they need lazily, Rich included (it is
only imported to print something), so start-up stays small as commands are added.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from dockyard import __version__
from dockyard.exit_codes import ExitCode


class _Parser(argparse.ArgumentParser):
    """argparse with our exit code for usage errors and a hint to --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {message}\n    hint: run `{self.prog} --help`\n")
        sys.exit(int(ExitCode.USAGE))


def _project_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("project options (as in Docker Compose)")
    group.add_argument("-f", "--file", action="append", default=[], metavar="FILE",
                       help="Compose file (repeatable; later files override earlier ones)")
    group.add_argument("-p", "--project-name", metavar="NAME", help="project name")
    group.add_argument("-C", "--cwd", default=".", metavar="DIR",
                       help="run as if started in DIR")
    group.add_argument("--profile", action="append", default=[], metavar="PROFILE",
                       help="enable a profile (repeatable; default: $COMPOSE_PROFILES)")
    group.add_argument("--env-file", action="append", default=[], metavar="FILE",
                       help="read variables from FILE instead of .env (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dockyard",
        description="Deploy an unmodified Compose file to infrastructure you own.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("--version", action="version", version=f"dockyard {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    compose = commands.add_parser(
        "compose", help="work with a Compose project",
        description="Work with a Compose project (config now; up, ps, down and logs next).")
    compose.set_defaults(help_parser=compose)
    compose_commands = compose.add_subparsers(dest="compose_command", metavar="COMMAND",
                                              parser_class=_Parser)
    config = compose_commands.add_parser(
        "config", help="validate the project and print it normalized",
        description="Validate the project and print it normalized, in the shape of "
        "`docker compose config`, with what Dockyard computed for each service under "
        "`x-dockyard` (exposure, domains, private hostnames, configs). Warnings go to stderr. "
        "Exit code 0 when the project is valid, 3 when it is invalid.")
    _project_options(config)
    config.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    # SUPPRESS: without --debug here, the global `dockyard --debug` stays in force.
    config.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks of errors")
    config.set_defaults(handler=_compose_config)
    return parser


def _compose_config(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.config import run_config
    from dockyard.compose.options import LoadOptions

    options = LoadOptions(
        working_dir=args.cwd, files=tuple(args.file), project_name=args.project_name,
        profiles=tuple(args.profile), env_files=tuple(args.env_file),
        environ=dict(os.environ),
    )
    run_config(options, as_json=args.json)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code. Errors are rendered, never raised (but bugs
    under --debug)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    handler = getattr(args, "handler", None)
    if handler is None:
        target: argparse.ArgumentParser = getattr(args, "help_parser", parser)
        target.print_help()
        return int(ExitCode.OK) if args.command is None else int(ExitCode.USAGE)
    from dockyard.errors import DockyardError

    try:
        handler(args)
    except DockyardError as exc:
        from dockyard.cli.render import print_diagnostics, print_error
        from dockyard.errors import ProjectInvalid

        if debug:
            import traceback

            traceback.print_exc()
        if isinstance(exc, ProjectInvalid):
            print_diagnostics(exc.diagnostics)
        print_error(exc.message, exc.hint)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:  # `dockyard compose config | head`
        return int(ExitCode.OK)
    except Exception as exc:
        if debug:
            raise
        from dockyard.cli.render import print_error

        print_error(f"internal error: {type(exc).__name__}: {exc}",
                    "this is a bug in Dockyard; run again with --debug and report the traceback")
        return int(ExitCode.INTERNAL)
    return int(ExitCode.OK)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
