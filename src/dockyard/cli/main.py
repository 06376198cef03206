"""Entry point of the `dockyard` command.

The one place where a `DockyardError` becomes a message and an exit code
(`dockyard.exit_codes`). Any other exception is a bug: it is reported as one, with the
traceback only under `--debug`.

Why argparse and not Typer (docs/architecture.md, Dependencies, and why): Typer 0.29 builds a
pydantic `TypeAdapter` for every parameter, so each run imports pydantic; measured here, `dockyard
--help` took 0.23-0.34 s and `compose config` spent about 0.25 s in the command-line layer alone,
against the issue's budget of 0.3 s for `--help` and 1.5x Docker Compose for `config`. argparse
costs a few milliseconds. Commands import what they need lazily, Rich included (it is only imported
to print something), so start-up stays small as commands are added.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from dockyard import __version__
from dockyard.exit_codes import ExitCode

if TYPE_CHECKING:
    from dockyard.client.api import Client
    from dockyard.compose.options import LoadOptions


# argparse asks gettext for each message it builds, and gettext looks for translation files on
# every call: about 120 lookups while the parser is built, 40% of its cost (~5 ms of every
# command's start-up, measured). A message's translation does not change while a command runs,
# so each is looked up once.
for _name in ("_", "ngettext"):
    setattr(argparse, _name, functools.cache(getattr(argparse, _name)))
del _name


@functools.cache
def _help_width() -> int:
    """The width help is wrapped to, found as `shutil.get_terminal_size` finds it ($COLUMNS, the
    terminal, else 80), less 2 as argparse takes."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


class _Parser(argparse.ArgumentParser):
    """argparse with our exit code for usage errors and a hint to --help."""

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse makes a formatter for every argument added, each asking the terminal's size
        # (and importing shutil): one width per run keeps `compose config`'s start-up short.
        make: Callable[..., argparse.HelpFormatter] = self.formatter_class
        return make(prog=self.prog, width=_help_width())

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {message}\n    hint: run `{self.prog} --help`\n")
        sys.exit(int(ExitCode.USAGE))


def _project_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """Compose's project options; with `prefix`, stored apart (those of `compose` itself, given
    before the subcommand, merged with the subcommand's by `_merge_project_options`)."""
    group = parser.add_argument_group("project options (as in Docker Compose)")
    group.add_argument("-f", "--file", dest=f"{prefix}file", action="append", default=[],
                       metavar="FILE",
                       help="Compose file (repeatable; later files override earlier ones)")
    group.add_argument("-p", "--project-name", dest=f"{prefix}project_name", metavar="NAME",
                       help="project name")
    group.add_argument("-C", "--cwd", dest=f"{prefix}cwd", metavar="DIR",
                       help="run as if started in DIR (default: the current directory)")
    group.add_argument("--project-directory", dest=f"{prefix}project_directory", metavar="DIR",
                       help="the project's directory, as in Compose: its name, .env and "
                       "relative paths, and where the Compose files are found without -f "
                       "(-f and --env-file stay relative to the current directory)")
    group.add_argument("--profile", dest=f"{prefix}profile", action="append", default=[],
                       metavar="PROFILE",
                       help="enable a profile (repeatable; default: $COMPOSE_PROFILES)")
    group.add_argument("--env-file", dest=f"{prefix}env_file", action="append", default=[],
                       metavar="FILE",
                       help="read variables from FILE instead of .env (repeatable)")


_BEFORE = "before_"  # dest prefix of the project options given before the compose subcommand
_VALUED = frozenset({"-f", "--file", "-p", "--project-name", "-C", "--cwd",
                     "--project-directory", "--profile", "--env-file"})


def _is_compose_config(argv: Sequence[str]) -> bool:
    """Whether `argv` runs `compose config` (not asking for help before it): then only that
    command's parser is built."""
    args = list(argv)
    while args and args[0] == "--debug":
        args.pop(0)
    if not args or args.pop(0) != "compose":
        return False
    while args:
        token = args.pop(0)
        if token in _VALUED:
            if not args:
                return False
            args.pop(0)
        elif not token.startswith("-") or token == "-":
            return token == "config"
        elif token.split("=", 1)[0] not in _VALUED and not (
                len(token) > 2 and token[:2] in _VALUED):  # -fFILE, --file=FILE
            return False  # -h, or an option to be refused by the whole parser
    return False


