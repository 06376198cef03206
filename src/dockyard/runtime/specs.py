"""A service of a normalized project as container specs (pure).

Dockyard's choices, written down here because the Compose file cannot say them:
- `restart: "no"` (or `deploy.restart_policy.condition: none`) makes a one-off job: it runs
  once, COMPLETED on exit 0 and FAILED otherwise. Any other service is long-running and, with no
  restart policy given, restarts `unless-stopped`: a platform brings crashed services back.
- Every engine name is scoped by server, account and project, injectively:
  `dy-<account>-<project>-<hash>`, where the hash covers the exact (server id, account,
  project) and the readable parts are only for people. Account `bob` with project `smith-site`
  and account `bob-smith` with project `site` read alike but never share a name.
- Each Compose network of the project is an engine network of its own (`network_name`:
  `default` keeps the project's scope name), `internal: true` one with no route out. A service
  joins only the networks it lists (none listed: `default`), on each under the aliases of
  `naming.private_hostnames`, its Compose aliases there, and the aliases other services give
  it with `links: [service:alias]`.
- `network_mode: service:X` and `ipc: service:X` join X's running container's namespaces (the
  deployer resolves the container); a service another joins with `ipc` is made `shareable`.
  `volumes_from: [X]` mounts X's named volumes at the same targets (`:ro` read-only).
- `cap_add` and `cap_drop` are applied (a shared server admits only some capabilities:
  `server.containment.capability_problems`).
- `deploy.resources.limits` become the engine's CPU, memory and pids limits; a memory
  reservation becomes a soft limit; a CPU reservation becomes a relative CPU weight (1 CPU =
  1024 shares): a single Docker Engine cannot reserve CPU time.
- Every container's log is rotated (`container_log`): the server's `max-size`/`max-file`, or
  the service's own `logging.options` where they are smaller, never larger.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from dockyard.compose.interpolation import Interpolator
from dockyard.compose.models import Healthcheck, Project, Service
from dockyard.naming import NamingMode, private_hostnames, sanitize_label, service_fqdn
from dockyard.runtime.driver import (
    LABEL_ACCOUNT,
    LABEL_CONFIG_HASH,
    LABEL_CONFIG_PARTS,
    LABEL_DEPLOYMENT,
    LABEL_JOB,
    LABEL_MANAGED,
    LABEL_PROJECT,
    LABEL_REPLICA,
    LABEL_SERVER,
    LABEL_SERVICE,
    LOG_DRIVERS,
    LOG_MAX_FILES,
    LOG_MAX_SIZE,
    ContainerSpec,
    MountSpec,
    PublishedPort,
)


@dataclass(frozen=True, slots=True)
class Placement:
    """Who deploys what, where: the values every name and label depends on."""

    account: str
    project: str
    mode: NamingMode
    zone: str
    server: str = ""  # the owning server's id: servers sharing an engine leave each other be
    # Volumes kept under their name from before engine names were injective (upgrades: a
    # volume is never renamed nor emptied): logical name -> engine name (`server.legacy`).
    volume_names: Mapping[str, str] = field(default_factory=dict)


SCOPE_HASH_LENGTH = 10  # hex digits: 40 bits, no accidental collision among a server's tenants


def scope(placement: Placement) -> str:
    """The prefix of every engine name of one project (injective in server, account, project)."""
    key = "\0".join((placement.server, placement.account, placement.project))
    digest = hashlib.sha256(key.encode()).hexdigest()[:SCOPE_HASH_LENGTH]
    readable = f"{sanitize_label(placement.account)[:24]}-{placement.project[:24]}"
    return f"dy-{readable}-{digest}"


def network_name(placement: Placement, network: str = "default") -> str:
    """The engine network of the Compose network `network` (the project's scope name for
    `default`, as every earlier release named the project's one network)."""
    base = scope(placement)
    return base if network == "default" else f"{base}_{network}"


def engine_network(project: Project, placement: Placement, network: str) -> str:
    resource = project.networks.get(network)
    if resource is not None and resource.external:
        return resource.name
    return network_name(placement, network)


def project_networks(project: Project, placement: Placement) -> dict[str, bool]:
    """The engine networks a deployment makes, each with whether it is `internal`: the
    project's `default` (builds and earlier releases use it) and every non-external Compose
    network a service joins."""
    out = {network_name(placement): False}
    for name, resource in project.networks.items():
        if not resource.external:
            out[network_name(placement, name)] = bool(resource.settings.get("internal"))
    return out


# `network_mode` values that mean the engine's shared bridge: the service joins the project's
# `default` network instead (the engine's bridge would put it beside every other project).
SHARED_BRIDGE_MODES = ("bridge", "default")


def shared_service(value: object) -> str | None:
    """X of a `service:X` namespace mode (`network_mode`, `ipc`), else None."""
    if isinstance(value, str) and value.startswith("service:"):
        return value.split(":", 1)[1]
    return None


def link_aliases(project: Project, service: str) -> list[str]:
    """The names other services give `service` with `links: [service:alias]`."""
    out: list[str] = []
    for other in project.services.values():
        for link in other.extra.get("links") or ():
            name, _, alias = str(link).partition(":")
            if name == service and alias:
                out.append(alias)
    return out


def service_networks(project: Project, service: Service,
                     placement: Placement) -> list[tuple[str, tuple[str, ...]]]:
    """Each engine network the service joins, with its aliases there (see the module)."""
    names = [*private_hostnames(placement.mode, username=placement.account,
                                project=placement.project, service=service.name),
             *link_aliases(project, service.name)]
    joined = dict(service.networks)
    if not joined and service.extra.get("network_mode") in SHARED_BRIDGE_MODES:
        joined = {"default": None}  # the engine's bridge is every project's: this one's
    return [(engine_network(project, placement, network),
             tuple(dict.fromkeys([*names, *(config.aliases if config else ())])))
            for network, config in joined.items()]


def ipc_mode(project: Project, service: Service) -> str | None:
    """`ipc` as the engine takes it before the deployer resolves `service:X`; `shareable`
    for a service another joins (the engine's private default cannot be joined)."""
    asked = service.extra.get("ipc")
    if any(shared_service(o.extra.get("ipc")) == service.name
           for o in project.services.values()):
        return "shareable"
    return str(asked) if isinstance(asked, str) and asked else None


def volumes_from_mounts(project: Project, service: Service, placement: Placement,
                        seen: frozenset[str] = frozenset()) -> tuple[MountSpec, ...]:
    """`volumes_from: [X[:ro]]`: X's named volumes (and those X has from others) at the same
    targets; a service's anonymous volumes and tmpfs are its own."""
    mounts: list[MountSpec] = []
    for entry in service.extra.get("volumes_from") or ():
        source, _, mode = str(entry).partition(":")
        other = project.services.get(source)
        if other is None or source in seen:
            continue  # `container:NAME` is refused at admission
        for m in other.volumes:
            if m.type == "volume" and m.source:
                mounts.append(MountSpec(type="volume", target=m.target,
                                        source=volume_name(placement, project, m.source),
                                        read_only=m.read_only or mode == "ro"))
        mounts += [dataclasses.replace(m, read_only=m.read_only or mode == "ro")
                   for m in volumes_from_mounts(project, other, placement,
                                                seen | {service.name, source})]
    return tuple(mounts)


def volume_name(placement: Placement, project: Project, volume: str) -> str:
    resource = project.volumes.get(volume)
    if resource is not None and resource.external:
        return resource.name
    return placement.volume_names.get(volume) or f"{scope(placement)}_{volume}"


def legacy_scope(placement: Placement) -> str:
    """The prefix engine names had before they carried a hash (`dy-<account>-<project>`): only
    to find, by their ownership labels, what an older version of the server made."""
    return f"dy-{sanitize_label(placement.account)}-{placement.project}"


def server_labels(server: str) -> dict[str, str]:
    """What marks everything one server created (and all it may touch)."""
    return {LABEL_MANAGED: "true", LABEL_SERVER: server}


def project_labels(placement: Placement) -> dict[str, str]:
    return {**server_labels(placement.server), LABEL_ACCOUNT: placement.account,
            LABEL_PROJECT: placement.project}


def service_labels(placement: Placement, service: str) -> dict[str, str]:
    return {**project_labels(placement), LABEL_SERVICE: service}


def image_repository(placement: Placement, service: str) -> str:
    """Where a built image of `service` is tagged (the tag is its build key)."""
    return f"{scope(placement)}-{sanitize_label(service)}"


def is_job(service: Service) -> bool:
    if service.restart == "no":
        return True
    policy = service.deploy.restart_policy if service.deploy else None
    return policy is not None and policy.condition == "none"


def replacement_order(service: Service) -> str:
    """How a changed service is replaced: "start-first" (no downtime) or "stop-first".

    Stop-first, whatever is asked, for a job and for a service publishing host ports (two
    versions cannot hold one host port). Otherwise Compose's `deploy.update_config.order` when
    given; else stop-first for a service writing to a named volume (two versions writing one data
    directory at once can corrupt it: most databases), and start-first for everything else.
    """
    if is_job(service) or service.host_ports:
        return "stop-first"
    update = (service.deploy.extra.get("update_config") if service.deploy else None) or {}
    order = update.get("order") if isinstance(update, dict) else None
    if order in ("start-first", "stop-first"):
        return str(order)
    if any(m.type == "volume" and m.source and not m.read_only for m in service.volumes):
        return "stop-first"
    return "start-first"


def restart_policy(service: Service) -> tuple[str, int]:
    """The engine's restart policy name and maximum retry count."""
    if is_job(service):
        return "no", 0
    restart = service.restart
    if restart is None and service.deploy and service.deploy.restart_policy:
        policy = service.deploy.restart_policy
        if policy.condition == "on-failure":
            return "on-failure", policy.max_attempts or 0
        if policy.condition == "any":
            return "always", 0
    if restart is None:
        return "unless-stopped", 0
    name, _, count = restart.partition(":")
    return name, int(count) if count.isdigit() else 0


def _seconds(nanoseconds: int | None) -> int | None:
    return None if nanoseconds is None else max(0, nanoseconds // 1_000_000_000)


def engine_healthcheck(check: Healthcheck | None) -> dict[str, object] | None:
    if check is None:
        return None
    if check.disable or (check.test and check.test[0] == "NONE"):
        return {"Test": ["NONE"]}
    out: dict[str, object] = {}
    if check.test:
        out["Test"] = list(check.test)
    for key, value in (("Interval", check.interval), ("Timeout", check.timeout),
                       ("StartPeriod", check.start_period), ("Retries", check.retries)):
        if value is not None:
            out[key] = value
    return out or None


def resolve_environment(service: Service, configs: Mapping[str, str]) -> dict[str, str]:
    """Environment templates evaluated: `${NAME}` from configs, `$$` as `$`.

    A key with no value takes the config of its name. The caller has checked that every
    reference is defined (`missing_configs`).
    """
    interpolator = Interpolator(variables=configs)
    out: dict[str, str] = {}
    for key, value in service.environment.items():
        out[key] = configs.get(key, "") if value is None else interpolator.substitute(value)
    return out


def logging_options(service: Service) -> tuple[str | None, Mapping[str, object]]:
    """The service's Compose `logging:` driver (None when not given) and options."""
    raw = service.extra.get("logging")
    if not isinstance(raw, Mapping):
        return None, {}
    driver = raw.get("driver")
    options = raw.get("options")
    return (str(driver) if driver is not None else None,
            options if isinstance(options, Mapping) else {})


def log_size_option(value: object) -> int | None:
    """A `max-size` option in bytes (Docker's units: 10m, 512k), or None when it is not one."""
    from dockyard.compose.units import parse_bytes

    if value is None or isinstance(value, bool):
        return None
    try:
        return parse_bytes(value if isinstance(value, int | float) else str(value))
    except ValueError:
        return None


def log_files_option(value: object) -> int | None:
    """A `max-file` option as a count, or None when it is not a whole number."""
    text = str(value).strip() if value is not None and not isinstance(value, bool) else ""
    return int(text) if text.isdigit() else None


def container_log(service: Service, max_size: int = LOG_MAX_SIZE,
                  max_files: int = LOG_MAX_FILES) -> tuple[str, int, int]:
    """The log driver, file size and file count of the service's containers.

    The server's bounds always apply: a driver the engine cannot read back is replaced by
    json-file (`dockyard logs` reads through the engine; a playground server refuses such a
    driver before deploying), and the service's `max-size`/`max-file` are used only when
    smaller than the server's. A value that is not a size or a count (or 0, which would mean
    "unbounded") is ignored here; the server reports it before deploying.
    """
    driver, options = logging_options(service)
    size = log_size_option(options.get("max-size"))
    files = log_files_option(options.get("max-file"))
    return (driver if driver in LOG_DRIVERS else "json-file",
            size if size is not None and 0 < size < max_size else max_size,
            files if files is not None and 0 < files < max_files else max_files)


def container_specs(project: Project, service: Service, placement: Placement, *, image: str,
                    deployment: str, config_hash: str, replicas: int,
                    config_parts: Mapping[str, str] | None = None,
                    configs: Mapping[str, str] | None = None,
                    first_index: int = 1,
                    extra_mounts: tuple[MountSpec, ...] = (),
                    log_max_size: int = LOG_MAX_SIZE,
                    log_max_files: int = LOG_MAX_FILES) -> list[ContainerSpec]:
    """The containers of one service, numbered from `first_index`; their logs rotate at
    `log_max_size` bytes, keeping `log_max_files` files (the server's bounds)."""
    extra = service.extra
    log_driver, log_size, log_files = container_log(service, log_max_size, log_max_files)
    restart, attempts = restart_policy(service)
    limits = service.deploy.limits if service.deploy else None
    reservations = service.deploy.reservations if service.deploy else None
    fqdn = (service_fqdn(placement.mode, username=placement.account, project=placement.project,
                         service=service.name, zone=placement.zone)
            if service.is_public else "")
    environment = resolve_environment(service, configs or {})
    networks = service_networks(project, service, placement)
    mode = extra.get("network_mode")
    network_mode = str(mode) if shared_service(mode) or mode == "none" else None
    mounts = tuple(
        MountSpec(type=m.type, target=m.target,
                  source=(volume_name(placement, project, m.source)
                          if m.type == "volume" and m.source else m.source),
                  read_only=m.read_only)
        for m in service.volumes if m.type in ("volume", "tmpfs")) + extra_mounts
    taken = {m.target for m in mounts}
    mounts += tuple(m for m in volumes_from_mounts(project, service, placement)
                    if m.target not in taken)
    ports = tuple(PublishedPort(target=p.target, protocol=p.protocol,
                                published=p.published or str(p.target), host_ip=p.host_ip)
                  for p in service.host_ports)
    tmpfs_raw = extra.get("tmpfs")
    tmpfs_list = [tmpfs_raw] if isinstance(tmpfs_raw, str) else list(tmpfs_raw or [])
    tmpfs = {str(t).partition(":")[0]: str(t).partition(":")[2] for t in tmpfs_list}
    labels_base = {**service.labels, **service_labels(placement, service.name),
                   LABEL_DEPLOYMENT: deployment, LABEL_CONFIG_HASH: config_hash,
                   LABEL_JOB: "true" if restart == "no" and is_job(service) else "false"}
    if config_parts:  # what `plan` compares part by part, to say why a service is replaced
        labels_base[LABEL_CONFIG_PARTS] = json.dumps(dict(config_parts), sort_keys=True,
                                                     separators=(",", ":"))
    constraints, spread, most = placement_fields(service)
    specs: list[ContainerSpec] = []
    for index in range(first_index, first_index + replicas):
        env = {**environment, "DOCKYARD_SERVICE": service.name,
               "DOCKYARD_DEPLOYMENT": deployment, "DOCKYARD_FQDN": fqdn}
        specs.append(ContainerSpec(
            name=f"{scope(placement)}-{sanitize_label(service.name)}-{index}-{deployment[:6]}",
            image=image, labels={**labels_base, LABEL_REPLICA: str(index)}, environment=env,
            network=networks[0][0] if networks and not network_mode else "",
            aliases=networks[0][1] if networks and not network_mode else (),
            networks=tuple(networks[1:]) if not network_mode else (),
            network_mode=network_mode, ipc_mode=ipc_mode(project, service),
            command=service.command, entrypoint=service.entrypoint,
            healthcheck=engine_healthcheck(service.healthcheck),
            restart=restart, restart_max_attempts=attempts,
            stop_timeout=_seconds(service.stop_grace_period),
            stop_signal=str(extra["stop_signal"]) if extra.get("stop_signal") else None,
            nano_cpus=int(limits.cpus * 1e9) if limits and limits.cpus else None,
            memory=limits.memory if limits else None,
            memory_reservation=reservations.memory if reservations else None,
            cpu_shares=(int(reservations.cpus * 1024) if reservations and reservations.cpus
                        else None),
            pids_limit=limits.pids if limits else None,
            mounts=mounts, ports=ports, user=service.user, working_dir=service.working_dir,
            # Another container's network namespace brings its host name and hosts file.
            hostname=None if network_mode else service.hostname,
            domainname=None if network_mode else service.domainname,
            init=bool(extra["init"]) if extra.get("init") is not None else None,
            read_only=bool(extra.get("read_only")), tmpfs=tmpfs,
            extra_hosts=() if network_mode else tuple(str(h) for h in
                                                      extra.get("extra_hosts") or ()),
            cap_add=tuple(str(c) for c in extra.get("cap_add") or ()),
            cap_drop=tuple(str(c) for c in extra.get("cap_drop") or ()),
            tty=bool(extra.get("tty")), stdin_open=bool(extra.get("stdin_open")),
            log_driver=log_driver, log_max_size=log_size, log_max_files=log_files,
            constraints=constraints, spread=spread, max_replicas_per_node=most,
            global_mode=service.deploy is not None and service.deploy.mode == "global",
            ingress_ports=tuple(dict.fromkeys(p.target for p in service.ingress_ports))))
    return specs


def placement_fields(service: Service) -> tuple[tuple[str, ...], tuple[str, ...], int | None]:
    """Compose's `deploy.placement`: constraints, spread preferences, max_replicas_per_node."""
    raw = service.deploy.extra.get("placement") if service.deploy else None
    placement = raw if isinstance(raw, Mapping) else {}
    spread = [p.get("spread") for p in placement.get("preferences") or ()
              if isinstance(p, Mapping)]
    most = placement.get("max_replicas_per_node")
    return (tuple(str(c) for c in placement.get("constraints") or ()),
            tuple(str(s) for s in spread if s),
            most if isinstance(most, int) and most > 0 else None)


def missing_configs(project: Project, configs: Mapping[str, str]) -> dict[str, list[str]]:
    """Every config name the project needs and `configs` lacks, with the services needing it."""
    from dockyard.compose.interpolation import config_references

    missing: dict[str, list[str]] = {}
    for name, service in sorted(project.services.items()):
        for key, value in service.environment.items():
            needed = [key] if value is None else config_references(value)
            for ref in needed:
                if ref not in configs and name not in missing.setdefault(ref, []):
                    missing[ref].append(name)
    return {k: v for k, v in missing.items() if v}
