"""Entry point of the `dockyard` command.

The one place where a `DockyardError` becomes a message and an exit code
(`dockyard.exit_codes`). Any other exception is a bug: it is reported as one, with the
traceback only under `--debug`. Commands import what they need lazily to keep start-up fast.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from dockyard import __version__
from dockyard.exit_codes import ExitCode

app = typer.Typer(
    name="dockyard",
    help="Deploy an unmodified Compose file to infrastructure you own.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
compose_app = typer.Typer(
    help="Work with a Compose project (config; up, ps, down and logs come next).",
    no_args_is_help=True,
)
app.add_typer(compose_app, name="compose")

_debug = False


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dockyard {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    global _debug
    _debug = _debug or debug


FileOpt = Annotated[list[str] | None, typer.Option(
    "-f", "--file", help="Compose file (repeatable; later files override earlier ones).")]
ProjectOpt = Annotated[str | None, typer.Option("-p", "--project-name", help="Project name.")]
CwdOpt = Annotated[str, typer.Option("-C", "--cwd", help="Run as if started in this directory.")]
ProfileOpt = Annotated[list[str] | None, typer.Option(
    "--profile", help="Enable a profile (repeatable).")]
EnvFileOpt = Annotated[list[str] | None, typer.Option(
    "--env-file", help="Read variables from this file instead of .env (repeatable).")]


@compose_app.command("config")
def compose_config(
    file: FileOpt = None,
    project_name: ProjectOpt = None,
    cwd: CwdOpt = ".",
    profile: ProfileOpt = None,
    env_file: EnvFileOpt = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of YAML.")]
    = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    """Validate the project and print it normalized, with what Dockyard computed (x-dockyard).

    Warnings go to stderr. Exit code 0 when valid, 3 when the project is invalid.
    """
    global _debug
    _debug = _debug or debug
    from dockyard.cli.commands.config import run_config
    from dockyard.compose import LoadOptions

    options = LoadOptions(
        working_dir=cwd, files=tuple(file or ()), project_name=project_name,
        profiles=tuple(profile or ()), env_files=tuple(env_file or ()),
        environ=dict(os.environ),
    )
    run_config(options, as_json=json_output)


def run() -> None:
    """Console-script entry: run the app and map errors to exit codes."""
    from dockyard.errors import DockyardError

    try:
        app(standalone_mode=False)
    except DockyardError as exc:
        from dockyard.cli.render import print_diagnostics, print_error
        from dockyard.errors import ProjectInvalid

        if _debug:
            import traceback

            traceback.print_exc()
        if isinstance(exc, ProjectInvalid):
            print_diagnostics(exc.diagnostics)
        print_error(exc.message, exc.hint)
        sys.exit(int(exc.exit_code))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(int(ExitCode.INTERRUPTED))
    except KeyboardInterrupt:
        sys.exit(int(ExitCode.INTERRUPTED))
    except Exception as exc:  # the command line's usage errors, then real bugs
        show = getattr(exc, "show", None)
        if callable(show) and hasattr(exc, "exit_code"):  # click/typer usage errors
            show()
            sys.exit(int(ExitCode.USAGE))
        if _debug:
            raise
        from dockyard.cli.render import print_error

        print_error(f"internal error: {type(exc).__name__}: {exc}",
                    "this is a bug in Dockyard; run again with --debug and report the traceback")
        sys.exit(int(ExitCode.INTERNAL))
    sys.exit(0)
