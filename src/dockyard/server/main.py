"""Running the server: open the store and the engine, recover, watch, serve HTTP.

The server writes the API token of the account named after the OS user to
`<data>/local-token` (mode 0600), where the CLI on the same machine reads it: no login step. In
single-user mode (byoc, the default) that is the only account; in playground mode it is the
operator's own, beside the accounts made with `dockyard server accounts add` (whoever can read
the data directory owns the server anyway). `<data>/server.json` says where the server listens
and its pid, so a CLI can find it (and tell a stale file from a live server).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import socket
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.errors import DockyardError
from dockyard.exit_codes import ExitCode
from dockyard.files import write_private
from dockyard.home import current_username
from dockyard.server.settings import ServerSettings

if TYPE_CHECKING:
    from dockyard.server.control import ControlPlane

TOKEN_FILE = "local-token"
STATE_FILE = "server.json"


class ServerStartError(DockyardError):
    """The server cannot start (address in use, data directory unwritable ...)."""


def local_token(store: object, data: Path) -> str:
    """The single-user account's token, created once and kept in `<data>/local-token`."""
    from dockyard.store.store import Store

    assert isinstance(store, Store)
    account = store.ensure_account(current_username())
    path = data / TOKEN_FILE
    if path.is_file():
        token = path.read_text().strip()
        found = store.account_for_token(token)
        if found is not None and found.name == account.name:
            return token
    token = store.create_token(account, label="local")
    write_private(path, token + "\n")
    return token


