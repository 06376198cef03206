"""The shape of a Compose file, checked before anything is normalized.

A small, fast structural checker written for the Compose specification's shape: every key the
specification defines is known here with its accepted types, so a wrong type is reported with its
key path (`services.web.ports[1]: expected a number, string or mapping`) and an unknown key is
reported with the closest known key as a hint. It reports every problem, not the first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from dockyard.compose.paths import KeyPath, format_path

Report = Callable[[str, str, KeyPath, str | None], None]


class Spec:
    """Base of the shape checkers; `kinds` names what it accepts, for messages."""

    kinds: tuple[str, ...] = ()

    def accepts_kind(self, value: Any) -> bool:
        return _kind(value) in self.kinds

    def check(self, value: Any, path: KeyPath, report: Report) -> None:
        if not self.accepts_kind(value):
            hint = f"write {_describe(self.kinds)} here (see the Compose specification)"
            if "string" in self.kinds and _kind(value) in ("integer", "number", "boolean"):
                hint = "quote the value: YAML reads it as a number or a boolean"
            report("schema", f"expected {_describe(self.kinds)}, got {_kind_name(value)}", path,
                   hint)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "unknown"


def _kind_name(value: Any) -> str:
    k = _kind(value)
    names = {"null": "nothing (null)", "object": "a mapping", "array": "a list",
             "integer": f"the number {value!r}", "number": f"the number {value!r}",
             "boolean": f"the boolean {str(value).lower()}", "string": f"the string {value!r}"}
    return names.get(k, k)


_KIND_WORDS = {"string": "a string", "integer": "an integer", "number": "a number",
               "boolean": "a boolean", "array": "a list", "object": "a mapping", "null": "null"}


def _describe(kinds: tuple[str, ...]) -> str:
    seen: list[str] = []
    for k in kinds:
        if k == "integer" and "number" in kinds:
            continue
        word = _KIND_WORDS[k]
        if word not in seen:
            seen.append(word)
    if len(seen) == 1:
        return seen[0]
    return ", ".join(seen[:-1]) + " or " + seen[-1]


class Scalar(Spec):
    def __init__(self, *kinds: str, enum: tuple[str, ...] = ()) -> None:
        expanded = list(kinds)
        if "number" in expanded and "integer" not in expanded:
            expanded.append("integer")
        self.kinds = tuple(expanded)
        self.enum = enum

    def check(self, value: Any, path: KeyPath, report: Report) -> None:
        super().check(value, path, report)
        if self.enum and isinstance(value, str) and value not in self.enum:
            report("schema", f"{value!r} is not one of {', '.join(self.enum)}", path,
                   f"use one of {', '.join(self.enum)}")


class Obj(Spec):
    """A mapping: its known keys (`props`), and `values` for any other key (patternProperties;
    None refuses them). Plain classes, not dataclasses: `compose config` starts faster."""

    def __init__(self, props: dict[str, Spec], values: Spec | None = None,
                 key_pattern: str | None = None, required: tuple[str, ...] = (),
                 allow_x: bool = True, nullable: bool = False) -> None:
        self.props = props
        self.values = values
        self.required = required
        self.allow_x = allow_x
        self.kinds = ("object", "null") if nullable else ("object",)
        self._key_re = re.compile(key_pattern) if key_pattern else None

    def check(self, value: Any, path: KeyPath, report: Report) -> None:
        if not isinstance(value, dict):
            super().check(value, path, report)
            return
        for key, item in value.items():
            child = (*path, key)
            spec = self.props.get(key)
            if spec is not None:
                spec.check(item, child, report)
            elif self.allow_x and isinstance(key, str) and key.startswith("x-"):
                continue
            elif self.values is not None:
                if self._key_re is not None and not self._key_re.match(key):
                    report("schema", f"invalid name {key!r}", child,
                           "use only letters, digits, '.', '_' and '-'")
                    continue
                self.values.check(item, child, report)
            else:
                import difflib  # only for a mistake: loading a valid file needs none

                close = difflib.get_close_matches(key, list(self.props), n=1)
                hint = (f"did you mean {close[0]!r}?" if close else
                        "remove it, or name it x-... to keep it as an extension")
                where = format_path(path) or "the top level"
                report("unknown-key", f"{key!r} is not a Compose key of {where}", child, hint)
        for key in self.required:
            if key not in value:
                report("schema", f"{key!r} is required here", path,
                       f"add `{key}:` to {format_path(path) or 'the file'}")


class Arr(Spec):
    kinds = ("array",)

    def __init__(self, item: Spec) -> None:
        self.item = item

    def check(self, value: Any, path: KeyPath, report: Report) -> None:
        if not isinstance(value, list):
            super().check(value, path, report)
            return
        for index, item in enumerate(value):
            self.item.check(item, (*path, index), report)


class OneOf(Spec):
    """The first alternative that accepts the value's kind checks it further."""

    def __init__(self, *options: Spec) -> None:
        self.options = options
        kinds: list[str] = []
        for option in options:
            kinds.extend(k for k in option.kinds if k not in kinds)
        self.kinds = tuple(kinds)

    def check(self, value: Any, path: KeyPath, report: Report) -> None:
        for option in self.options:
            if option.accepts_kind(value):
                option.check(value, path, report)
                return
        super().check(value, path, report)


