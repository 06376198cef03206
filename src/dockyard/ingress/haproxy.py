"""The HAProxy driver: runs Debian's `haproxy` and keeps it serving the routes it is given.

The only module that talks to the proxy. HAProxy runs in master-worker mode as a child of the
server, on listening sockets the server bound itself (so a port in use is a clear error at
start, and port 0 works in tests) and passes down as inherited file descriptors. Replicas moving
in and out of a route go through the runtime API on the admin socket, which drops nothing; other
changes rewrite the configuration, check it with `haproxy -c`, and reload it seamlessly (the
master hands the listeners to a new worker; the old one finishes its in-flight requests).
The files always hold the whole current state, so when the proxy dies `ensure_running` starts it
again with every route restored.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from dockyard.errors import DockyardError
from dockyard.files import write_private
from dockyard.ingress.haproxy_config import (
    Layout,
    Listener,
    Paths,
    fresh_layout,
    needs_reload,
    render_config,
    render_crt_list,
    render_hosts_map,
    render_redirect_map,
    runtime_update,
    server_name,
)
from dockyard.ingress.routes import Route

log = logging.getLogger(__name__)

START_TIMEOUT = 10.0


class IngressError(DockyardError):
    """The ingress proxy cannot start or refused a change."""


def bind_listener(host: str, port: int, *, flag: str) -> socket.socket:
    """A listening TCP socket for the proxy, or an error that says what holds the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        why = {errno.EADDRINUSE: "the port is in use (another web server, proxy or Dockyard "
                                 "server?)",
               errno.EACCES: "permission denied (ports below 1024 need root)",
               errno.EADDRNOTAVAIL: "no interface has that address"}.get(exc.errno or 0,
                                                                          str(exc))
        raise IngressError(f"the ingress cannot listen on {host}:{port}: {why}",
                           hint=f"free the port, or choose another with {flag}") from exc
    sock.set_inheritable(True)
    return sock


def find_binary(name: str = "haproxy") -> str:
    found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists()
                                   else None)
    if found is None:
        raise IngressError("HAProxy is not installed: the ingress proxy cannot run",
                           hint="install it (Debian: apt-get install haproxy; scripts/setup "
                           "does), or start the server with --no-ingress")
    return found


