"""The options of `dockyard server`, shared by the CLI and `python -m dockyard.server`.

The server never imports the CLI (an import contract in pyproject.toml), yet both entry points
must accept the same options: both build their parser and their settings from here.
"""

from __future__ import annotations

import argparse

DESCRIPTION = (
    "Run the control plane: the HTTP API, builds and deployments on the local Docker Engine. "
    "Every option can also be set by a DOCKYARD_<OPTION> variable (DOCKYARD_LISTEN, "
    "DOCKYARD_MODE ...). The CLI starts one by itself when none runs.")

# The options `settings_from` reads, by their argparse destinations, in its order.
_OPTIONS = (
    "listen", "data", "mode", "zone", "build_concurrency", "max_context_bytes",
    "stabilization", "deploy_timeout", "build_timeout", "store_url", "ingress",
    "ingress_host", "http_port", "https_port", "acme_directory", "acme_email", "acme_dns_hook",
    "acme_ca_bundle", "max_projects", "max_services", "max_replicas", "max_cpus",
    "max_memory", "max_pids", "max_follows", "max_context_storage", "allow_image",
    "allow_host_ports", "egress", "max_request_bytes", "max_project_bytes",
    "max_build_log_bytes", "log_max_size", "log_max_files", "keep_deployments",
    "context_ttl", "registry", "pull_concurrency", "pull_timeout", "max_pull_size",
    "tenant_pulls", "allow_registry", "key_file", "secrets_dir", "driver", "allow_host_paths",
    "model_endpoint", "model_key_file",
)
# Repeatable options, passed on comma-separated.
_REPEATED = frozenset({"allow_image", "allow_host_ports", "allow_registry",
                       "allow_host_paths"})