class AnyValue(Spec):
    def check(self, value: Any, path: KeyPath, report: Report) -> None:
        return None


STR = Scalar("string")
INT = Scalar("integer")
BOOL = Scalar("boolean")
BOOL_OR_STR = Scalar("boolean", "string")
NUM_OR_STR = Scalar("number", "string")
INT_OR_STR = Scalar("integer", "string")
ANY = AnyValue()
NAME = r"^[a-zA-Z0-9._-]+$"
LIST_OF_STRINGS = Arr(STR)
STRING_OR_LIST = OneOf(STR, LIST_OF_STRINGS)
LIST_OR_DICT = OneOf(
    Obj({}, values=Scalar("string", "number", "boolean", "null"), allow_x=False),
    LIST_OF_STRINGS,
)
EXTRA_HOSTS = OneOf(Obj({}, values=OneOf(STR, LIST_OF_STRINGS), allow_x=False), LIST_OF_STRINGS)
COMMAND = OneOf(Scalar("null"), STR, LIST_OF_STRINGS)
ULIMITS = Obj({}, values=OneOf(INT_OR_STR, Obj({"hard": INT_OR_STR, "soft": INT_OR_STR},
                                                required=("soft", "hard"))),
              key_pattern=r"^[a-z]+$")
CONFIG_OR_SECRET = Arr(OneOf(STR, Obj({"source": STR, "target": STR, "uid": STR, "gid": STR,
                                       "mode": NUM_OR_STR})))
DEVICES_RESERVATION = Arr(Obj({"capabilities": LIST_OF_STRINGS, "count": INT_OR_STR,
                               "device_ids": LIST_OF_STRINGS, "driver": STR,
                               "options": LIST_OR_DICT}))
# `Path`, `Rate`, `Weight`: how `compose config` prints them (Compose's and ours), read back.
BLKIO_LIMIT = Obj({"path": STR, "rate": INT_OR_STR, "Path": STR, "Rate": INT_OR_STR},
                  allow_x=False)
BLKIO_WEIGHT = Obj({"path": STR, "weight": INT_OR_STR, "Path": STR, "Weight": INT_OR_STR},
                   allow_x=False)
DRIVER_OPTS = Obj({}, values=Scalar("string", "number"), allow_x=False)
SERVICE_HOOK = Obj({"command": COMMAND, "user": STR, "privileged": BOOL_OR_STR,
                    "working_dir": STR, "environment": LIST_OR_DICT}, required=("command",))

