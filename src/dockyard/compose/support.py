"""What Dockyard does with each Compose key: honoured, ignored (with a warning), or refused.

One table for the code and the docs: the loader warns `ignored-key` with the `why` and the
`instead` of an ignored key, and docs/compose-support.md is this table, written out (a test
keeps the two equal and checks every key of the schema is here, and that every key the runtime
reads from a service is marked honoured).
"""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    HONOURED = "honoured"
    IGNORED = "ignored"  # accepted, kept by `compose config`, warned `ignored-key`


class KeySupport:
    """One row (a plain class, not a dataclass: `compose config` starts faster)."""

    __slots__ = ("instead", "status", "why")

    def __init__(self, status: Status, why: str, instead: str = "") -> None:
        self.status = status
        self.why = why  # what a deployment does with it, or why it cannot
        self.instead = instead  # for an ignored key: what to do instead


def _h(why: str) -> KeySupport:
    return KeySupport(Status.HONOURED, why)


def _i(why: str, instead: str) -> KeySupport:
    return KeySupport(Status.IGNORED, why, instead)


_CPU = _i("CPU settings outside `deploy` are not applied",
          "use deploy.resources.limits.cpus (and reservations.cpus)")
_DNS = _i("containers use the engine's resolver, which answers the project's service names",
          "remove it; for a fixed name, use extra_hosts")
_WINDOWS = _i("a Windows container setting", "remove it: the server runs Linux containers")
_KERNEL = _i("containers keep the engine's defaults for the kernel and their namespaces",
             "remove it")
_PRIVATE_NAMESPACE = _i("each service gets its own namespace on a server; only the order it "
                        "implies (depends_on) is kept",
                        "remove it; share files through a named volume mounted in both "
                        "services, and talk over the network")
_HOOKS = _i("lifecycle hooks are not run",
            "run the command from the image's entrypoint or a job service (depends_on with "
            "condition: service_completed_successfully)")