def add_server_arguments(server: argparse.ArgumentParser) -> None:
    """Add every option of `dockyard server` to `server`."""
    server.add_argument("--listen", metavar="HOST:PORT",
                        help="where to listen (default 127.0.0.1:7427; port 0 picks one)")
    server.add_argument("--data", metavar="DIR",
                        help="the data directory (default: $DOCKYARD_HOME/data/server)")
    server.add_argument("--mode", choices=["byoc", "playground"],
                        help="naming mode: byoc (default, single user) or playground")
    server.add_argument("--zone", help="the DNS zone of public domains (default: localhost, "
                        "prod1a.localhost in playground mode)")
    server.add_argument("--build-concurrency", metavar="N", help="builds at once (default 2)")
    server.add_argument("--max-context-bytes", metavar="BYTES",
                        help="largest build context accepted (default 512 MiB)")
    server.add_argument("--stabilization", metavar="SECONDS",
                        help="how long a service without a health check must run to be "
                        "healthy (default 1)")
    server.add_argument("--deploy-timeout", metavar="SECONDS",
                        help="how long a service may take to become healthy (default 300)")
    server.add_argument("--build-timeout", metavar="SECONDS",
                        help="how long one image build may take before it is stopped and its "
                        "service fails (default 1800; 0: no limit)")
    server.add_argument("--driver", choices=("docker", "swarm"),
                        help="where replicas run: docker (the one engine, default) or swarm "
                        "(services across the Swarm the engine manages; docs/swarm.md)")
    server.add_argument("--store-url", metavar="URL",
                        help="an SQLAlchemy database URL (default: SQLite in the data dir)")
    secrets = server.add_argument_group(
        "secrets", "the key that encrypts configs, and where secret files live "
        "(docs/operations.md)")
    secrets.add_argument("--key-file", metavar="PATH",
                         help="the config key, kept apart from the data (default: "
                         "<data>/config.key, made on the first start; DOCKYARD_KEY may hold "
                         "the key itself)")
    secrets.add_argument("--secrets-dir", metavar="DIR",
                         help="a directory on tmpfs for secret files (default: a tmpfs the "
                         "server mounts at /run/dockyard/<server-id> as root, else "
                         "$XDG_RUNTIME_DIR or /dev/shm)")
    models = server.add_argument_group(
        "models", "Compose model providers (`provider: {type: model}`, `models:`): the "
        "services using one get <NAME>_URL and <NAME>_MODEL (docs/deployments.md)")
    models.add_argument("--model-endpoint", metavar="URL",
                        help="the OpenAI-compatible API they are given (default: none, and "
                        "a project using a model is refused)")
    models.add_argument("--model-key-file", metavar="PATH",
                        help="a file holding the endpoint's API key, given to those services "
                        "as <NAME>_API_KEY (DOCKYARD_MODEL_KEY may hold the key itself)")
    ingress = server.add_argument_group(
        "ingress", "the HAProxy that serves public ports at their domains, over HTTP and HTTPS")
    ingress.add_argument("--http-port", metavar="PORT",
                         help="the HTTP port of the ingress (default 80; 0 picks one)")
    ingress.add_argument("--https-port", metavar="PORT",
                         help="the HTTPS port of the ingress (default 443; 0 picks one)")
    ingress.add_argument("--ingress-host", metavar="HOST",
                         help="the address the ingress listens on (default 0.0.0.0)")
    ingress.add_argument("--no-ingress", action="store_const", const="off", dest="ingress",
                         help="run without the ingress proxy (public ports are not served)")
    ingress.add_argument("--acme-directory", metavar="URL",
                         help="an ACME directory for certificates of real zones (default: "
                         "none; every certificate comes from the server's local CA)")
    ingress.add_argument("--acme-email", metavar="EMAIL", help="the ACME account's contact")
    ingress.add_argument("--acme-dns-hook", metavar="COMMAND",
                         help="a command that sets DNS TXT records (`COMMAND set|clear FQDN "
                         "VALUE`): enables DNS-01, so one wildcard certificate per project")
    ingress.add_argument("--acme-ca-bundle", metavar="FILE",
                         help="CA certificates to trust the ACME server with (for a private "
                         "ACME server)")
    limits = server.add_argument_group(
        "limits", "what one account may deploy; in playground mode 1 project, 4 services, "
        "1 replica, 2 CPUs and 1 GiB per service unless set (0: no limit)")
    limits.add_argument("--max-projects", metavar="N")
    limits.add_argument("--max-services", metavar="N", help="services per project")
    limits.add_argument("--max-replicas", metavar="N", help="replicas per service")
    limits.add_argument("--max-cpus", metavar="CPUS", help="CPUs per service")
    limits.add_argument("--max-memory", metavar="BYTES", help="memory per service (1g, 512m)")
    limits.add_argument("--max-pids", metavar="N",
                        help="processes per container (playground default 512)")
    limits.add_argument("--max-follows", metavar="N",
                        help="log streams one account may follow at once (playground 10)")
    limits.add_argument("--max-context-storage", metavar="BYTES",
                        help="build contexts one account may keep (playground 2g)")
    tenancy = server.add_argument_group(
        "shared servers", "what tenants may reach and how much the server keeps "
        "(docs/security.md)")
    tenancy.add_argument("--allow-image", action="append", metavar="PATTERN",
                         help="playground: an image tenants may run without building it "
                         "(fnmatch, such as 'docker.io/library/*'; repeatable)")
    tenancy.add_argument("--allow-host-ports", action="append", metavar="ACCOUNT=FIRST-LAST",
                         help="playground: host ports an account may publish (repeatable)")
    tenancy.add_argument("--allow-host-paths", action="extend", nargs="+", metavar="DIR",
                         help="byoc only (refused in playground mode): host directories "
                         "projects may bind-mount besides their own files (an allow-list)")
    tenancy.add_argument("--egress", choices=["restricted", "open"],
                         help="restricted (playground default): tenant containers cannot "
                         "reach the host's addresses or link-local metadata addresses")
    tenancy.add_argument("--max-request-bytes", metavar="BYTES",
                         help="largest JSON request body (default 2m)")
    tenancy.add_argument("--max-project-bytes", metavar="BYTES",
                         help="largest normalized project kept per deployment (default 1m)")
    tenancy.add_argument("--max-build-log-bytes", metavar="BYTES",
                         help="build log kept per service and deployment (default 4m)")
    tenancy.add_argument("--log-max-size", metavar="BYTES",
                         help="container log file size before rotation (default 10m)")
    tenancy.add_argument("--log-max-files", metavar="N",
                         help="rotated container log files kept (default 3)")
    tenancy.add_argument("--keep-deployments", metavar="N",
                         help="deployments kept per project (default 50)")
    tenancy.add_argument("--context-ttl", metavar="SECONDS",
                         help="how long an upload no deployment uses is kept (default 3600)")
    registries = server.add_argument_group(
        "registries", "pulling images and pushing builds (docs/registries.md)")
    registries.add_argument("--registry", metavar="HOST[/PREFIX]",
                            help="push every built image there and run it by digest (needed "
                            "when several machines run a project); default: builds stay on "
                            "the local engine")
    registries.add_argument("--pull-concurrency", metavar="N",
                            help="pulls at once (default 4; at most 2 per registry)")
    registries.add_argument("--pull-timeout", metavar="SECONDS",
                            help="how long one pull may take before its service fails "
                            "(default 1800; 0: no limit)")
    registries.add_argument("--max-pull-size", metavar="BYTES",
                            help="the largest image one pull may download (default: no limit; "
                            "playground 4g; 0: no limit)")
    registries.add_argument("--tenant-pulls", choices=["on", "off"],
                            help="playground: tenants may pull registry images with their own "
                            "access, re-checked at every use (default on); off: only their "
                            "builds and --allow-image")
    registries.add_argument("--allow-registry", action="append", metavar="HOST[:PORT]",
                            help="playground: a registry at a private or local address that "
                            "tenants may still pull from and log in to (fnmatch; repeatable); "
                            "others at such addresses are refused")


def server_options(args: argparse.Namespace) -> dict[str, str | None]:
    """The parsed options as `settings_from` takes them (None when not given)."""
    options: dict[str, str | None] = {}
    for name in _OPTIONS:
        value = getattr(args, name)
        options[name] = (",".join(value) if value else None) if name in _REPEATED else value
    return options
