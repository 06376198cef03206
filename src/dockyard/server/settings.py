"""The server's settings: command-line options, else `DOCKYARD_*` variables, else defaults."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dockyard.errors import UsageError
from dockyard.home import data_dir
from dockyard.naming import NamingMode, normalize_zone

DEFAULT_PORT = 7427
DEFAULT_MAX_CONTEXT_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """What one account may deploy (Defang's playground: 1 project, 4 services, 1 replica,
    2 CPUs and 1 GiB per service). 0 means no limit."""

    projects: int = 1
    services: int = 4
    replicas: int = 1
    cpus: float = 2.0
    memory: int = 1 << 30


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data: Path = Path(".")
    mode: NamingMode = NamingMode.BYOC
    zone: str = "localhost"
    build_concurrency: int = 2
    max_context_bytes: int = DEFAULT_MAX_CONTEXT_BYTES
    stabilization_seconds: float = 1.0  # a service must keep running this long to be healthy
    deploy_timeout_seconds: float = 300.0  # per service, from start to healthy
    store_url: str | None = None  # default: SQLite in `data`
    docker_host: str | None = None
    ingress: bool = True  # run the ingress proxy (HAProxy)
    ingress_host: str = "0.0.0.0"  # where the proxy listens
    http_port: int = 80  # 0: any free port (tests)
    https_port: int = 443
    acme_directory: str | None = None  # ACME directory URL for real zones; None: local CA only
    acme_email: str | None = None
    acme_dns_hook: str | None = None  # a command for DNS-01: `<hook> set|clear <fqdn> <value>`
    acme_ca_bundle: str | None = None  # to trust a private ACME server (pebble in tests)
    limits: Limits | None = None  # per-account limits (playground mode has them by default)

    @property
    def database_url(self) -> str:
        return self.store_url or f"sqlite:///{self.data / 'dockyard.db'}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen {text!r} is not HOST:PORT",
                         hint="for example --listen 127.0.0.1:7427")
    return host or "127.0.0.1", int(port)


def settings_from(options: Mapping[str, str | None],
                  environ: Mapping[str, str] | None = None) -> ServerSettings:
    """Settings from command-line `options` (None when not given), then `DOCKYARD_*` variables.

    Options: listen, data, mode, zone, build_concurrency, max_context_bytes, stabilization,
    deploy_timeout, store_url, ingress ("0"/"off"/"false" turns it off), ingress_host,
    http_port, https_port, acme_directory, acme_email, acme_dns_hook, acme_ca_bundle.
    """
    env = os.environ if environ is None else environ

    def pick(key: str) -> str | None:
        value = options.get(key)
        return value if value is not None else env.get(f"DOCKYARD_{key.upper()}")

    host, port = parse_listen(pick("listen") or f"127.0.0.1:{DEFAULT_PORT}")
    mode_text = (pick("mode") or "byoc").lower()
    try:
        mode = NamingMode(mode_text)
    except ValueError:
        raise UsageError(f"unknown mode {mode_text!r}", hint="use byoc or playground") from None
    zone_text = pick("zone") or ("prod1a.localhost" if mode is NamingMode.PLAYGROUND
                                 else "localhost")
    try:
        zone = normalize_zone(zone_text, mode)
    except ValueError as exc:
        raise UsageError(f"--zone {zone_text!r}: {exc}") from None
    data_text = pick("data")
    return ServerSettings(
        host=host, port=port, data=Path(data_text) if data_text else data_dir(env) / "server",
        mode=mode, zone=zone,
        build_concurrency=_positive(pick("build_concurrency"), "build concurrency", 2),
        max_context_bytes=_positive(pick("max_context_bytes"), "max context bytes",
                                    DEFAULT_MAX_CONTEXT_BYTES),
        stabilization_seconds=float(pick("stabilization") or 1.0),
        deploy_timeout_seconds=float(pick("deploy_timeout") or 300.0),
        store_url=pick("store_url"), docker_host=env.get("DOCKER_HOST"),
        ingress=(pick("ingress") or "on").lower() not in ("0", "off", "false", "no"),
        ingress_host=pick("ingress_host") or "0.0.0.0",
        http_port=_port(pick("http_port"), "--http-port", 80),
        https_port=_port(pick("https_port"), "--https-port", 443),
        acme_directory=pick("acme_directory"), acme_email=pick("acme_email"),
        acme_dns_hook=pick("acme_dns_hook"), acme_ca_bundle=pick("acme_ca_bundle"),
        limits=_limits(pick, mode))


def _limits(pick: Callable[[str], str | None], mode: NamingMode) -> Limits | None:
    """Playground limits by default in playground mode; any `--max-*` option sets them."""
    given = {key: pick(f"max_{key}") for key in ("projects", "services", "replicas", "cpus",
                                                 "memory")}
    if mode is not NamingMode.PLAYGROUND and not any(v is not None for v in given.values()):
        return None
    base = Limits() if mode is NamingMode.PLAYGROUND else Limits(0, 0, 0, 0.0, 0)
    try:
        return Limits(
            projects=int(given["projects"]) if given["projects"] else base.projects,
            services=int(given["services"]) if given["services"] else base.services,
            replicas=int(given["replicas"]) if given["replicas"] else base.replicas,
            cpus=float(given["cpus"]) if given["cpus"] else base.cpus,
            memory=parse_bytes(given["memory"]) if given["memory"] else base.memory)
    except ValueError as exc:
        raise UsageError(f"a --max-* limit is not a number: {exc}",
                         hint="for example --max-services 4 --max-cpus 2 --max-memory 1g") \
            from None


def parse_bytes(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower().removesuffix("b").removesuffix("i")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def _port(text: str | None, flag: str, default: int) -> int:
    if text is None or text == "":
        return default
    if not text.isdigit() or int(text) > 65535:
        raise UsageError(f"{flag} must be a port number (0 to 65535), not {text!r}",
                         hint="0 picks any free port")
    return int(text)


def _positive(text: str | None, what: str, default: int) -> int:
    if text is None:
        return default
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"{what} must be a positive whole number, not {text!r}")
    return int(text)
