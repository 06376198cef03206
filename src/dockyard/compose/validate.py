"""Dockyard's own rules over a loaded project (docs/architecture.md, Exposure, and Names and
domains).

Compose accepts things a deployment platform cannot honour (a bind mount of this laptop's
folder), or that would make names collide. These checks run on the typed `Project` and return
every problem as a `Diagnostic`; the loader refuses the project if any is an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from dockyard.compose.interpolation import config_references
from dockyard.compose.models import Condition, Mount, Port, Project, Service
from dockyard.compose.paths import KeyPath
from dockyard.compose.ports import PortSyntaxError, parse_long, parse_short, port_numbers
from dockyard.compose.sanity import check_values
from dockyard.compose.support import DEPLOY_KEYS, SERVICE_KEYS, KeySupport, Status, ignored
from dockyard.diagnostics import Diagnostic, Location, error, warning
from dockyard.naming import label_collisions
from dockyard.registry.policy import parse_pull_policy
from dockyard.registry.reference import image_id_of, is_valid_reference, why_invalid

Locate = Callable[[KeyPath], Location]

CONFIG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

# Service keys a deployment uses (the rest is accepted, kept in `compose config`, and warned
# `ignored-key`): dockyard.compose.support, written out in docs/compose-support.md.
USED_SERVICE_KEYS = frozenset(SERVICE_KEYS) - ignored(SERVICE_KEYS)
_CONDITIONS = frozenset(c.value for c in Condition)


def validate_project(project: Project, raw: Mapping[str, Any], locate: Locate,
                     incomplete: frozenset[str] = frozenset()) -> list[Diagnostic]:
    """Every problem of the project. `incomplete` names services already reported as broken;
    what only follows from that (a missing image) is not reported again."""
    out: list[Diagnostic] = []
    services = project.services
    raw_services: Mapping[str, Any] = raw.get("services") or {}
    for name, service in services.items():
        raw_service = raw_services.get(name) or {}
        out.extend(_check_service(project, service, raw_service, locate,
                                  name in incomplete))
    out.extend(_check_file_sources(raw, locate))
    out.extend(_check_dependency_cycles(project, raw_services, locate))
    out.extend(_check_label_collisions(project, locate))
    out.extend(check_values(project, locate))
    return out


def _check_service(project: Project, service: Service, raw: Mapping[str, Any],
                   locate: Locate, incomplete: bool = False) -> Iterator[Diagnostic]:
    name = service.name
    base: KeyPath = ("services", name)

    def at(*path: str | int) -> Location:
        return locate((*base, *path))

    if (service.image is None and service.build is None and not incomplete
            and "provider" not in service.extra):
        yield error("no-image-or-build", f"service {name!r} has neither `image` nor `build`",
                    at(), "add `image: NAME` to run an image, or `build: DIR` to build one")
    yield from _check_image(service, raw, at)

    for dep, spec in service.depends_on.items():
        dep_at = raw_key_path(raw.get("depends_on"), dep)
        if dep not in project.services:
            if dep in project.disabled_services:
                hint = f"enable the profile of {dep!r} with --profile, or remove the dependency"
                msg = f"service {name!r} depends on {dep!r}, which is disabled by its profiles"
            else:
                hint = f"services are: {', '.join(sorted(project.services))}"
                msg = f"service {name!r} depends on {dep!r}, which is not a service"
            if spec.required:
                yield error("depends-on-unknown", msg, at("depends_on", dep_at), hint)
        if spec.condition not in _CONDITIONS:
            yield error("depends-on-condition",
                        f"service {name!r}: {spec.condition!r} is not a depends_on condition",
                        at("depends_on", dep, "condition"),
                        "use service_started, service_healthy or service_completed_successfully")

    ingress_targets: dict[int, KeyPath] = {}
    for raw_index, port in _raw_ports(raw.get("ports")):
        path = ("ports", raw_index)
        bad = [n for n in port_numbers(port) if not 1 <= n <= 65535]
        if bad:
            yield error("port-range", f"service {name!r}: port {bad[0]} is outside 1-65535",
                        at(*path), "use a port number from 1 to 65535")
            continue
        if port.mode not in ("ingress", "host"):
            yield error("schema", f"service {name!r}: port mode {port.mode!r} is not "
                        "'ingress' or 'host'", at(*path),
                        "use mode: ingress (a public domain) or mode: host (a host port)")
        if port.protocol not in ("tcp", "udp"):
            yield error("schema", f"service {name!r}: port protocol {port.protocol!r} is not "
                        "'tcp' or 'udp'", at(*path), "use protocol: tcp or udp")
        if port.mode == "ingress" and port.protocol == "udp":
            yield warning("udp-ingress-to-host",
                          f"service {name!r}: UDP port {port.target} cannot be served by the "
                          "HTTP ingress; it is published as a host port", at(*path),
                          "write `mode: host` to say so and silence this warning")
            continue
        if port.is_ingress:
            if port.target in ingress_targets and ingress_targets[port.target] != path:
                yield error("duplicate-ingress-port",
                            f"service {name!r} lists ingress port {port.target} twice",
                            at(*path), "each ingress target port gets one domain: remove one")
            ingress_targets.setdefault(port.target, path)
            if port.published and port.published != str(port.target):
                yield warning("ingress-published-ignored",
                              f"service {name!r}: published port {port.published} is ignored "
                              f"for ingress port {port.target}; it is served at its domain",
                              at(*path),
                              f"write `- {port.target}`, or use `mode: host` to publish "
                              f"{port.published} on the host")
    if ingress_targets and (service.healthcheck is None or service.healthcheck.test is None
                            or service.healthcheck.disable):
        first = next(iter(ingress_targets.values()))
        yield warning("ingress-no-healthcheck",
                      f"service {name!r} is public but has no healthcheck; an HTTP GET / "
                      "below 500 will decide its health", at(*first),
                      "add a `healthcheck:` that tests the service itself")
    if service.domainname and not ingress_targets:
        yield error("domainname-without-ingress",
                    f"service {name!r} sets domainname {service.domainname!r} but has no "
                    "ingress port to serve it", at("domainname"),
                    "add an ingress port (`ports: [\"8080\"]`) or remove `domainname`")

    for index, mount in enumerate(service.volumes):
        if mount.is_bind:
            yield from _bind_mount(project, name, mount, at("volumes", index))
        elif mount.type == "volume" and mount.source and mount.source not in project.volumes:
            yield error("undefined-reference",
                        f"service {name!r} uses the volume {mount.source!r}, which is not "
                        "declared under the top-level `volumes`", at("volumes", index),
                        f"add `volumes: {{{mount.source}: {{}}}}` at the top level")

    for network in service.networks:
        if network not in project.networks and "network_mode" not in raw:
            yield error("undefined-reference",
                        f"service {name!r} joins the network {network!r}, which is not "
                        "declared under the top-level `networks`",
                        at("networks", raw_key_path(raw.get("networks"), network)),
                        f"add `networks: {{{network}: {{}}}}` at the top level")
    for model in service.extra.get("models") or {}:
        if model not in project.models:
            yield error("undefined-reference",
                        f"service {name!r} uses the model {model!r}, which is not declared "
                        "under the top-level `models`",
                        at("models", raw_key_path(raw.get("models"), model)),
                        f"add `models: {{{model}: {{model: ai/...}}}}` at the top level")
    for kind, refs, declared in (("secrets", service.secrets, project.secrets),
                                 ("configs", service.configs, project.configs)):
        for index, ref in enumerate(refs):
            if ref.source not in declared:
                yield error("undefined-reference",
                            f"service {name!r} uses the {kind[:-1]} {ref.source!r}, which is "
                            f"not declared under the top-level `{kind}`", at(kind, index),
                            f"declare it under `{kind}:` at the top level")

    for key, value in service.environment.items():
        if value is None:
            if not CONFIG_NAME.match(key):
                yield error("invalid-config-name",
                            f"service {name!r}: environment key {key!r} has no value, so it "
                            "names a config, but it is not a valid config name",
                            at("environment", raw_key_path(raw.get("environment"), key)),
                            "config names are letters, digits and _, start with a letter or _, "
                            "at most 64 characters; or give the key a value")
            continue
        for config in config_references(value):
            if not CONFIG_NAME.match(config):
                yield error("invalid-config-name",
                            f"service {name!r}: ${{{config}}} in environment {key!r} is not a "
                            "valid config name",
                            at("environment", raw_key_path(raw.get("environment"), key)),
                            "config names match ^[A-Za-z_][A-Za-z0-9_]{0,63}$")

    for index, ref in enumerate(service.secrets):
        resource = project.secrets.get(ref.source)
        if resource is None:
            continue
        if not resource.external:
            yield warning("secret-not-external",
                          f"service {name!r}: secret {ref.source!r} is not `external: true`, "
                          "so it is not mounted (only stored configs are)", at("secrets", index),
                          f"store it with `dockyard config set {ref.source}` and declare it "
                          "`external: true`")
        elif not CONFIG_NAME.match(resource.name or ref.source):
            yield error("invalid-config-name",
                        f"service {name!r}: external secret {resource.name or ref.source!r} is "
                        "not a valid config name", at("secrets", index),
                        "config names match ^[A-Za-z_][A-Za-z0-9_]{0,63}$; rename it with "
                        "`name:` under the top-level secret")

    driver = (raw.get("logging") or {}).get("driver") if isinstance(raw.get("logging"),
                                                                      Mapping) else None
    if driver is not None and driver not in ("json-file", "local"):
        yield warning("logging-driver-replaced", f"service {name!r}: logging driver "
                      f"{driver!r} is not used: Dockyard keeps each container's log in "
                      "json-file, rotated, to serve `dockyard logs` (a shared server refuses it)",
                      at("logging", "driver"), "remove `logging.driver` (max-size and max-file "
                      "are honoured up to the server's limits)")
    yield from _ignored_keys(name, raw, SERVICE_KEYS, "", at)
    deploy = raw.get("deploy")
    if isinstance(deploy, Mapping):
        yield from _ignored_keys(name, deploy, DEPLOY_KEYS, "deploy.", lambda key: at("deploy",
                                                                                     key))


def _ignored_keys(name: str, raw: Mapping[str, Any], table: Mapping[str, KeySupport],
                  prefix: str, at: Callable[..., Location]) -> Iterator[Diagnostic]:
    """A warning for each key a deployment ignores: why, and what to do instead."""
    for key in raw:
        support = table.get(key)
        if support is not None and support.status is Status.IGNORED:
            yield warning("ignored-key", f"service {name!r}: `{prefix}{key}` is ignored: "
                          f"{support.why}", at(key), support.instead)


_SOURCES = {"secrets": ("file", "environment"), "configs": ("file", "environment", "content")}


def _bind_mount(project: Project, name: str, mount: Mount,
                where: Location) -> Iterator[Diagnostic]:
    """A bind mount inside the project directory is deployed with the project (packed by the
    client); one outside it names the host of the server, which refuses it unless allowed."""
    source = mount.source or ""
    root = project.working_dir.rstrip("/")
    if source == project.working_dir or source.startswith(root + "/"):
        if not mount.read_only:
            yield warning("project-files-writable",
                          f"service {name!r} mounts {source} writable at {mount.target}: the "
                          "server gets its own copy, and writes to it stay on the server and "
                          "are not synced back", where,
                          f"mount it read-only (`:ro`), or keep data in a named volume "
                          f"(`data:{mount.target}` plus a top-level `volumes: {{data: {{}}}}`)")
        return
    yield warning("host-path",
                  f"service {name!r} mounts the host path {source} at {mount.target}, outside "
                  f"the project directory {project.working_dir}: a server refuses it unless "
                  "its operator allows that path", where,
                  "move the files into the project directory and mount them as `./...`, use "
                  "a named volume, or (on your own server) allow the path with `dockyard "
                  "server --allow-host-paths DIR`")


def _check_file_sources(raw: Mapping[str, Any], locate: Locate) -> Iterator[Diagnostic]:
    """A secret or config that is not external must say where its value comes from, used or
    not, as Compose requires (a secret with only a `driver` included)."""
    for kind, sources in _SOURCES.items():
        for name, spec in (raw.get(kind) or {}).items():
            if not isinstance(spec, Mapping) or spec.get("external"):
                continue
            if not any(spec.get(key) is not None for key in sources):
                keys = ", ".join(f"`{k}`" for k in sources)
                yield error("schema", f"the {kind[:-1]} {name!r} sets none of {keys}",
                            locate((kind, name)),
                            f"add one of {keys}, or `external: true` for a value stored on "
                            "the server (`dockyard config set`)")


def _check_image(service: Service, raw: Mapping[str, Any],
                 at: Callable[..., Location]) -> Iterator[Diagnostic]:
    """`image:` must be a reference (or an image id) the engine takes, and `pull_policy` one of
    Compose's values: found at load time, with the line, not at the first pull."""
    image = service.image  # "" when its interpolation failed: reported already
    if isinstance(image, str) and image and not (is_valid_reference(image)
                                                 or image_id_of(image)):
        yield error("image-invalid", f"service {service.name!r}: image {image!r} is not an "
                    f"image reference: {why_invalid(image)}", at("image"),
                    "write [REGISTRY/]NAME[:TAG][@DIGEST] in lower case, such as nginx:1.27")
    policy = raw.get("pull_policy")
    if isinstance(policy, str):
        try:
            parse_pull_policy(policy)
        except ValueError as exc:
            yield error("pull-policy-invalid", f"service {service.name!r}: {exc}",
                        at("pull_policy"), "write one of always, missing, never, build, daily, "
                        "weekly or every_<duration> (every_12h, every_1h30m, every_2d)")