BUILD = OneOf(STR, Obj({
    "context": STR, "dockerfile": STR, "dockerfile_inline": STR, "entitlements": LIST_OF_STRINGS,
    "args": LIST_OR_DICT, "ssh": LIST_OR_DICT, "labels": LIST_OR_DICT,
    "cache_from": LIST_OF_STRINGS, "cache_to": LIST_OF_STRINGS, "no_cache": BOOL_OR_STR,
    "additional_contexts": LIST_OR_DICT, "network": STR, "provenance": BOOL_OR_STR,
    "sbom": BOOL_OR_STR, "pull": BOOL_OR_STR, "target": STR, "shm_size": INT_OR_STR,
    "extra_hosts": EXTRA_HOSTS, "isolation": STR, "privileged": BOOL_OR_STR,
    "secrets": CONFIG_OR_SECRET, "tags": LIST_OF_STRINGS, "ulimits": ULIMITS,
    "platforms": LIST_OF_STRINGS,
}))

DEPENDS_ON = OneOf(LIST_OF_STRINGS, Obj({}, values=Obj({
    "restart": BOOL_OR_STR, "required": BOOL,
    "condition": Scalar("string"),  # the condition's value is checked by the validator
}), key_pattern=NAME, allow_x=False))

HEALTHCHECK = Obj({
    "disable": BOOL_OR_STR, "interval": STR, "retries": NUM_OR_STR,
    "test": OneOf(STR, LIST_OF_STRINGS), "timeout": STR, "start_period": STR,
    "start_interval": STR,
})

RESOURCE = {"cpus": NUM_OR_STR, "memory": Scalar("string", "integer"), "pids": INT_OR_STR}
UPDATE_CONFIG = Obj({"parallelism": INT_OR_STR, "delay": STR, "failure_action": STR,
                     "monitor": STR, "max_failure_ratio": NUM_OR_STR,
                     "order": Scalar("string", enum=("start-first", "stop-first"))})
DEPLOY = Obj({
    "mode": STR, "endpoint_mode": STR, "replicas": INT_OR_STR, "labels": LIST_OR_DICT,
    "rollback_config": UPDATE_CONFIG, "update_config": UPDATE_CONFIG,
    "resources": Obj({
        "limits": Obj(dict(RESOURCE)),
        "reservations": Obj({**RESOURCE, "generic_resources": Arr(Obj({
            "discrete_resource_spec": Obj({"kind": STR, "value": NUM_OR_STR})})),
            "devices": DEVICES_RESERVATION}),
    }),
    "restart_policy": Obj({"condition": STR, "delay": STR, "max_attempts": INT_OR_STR,
                           "window": STR}),
    "placement": Obj({"constraints": LIST_OF_STRINGS,
                      "preferences": Arr(Obj({"spread": STR})),
                      "max_replicas_per_node": INT_OR_STR}),
}, nullable=True)

PORT = OneOf(Scalar("number"), STR, Obj({
    "name": STR, "mode": STR, "host_ip": STR, "target": INT_OR_STR,
    "published": INT_OR_STR, "protocol": STR, "app_protocol": STR,
}))

VOLUME_MOUNT = OneOf(STR, Obj({
    "type": Scalar("string", enum=("bind", "volume", "tmpfs", "cluster", "npipe", "image")),
    "source": STR, "target": STR, "read_only": BOOL_OR_STR, "consistency": STR,
    "bind": Obj({"propagation": STR, "create_host_path": BOOL_OR_STR,
                 "recursive": Scalar("string", enum=("enabled", "disabled", "writable",
                                                     "readonly")),
                 "selinux": Scalar("string", enum=("z", "Z"))}),
    "volume": Obj({"labels": LIST_OR_DICT, "nocopy": BOOL_OR_STR, "subpath": STR}),
    "tmpfs": Obj({"size": INT_OR_STR, "mode": NUM_OR_STR}),
    "image": Obj({"subpath": STR}),
}, required=("type",)))

SERVICE_NETWORK = OneOf(Scalar("null"), Obj({
    "aliases": LIST_OF_STRINGS, "interface_name": STR, "ipv4_address": STR,
    "ipv6_address": STR, "link_local_ips": LIST_OF_STRINGS, "mac_address": STR,
    "driver_opts": DRIVER_OPTS, "priority": Scalar("number"), "gw_priority": Scalar("number"),
}))