def bind(settings: ServerSettings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    # IPPROTO_TCP said outright: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose
    # proto is TCP, and accepted sockets inherit it. With proto 0 every answer on a kept-alive
    # connection waited ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        raise ServerStartError(
            f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}",
            hint="another program uses that port; choose another with --listen") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(settings: ServerSettings) -> int:
    """Run until interrupted; returns the exit code."""
    import uvicorn

    from dockyard.runtime.docker_engine import DockerEngine
    from dockyard.runtime.swarm import SwarmEngine
    from dockyard.server.app import create_app
    from dockyard.server.control import ControlPlane
    from dockyard.server.expiry import Expirer
    from dockyard.server.keys import check_key
    from dockyard.server.recovery import recover
    from dockyard.server.retention import Collector
    from dockyard.server.secret_files import SecretFiles
    from dockyard.server.tmpfs import prepare_secrets_dir, release
    from dockyard.server.watcher import Watcher
    from dockyard.store.store import Store

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings.data.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data, 0o700)
    os.environ.pop("DOCKYARD_KEY", None)  # read into settings; no child process inherits it
    check_key(settings)  # a key that does not open the store: refused before anything changes
    sock = bind(settings)
    host, port = sock.getsockname()[:2]
    settings = dataclasses.replace(settings, port=int(port))
    store = Store.open(settings.database_url)
    driver = DockerEngine(settings.docker_host) if settings.driver == "docker" \
        else SwarmEngine(settings.docker_host)
    control = ControlPlane(settings, store, driver)
    control.secret_files = SecretFiles(  # an older Dockyard wrote them on disk: retired
        prepare_secrets_dir(settings.secrets_dir, control.server_id), settings.data / "secrets")
    start_egress(control)
    local_token(store, settings.data)
    recover(control)
    if settings.ingress:
        settings = start_ingress(control)
    Watcher(control).start()
    Collector(control).start()  # unused build contexts go after their TTL, deploys or not
    expirer = Expirer(control).start()  # `up --ttl` deadlines, those passed while stopped too
    write_private(settings.data / STATE_FILE, json.dumps(
        {"pid": os.getpid(), "url": f"http://{host}:{port}", "mode": settings.mode.value,
         "zone": settings.zone, "ingress": settings.ingress,
         "http_port": settings.http_port if settings.ingress else None,
         "https_port": settings.https_port if settings.ingress else None}))
    logging.getLogger("dockyard.server").info(
        "Dockyard server listening on http://%s:%s (mode %s, zone %s, data %s)", host, port,
        settings.mode.value, settings.zone, settings.data)
    config = uvicorn.Config(create_app(control), log_level="warning", access_log=False,
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    # Uvicorn re-raises SIGTERM once it has shut down; exit through `finally` instead of
    # dying there, so the ingress proxy is stopped and server.json removed.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        server.run(sockets=[sock])
    finally:
        control.shutting_down.set()
        if control.engine_events is not None:
            control.engine_events.wake_all()  # deployments waiting on health see it at once
        expirer.stop()  # a take-down it started goes on in its own thread, as any `down`
        control.ingress.stop()
        control.egress.forget()  # rules of networks removed meanwhile; live ones stay
        release(control.secret_files.root)  # kept while a secret file is left
        state = settings.data / STATE_FILE
        try:
            if json.loads(state.read_text()).get("pid") == os.getpid():
                state.unlink()
        except (OSError, ValueError):
            pass
    return int(ExitCode.OK)


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def start_egress(control: ControlPlane) -> None:
    """Fence tenant networks off the host (`runtime.egress`) when egress is restricted
    (playground default): the server does not start if it cannot. Otherwise this server's old
    rules, if any, are removed (best effort: byoc servers need neither root nor iptables)."""
    from dockyard.runtime.egress import EgressError, EgressGuard, check_host

    settings = control.settings
    guard = EgressGuard(control.server_id, control.driver)
    if not settings.restrict_egress:
        try:
            guard.clear()
        except EgressError:
            pass
        return
    try:
        check_host()
        guard.sync()
    except EgressError as exc:
        raise ServerStartError(f"cannot restrict tenant containers' egress: {exc.message}",
                               hint=exc.hint) from None
    control.egress = guard
    logging.getLogger("dockyard.server").info(
        "egress restricted: tenant networks cannot reach the host's addresses or %s",
        "169.254.0.0/16")


def start_ingress(control: ControlPlane) -> ServerSettings:
    """Bind the ingress ports, start HAProxy with the routes of what runs; the settings with
    the ports actually bound (port 0 picks one)."""
    from dockyard.ingress.haproxy import HAProxy, bind_listener, find_binary
    from dockyard.server.certificates import ServerCertificates
    from dockyard.server.ingress import Ingress
    from dockyard.server.recovery import restore_ingress

    settings = control.settings
    binary = find_binary()
    HAProxy.stop_stale_in(settings.data / "ingress")
    http = bind_listener(settings.ingress_host, settings.http_port, flag="--http-port")
    https = bind_listener(settings.ingress_host, settings.https_port, flag="--https-port")
    settings = dataclasses.replace(settings, http_port=int(http.getsockname()[1]),
                                   https_port=int(https.getsockname()[1]))
    control.settings = settings
    proxy = HAProxy(settings.data / "ingress", http, https, binary=binary)
    certificates = ServerCertificates(settings, proxy)
    control.ingress = Ingress(settings.mode, settings.zone, proxy, certificates)
    restore_ingress(control)
    control.ingress.start()
    logging.getLogger("dockyard.server").info(
        "ingress (HAProxy) on %s: http %s, https %s", settings.ingress_host,
        settings.http_port, settings.https_port)
    return settings


class _Parser(argparse.ArgumentParser):
    """argparse with Dockyard's exit code for usage errors, as the CLI's."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"error: {message}\n    hint: run `{self.prog} --help`\n")
        sys.exit(int(ExitCode.USAGE))


def run(argv: Sequence[str]) -> int:
    """`dockyard server` with `argv` (the operator's `accounts` and `tokens` are the CLI's).

    Errors are written as the CLI writes them to a file, `error: ...` (the CLI that started a
    local server reads that line from the server's log), with the CLI's exit codes.
    """
    from dockyard.server.arguments import DESCRIPTION, add_server_arguments, server_options
    from dockyard.server.settings import settings_from

    parser = _Parser(prog="python -m dockyard.server", description=DESCRIPTION)
    add_server_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return serve(settings_from(server_options(args)))
    except DockyardError as exc:
        _error(exc.message, exc.hint)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:  # a bug: its traceback goes to the server's log, then the line
        traceback.print_exc()
        _error(f"internal error: {type(exc).__name__}: {exc}",
               "this is a bug in Dockyard; report it with the traceback above")
        return int(ExitCode.INTERNAL)


def _error(message: str, hint: str | None) -> None:
    sys.stderr.write(f"error: {message}\n" + (f"    hint: {hint}\n" if hint else ""))
    sys.stderr.flush()


def main() -> None:
    """`python -m dockyard.server`: the server as `dockyard server` runs it."""
    sys.exit(run(sys.argv[1:]))