def _raw_ports(raw_ports: Any) -> Iterator[tuple[int, Port]]:
    """Each port with the index of the entry that wrote it (a range writes several).

    Entries that repeat an earlier one (same address, port and protocol) are merged as Compose
    merges them; unparseable entries were already reported by the normalizer.
    """
    seen: set[tuple[str | None, str | None, int, str]] = set()
    for index, item in enumerate(raw_ports if isinstance(raw_ports, list) else []):
        try:
            ports = [parse_long(item)] if isinstance(item, dict) else parse_short(item)
        except PortSyntaxError:
            continue
        for port in ports:
            key = (port.host_ip, port.published, port.target, port.protocol)
            if key not in seen:
                seen.add(key)
                yield index, port


def raw_key_path(raw: Any, key: str) -> str | int:
    """Where `key` is written in a list-or-mapping field: its list index, or the key itself."""
    if isinstance(raw, list):
        for index, item in enumerate(raw):
            if str(item) == key or str(item).split("=", 1)[0] == key:
                return index
    return key


def _check_dependency_cycles(project: Project, raw_services: Mapping[str, Any],
                             locate: Locate) -> Iterator[Diagnostic]:
    graph = {name: [d for d in s.depends_on if d in project.services]
             for name, s in project.services.items()}
    state: dict[str, int] = {}
    reported: set[frozenset[str]] = set()
    stack: list[str] = []

    def visit(node: str) -> Iterator[Diagnostic]:
        state[node] = 1
        stack.append(node)
        for dep in graph[node]:
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    first, second = cycle[0], cycle[1]
                    raw_deps = (raw_services.get(first) or {}).get("depends_on")
                    yield error("dependency-cycle",
                                "dependency cycle: " + " -> ".join(cycle),
                                locate(("services", first, "depends_on",
                                        raw_key_path(raw_deps, second))),
                                "remove one of these depends_on entries to break the cycle")
            elif state.get(dep) is None:
                yield from visit(dep)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            yield from visit(name)


def _check_label_collisions(project: Project, locate: Locate) -> Iterator[Diagnostic]:
    for first, second in label_collisions(project.services):
        # Point at the one written later: the earlier one was there first.
        here = max((locate(("services", n)) for n in (first, second)),
                   key=lambda loc: (loc.file or "", loc.line or 0))
        yield error("domain-collision",
                    f"services {first!r} and {second!r} get the same DNS name after "
                    "sanitizing; their domains and hostnames would collide", here,
                    f"rename {first!r} or {second!r}")