ENV_FILE = OneOf(STR, Arr(OneOf(STR, Obj({"path": STR, "format": STR,
                                          "required": BOOL_OR_STR},
                                         required=("path",), allow_x=False))))

SERVICE = Obj({
    "develop": Obj({"watch": Arr(Obj({
        "ignore": STRING_OR_LIST, "include": STRING_OR_LIST, "path": STR, "action": STR,
        "target": STR, "exec": SERVICE_HOOK}, required=("path", "action")))}, nullable=True),
    "deploy": DEPLOY,
    "annotations": LIST_OR_DICT,
    "attach": BOOL_OR_STR,
    "build": BUILD,
    "blkio_config": Obj({"device_read_bps": Arr(BLKIO_LIMIT), "device_read_iops": Arr(BLKIO_LIMIT),
                         "device_write_bps": Arr(BLKIO_LIMIT),
                         "device_write_iops": Arr(BLKIO_LIMIT), "weight": INT_OR_STR,
                         "weight_device": Arr(BLKIO_WEIGHT)}, allow_x=False),
    "cap_add": LIST_OF_STRINGS, "cap_drop": LIST_OF_STRINGS,
    "cgroup": Scalar("string", enum=("host", "private")), "cgroup_parent": STR,
    "command": COMMAND, "configs": CONFIG_OR_SECRET, "container_name": STR,
    "cpu_count": INT_OR_STR, "cpu_percent": INT_OR_STR, "cpu_shares": NUM_OR_STR,
    "cpu_quota": NUM_OR_STR, "cpu_period": NUM_OR_STR, "cpu_rt_period": NUM_OR_STR,
    "cpu_rt_runtime": NUM_OR_STR, "cpus": NUM_OR_STR, "cpuset": STR,
    "credential_spec": Obj({"config": STR, "file": STR, "registry": STR}),
    "depends_on": DEPENDS_ON,
    "device_cgroup_rules": LIST_OF_STRINGS,
    "devices": Arr(OneOf(STR, Obj({"source": STR, "target": STR, "permissions": STR},
                                  required=("source", "target")))),
    "dns": STRING_OR_LIST, "dns_opt": LIST_OF_STRINGS, "dns_search": STRING_OR_LIST,
    "domainname": STR, "entrypoint": COMMAND, "env_file": ENV_FILE,
    "label_file": STRING_OR_LIST, "environment": LIST_OR_DICT,
    "expose": Arr(Scalar("string", "number")),
    "extends": OneOf(STR, Obj({"service": STR, "file": STR}, required=("service",),
                              allow_x=False)),
    "provider": Obj({"type": STR, "options": Obj({}, values=ANY, allow_x=False)},
                    required=("type",)),
    "external_links": LIST_OF_STRINGS, "extra_hosts": EXTRA_HOSTS,
    "gpus": OneOf(Scalar("string", enum=("all",)), DEVICES_RESERVATION),
    "group_add": Arr(Scalar("string", "number")),
    "healthcheck": HEALTHCHECK, "hostname": STR, "image": STR, "init": BOOL_OR_STR,
    "ipc": STR, "isolation": STR, "labels": LIST_OR_DICT, "links": LIST_OF_STRINGS,
    "logging": Obj({"driver": STR, "options": Obj({}, values=Scalar("string", "number",
                                                                      "null"), allow_x=False)}),
    "mac_address": STR, "mem_limit": NUM_OR_STR, "mem_reservation": INT_OR_STR,
    "mem_swappiness": INT_OR_STR, "memswap_limit": NUM_OR_STR, "network_mode": STR,
    "models": OneOf(LIST_OF_STRINGS, Obj({}, values=Obj({"endpoint_var": STR,
                                                         "model_var": STR}, nullable=True))),
    "networks": OneOf(LIST_OF_STRINGS, Obj({}, values=SERVICE_NETWORK, key_pattern=NAME,
                                           allow_x=False)),
    "oom_kill_disable": BOOL_OR_STR, "oom_score_adj": INT_OR_STR,
    "pid": Scalar("string", "null"), "pids_limit": NUM_OR_STR, "platform": STR,
    "ports": Arr(PORT),
    "post_start": Arr(SERVICE_HOOK), "pre_stop": Arr(SERVICE_HOOK),
    "privileged": BOOL_OR_STR, "profiles": LIST_OF_STRINGS, "pull_policy": STR,
    "pull_refresh_after": STR, "read_only": BOOL_OR_STR, "restart": STR, "runtime": STR,
    "scale": INT_OR_STR, "security_opt": LIST_OF_STRINGS, "shm_size": NUM_OR_STR,
    "secrets": CONFIG_OR_SECRET, "sysctls": LIST_OR_DICT, "stdin_open": BOOL_OR_STR,
    "stop_grace_period": STR, "stop_signal": STR, "storage_opt": Obj({}, values=ANY),
    "tmpfs": STRING_OR_LIST, "tty": BOOL_OR_STR, "ulimits": ULIMITS,
    "use_api_socket": BOOL, "user": STR, "uts": STR, "userns_mode": STR,
    "volumes": Arr(VOLUME_MOUNT), "volumes_from": LIST_OF_STRINGS, "working_dir": STR,
}, nullable=True)

