"""The server's settings: command-line options, else `DOCKYARD_*` variables, else defaults."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.errors import UsageError
from dockyard.home import data_dir
from dockyard.naming import NamingMode, normalize_zone

DEFAULT_PORT = 7427
DEFAULT_MAX_CONTEXT_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_REQUEST_BYTES = 2 * 1024 * 1024  # any JSON body (contexts have their own limit)
DEFAULT_MAX_PROJECT_BYTES = 1024 * 1024  # a normalized project as stored per deployment
DEFAULT_MAX_BUILD_LOG_BYTES = 4 * 1024 * 1024  # per service and deployment
DEFAULT_LOG_MAX_SIZE = 10 * 1024 * 1024  # per container log file (json-file max-size)
DEFAULT_LOG_MAX_FILES = 3
DEFAULT_KEEP_DEPLOYMENTS = 50  # per project; older ones (and their events and logs) are pruned
DEFAULT_CONTEXT_TTL_SECONDS = 3600.0  # an upload no deployment uses is removed after this
DEFAULT_PULL_CONCURRENCY = 4  # pulls at once, server-wide (and at most 2 per registry)
DEFAULT_PULL_TIMEOUT_SECONDS = 1800.0  # one pull; then it is stopped and its service fails
DEFAULT_PLAYGROUND_MAX_PULL_BYTES = 4 << 30  # one image's download on a shared server


@dataclass(frozen=True, slots=True)
class Limits:
    """What one account may deploy (Defang's playground: 1 project, 4 services, 1 replica,
    2 CPUs and 1 GiB per service). 0 means no limit."""

    projects: int = 1
    services: int = 4
    replicas: int = 1
    cpus: float = 2.0
    memory: int = 1 << 30
    pids: int = 512  # processes per container (a fork bomb stops here)
    follows: int = 10  # log streams one account may follow at once
    context_bytes: int = 2 << 30  # build contexts one account may keep on the server


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
    build_timeout_seconds: float = 1800.0  # per build; then it is stopped (0: none)
    store_url: str | None = None  # default: SQLite in `data`
    docker_host: str | None = None
    driver: str = "docker"  # or "swarm": replicas as services across a Swarm (docs/swarm.md)
    ingress: bool = True  # run the ingress proxy (HAProxy)
    ingress_host: str = "0.0.0.0"  # where the proxy listens
    http_port: int = 80  # 0: any free port (tests)
    https_port: int = 443
    acme_directory: str | None = None  # ACME directory URL for real zones; None: local CA only
    acme_email: str | None = None
    acme_dns_hook: str | None = None  # a command for DNS-01: `<hook> set|clear <fqdn> <value>`
    acme_ca_bundle: str | None = None  # to trust a private ACME server (pebble in tests)
    limits: Limits | None = None  # per-account limits (playground mode has them by default)
    # Images a tenant may run without building them (playground; fnmatch patterns such as
    # `docker.io/library/*` or `busybox:*`). In byoc mode every image is allowed.
    allow_images: tuple[str, ...] = ()
    # Host ports (mode: host) an account may publish in playground mode: account -> (lo, hi).
    allow_host_ports: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    # Host directories a byoc server's projects may bind-mount (`--allow-host-paths`; never in
    # playground mode): absolute, normalized. Paths inside a project need no permission.
    allow_host_paths: tuple[str, ...] = ()
    restrict_egress: bool = False  # tenant networks cannot reach the host or link-local
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_project_bytes: int = DEFAULT_MAX_PROJECT_BYTES
    max_build_log_bytes: int = DEFAULT_MAX_BUILD_LOG_BYTES
    log_max_size: int = DEFAULT_LOG_MAX_SIZE
    log_max_files: int = DEFAULT_LOG_MAX_FILES
    keep_deployments: int = DEFAULT_KEEP_DEPLOYMENTS
    context_ttl_seconds: float = DEFAULT_CONTEXT_TTL_SECONDS
    pull_concurrency: int = DEFAULT_PULL_CONCURRENCY
    pull_timeout_seconds: float = DEFAULT_PULL_TIMEOUT_SECONDS  # 0: none
    max_pull_bytes: int = 0  # the largest image download; 0: no limit (playground: 4g)
    # Where built images are pushed (HOST[/PREFIX]); None: they stay on the local engine.
    registry: str | None = None
    # Playground: tenants may pull registry images with their own access, re-checked at every
    # use (an image in the engine's cache is never anyone's just because it is there).
    tenant_pulls: bool = True
    # Playground: registries at private or local addresses tenants may still use (fnmatch over
    # HOST[:PORT]); any other such registry is refused (`server.registry_access`).
    allow_registries: tuple[str, ...] = ()
    # The config key (`server.keys`): a file (default `<data>/config.key`), or the key itself
    # from DOCKYARD_KEY (never on the command line, never in a repr).
    key_file: Path | None = None
    key: str | None = field(default=None, repr=False)
    # Where secret files live while their containers do: a memory-backed directory
    # (`server.tmpfs`); None: chosen at start.
    secrets_dir: Path | None = None
    # Model providers (`runtime.model_env`): the OpenAI-compatible endpoint services using a
    # model are pointed at, and its key, from a file or DOCKYARD_MODEL_KEY (never the command
    # line, never in a repr). None: a project using a model is refused at admission.
    model_endpoint: str | None = None
    model_key_file: Path | None = None
    model_key: str | None = field(default=None, repr=False)

    @property
    def playground(self) -> bool:
        return self.mode is NamingMode.PLAYGROUND

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
    deploy_timeout, build_timeout, store_url, ingress ("0"/"off"/"false" turns it off),
    ingress_host, http_port, https_port, acme_directory, acme_email, acme_dns_hook, acme_ca_bundle,
    max_* (limits), allow_image, allow_host_ports and allow_host_paths (comma-separated), egress
    ("restricted"/"open"), max_request_bytes, max_project_bytes, max_build_log_bytes,
    log_max_size, log_max_files, keep_deployments, context_ttl, pull_concurrency,
    pull_timeout, max_pull_size, registry, tenant_pulls ("on"/"off"), allow_registry
    (comma-separated), key_file, secrets_dir, driver, model_endpoint, model_key_file. The key
    itself comes only from DOCKYARD_KEY, the model key from DOCKYARD_MODEL_KEY.
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
        build_timeout_seconds=_seconds(pick("build_timeout"), "--build-timeout", 1800.0),
        store_url=pick("store_url"), docker_host=env.get("DOCKER_HOST"),
        driver=_driver(pick("driver")),
        ingress=(pick("ingress") or "on").lower() not in ("0", "off", "false", "no"),
        ingress_host=pick("ingress_host") or "0.0.0.0",
        http_port=_port(pick("http_port"), "--http-port", 80),
        https_port=_port(pick("https_port"), "--https-port", 443),
        acme_directory=pick("acme_directory"), acme_email=pick("acme_email"),
        acme_dns_hook=pick("acme_dns_hook"), acme_ca_bundle=pick("acme_ca_bundle"),
        limits=_limits(pick, mode),
        allow_images=tuple(p.strip() for p in (pick("allow_image") or "").split(",")
                           if p.strip()),
        allow_host_ports=_host_port_ranges(pick("allow_host_ports") or ""),
        allow_host_paths=_host_paths(pick("allow_host_paths") or "", mode),
        restrict_egress=_egress(pick("egress"), mode),
        max_request_bytes=_size(pick("max_request_bytes"), "--max-request-bytes",
                                DEFAULT_MAX_REQUEST_BYTES),
        max_project_bytes=_size(pick("max_project_bytes"), "--max-project-bytes",
                                DEFAULT_MAX_PROJECT_BYTES),
        max_build_log_bytes=_size(pick("max_build_log_bytes"), "--max-build-log-bytes",
                                  DEFAULT_MAX_BUILD_LOG_BYTES),
        log_max_size=_size(pick("log_max_size"), "--log-max-size", DEFAULT_LOG_MAX_SIZE),
        log_max_files=_positive(pick("log_max_files"), "--log-max-files",
                                DEFAULT_LOG_MAX_FILES),
        keep_deployments=_positive(pick("keep_deployments"), "--keep-deployments",
                                   DEFAULT_KEEP_DEPLOYMENTS),
        context_ttl_seconds=float(pick("context_ttl") or DEFAULT_CONTEXT_TTL_SECONDS),
        pull_concurrency=_positive(pick("pull_concurrency"), "--pull-concurrency",
                                   DEFAULT_PULL_CONCURRENCY),
        pull_timeout_seconds=_seconds(pick("pull_timeout"), "--pull-timeout",
                                      DEFAULT_PULL_TIMEOUT_SECONDS),
        max_pull_bytes=_pull_bytes(pick("max_pull_size"), mode),
        registry=_registry(pick("registry")),
        tenant_pulls=_switch(pick("tenant_pulls"), "--tenant-pulls", True),
        allow_registries=tuple(p.strip() for p in (pick("allow_registry") or "").split(",")
                               if p.strip()),
        key_file=Path(key_file) if (key_file := pick("key_file")) else None,
        key=env.get("DOCKYARD_KEY") or None,
        secrets_dir=Path(secrets_dir) if (secrets_dir := pick("secrets_dir")) else None,
        model_endpoint=_model_endpoint(pick("model_endpoint")),
        model_key_file=Path(model_file) if (model_file := pick("model_key_file")) else None,
        model_key=env.get("DOCKYARD_MODEL_KEY") or None)


def _model_endpoint(text: str | None) -> str | None:
    """An http(s) URL: what services using a model get as `<NAME>_URL`, as written."""
    if not text:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--model-endpoint {text!r} is not an http or https URL",
                         hint="the base URL of an OpenAI-compatible API, such as "
                         "https://api.openai.com/v1/ or http://10.0.0.5:8080/v1/")
    return text.strip()


def _pull_bytes(text: str | None, mode: NamingMode) -> int:
    """The largest download one pull may make: 0 (none) by default on a single user's
    server, 4 GiB on a shared one; `0` turns it off."""
    if text is None or text == "":
        return DEFAULT_PLAYGROUND_MAX_PULL_BYTES if mode is NamingMode.PLAYGROUND else 0
    if text.strip() == "0":
        return 0
    return _size(text, "--max-pull-size", 0)


def _driver(text: str | None) -> str:
    value = (text or "docker").strip().lower()
    if value not in ("docker", "swarm"):
        raise UsageError(f"--driver {text!r}: not a driver",
                         hint="use docker (one engine, the default) or swarm (the Swarm the "
                              "server's engine manages)")
    return value


def _registry(text: str | None) -> str | None:
    """`HOST[/PREFIX]`: the registry built images are pushed to, checked for its shape."""
    if not text:
        return None
    from dockyard.registry.reference import normalize_host

    host, _, prefix = text.strip().removeprefix("https://").removeprefix("http://") \
        .partition("/")
    prefix = prefix.strip("/")
    try:
        host = normalize_host(host)
    except ValueError as exc:
        raise UsageError(f"--registry {text!r}: {exc}",
                         hint="for example --registry registry.example.com/team") from None
    if prefix and not all(part and part == part.lower() and part.replace("-", "").replace(
            "_", "").replace(".", "").isalnum() for part in prefix.split("/")):
        raise UsageError(f"--registry {text!r}: the prefix {prefix!r} is not a repository "
                         "path", hint="lower-case letters, digits, '.', '_', '-', and '/'")
    return f"{host}/{prefix}" if prefix else host


def _switch(text: str | None, flag: str, default: bool) -> bool:
    if text is None or text == "":
        return default
    if text.lower() in ("on", "true", "1", "yes"):
        return True
    if text.lower() in ("off", "false", "0", "no"):
        return False
    raise UsageError(f"{flag} must be on or off, not {text!r}")


def _egress(text: str | None, mode: NamingMode) -> bool:
    """Restricted by default in playground mode, open in byoc mode."""
    if text is None or text == "":
        return mode is NamingMode.PLAYGROUND
    if text.lower() not in ("restricted", "open"):
        raise UsageError(f"--egress {text!r} is neither restricted nor open")
    return text.lower() == "restricted"


def _host_paths(text: str, mode: NamingMode) -> tuple[str, ...]:
    """`/srv/media,/var/log` as normalized absolute directories; refused in playground mode
    (a shared server never lets a tenant reach its host's files)."""
    paths = [p.strip() for p in text.split(",") if p.strip()]
    if paths and mode is NamingMode.PLAYGROUND:
        raise UsageError("--allow-host-paths cannot be used in playground mode: tenants of a "
                         "shared server never mount the host's files",
                         hint="remove --allow-host-paths (DOCKYARD_ALLOW_HOST_PATHS); projects "
                         "still deploy the files inside their own directory")
    for path in paths:
        if not path.startswith("/"):
            raise UsageError(f"--allow-host-paths {path!r} is not an absolute directory",
                             hint="for example --allow-host-paths /srv/media")
    return tuple(sorted({os.path.normpath(p) for p in paths}))


def _host_port_ranges(text: str) -> dict[str, tuple[int, int]]:
    """`alice=30000-30009,bob=31000` as {account: (first, last)}."""
    out: dict[str, tuple[int, int]] = {}
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        account, sep, ports = item.partition("=")
        low, _, high = ports.partition("-")
        high = high or low
        if not sep or not account or not low.isdigit() or not high.isdigit() \
                or not 1 <= int(low) <= int(high) <= 65535:
            raise UsageError(f"--allow-host-ports {item!r} is not ACCOUNT=FIRST-LAST",
                             hint="for example --allow-host-ports alice=30000-30009")
        out[account] = (int(low), int(high))
    return out


def _seconds(text: str | None, flag: str, default: float) -> float:
    """A duration in seconds; 0 turns the bound off."""
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise UsageError(f"{flag} must be a number of seconds such as 1800 (0: no limit), "
                         f"not {text!r}")
    return value


def _size(text: str | None, flag: str, default: int) -> int:
    if text is None or text == "":
        return default
    try:
        value = parse_bytes(text)
    except ValueError:
        value = -1
    if value < 1:
        raise UsageError(f"{flag} must be a size such as 4m or 1048576, not {text!r}")
    return value


def _limits(pick: Callable[[str], str | None], mode: NamingMode) -> Limits | None:
    """Playground limits by default in playground mode; any `--max-*` option sets them."""
    given = {key: pick(f"max_{key}") for key in ("projects", "services", "replicas", "cpus",
                                                 "memory", "pids", "follows", "context_storage")}
    if mode is not NamingMode.PLAYGROUND and not any(v is not None for v in given.values()):
        return None
    base = Limits() if mode is NamingMode.PLAYGROUND else Limits(0, 0, 0, 0.0, 0, 0, 0, 0)
    try:
        return Limits(
            projects=int(given["projects"]) if given["projects"] else base.projects,
            services=int(given["services"]) if given["services"] else base.services,
            replicas=int(given["replicas"]) if given["replicas"] else base.replicas,
            cpus=float(given["cpus"]) if given["cpus"] else base.cpus,
            memory=parse_bytes(given["memory"]) if given["memory"] else base.memory,
            pids=int(given["pids"]) if given["pids"] else base.pids,
            follows=int(given["follows"]) if given["follows"] else base.follows,
            context_bytes=(parse_bytes(given["context_storage"]) if given["context_storage"]
                           else base.context_bytes))
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
