"""Every diagnostic code the Compose loader can report, with its severity and meaning.

Codes are stable: scripts and tests may match on them. docs/diagnostics.md documents each one
and a test keeps the two in step.
"""

from __future__ import annotations

ERRORS: dict[str, str] = {
    "no-compose-file": "no Compose file in the directory or its parents",
    "file-not-found": "a Compose file, env file or included file does not exist",
    "empty-file": "a Compose file is empty",
    "yaml-syntax": "the YAML cannot be parsed (with file and line), or repeats a key",
    "env-file-syntax": "a .env or env_file line cannot be parsed",
    "schema": "a value has the wrong type or shape for the Compose specification",
    "unknown-key": "a key the Compose specification does not define",
    "invalid-interpolation": "a ${...} expression is malformed",
    "required-variable": "${VAR:?message} or ${VAR?message} with VAR unset",
    "invalid-project-name": "the project name from -p or COMPOSE_PROJECT_NAME is invalid",
    "extends-unknown": "extends names a service that does not exist",
    "extends-cycle": "services extend each other in a cycle",
    "include-cycle": "files include each other in a cycle",
    "include-conflict": "an included project defines a resource the project also defines",
    "no-image-or-build": "a service has neither image nor build",
    "depends-on-unknown": "depends_on names a service that does not exist or is disabled",
    "depends-on-condition": "depends_on uses an unknown condition",
    "dependency-cycle": "services depend on each other in a cycle (the whole cycle is named)",
    "invalid-port": "a port cannot be parsed",
    "port-range": "a port number is outside 1-65535",
    "duplicate-ingress-port": "a service lists the same ingress target port twice",
    "domain-collision": "two services get the same DNS label after sanitizing",
    "domainname-without-ingress": "domainname on a service without an ingress port",
    "bind-mount": "a host path outside the project directory is mounted, and the server's "
    "operator did not allow it (--allow-host-paths; never on a shared server)",
    "invalid-config-name": "a config name does not match ^[A-Za-z_][A-Za-z0-9_]{0,63}$",
    "invalid-duration": "a duration cannot be parsed (use 10s, 1m30s, 500ms)",
    "pull-policy-invalid": "a pull_policy is not always, missing, never, build, daily, weekly "
    "or every_<duration>",
    "invalid-size": "a size cannot be parsed (use 512m, 1g, 64k)",
    "undefined-reference": "a service uses a network, volume, secret or config not declared",
    "invalid-value": "a value no engine takes sensibly (negative CPUs, memory below 6 MiB, a "
    "NUL byte, a relative path, a malformed host name or extra_hosts entry, too many ports)",
    "server-path": "the project sent to a server names a file (env_file, extends, include, a "
    "file-based secret...): the client resolves files, the server never opens one",
    # Checked by the server before a deployment starts:
    "project-files-missing": "a service's project files (bind mounts inside the project, "
    "file and content configs) were not uploaded to the server",
    "project-files-unsupported": "the server's driver cannot mount project files or host "
    "paths (the Swarm driver: a node has no copy of them)",
    "context-missing": "a service's build context was not uploaded to the server",
    "image-missing": "an image a service uses is not on the server's engine and is not to be "
    "pulled (pull_policy: never, or up --pull never)",
    "image-not-found": "the registry has no such image or tag (asked before anything changes)",
    "registry-unauthorized": "the registry refused the account's credentials, or asks for "
    "some (dockyard registry login HOST)",
    "registry-unreachable": "the registry did not answer, or its TLS certificate is not "
    "trusted by the server's engine",
    "image-pull-failed": "the registry refused an image for another reason (its answer is "
    "quoted)",
    "registry-not-allowed": "on a shared server, a registry at a private or local address "
    "that the operator did not allow (--allow-registry)",
    "image-not-allowed": "on a shared server, an image (in `image:` or a Dockerfile's FROM or "
    "COPY --from) is not available to this account: an image id, a server build repository, or "
    "(with --tenant-pulls off) a name that is neither its own build nor allowed by the "
    "operator (the same answer whether or not it exists)",
    "image-invalid": "an image reference the engine would not take (in `image:`, found when "
    "the file is loaded, or in a Dockerfile)",
    "dockerfile-invalid": "on a shared server, a build's Dockerfile cannot be read from the "
    "uploaded context, an image it names cannot be resolved before the build, or a line is "
    "refused to fail closed (non-ASCII bytes, unknown or disguised flags, ADD from a URL)",
    "config-missing": "a config the project references is not set",
    "config-version-missing": "a rollback needs a config version that is no longer kept (a "
    "config keeps its last 10 replaced values)",
    "rollback-invalid": "a rollback names a deployment that ran nothing to go back to (a "
    "`down` or `restart`)",
    "domain-invalid": "a custom domain cannot be served (not a domain name, or inside the "
    "server's zone)",
    "domain-taken": "a domain is already served by another project or service",
    "config-in-build-arg": "a build arg references a config (configs never reach images)",
    "limit-exceeded": "the project asks for more than the account may deploy on this server",
    "project-too-large": "the project, as the server stores it, is over the server's size limit",
    "external-refused": "an external volume or network on a shared (playground) server",
    "logging-driver": "a logging driver other than json-file or local on a shared "
    "(playground) server: the engine must keep the log",
    "logging-options": "a logging max-size or max-file that is not a size or a positive count",
    "host-port-refused": "a host port (mode: host, or UDP) outside the account's allowed "
    "range on a shared (playground) server",
    "capability-refused": "a cap_add beyond the engine's default capabilities on a shared "
    "(playground) server",
    "network-mode-refused": "a network_mode, ipc or volumes_from that reaches outside the "
    "project (host, container:NAME), or a service in another's network namespace "
    "that sets ports, hostname or extra_hosts",
    "provider-unsupported": "a provider service whose type is not `model`",
    "model-endpoint-missing": "a service uses an AI model (provider type model, or models:) "
    "and the server has no --model-endpoint (or cannot read its key file)",
}

WARNINGS: dict[str, str] = {
    "unset-variable": "a variable is not set and defaults to an empty string",
    "version-obsolete": "the top-level version key is obsolete",
    "multiple-compose-files": "several default Compose files exist; the first is used",
    "ignored-key": "a key a deployment ignores (docs/compose-support.md): why, and what to do "
    "instead",
    "secret-not-external": "a service's secret is not external, so it is not mounted (only "
    "stored configs are)",
    "ingress-published-ignored": "published differs from target on an ingress port",
    "udp-ingress-to-host": "a UDP ingress port is published as a host port",
    "ingress-no-healthcheck": "a public service has no healthcheck; GET / decides its health",
    "logging-driver-replaced": "a logging driver Dockyard cannot read back is replaced by "
    "json-file (rotated)",
    "host-path": "a bind mount of a host path outside the project directory: a server refuses "
    "it unless its operator allows that path (--allow-host-paths)",
    "project-files-writable": "a writable bind mount inside the project: the server gets its "
    "own copy, and writes stay on the server (not synced back)",
}

ALL_CODES: frozenset[str] = frozenset(ERRORS) | frozenset(WARNINGS)