def _merge_project_options(args: argparse.Namespace) -> None:
    """`dockyard compose -f a.yaml -p x up` as Docker Compose spells it, or `compose up -f
    a.yaml -p x`, or both: lists add up (those before the subcommand first), a single value
    after the subcommand wins."""
    if not hasattr(args, "file"):
        return
    for key in ("file", "profile", "env_file"):
        setattr(args, key, [*getattr(args, _BEFORE + key, []), *getattr(args, key)])
    for key in ("project_name", "cwd", "project_directory"):
        if getattr(args, key) is None:
            setattr(args, key, getattr(args, _BEFORE + key, None))
    if args.cwd is None:
        args.cwd = "."


def _server_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", metavar="URL",
                        help="the Dockyard server (default: $DOCKYARD_SERVER, else a local "
                        "server, started in the background when none runs)")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks of errors")


def _json_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=what)


def _logs_options(parser: argparse.ArgumentParser, *, follow_default: bool) -> None:
    parser.add_argument("services", nargs="*", metavar="SERVICE",
                        help="only these services (default: all)")
    if follow_default:
        parser.add_argument("--no-follow", dest="follow", action="store_false",
                            help="print what there is and stop")
        parser.set_defaults(follow=True)
    else:
        parser.add_argument("--follow", action="store_true",
                            help="keep printing new lines")
    parser.add_argument("--since", metavar="WHEN",
                        help="only lines after WHEN: a duration ago (10m, 1h30m) or a time "
                        "(2026-11-28T10:00:00Z)")
    parser.add_argument("--until", metavar="WHEN", help="only lines before WHEN (same forms)")
    parser.add_argument("--filter", metavar="TEXT",
                        help="only lines containing TEXT, ignoring case (the server filters, "
                        "after masking config values)")
    parser.add_argument("--type", choices=["build", "run", "all"], default="all",
                        help="build output, run output, or both (default: all)")
    parser.add_argument("--deployment", metavar="ID",
                        help="the deployment whose logs to show: an id, or latest (default)")
    parser.add_argument("-n", "--tail", type=int, metavar="N",
                        help="only the last N lines of each container")
    _json_option(parser, "print one JSON object per line")