SERVICE_KEYS: dict[str, KeySupport] = {
    "annotations": _i("container annotations are not set", "use labels"),
    "attach": _i("output is collected for every service", "read it with `dockyard logs`"),
    "blkio_config": _i("block I/O limits are not applied; the server's operator shares its "
                       "disks", "remove it"),
    "build": _h("built on the server from the uploaded context (.dockerignore honoured)"),
    "cap_add": _h("capabilities added; a shared (playground) server admits only the engine's "
                  "default ones (capability-refused)"),
    "cap_drop": _h("capabilities dropped"),
    "cgroup": _KERNEL,
    "cgroup_parent": _i("the server places containers in its own cgroups", "remove it"),
    "command": _h("the container's command"),
    "configs": _h("a config from `file:` (inside the project) or `content:` is uploaded with "
                  "the project and mounted read-only at its target (default /<name>, mode "
                  "0444); `uid`/`gid` are not applied, `environment:` and external configs "
                  "are not mounted"),
    "container_name": _i("Dockyard names containers per account, project and replica",
                         "remove it; other services reach this one by its service name"),
    "cpu_count": _CPU, "cpu_percent": _CPU, "cpu_period": _CPU, "cpu_quota": _CPU,
    "cpu_rt_period": _CPU, "cpu_rt_runtime": _CPU, "cpu_shares": _CPU, "cpus": _CPU,
    "cpuset": _CPU,
    "credential_spec": _WINDOWS,
    "depends_on": _h("start order, conditions (started, healthy, completed successfully) and "
                     "restart with the dependency"),
    "deploy": _h("see the deploy keys below"),
    "develop": _i("file watching is for a local engine",
                  "run `dockyard compose up` again after a change"),
    "device_cgroup_rules": _i("host devices are not given to containers", "remove it"),
    "devices": _i("host devices are not given to containers", "remove it"),
    "dns": _DNS, "dns_opt": _DNS, "dns_search": _DNS,
    "domainname": _h("a custom domain served by the ingress for the service's public port"),
    "entrypoint": _h("the container's entrypoint"),
    "env_file": _h("read on the client and merged into the environment"),
    "environment": _h("the container's environment; a variable without a value is a stored "
                      "config (`dockyard config set`)"),
    "expose": _h("services reach each other on any port of the project's network"),
    "extends": _h("resolved by the loader, as in Compose"),
    "external_links": _i("services reach only their own project's containers",
                         "give the other service's address in environment"),
    "extra_hosts": _h("added to the container's /etc/hosts"),
    "gpus": _i("GPUs are not given to containers", "remove it"),
    "group_add": _i("supplementary groups are not added", "set the groups in the image, or "
                    "use `user`"),
    "healthcheck": _h("decides when a replica is healthy and serves"),
    "hostname": _h("the container's host name"),
    "image": _h("pulled as `pull_policy` says and pinned by digest"),
    "init": _h("an init process as PID 1"),
    "ipc": _h("`service:NAME` joins that service's IPC namespace (which is made shareable); "
              "private, shareable and none; `host` is refused (network-mode-refused)"),
    "isolation": _WINDOWS,
    "label_file": _h("read on the client and merged into labels"),
    "labels": _h("container labels"),
    "links": _h("`service:alias` makes the alias a name of the service on its networks; "
                "the order it implies (depends_on) is kept"),
    "logging": _h("json-file or local, rotated within the server's limits; another driver is "
                  "replaced (a shared server refuses it)"),
    "mac_address": _i("the engine assigns addresses", "remove it"),
    "mem_limit": _i("memory settings outside `deploy` are not applied",
                    "use deploy.resources.limits.memory"),
    "mem_reservation": _i("memory settings outside `deploy` are not applied",
                          "use deploy.resources.reservations.memory"),
    "mem_swappiness": _KERNEL,
    "memswap_limit": _i("swap is not configured per container",
                        "use deploy.resources.limits.memory"),
    "models": _h("the service gets <MODEL>_URL and <MODEL>_MODEL (or its endpoint_var and "
                 "model_var) for the server's --model-endpoint; refused without one "
                 "(model-endpoint-missing)"),
    "network_mode": _h("`service:NAME` joins that service's network namespace (replaced with "
                       "it), `none` has no network, `bridge` joins the project's default "
                       "network; host and container:NAME are refused (network-mode-refused)"),
    "networks": _h("each declared network is an engine network of its own (internal: no "
                   "egress) and a service joins only those it lists, with their aliases"),
    "oom_kill_disable": _KERNEL, "oom_score_adj": _KERNEL,
    "pid": _PRIVATE_NAMESPACE,
    "pids_limit": _i("process limits outside `deploy` are not applied",
                     "use deploy.resources.limits.pids"),
    "platform": _i("images are built and pulled for the server's platform",
                   "remove it, or build an image for the server's architecture"),
    "ports": _h("an ingress port gets a domain over HTTP and HTTPS; `mode: host` and UDP are "
                "published on the host"),
    "post_start": _HOOKS, "pre_stop": _HOOKS,
    "privileged": _i("containers never run privileged", "remove it"),
    "profiles": _h("services are enabled by --profile or COMPOSE_PROFILES"),
    "provider": _h("`type: model` runs no container: the services depending on it get "
                   "<NAME>_URL and <NAME>_MODEL for the server's --model-endpoint; other types "
                   "are refused (provider-unsupported)"),
    "pull_policy": _h("always, missing, never, build, daily, weekly or every_<duration>"),
    "pull_refresh_after": _i("not used", "use pull_policy: every_<duration>"),
    "read_only": _h("a read-only root file system"),
    "restart": _h("the engine's restart policy"),
    "runtime": _i("containers run with the engine's default runtime", "remove it"),
    "scale": _h("the number of replicas (as deploy.replicas)"),
    "secrets": _h("external secrets are stored configs mounted at /run/secrets; file and "
                  "environment secrets are warned (secret-not-external)"),
    "security_opt": _i("security options are the server's", "remove it"),
    "shm_size": _i("/dev/shm keeps the engine's default size", "mount a tmpfs at /dev/shm"),
    "stdin_open": _h("stdin kept open"),
    "stop_grace_period": _h("the time between the stop signal and the kill"),
    "stop_signal": _h("the signal that stops the container"),
    "storage_opt": _i("storage options are the server's", "remove it"),
    "sysctls": _KERNEL,
    "tmpfs": _h("tmpfs mounts"),
    "tty": _h("a terminal"),
    "ulimits": _i("the engine's default limits apply",
                  "remove it; limit processes with deploy.resources.limits.pids"),
    "use_api_socket": _i("containers never get the engine's socket", "remove it"),
    "user": _h("the user the container runs as"),
    "userns_mode": _KERNEL,
    "uts": _PRIVATE_NAMESPACE,
    "volumes": _h("named volumes and tmpfs; a bind mount inside the project directory is "
                  "uploaded with the project (`:ro` read-only, else a per-deployment copy); "
                  "a host path outside it is refused (bind-mount) unless the server's "
                  "operator allows it (--allow-host-paths)"),
    "volumes_from": _h("the named volumes of that service mounted at the same targets (`:ro` "
                       "read-only); `container:NAME` is refused (network-mode-refused)"),
    "working_dir": _h("the container's working directory"),
}