class HAProxy:
    """One supervised HAProxy process and the state it serves."""

    def __init__(self, directory: Path, http: socket.socket, https: socket.socket | None, *,
                 binary: str | None = None) -> None:
        self.paths = Paths(directory)
        self.binary = binary or find_binary()
        self._http = http
        self._https = https
        self._lock = threading.RLock()
        self._socket_lock = threading.Lock()  # one runtime-API command at a time
        self.batch_bytes = BATCH_BYTES  # the longest line of runtime commands (0: one each)
        self._process: subprocess.Popen[bytes] | None = None
        self._layout = Layout()
        self._acme: dict[str, str] = {}
        self._certificate_stamp: tuple[tuple[str, int], ...] = ()
        self.restarts = 0
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    # -- process -----------------------------------------------------------------------------------
    def start(self, routes: Mapping[str, Route], certificates: Sequence[Path] = (),
              https_only: frozenset[str] = frozenset()) -> None:
        with self._lock:
            self._certificate_stamp = _stamp(certificates)
            self._layout = fresh_layout(routes, certificates, https_only)
            self._write_files(check=True)
            self._spawn()

    @property
    def pid_file(self) -> Path:
        return self.paths.directory / "haproxy.pid"

    @staticmethod
    def stop_stale_in(directory: Path) -> bool:
        """Stop an HAProxy that a previous server left running on `directory` (the server
        was killed and could not stop it); True if there was one."""
        paths = Paths(directory)
        try:
            pid = int((directory / "haproxy.pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return False
        if str(paths.config).encode() not in cmdline:
            return False  # the pid was reused by something else
        log.warning("stopping HAProxy %s, left running by a previous server", pid)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        return True

    def _spawn(self) -> None:
        self.paths.socket_directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for stale in (self.paths.admin_socket, self.paths.master_socket):
            stale.unlink(missing_ok=True)
        fds = [self._http.fileno()] + ([self._https.fileno()] if self._https else [])
        logfile = open(self.paths.directory / "haproxy.log", "ab")  # noqa: SIM115
        try:
            self._process = subprocess.Popen(
                [self.binary, "-W", "-db", "-S", f"unix@{self.paths.master_socket}",
                 "-f", str(self.paths.config)],
                pass_fds=fds, stdin=subprocess.DEVNULL, stdout=logfile, stderr=logfile,
                start_new_session=True)
        finally:
            logfile.close()
        _write_atomic(self.pid_file, f"{self._process.pid}\n")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise IngressError(f"HAProxy exited at start (code {self._process.returncode}):"
                                   f" {self._log_tail()}",
                                   hint=f"see {self.paths.directory / 'haproxy.log'}")
            with contextlib.suppress(OSError):
                if "Pid:" in self._ask("show info"):
                    for token, value in self._acme.items():
                        self._ask(f"add map {self.paths.acme_map} {token} {value}")
                    return
            time.sleep(0.05)
        raise IngressError("HAProxy did not answer on its admin socket in time",
                           hint=f"see {self.paths.directory / 'haproxy.log'}")

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = (self.paths.directory / "haproxy.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def ensure_running(self) -> bool:
        """Start HAProxy again (every route restored from the files) if it died; True if so."""
        with self._lock:
            if self._process is None or self.alive():
                return False
            log.warning("HAProxy exited (code %s); starting it again",
                        self._process.returncode)
            self._layout = fresh_layout({k: b.route for k, b in self._layout.backends.items()},
                                        self._layout.certificates, self._layout.https_only)
            self._write_files(check=False)
            self._spawn()
            self.restarts += 1
            return True

    def stop(self) -> None:
        with self._lock:
            process, self._process = self._process, None
            if process is None or process.poll() is not None:
                return
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            self.pid_file.unlink(missing_ok=True)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    # -- sockets -------------------------------------------------------------------------------
    def command(self, line: str, *, master: bool = False) -> str:
        """One runtime-API command; its answer (IngressError when HAProxy does not answer)."""
        try:
            # A proxy that died is not waited for: the supervisor starts it again.
            return self._ask(line, master=master, attempts=50 if self.alive() else 1)
        except OSError as exc:
            raise IngressError(f"HAProxy's runtime API did not answer {line.split()[0]!r}: "
                               f"{exc.strerror or exc}",
                               hint=f"see {self.paths.directory / 'haproxy.log'}") from None

    def _ask(self, line: str, *, master: bool = False, attempts: int = 1) -> str:
        """`command`, its socket errors raised as they are (start-up waits them out); a
        socket that is busy, absent or refusing is tried `attempts` times, 20 ms apart."""
        path = self.paths.master_socket if master else self.paths.admin_socket
        # One command at a time: HAProxy's socket has a short listen backlog, and many
        # deployer threads asking at once would find it full (EAGAIN on connect).
        with self._socket_lock, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            _connect(sock, str(path), attempts)
            sock.sendall(line.encode() + b"\n")
            if master:
                sock.shutdown(socket.SHUT_WR)
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    # -- routes --------------------------------------------------------------------------------
    def apply(self, routes: Mapping[str, Route], certificates: Sequence[Path] = (),
              https_only: frozenset[str] = frozenset()) -> None:
        """Serve `routes`: through the runtime API when it can, else by a seamless reload."""
        with self._lock:
            stamp = _stamp(certificates)
            if needs_reload(self._layout, routes, certificates, https_only) \
                    or stamp != self._certificate_stamp:
                self._certificate_stamp = stamp
                self._load(fresh_layout(routes, certificates, https_only))
                return
            layout, commands = runtime_update(self._layout, routes,
                                              hosts_map=str(self.paths.hosts_map))
            previous, self._layout = self._layout, layout
            try:
                for line in batched(commands, self.batch_bytes):
                    refused = refusals(self.command(line))
                    if refused:
                        raise IngressError(f"HAProxy answered {refused[0]!r} to a runtime "
                                           f"update ({line[:200]!r})")
            except IngressError as exc:
                # What HAProxy holds is no longer known: load the whole state again.
                log.warning("%s; reloading the proxy with every route", exc.message)
                self._layout = previous
                self._load(fresh_layout(routes, certificates, https_only))
                return
            self._write_files(check=False)

    def _load(self, layout: Layout) -> None:
        """Write `layout`'s files and reload; the layout is kept only once HAProxy took it."""
        previous, self._layout = self._layout, layout
        try:
            self._write_files(check=True)
            self._reload()
        except BaseException:
            self._layout = previous  # and the files again as the running proxy has them
            with contextlib.suppress(Exception):
                self._write_files(check=False)
            raise

    def _reload(self) -> None:
        if not self.alive():
            self._spawn()
            return
        before = self._pid_of(self.command("show info"))
        self.command("reload", master=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                now = self._worker_pid()
                if now is not None and now != before:
                    return
            time.sleep(0.05)
        raise IngressError("HAProxy did not take its new configuration in time",
                           hint=f"see {self.paths.directory / 'haproxy.log'}")

    def _worker_pid(self) -> int | None:
        return self._pid_of(self._ask("show info"))

    @staticmethod
    def _pid_of(info: str) -> int | None:
        for line in info.splitlines():
            if line.startswith("Pid:"):
                return int(line.split(":", 1)[1])
        return None

    def _write_files(self, *, check: bool) -> None:
        layout = self._layout
        http = Listener(self._http.fileno())
        https = Listener(self._https.fileno()) if self._https else None
        files = {
            self.paths.hosts_map: render_hosts_map(layout),
            self.paths.redirect_map: render_redirect_map(layout),
            self.paths.crt_list: render_crt_list(layout),
            self.paths.acme_map: "".join(f"{k} {v}\n" for k, v in sorted(self._acme.items())),
            self.paths.config: render_config(layout, self.paths, http=http, https=https),
        }
        for path, text in files.items():
            _write_atomic(path, text)
        if check:
            result = subprocess.run([self.binary, "-c", "-f", str(self.paths.config)],
                                    capture_output=True, text=True,
                                    pass_fds=[http.fd] + ([https.fd] if https else []))
            if result.returncode != 0:
                alerts = [line for line in (result.stdout + result.stderr).splitlines()
                          if "ALERT" in line]
                raise IngressError("the generated HAProxy configuration was refused: "
                                   + " | ".join(alerts[:5]),
                                   hint="this is a bug in Dockyard; run with --debug and "
                                   "report it")

    # -- state ---------------------------------------------------------------------------------
    def server_states(self, route_key: str) -> dict[str, str]:
        """endpoint → HAProxy's status (UP, DOWN, MAINT, ...) for the replicas of a route."""
        with self._lock:
            backend = self._layout.backends.get(route_key)
            if backend is None:
                return {}
            slots = {server_name(i): u for i, u in enumerate(backend.slots) if u is not None}
            # Only this backend's servers (type 4, every server id): the whole table's size
            # grows with the number of routes, and many deployer threads ask at once. Asked
            # under the lock: never while a reload hands the socket to a new worker.
            name = backend.name  # a spare's name, when the route took a spare
            answer = self.command(f"show stat {name} 4 -1")
        states: dict[str, str] = {}
        for row in _stat_rows(answer):
            if row.get("pxname") == name and row.get("svname") in slots:
                states[slots[row["svname"]].endpoint] = row.get("status", "")
                states[slots[row["svname"]].endpoint + "#scur"] = row.get("scur", "0")
        return states

    def in_rotation(self, route_key: str, endpoints: Iterable[str]) -> bool:
        states = self.server_states(route_key)
        return all(states.get(e, "").startswith("UP") for e in endpoints)

    def sessions(self, route_key: str, endpoints: Iterable[str]) -> int:
        states = self.server_states(route_key)
        return sum(int(states.get(e + "#scur", "0") or 0) for e in endpoints)

    def set_acme_token(self, token: str, value: str) -> None:
        with self._lock:
            self._acme[token] = value
            _write_atomic(self.paths.acme_map,
                          "".join(f"{k} {v}\n" for k, v in sorted(self._acme.items())))
            if self.alive():
                self.command(f"add map {self.paths.acme_map} {token} {value}")

    def clear_acme_token(self, token: str) -> None:
        with self._lock:
            self._acme.pop(token, None)
            _write_atomic(self.paths.acme_map,
                          "".join(f"{k} {v}\n" for k, v in sorted(self._acme.items())))
            if self.alive():
                self.command(f"del map {self.paths.acme_map} {token}")


BATCH_BYTES = 8192  # a runtime-API line of commands stays well under HAProxy's 16 KiB buffer


def batched(commands: Sequence[str], limit: int = BATCH_BYTES) -> list[str]:
    """`commands` joined by `;` into as few lines as fit in `limit` bytes each (one longer
    command is a line of its own), a `;` inside a command escaped as the runtime API reads it.

    Each line is one connection to the admin socket: one per command made taking a project
    of 100 routes out of rotation cost 0.37 s (measured), before `down` stopped anything.
    """
    lines: list[str] = []
    current: list[str] = []
    size = 0
    for command in commands:
        escaped = command.replace(";", "\\;")
        if current and size + 1 + len(escaped) > limit:
            lines.append(";".join(current))
            current, size = [], 0
        size += len(escaped) + (1 if current else 0)
        current.append(escaped)
    if current:
        lines.append(";".join(current))
    return lines


def refusals(answer: str) -> list[str]:
    """The lines of a runtime-API answer that say a command was refused. The commands a
    runtime update sends answer nothing when they succeed, except `set server ... addr`, whose
    answer says what `changed` (or that there was `no need` to)."""
    return [line.strip() for line in answer.splitlines()
            if line.strip() and "changed" not in line and "no need" not in line]


def _stamp(certificates: Sequence[Path]) -> tuple[tuple[str, int], ...]:
    """The certificate files and when each last changed: a renewed file needs a reload."""
    stamps = []
    for path in certificates:
        try:
            stamps.append((str(path), path.stat().st_mtime_ns))
        except OSError:
            stamps.append((str(path), 0))
    return tuple(stamps)


def _stat_rows(csv_text: str) -> list[dict[str, str]]:
    lines = csv_text.strip().splitlines()
    if not lines or not lines[0].startswith("#"):
        return []
    header = lines[0].lstrip("# ").split(",")
    return [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]


def _write_atomic(path: Path, text: str) -> None:
    write_private(path, text)  # 0600, as mkstemp made them before


def _connect(sock: socket.socket, path: str, attempts: int = 50) -> None:
    """Connect to a UNIX socket, waiting out a full backlog (EAGAIN), or a socket between two
    workers (absent, or refused: HAProxy started again by `ensure_running`), up to a second."""
    for attempt in range(attempts):
        try:
            sock.connect(path)
            return
        except (BlockingIOError, ConnectionRefusedError, FileNotFoundError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.02)