EXTERNAL = OneOf(BOOL, STR, Obj({"name": STR}))
NETWORK = Obj({
    "name": STR, "driver": STR, "driver_opts": DRIVER_OPTS,
    "ipam": Obj({"driver": STR, "config": Arr(Obj({
        "subnet": STR, "ip_range": STR, "gateway": STR,
        "aux_addresses": Obj({}, values=STR, allow_x=False)})),
        "options": Obj({}, values=STR, allow_x=False)}),
    "external": EXTERNAL, "internal": BOOL_OR_STR, "enable_ipv4": BOOL_OR_STR,
    "enable_ipv6": BOOL_OR_STR, "attachable": BOOL_OR_STR, "labels": LIST_OR_DICT,
}, nullable=True)
VOLUME = Obj({"name": STR, "driver": STR, "driver_opts": DRIVER_OPTS, "external": EXTERNAL,
              "labels": LIST_OR_DICT}, nullable=True)
SECRET = Obj({"name": STR, "environment": STR, "file": STR, "external": EXTERNAL,
              "labels": LIST_OR_DICT, "driver": STR, "driver_opts": DRIVER_OPTS,
              "template_driver": STR})
CONFIG = Obj({"name": STR, "content": STR, "environment": STR, "file": STR,
              "external": EXTERNAL, "labels": LIST_OR_DICT, "template_driver": STR})
MODEL = Obj({"name": STR, "model": STR, "context_size": INT,
             "runtime_flags": LIST_OF_STRINGS}, required=("model",))
INCLUDE = OneOf(STR, Obj({"path": STRING_OR_LIST, "env_file": STRING_OR_LIST,
                          "project_directory": STR}, allow_x=False))

PROJECT = Obj({
    "version": STR, "name": STR, "include": Arr(INCLUDE),
    "services": Obj({}, values=SERVICE, key_pattern=NAME, allow_x=False),
    "models": Obj({}, values=MODEL, key_pattern=NAME, allow_x=False),
    "networks": Obj({}, values=NETWORK, key_pattern=NAME, allow_x=False),
    "volumes": Obj({}, values=VOLUME, key_pattern=NAME, allow_x=False),
    "secrets": Obj({}, values=SECRET, key_pattern=NAME, allow_x=False),
    "configs": Obj({}, values=CONFIG, key_pattern=NAME, allow_x=False),
})

SERVICE_KEYS: frozenset[str] = frozenset(SERVICE.props)


def check_project(data: Mapping[str, Any], report: Report) -> None:
    """Check one file's data (after interpolation) against the Compose shape."""
    PROJECT.check(dict(data), (), report)