DEPLOY_KEYS: dict[str, KeySupport] = {
    "endpoint_mode": _i("services are reached through their names and the ingress",
                        "remove it"),
    "labels": _h("container labels"),
    "mode": _h("one server: `global` runs one replica"),
    "placement": _h("with the Swarm driver (`dockyard server --driver swarm`): constraints, "
                    "spread preferences and max_replicas_per_node; one Docker Engine runs "
                    "every container itself"),
    "replicas": _h("the number of replicas, balanced by the ingress"),
    "resources": _h("limits (cpus, memory, pids) and reservations (cpus, memory); devices are "
                    "not given"),
    "restart_policy": _h("the engine's restart policy (condition, max_attempts)"),
    "rollback_config": _h("how a rollback (`dockyard rollback`, or one a failure started) "
                          "replaces replicas: its keys over update_config's; failure_action "
                          "pause or continue"),
    "update_config": _h("parallelism (0: all at once; unset: the driver's default, all at "
                        "once on one engine, 1 on a Swarm), delay between batches, order "
                        "(start-first, stop-first), failure_action (pause, continue, "
                        "rollback: the whole deployment) and monitor (the health "
                        "stabilization window); max_failure_ratio is not used"),
}

# What is refused whatever the key (errors, with their codes), for the docs.
REFUSED: tuple[tuple[str, str], ...] = (
    ("`unknown-key`", "a key the Compose specification does not define"),
    ("`no-image-or-build`", "a service with neither `image`, `build` nor `provider`"),
    ("`bind-mount`", "a bind mount of a host path outside the project directory "
     "(`/var/run/docker.sock`, `~/.aws`, `../..`), unless the server's operator allows it "
     "(`dockyard server --allow-host-paths`, never on a shared server)"),
    ("`schema`", "a secret or config that is not external and sets no `file`, `environment` "
     "(or `content`), as Compose refuses it; at deployment, an `update_config` or "
     "`rollback_config` value no rollout can follow (a parallelism that is not a whole number, "
     "a negative delay or monitor, an unknown failure_action)"),
    ("`port-range`, `duplicate-ingress-port`", "ports outside 1-65535, the same ingress "
     "target port twice in a service"),
    ("`domainname-without-ingress`, `domain-collision`", "`domainname` without an ingress "
     "port, services whose DNS labels collide"),
    ("`invalid-config-name`, `undefined-reference`", "invalid config names; a network, "
     "volume, secret, config or model used but not declared"),
    ("`external-refused`, `logging-driver`, `host-port-refused`", "on a shared (playground) "
     "server: external volumes and networks, logging drivers other than json-file and local, "
     "host ports outside the account's range"),
    ("`capability-refused`", "on a shared (playground) server: a `cap_add` beyond the "
     "engine's default capabilities"),
    ("`network-mode-refused`", "`network_mode` host or container:NAME, `ipc: host`, "
     "`volumes_from: [container:NAME]`; ports, hostname or extra_hosts on a service in "
     "another's network namespace; `service:NAME` namespaces with the Swarm driver"),
    ("`provider-unsupported`, `model-endpoint-missing`", "a provider type other than `model`; "
     "a model used on a server without `--model-endpoint`"),
)


def ignored(table: dict[str, KeySupport]) -> frozenset[str]:
    return frozenset(k for k, v in table.items() if v.status is Status.IGNORED)