def build_parser(only_config: bool = False) -> argparse.ArgumentParser:
    """The whole command line; with `only_config`, just enough for `compose config` (whose
    start-up is what Docker Compose is compared with: building every parser costs ~8 ms)."""
    parser = _Parser(
        prog="dockyard",
        description="Deploy an unmodified Compose file to infrastructure you own.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("--version", action="version", version=f"dockyard {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    compose = commands.add_parser(
        "compose", help="work with a Compose project",
        description="Work with a Compose project: config, up, ps, logs, down. The project "
        "options go before the command, as in Docker Compose (`dockyard compose -f a.yaml -p "
        "shop up`), or after it.")
    compose.set_defaults(help_parser=compose)
    _project_options(compose, prefix=_BEFORE)
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
    if only_config:
        return parser

    up = compose_commands.add_parser(
        "up", help="build and deploy the project, and wait until it is healthy",
        description="Validate the project, upload its build contexts, build what changed and "
        "deploy every service in depends_on order, showing each service's state live. Ends "
        "with the `ps` table and the endpoints. Unchanged services are not restarted. Exit "
        "code 0 when every service is SERVICE_DEPLOYMENT_COMPLETED, 5 when one failed, 6 "
        "when --wait-timeout passed first. Ctrl-C stops watching; the deployment goes on. "
        "With SERVICE names, only those and what they depend on (depends_on, transitively) "
        "are deployed; every other service is left exactly as it runs.")
    up.add_argument("services", nargs="*", metavar="SERVICE",
                    help="deploy only these services and their dependencies (default: all)")
    _project_options(up)
    _server_option(up)
    up.add_argument("-d", "--detach", action="store_true",
                    help="start the deployment and return without waiting")
    up.add_argument("--build", action="store_true",
                    help="build images even when their context and settings are unchanged")
    up.add_argument("--force", action="store_true",
                    help="replace every service, even the unchanged ones")
    up.add_argument("--dry-run", action="store_true",
                    help="print what the deployment would do (build, pull, create, replace "
                    "and why, scale, keep, remove) and change nothing; with --json one object "
                    "per service: service, action, reasons, replicas")
    up.add_argument("--pull", choices=["always", "missing", "never"],
                    help="pull images always, when missing, or never, whatever each "
                    "service's pull_policy says; with --build, 'always' also refreshes the "
                    "base images of builds")
    up.add_argument("--wait-timeout", type=float, metavar="SECONDS",
                    help="stop waiting after SECONDS (exit code 6); the deployment goes on")
    up.add_argument("--ttl", metavar="DURATION",
                    help="a preview: the server takes the project down DURATION after this "
                    "`up` (30s, 10m, 2h, 1d), as `compose down` would, even when this machine "
                    "is off. A later `up` without --ttl keeps the project (its deadline is "
                    "forgotten), and so does `compose down`")
    up.add_argument("--rollback-on-failure", action="store_true",
                    help="if the deployment fails, roll the project back to the deployment "
                    "before it (as `dockyard rollback` would; a service's "
                    "deploy.update_config.failure_action: rollback asks for the same)")
    up.add_argument("--ttl-volumes", action="store_true",
                    help="with --ttl: remove the project's named volumes too when it expires "
                    "(by default they are kept, as `compose down` keeps them)")
    _json_option(up, "print one JSON event per line")
    up.set_defaults(handler=_compose_up)

    ps = compose_commands.add_parser(
        "ps", help="show the services, their states and endpoints",
        description="Show every service of the project: SERVICE DEPLOYMENT STATE FQDN "
        "ENDPOINT, as the server knows them now.")
    _project_options(ps)
    _server_option(ps)
    ps.add_argument("-l", "--long", action="store_true",
                    help="also show replicas, since when and why")
    _json_option(ps, "print a JSON list of objects")
    ps.set_defaults(handler=_compose_ps)

    ls = compose_commands.add_parser(
        "ls", help="list your projects, their latest deployments and deadlines",
        description="List the projects of your account: each one's latest deployment (id, "
        "action, status, time), how many of its services are in each state (as recorded; "
        "`ps` also checks what runs), and when it expires if it was deployed with `up "
        "--ttl`.")
    _server_option(ls)
    _json_option(ls, "print a JSON list of objects")
    ls.set_defaults(handler=_compose_ls)

    down = compose_commands.add_parser(
        "down", help="stop and remove the project's services",
        description="Stop and remove every container and the network of the project. Named "
        "volumes are kept unless --volumes. The deployment history is kept. With SERVICE "
        "names, only those services go (their containers, routes and states); refused while "
        "a running service that stays depends on one of them, unless --force.")
    down.add_argument("services", nargs="*", metavar="SERVICE",
                      help="take only these services down (default: the whole project)")
    _project_options(down)
    _server_option(down)
    down.add_argument("-v", "--volumes", action="store_true",
                      help="also remove the project's named volumes (their data is lost); "
                      "not with SERVICE names")
    down.add_argument("--force", action="store_true",
                      help="with SERVICE names: take them down even when a running service "
                      "depends on one")
    down.add_argument("-d", "--detach", action="store_true", help="do not wait")
    _json_option(down, "print the result as JSON")
    down.set_defaults(handler=_compose_down)

    restart = compose_commands.add_parser(
        "restart", help="restart services, one replica at a time, with no failed request",
        description="Restart the services (default: every service with a running container; "
        "jobs are not rerun) one after the other in depends_on order, and each service's "
        "replicas one at a time: a replica leaves the ingress rotation, drains, restarts, "
        "becomes healthy (its health check, else GET / for a public service, else running) "
        "and serves again before the next one. A public service with a single replica is "
        "replaced start-first instead (a new container beside it), so that it keeps "
        "serving. Shows each state live, then the `ps` table; exit codes are those of `up`.")
    restart.add_argument("services", nargs="*", metavar="SERVICE",
                         help="restart only these services (default: all)")
    _project_options(restart)
    _server_option(restart)
    restart.add_argument("-d", "--detach", action="store_true",
                         help="start the restart and return without waiting")
    restart.add_argument("--wait-timeout", type=float, metavar="SECONDS",
                         help="stop waiting after SECONDS (exit code 6); the restart goes on")
    _json_option(restart, "print one JSON event per line")
    restart.set_defaults(handler=_compose_restart)

    compose_logs = compose_commands.add_parser(
        "logs", help="show the services' output (build and run)",
        description="Show the output of the project's services, each line prefixed by its "
        "service.")
    _project_options(compose_logs)
    _server_option(compose_logs)
    _logs_options(compose_logs, follow_default=False)
    compose_logs.set_defaults(handler=_logs)

    for command, follow in (("logs", False), ("tail", True)):
        item = commands.add_parser(
            command, help="show the services' output" if not follow else
            "follow the services' output (logs --follow)",
            description="Show the output of the project's services (build and run), each "
            "line prefixed by its service." + (" Keeps following new lines until Ctrl-C."
                                               if follow else ""))
        _project_options(item)
        _server_option(item)
        _logs_options(item, follow_default=follow)
        item.set_defaults(handler=_logs)

    deployments = commands.add_parser(
        "deployments", help="the history of deployments",
        description="The deployments of your projects, newest first: id, time, action, "
        "status, services. With -p (or a Compose project here) only that project's.")
    deployments.add_argument("-p", "--project-name", metavar="NAME", help="only this project")
    deployments.add_argument("--all", action="store_true",
                             help="every project, even with a Compose file here")
    deployments.add_argument("-n", "--limit", type=int, default=50, metavar="N",
                             help="at most N deployments (default 50)")
    deployments.add_argument("--status", choices=["running", "succeeded", "failed", "refused"],
                             help="only the deployments with this status")
    _server_option(deployments)
    _json_option(deployments, "print a JSON list")
    deployments.set_defaults(handler=_deployments)
    shows = deployments.add_subparsers(dest="deployments_command", metavar="COMMAND")
    show = shows.add_parser(
        "show", help="all one deployment recorded",
        description="One deployment as recorded: who ran it, when and with which Dockyard "
        "versions; the git commit, branch and dirty flag of the project directory; each "
        "service's planned action and why, its image digest and its outcome; each config's "
        "version (never its value); and the state timeline. --json adds the normalized "
        "project.")
    show.add_argument("deployment", metavar="DEPLOYMENT",
                      help="the deployment's id (`dockyard deployments` lists them)")
    show.add_argument("--compose", action="store_true",
                      help="print only the normalized project it deployed, as YAML")
    _server_option(show)
    _json_option(show, "print a JSON object")
    show.set_defaults(handler=_deployment_show)

    rollback = commands.add_parser(
        "rollback", help="go back to exactly what an earlier deployment ran",
        description="Deploy again exactly what a recorded deployment ran: its normalized "
        "project, each service's image by digest and each config at the version it ran. "
        "By default the last deployment that completed before the current one. It says "
        "which services it will change, then goes through the same plan, zero-downtime "
        "replacement and health checks as `compose up` (same output and exit codes). "
        "Refused before anything changes when an image or a config version is gone. The "
        "stored configs are not changed: the next `compose up` runs the current values.")
    rollback.add_argument("deployment", metavar="DEPLOYMENT", nargs="?",
                          help="the deployment to go back to (`dockyard deployments`)")
    _project_options(rollback)
    _server_option(rollback)
    rollback.add_argument("-d", "--detach", action="store_true",
                          help="start the rollback and return without waiting")
    rollback.add_argument("--dry-run", action="store_true",
                          help="print what the rollback would change, and change nothing")
    rollback.add_argument("--pull", choices=["always", "missing", "never"],
                          help="pull the pinned images always, when missing (default), or "
                          "never")
    rollback.add_argument("--wait-timeout", type=float, metavar="SECONDS",
                          help="stop waiting after SECONDS (exit code 6); it goes on")
    _json_option(rollback, "print one JSON event per line")
    rollback.set_defaults(handler=_rollback)

    redeploy = commands.add_parser(
        "redeploy", help="deploy again exactly the images a recorded deployment ran",
        description="Deploy a recorded deployment's project again with the very images it "
        "ran: each service by the digest (or, for a local build, the image id) that "
        "deployment recorded, never by a tag that may have moved since. Nothing is built. "
        "Refused before anything changes when an image is gone. Unchanged services are not "
        "restarted; output and exit codes are those of `compose up`.")
    redeploy.add_argument("deployment", metavar="DEPLOYMENT",
                          help="the deployment's id (`dockyard deployments` lists them)")
    _server_option(redeploy)
    redeploy.add_argument("-d", "--detach", action="store_true",
                          help="start the deployment and return without waiting")
    redeploy.add_argument("--pull", choices=["always", "missing", "never"],
                          help="pull the pinned images always, when missing (default), or "
                          "never")
    redeploy.add_argument("--wait-timeout", type=float, metavar="SECONDS",
                          help="stop waiting after SECONDS (exit code 6); it goes on")
    _json_option(redeploy, "print one JSON event per line")
    redeploy.set_defaults(handler=_redeploy)

    configs = commands.add_parser(
        "config", help="a project's configs (secrets): set, ls, rm, resolve",
        description="Configs are named sensitive values of one project, stored encrypted by "
        "the server and never shown again. A Compose `environment` key with no value takes "
        "the config of that name, `${NAME}` in an environment value is replaced by it, and an "
        "external top-level secret is mounted as a file at /run/secrets/NAME. The project is "
        "-p, else the Compose project in this directory.")
    configs.set_defaults(help_parser=configs)
    config_commands = configs.add_subparsers(dest="config_command", metavar="COMMAND",
                                             parser_class=_Parser)
    config_set = config_commands.add_parser(
        "set", help="set a config",
        description="Set config NAME. Its value: NAME=VALUE, --env (this process's variable "
        "NAME), --random (a strong random value, not shown), else standard input when it is "
        "not a terminal, else a hidden prompt. Changing a config restarts nothing: the next "
        "`up` replaces the services that use it.")
    config_set.add_argument("name", metavar="NAME[=VALUE]")
    config_set.add_argument("--env", action="store_true",
                            help="take the value of the variable NAME of this environment")
    config_set.add_argument("--random", action="store_true",
                            help="a strong random value (32 random bytes), not shown")
    config_set.add_argument("--if-not-set", action="store_true",
                            help="leave an existing value as it is")
    config_ls = config_commands.add_parser("ls", help="list config names (never values)",
                                           description="The project's config names and when "
                                           "each was last set. Values are never shown.")
    _json_option(config_ls, "print a JSON list")
    config_rm = config_commands.add_parser("rm", help="remove configs",
                                           description="Remove configs from the project.")
    config_rm.add_argument("names", nargs="+", metavar="NAME")
    config_resolve = config_commands.add_parser(
        "resolve", help="where each service's environment variables come from",
        description="For each service of the Compose project here, each environment variable "
        "and where its value comes from: a Compose file (file:line), with ${VAR} filled from "
        "the environment or an env file (.env, --env-file), an env_file, or a config (a key "
        "with no value, or ${NAME} left for the server to fill in). Secret files "
        "(/run/secrets) are listed too. Config values are never fetched: a set one shows as "
        "****, and a config that is needed and not set is named, as `compose up` would refuse "
        "it. VALUE is the template the server fills in ($$ is a literal $).")
    _json_option(config_resolve, "print a JSON object: variables, and missing configs")
    _project_options(config_resolve)
    _server_option(config_resolve)
    config_resolve.set_defaults(handler=_config_resolve)
    for item, handler in ((config_set, _config_set), (config_ls, _config_ls),
                          (config_rm, _config_rm)):
        _project_options(item)
        _server_option(item)
        item.set_defaults(handler=handler)

    registry = commands.add_parser(
        "registry", help="your logins to image registries: login, logout, ls",
        description="Logins to image registries, kept by the server for your account: it "
        "pulls (and pushes) your images with them, never another account's. Passwords are "
        "stored encrypted and never shown again (docs/registries.md).")
    registry.set_defaults(help_parser=registry)
    registry_commands = registry.add_subparsers(dest="registry_command", metavar="COMMAND",
                                                parser_class=_Parser)
    registry_login = registry_commands.add_parser(
        "login", help="log in to a registry",
        description="Check a login against the registry (through the server) and keep it for "
        "this account, as `docker login` does. The password is read from a hidden prompt, or "
        "one line of standard input with --password-stdin. Nothing of your Docker config is "
        "read unless --from-docker-config is given, and then only the entry of HOST.")
    registry_login.add_argument("host", metavar="HOST",
                                help="the registry: ghcr.io, registry.example.com:5000, "
                                "docker.io (Docker Hub) ...")
    registry_login.add_argument("-u", "--username", metavar="USER", help="the user name")
    registry_login.add_argument("--password-stdin", action="store_true",
                                help="read the password (or token) from standard input")
    registry_login.add_argument("--from-docker-config", action="store_true",
                                help="upload the login for HOST from $DOCKER_CONFIG/config.json "
                                "(default ~/.docker/config.json), credential helpers included")
    registry_logout = registry_commands.add_parser(
        "logout", help="forget a registry login",
        description="Remove this account's login for HOST from the server.")
    registry_logout.add_argument("host", metavar="HOST")
    registry_ls = registry_commands.add_parser(
        "ls", help="list registry logins (never passwords)",
        description="The registries this account is logged in to: host, user, when.")
    _json_option(registry_ls, "print a JSON list")
    for item, handler in ((registry_login, _registry_login), (registry_logout, _registry_logout),
                          (registry_ls, _registry_ls)):
        _server_option(item)
        item.set_defaults(handler=handler)

    login = commands.add_parser(
        "login", help="store a token for a server",
        description="Store an API token for a Dockyard server (given by its operator with "
        "`dockyard server accounts add`) in $DOCKYARD_HOME/config/credentials.json (mode "
        "0600). The token is read from standard input when it is not a terminal, else from a "
        "hidden prompt. Later commands with --server URL (or DOCKYARD_SERVER) use it.")
    login.add_argument("--server", metavar="URL", required=True, help="the server's URL")
    login.set_defaults(handler=_login)
    logout = commands.add_parser(
        "logout", help="forget the token stored for a server",
        description="Remove the token `dockyard login` stored for a server from "
        "$DOCKYARD_HOME/config/credentials.json; other servers' tokens are kept. The token "
        "stays valid on the server until its operator revokes it (`dockyard server tokens "
        "revoke`). Logging out of a server with no stored token says so and changes nothing.")
    logout.add_argument("--server", metavar="URL",
                        help="the server's URL (default: $DOCKYARD_SERVER)")
    logout.set_defaults(handler=_logout)
    whoami = commands.add_parser("whoami", help="the account, server and mode",
                                 description="Show the account this CLI acts as, the server "
                                 "and its naming mode and zone.")
    _server_option(whoami)
    _json_option(whoami, "print JSON")
    whoami.set_defaults(handler=_whoami)

    dashboard = commands.add_parser(
        "dashboard", help="open the web dashboard in a browser, logged in",
        description="Open the server's web dashboard (its projects, services live, "
        "deployments, logs and configs; docs/dashboard.md) in a browser, logged in through a "
        "one-time link made for this CLI's token: valid once, for 2 minutes. With no browser "
        "to open, the link is printed. On a shared server, log in first (`dockyard login`), "
        "or paste a token on the dashboard's login page.")
    dashboard.add_argument("--url", action="store_true",
                           help="only print the one-time login link")
    _server_option(dashboard)
    dashboard.set_defaults(handler=_dashboard)

    ca = commands.add_parser(
        "ca", help="the server's local certificate authority, and how to trust it",
        description="Save the certificate of the server's local CA (which signs the HTTPS "
        "certificates of local names such as *.localhost) under $DOCKYARD_HOME/config/ca/ and "
        "print how to make browsers, curl and the system trust it.")
    ca.add_argument("--pem", action="store_true", help="print the certificate itself")
    _server_option(ca)
    ca.set_defaults(handler=_ca)

    from dockyard.server.arguments import DESCRIPTION, add_server_arguments

    server = commands.add_parser(
        "server", help="run the Dockyard server (the control plane)", description=DESCRIPTION)
    add_server_arguments(server)
    server.set_defaults(handler=_server)
    admin = server.add_subparsers(dest="server_command", metavar="COMMAND",
                                  parser_class=_Parser)
    accounts = admin.add_parser(
        "accounts", help="manage accounts (the operator, on the server's machine)",
        description="Manage the accounts of the server whose data directory is --data (or "
        "$DOCKYARD_DATA, else the default). `add` prints the new account's first API token "
        "once; keep it.")
    accounts.set_defaults(help_parser=accounts)
    account_commands = accounts.add_subparsers(dest="accounts_command", metavar="COMMAND",
                                               parser_class=_Parser)
    for verb, what in (("add", "create an account and print its first token"),
                       ("rm", "remove an account and everything it owns"),
                       ("ls", "list the accounts")):
        item = account_commands.add_parser(verb, help=what, description=what[0].upper()
                                           + what[1:] + ".")
        if verb != "ls":
            item.add_argument("account", metavar="NAME")
        item.add_argument("--data", metavar="DIR", help="the server's data directory")
        item.set_defaults(handler=_accounts, verb=verb)
    tokens = admin.add_parser("tokens", help="manage an account's API tokens",
                              description="Add, list or revoke an account's API tokens.")
    tokens.set_defaults(help_parser=tokens)
    token_commands = tokens.add_subparsers(dest="tokens_command", metavar="COMMAND",
                                           parser_class=_Parser)
    for verb, what in (("add", "create a token and print it once"),
                       ("ls", "list the account's tokens (ids and labels, not the tokens)"),
                       ("revoke", "revoke a token by its id")):
        item = token_commands.add_parser(verb, help=what, description=what[0].upper()
                                         + what[1:] + ".")
        item.add_argument("account", metavar="NAME")
        if verb == "revoke":
            item.add_argument("token_id", type=int, metavar="ID")
        if verb == "add":
            item.add_argument("--label", default="cli", help="a label to tell tokens apart")
        item.add_argument("--data", metavar="DIR", help="the server's data directory")
        item.set_defaults(handler=_tokens, verb=verb)
    rotate = admin.add_parser(
        "rotate-key", help="re-encrypt every stored value under a new key (server stopped)",
        description="Re-encrypt every encrypted value of the store (configs, their kept "
        "versions, registry logins) under the key in --new-key-file, made (0600) when it does "
        "not exist, in one transaction. The server must be stopped; then start it with "
        "--key-file NEW. The old key opens nothing in the store afterwards.")
    rotate.add_argument("--new-key-file", metavar="PATH", required=True,
                        help="the new key (made when it does not exist)")
    backup = admin.add_parser(
        "backup", help="snapshot the store to a file, while the server runs",
        description="Write a consistent copy of the store (SQLite VACUUM INTO) to PATH, a new "
        "file (0600), without stopping the server. The values stay encrypted; the key is not "
        "in the backup: copy it apart (docs/operations.md).")
    backup.add_argument("path", metavar="PATH", help="the backup file to write")
    for item, handler in ((rotate, _rotate_key), (backup, _backup)):
        item.add_argument("--data", metavar="DIR", help="the server's data directory")
        item.add_argument("--key-file", metavar="PATH",
                          help="the current key (default: as the server finds it)")
        item.add_argument("--store-url", metavar="URL", help="the store, if not in --data")
        item.set_defaults(handler=handler)
    return parser


def _load_options(args: argparse.Namespace) -> LoadOptions:
    from dockyard.compose.options import LoadOptions

    return LoadOptions(
        working_dir=args.cwd, files=tuple(args.file), project_name=args.project_name,
        profiles=tuple(args.profile), env_files=tuple(args.env_file),
        environ=dict(os.environ), project_directory=getattr(args, "project_directory", None),
    )


def _client_factory(args: argparse.Namespace) -> Callable[[], Client]:
    def factory() -> Client:
        from dockyard.cli.render import note
        from dockyard.client.api import connect

        return connect(args.server, announce=note)

    return factory


def _project_name(args: argparse.Namespace) -> str:
    """`-p`, else the name of the Compose project in the working directory."""
    if args.project_name:
        return str(args.project_name)
    from dockyard.compose.session import load_project_name

    return load_project_name(_load_options(args))


# Set by a command that leaves nothing to clean up when it returns (compose config, ps, up,
# down: no thread still running, no file open but the standard streams).
_finished: list[bool] = []


def _compose_config(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.config import run_config

    run_config(_load_options(args), as_json=args.json)
    _finished.append(True)


def _compose_up(args: argparse.Namespace) -> int:
    from dockyard.cli.commands.deploy import UpOptions, run_up

    code = run_up(_load_options(args), _client_factory(args), UpOptions(
        detach=args.detach, build=args.build, force=args.force, pull=args.pull,
        dry_run=args.dry_run, wait_timeout=args.wait_timeout, as_json=args.json,
        ttl=_ttl_seconds(args.ttl, args.ttl_volumes), ttl_volumes=args.ttl_volumes,
        rollback_on_failure=args.rollback_on_failure, services=tuple(args.services)))
    _finished.append(True)
    return code


def _ttl_seconds(text: str | None, volumes: bool) -> int | None:
    """`--ttl` in seconds; a usage error when it is no duration, or `--ttl-volumes` is alone."""
    from dockyard.errors import UsageError

    if text is None:
        if volumes:
            raise UsageError("--ttl-volumes needs --ttl",
                             hint="e.g. `dockyard compose up --ttl 2h --ttl-volumes`")
        return None
    from dockyard.ttl import parse_ttl

    try:
        return parse_ttl(text)
    except ValueError as exc:
        raise UsageError(str(exc), hint="e.g. `dockyard compose up --ttl 2h`") from None


def _compose_ps(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.status import run_ps

    run_ps(_project_name(args), _client_factory(args), as_json=args.json, long=args.long)
    _finished.append(True)


def _compose_ls(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.projects import run_ls

    run_ls(_client_factory(args), as_json=args.json)


def _compose_down(args: argparse.Namespace) -> int:
    from dockyard.cli.commands.deploy import run_down

    code = run_down(_project_name(args), _client_factory(args), volumes=args.volumes,
                    detach=args.detach, as_json=args.json, services=list(args.services),
                    force=args.force)
    _finished.append(True)
    return code


def _compose_restart(args: argparse.Namespace) -> int:
    from dockyard.cli.commands.deploy import UpOptions, run_restart

    return run_restart(_project_name(args), _client_factory(args), list(args.services),
                       UpOptions(detach=args.detach, wait_timeout=args.wait_timeout,
                                 as_json=args.json))


def _logs(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.logs import parse_when, run_logs

    run_logs(_project_name(args), _client_factory(args), services=list(args.services),
             follow=args.follow, since=parse_when(args.since, "--since"),
             until=parse_when(args.until, "--until"), kind=args.type,
             deployment=args.deployment, tail=args.tail, as_json=args.json,
             text=args.filter)


def _redeploy(args: argparse.Namespace) -> int:
    from dockyard.cli.commands.deploy import UpOptions, run_redeploy

    return run_redeploy(args.deployment, _client_factory(args), UpOptions(
        detach=args.detach, pull=args.pull, wait_timeout=args.wait_timeout, as_json=args.json))


def _deployment_show(args: argparse.Namespace) -> int:
    from dockyard.cli.commands.history import run_show

    return run_show(args.deployment, _client_factory(args), as_json=args.json,
                    compose=args.compose)


def _rollback(args: argparse.Namespace) -> int:
    from dockyard.cli.commands.deploy import UpOptions
    from dockyard.cli.commands.history import run_rollback

    return run_rollback(_project_name(args), args.deployment, _client_factory(args), UpOptions(
        detach=args.detach, pull=args.pull, dry_run=args.dry_run,
        wait_timeout=args.wait_timeout, as_json=args.json))


def _deployments(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.status import run_deployments

    project = args.project_name
    if project is None and not args.all:
        from dockyard.errors import DockyardError

        try:
            project = _project_name(argparse.Namespace(
                project_name=None, cwd=".", file=[], profile=[], env_file=[]))
        except DockyardError:  # no usable Compose project here: show every project
            project = None
    run_deployments(project, _client_factory(args), as_json=args.json, limit=args.limit,
                    status=args.status)


def _config_set(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.configs import run_set

    run_set(_project_name(args), _client_factory(args), args.name, from_env=args.env,
            random=args.random, if_not_set=args.if_not_set)


def _config_ls(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.configs import run_ls

    run_ls(_project_name(args), _client_factory(args), as_json=args.json)


def _config_rm(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.configs import run_rm

    run_rm(_project_name(args), _client_factory(args), args.names)


def _config_resolve(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.config_resolve import run_resolve

    run_resolve(_load_options(args), _client_factory(args), as_json=args.json)


def _registry_login(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.registry import run_login

    run_login(_client_factory(args), args.host, username=args.username,
              password_stdin=args.password_stdin, from_docker_config=args.from_docker_config)


def _registry_logout(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.registry import run_logout

    run_logout(_client_factory(args), args.host)


def _registry_ls(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.registry import run_ls

    run_ls(_client_factory(args), as_json=args.json)


def _login(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.accounts import run_login

    run_login(args.server)


def _logout(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.accounts import run_logout

    run_logout(args.server, os.environ)


def _whoami(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.accounts import run_whoami

    run_whoami(_client_factory(args), args.server, as_json=args.json)


def _accounts(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.accounts import run_accounts

    run_accounts(args.verb, getattr(args, "account", None), args.data)


def _tokens(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.accounts import run_tokens

    run_tokens(args.verb, args.account, args.data, label=getattr(args, "label", "cli"),
               token_id=getattr(args, "token_id", None))


def _dashboard(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.dashboard import run_dashboard

    run_dashboard(_client_factory(args), url_only=args.url)


def _ca(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.tls import run_ca

    run_ca(_client_factory(args), pem=args.pem)


def _rotate_key(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.server_keys import run_rotate_key

    run_rotate_key(args.data, args.key_file, args.store_url, args.new_key_file)


def _backup(args: argparse.Namespace) -> None:
    from dockyard.cli.commands.server_keys import run_backup

    run_backup(args.data, args.key_file, args.store_url, args.path)


def _server(args: argparse.Namespace) -> int:
    from dockyard.server.arguments import server_options
    from dockyard.server.main import serve
    from dockyard.server.settings import settings_from

    return serve(settings_from(server_options(args)))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code. Errors are rendered, never raised (but bugs
    under --debug)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only_config=_is_compose_config(argv))
    args = parser.parse_args(argv)
    _merge_project_options(args)
    debug = bool(getattr(args, "debug", False))
    handler = getattr(args, "handler", None)
    if handler is None:
        target: argparse.ArgumentParser = getattr(args, "help_parser", parser)
        target.print_help()
        return int(ExitCode.OK) if args.command is None else int(ExitCode.USAGE)
    from dockyard.errors import DockyardError

    try:
        code = handler(args)
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
    return int(ExitCode.OK) if code is None else int(code)


def run() -> None:
    """Console-script entry point."""
    code = main()
    if _finished:
        # The command left no thread running and holds nothing: the interpreter's teardown
        # of every module (about a tenth of a `compose config` or `ps`, which are compared
        # with Docker Compose's) is skipped once the output is flushed.
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (BrokenPipeError, OSError, ValueError):
            sys.exit(code)
        os._exit(code)
    sys.exit(code)
