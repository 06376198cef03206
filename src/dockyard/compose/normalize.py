"""From merged Compose data (plain dicts) to the typed `Project`.

Each value is converted to its long form and type; a value that cannot be converted is reported
(`invalid-port`, `invalid-duration`, `invalid-size`, `schema`) with its key path and the walk goes
on, so every problem of the project is found in one run.
"""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Callable, Mapping
from typing import Any

from dockyard.compose.dotenv import DotenvError, parse_dotenv
from dockyard.compose.models import (
    Build,
    Dependency,
    Deploy,
    FileReference,
    Healthcheck,
    Mount,
    Port,
    Project,
    Resource,
    ResourceSpec,
    RestartPolicy,
    Service,
    ServiceNetwork,
    frozen_map,
)
from dockyard.compose.paths import KeyPath
from dockyard.compose.ports import PortOutOfRange, PortSyntaxError, parse_long, parse_short
from dockyard.compose.units import format_duration, parse_bytes, parse_duration

Report = Callable[[str, str, KeyPath, str | None], None]

MODELED_SERVICE_KEYS = frozenset({
    "image", "build", "command", "entrypoint", "environment", "env_file", "ports", "expose",
    "depends_on", "healthcheck", "deploy", "restart", "stop_grace_period", "networks",
    "volumes", "secrets", "configs", "labels", "domainname", "hostname", "user", "working_dir",
    "profiles", "extends", "label_file",
})
_BOOL_KEYS = frozenset({"tty", "stdin_open", "privileged", "read_only", "init",
                        "oom_kill_disable"})
_INT_KEYS = frozenset({"cpu_count", "cpu_percent", "cpu_shares", "cpu_quota", "cpu_period",
                       "pids_limit", "scale", "oom_score_adj"})
_SIZE_KEYS = frozenset({"shm_size", "mem_limit", "mem_reservation", "memswap_limit"})


def scalar_text(value: Any) -> str:
    """A YAML scalar as Compose (Go) prints it in a string field."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "+Inf" if value > 0 else "-Inf"
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    return str(value)


def to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.lower() in ("true", "yes", "1")
    return None


def split_command(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, list):
        return tuple(scalar_text(v) for v in value)
    text = str(value)
    try:
        return tuple(shlex.split(text))
    except ValueError:
        return tuple(text.split())


def key_value_list(items: Any, *, none_as_empty: bool = False) -> dict[str, str | None]:
    """`KEY=VALUE` list or mapping to a mapping; later entries win, as in Compose."""
    out: dict[str, str | None] = {}
    if isinstance(items, dict):
        for key, value in items.items():
            if value is None:
                out[str(key)] = "" if none_as_empty else None
            else:
                out[str(key)] = scalar_text(value)
        return out
    for item in items or []:
        text = str(item)
        if "=" in text:
            key, _, value = text.partition("=")
            out[key] = value
        else:
            out[text] = "" if none_as_empty else None
    return out


def _is_path_like(source: str) -> bool:
    return source.startswith(("/", ".", "~")) or (len(source) > 1 and source[1] == ":")


def expand_home(path: str, home: str | None) -> str:
    """`~` and `~/...` with the given HOME (the load's environ, not the process's `$HOME`).

    Without a HOME the path stays as written (Compose v2 warns and does the same); `~user` is
    not looked up in the password database either, so it stays as written too.
    """
    if not home or not (path == "~" or path.startswith("~/")):
        return path
    return home.rstrip("/") + path[1:] or "/"


class Normalizer:
    def __init__(self, report: Report, project_name: str, project_dir: str,
                 variables: Mapping[str, str] | None = None, home: str | None = None) -> None:
        self.report = report
        self.project_name = project_name
        self.project_dir = project_dir
        self.variables: Mapping[str, str] = variables or {}
        self.home = home

    # -- values -------------------------------------------------------------------------------
    def duration(self, value: Any, path: KeyPath) -> int | None:
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value * 1_000_000_000)  # a bare number is seconds
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.report("invalid-duration", str(exc), path,
                        "durations look like 10s, 1m30s, 500ms or 2h")
            return None

    def size(self, value: Any, path: KeyPath) -> int | None:
        if value is None:
            return None
        try:
            return parse_bytes(value)
        except ValueError as exc:
            self.report("invalid-size", str(exc), path,
                        "sizes look like 512m, 1g, 1.5gb, 64k or a number of bytes")
            return None

    def integer(self, value: Any, path: KeyPath) -> int | None:
        if value is None:
            return None
        try:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError  # 1.5 retries is a mistake, not 1
            return int(str(value).strip()) if isinstance(value, str) else int(value)
        except (ValueError, OverflowError):  # OverflowError: .inf
            self.report("schema", f"expected a whole number, got {value!r}", path,
                        "write a whole number, like 2")
            return None

    def number(self, value: Any, path: KeyPath) -> float | None:
        if value is None:
            return None
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            if not math.isfinite(number):
                raise ValueError
            return number
        except ValueError:
            self.report("schema", f"expected a number, got {value!r}", path,
                        "write a number, like 0.5")
            return None

    def boolean(self, value: Any, path: KeyPath, default: bool = False) -> bool:
        if value is None:
            return default
        result = to_bool(value)
        if result is None:
            self.report("schema", f"expected true or false, got {value!r}", path,
                        "write true or false")
            return default
        return result

    def abspath(self, path: str) -> str:
        if "://" in path or path.startswith("git@"):
            return path
        return os.path.normpath(os.path.join(self.project_dir, expand_home(path, self.home)))

    # -- service parts ------------------------------------------------------------------------
    def ports(self, items: list[Any], path: KeyPath) -> tuple[Port, ...]:
        out: list[Port] = []
        index_of: dict[tuple[str | None, str | None, int, str], int] = {}
        for i, item in enumerate(items or []):
            try:
                parsed = [parse_long(item)] if isinstance(item, dict) else parse_short(item)
            except PortOutOfRange as exc:
                self.report("port-range", str(exc), (*path, i),
                            "use a port number from 1 to 65535")
                continue
            except PortSyntaxError as exc:
                self.report("invalid-port", str(exc), (*path, i),
                            "ports look like 8080, \"80:8080\", \"127.0.0.1:80:8080/udp\" or "
                            "the long form with target/published/protocol/mode")
                continue
            for port in parsed:
                key = (port.host_ip, port.published, port.target, port.protocol)
                if key in index_of:
                    out[index_of[key]] = port
                else:
                    index_of[key] = len(out)
                    out.append(port)
        return tuple(out)

    def build(self, raw: Any, path: KeyPath) -> Build | None:
        if raw is None:
            return None
        if isinstance(raw, str):
            raw = {"context": raw}
        context = raw.get("context") or "."
        extra = {k: v for k, v in raw.items()
                 if k not in ("context", "dockerfile", "args", "target", "labels")}
        if extra.get("shm_size") is not None:
            size = self.size(extra["shm_size"], (*path, "shm_size"))
            extra["shm_size"] = None if size is None else str(size)
        if extra.get("extra_hosts") is not None:
            extra["extra_hosts"] = _extra_hosts(extra["extra_hosts"])
        if extra.get("additional_contexts") is not None:
            extra["additional_contexts"] = key_value_list(extra["additional_contexts"],
                                                          none_as_empty=True)
        if isinstance(extra.get("secrets"), list):
            extra["secrets"] = [self.file_ref_dict(item, (*path, "secrets", i))
                                for i, item in enumerate(extra["secrets"])]
        # A build argument without a value takes it from the environment, or is dropped, as in
        # Compose (build arguments are not configs: they end up in the image).
        args = {k: self.variables[k] if v is None else v
                for k, v in key_value_list(raw.get("args")).items()
                if v is not None or k in self.variables}
        return Build(
            context=self.abspath(str(context)),
            dockerfile=None if raw.get("dockerfile_inline") else
            str(raw.get("dockerfile") or "Dockerfile"),
            args=frozen_map(args),
            target=raw.get("target"),
            labels=frozen_map({k: v or "" for k, v in key_value_list(raw.get("labels")).items()}),
            extra=frozen_map(extra),
        )

    def depends_on(self, raw: Any, service: Mapping[str, Any]) -> dict[str, Dependency]:
        """Explicit dependencies, plus those Compose implies: from `links` and a namespace
        shared with another service (`network_mode`, `ipc`, `pid`, `uts`: `service:X`),
        restarted with it; from `volumes_from`, not restarted with it."""
        out: dict[str, Dependency] = {}
        implied: list[tuple[str, bool]] = [(str(link).split(":", 1)[0], True)
                                           for link in service.get("links") or []]
        for key in ("network_mode", "ipc", "pid", "uts"):
            mode = service.get(key)
            if isinstance(mode, str) and mode.startswith("service:"):
                implied.append((mode.split(":", 1)[1], True))
        implied += [(str(v).split(":", 1)[0], False) for v in service.get("volumes_from") or []
                    if not str(v).startswith("container:")]
        if isinstance(raw, list):
            out = {str(name): Dependency() for name in raw}
            raw = {}
        for name, restart in implied:
            if name not in out and name not in (raw or {}):
                out[name] = Dependency(restart=restart)
        for name, spec in (raw or {}).items():
            spec = spec or {}
            out[name] = Dependency(
                condition=str(spec.get("condition") or "service_started"),
                required=bool(to_bool(spec.get("required", True))),
                restart=bool(to_bool(spec.get("restart", False))),
            )
        return out

    def healthcheck(self, raw: Any, path: KeyPath) -> Healthcheck | None:
        if raw is None:
            return None
        test = raw.get("test")
        test_tuple: tuple[str, ...] | None
        if test is None:
            test_tuple = None
        elif isinstance(test, str):
            test_tuple = ("CMD-SHELL", test)
        else:
            test_tuple = tuple(str(t) for t in test)
        retries = raw.get("retries")
        return Healthcheck(
            test=test_tuple,
            interval=self.duration(raw.get("interval"), (*path, "interval")),
            timeout=self.duration(raw.get("timeout"), (*path, "timeout")),
            start_period=self.duration(raw.get("start_period"), (*path, "start_period")),
            start_interval=self.duration(raw.get("start_interval"), (*path, "start_interval")),
            retries=None if retries is None else self.integer(retries, (*path, "retries")),
            disable=self.boolean(raw.get("disable"), (*path, "disable")),
        )

    def resources(self, raw: Any, path: KeyPath) -> ResourceSpec | None:
        if raw is None:
            return None
        extra = {k: v for k, v in raw.items() if k not in ("cpus", "memory", "pids")}
        if isinstance(extra.get("devices"), list):
            extra["devices"] = self.device_requests(extra["devices"], (*path, "devices"))
        return ResourceSpec(
            cpus=self.number(raw.get("cpus"), (*path, "cpus")),
            memory=self.size(raw.get("memory"), (*path, "memory")),
            pids=self.integer(raw.get("pids"), (*path, "pids")),
            extra=frozen_map(extra),
        )

    def deploy(self, raw: Any, path: KeyPath) -> Deploy | None:
        if raw is None:
            return None
        resources = raw.get("resources") or {}
        policy = raw.get("restart_policy")
        restart_policy = None
        if policy is not None:
            p = (*path, "restart_policy")
            restart_policy = RestartPolicy(
                condition=policy.get("condition"),
                delay=self.duration(policy.get("delay"), (*p, "delay")),
                max_attempts=self.integer(policy.get("max_attempts"), (*p, "max_attempts")),
                window=self.duration(policy.get("window"), (*p, "window")),
            )
        extra = {k: v for k, v in raw.items()
                 if k not in ("replicas", "resources", "restart_policy", "labels", "mode")}
        for key in ("update_config", "rollback_config"):
            if isinstance(extra.get(key), dict):
                cfg = dict(extra[key])
                for d in ("delay", "monitor"):
                    if cfg.get(d) is not None:
                        ns = self.duration(cfg[d], (*path, key, d))
                        cfg[d] = cfg[d] if ns is None else format_duration(ns)
                extra[key] = cfg
        return Deploy(
            replicas=self.integer(raw.get("replicas"), (*path, "replicas")),
            limits=self.resources(resources.get("limits"), (*path, "resources", "limits")),
            reservations=self.resources(resources.get("reservations"),
                                        (*path, "resources", "reservations")),
            restart_policy=restart_policy,
            labels=frozen_map({k: v or "" for k, v in key_value_list(raw.get("labels")).items()}),
            mode=raw.get("mode"),
            extra=frozen_map(extra),
        )

    def mounts(self, items: list[Any], path: KeyPath) -> tuple[Mount, ...]:
        out: list[Mount] = []
        index_of: dict[str, int] = {}
        for i, item in enumerate(items or []):
            mount = self.mount(item, (*path, i))
            if mount is None:
                continue
            if mount.target in index_of:
                out[index_of[mount.target]] = mount
            else:
                index_of[mount.target] = len(out)
                out.append(mount)
        return tuple(out)

    def mount(self, item: Any, path: KeyPath) -> Mount | None:
        if isinstance(item, dict):
            kind = str(item.get("type") or "volume")
            source = item.get("source")
            if kind == "bind" and source:
                source = self.abspath(str(source))
            extra = {k: v for k, v in item.items()
                     if k not in ("type", "source", "target", "read_only")}
            tmpfs = extra.get("tmpfs")
            if isinstance(tmpfs, dict) and tmpfs.get("size") is not None:
                size = self.size(tmpfs["size"], (*path, "tmpfs", "size"))
                extra["tmpfs"] = {**tmpfs, "size": None if size is None else str(size)}
            return Mount(type=kind, target=str(item.get("target") or ""), source=source,
                         read_only=self.boolean(item.get("read_only"), (*path, "read_only")),
                         extra=frozen_map(extra))
        text = str(item)
        parts = _split_volume(text)
        if len(parts) == 1:
            return Mount(type="volume", target=parts[0], extra=frozen_map({"volume": {}}))
        if len(parts) > 3:
            self.report("schema", f"invalid volume {text!r}", path,
                        "write VOLUME:TARGET[:MODE], like data:/var/lib/data:ro")
            return None
        source, target = parts[0], parts[1]
        modes = parts[2].split(",") if len(parts) == 3 else []
        read_only = "ro" in modes
        if _is_path_like(source):
            bind: dict[str, Any] = {"create_host_path": True}
            for mode in modes:
                if mode in ("z", "Z"):
                    bind["selinux"] = mode
                elif mode in ("shared", "rshared", "slave", "rslave", "private", "rprivate"):
                    bind["propagation"] = mode
            return Mount(type="bind", source=self.abspath(source), target=target,
                         read_only=read_only, extra=frozen_map({"bind": bind}))
        volume: dict[str, Any] = {}
        if "nocopy" in modes:
            volume["nocopy"] = True
        return Mount(type="volume", source=source, target=target, read_only=read_only,
                     extra=frozen_map({"volume": volume}))

    def file_refs(self, items: list[Any], path: KeyPath, default_dir: str | None = None
                  ) -> tuple[FileReference, ...]:
        """Secrets (with `default_dir` /run/secrets, the default target) and configs."""
        out: list[FileReference] = []
        for i, item in enumerate(items or []):
            if isinstance(item, str):
                item = {"source": item}
            if default_dir and not item.get("target"):
                item = {**item, "target": f"{default_dir}/{item.get('source', '')}"}
            out.append(FileReference(source=str(item.get("source", "")), target=item.get("target"),
                                     uid=item.get("uid"), gid=item.get("gid"),
                                     mode=self.file_mode(item.get("mode"), (*path, i, "mode"))))
        return tuple(out)

    def file_mode(self, mode: Any, path: KeyPath) -> int | None:
        """A file mode: an octal string (`"0440"`), or a number (YAML reads `0440` as octal)."""
        if mode is None:
            return None
        try:
            return int(str(mode), 8) if isinstance(mode, str) else int(mode)
        except ValueError:
            self.report("schema", f"invalid file mode {mode!r}", path,
                        "use an octal mode such as 0440")
            return None

    def file_ref_dict(self, item: Any, path: KeyPath) -> dict[str, Any]:
        """A build secret in long form, its mode printed in octal as Compose prints it."""
        if not isinstance(item, dict):
            return {"source": str(item)}
        out = dict(item)
        mode = self.file_mode(item.get("mode"), path)
        if mode is not None:
            out["mode"] = "0" + format(mode, "o")
        return out

    def device_requests(self, items: list[Any], path: KeyPath) -> list[Any]:
        """GPU and device reservations as Compose prints them: `count` -1 ("all") unless
        `device_ids` name the devices, and every option a string."""
        out: list[Any] = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                out.append(item)
                continue
            request = dict(item)
            count = request.get("count")
            if count is None and not request.get("device_ids") or count == "all":
                request["count"] = -1
            elif count is not None:
                request["count"] = self.integer(count, (*path, i, "count"))
            if request.get("options") is not None:
                request["options"] = key_value_list(request["options"], none_as_empty=True)
            out.append(request)
        return out

    def service_networks(self, raw: Any) -> dict[str, ServiceNetwork | None]:
        if raw is None:
            return {}
        if isinstance(raw, list):
            return {str(n): None for n in raw}
        out: dict[str, ServiceNetwork | None] = {}
        for name, spec in raw.items():
            if spec is None:
                out[name] = None
                continue
            extra = {k: v for k, v in spec.items()
                     if k not in ("aliases", "ipv4_address", "ipv6_address")}
            if isinstance(extra.get("driver_opts"), dict):
                extra["driver_opts"] = _driver_opts(extra["driver_opts"])
            out[name] = ServiceNetwork(
                aliases=tuple(_unique(str(a) for a in spec.get("aliases") or [])),
                ipv4_address=spec.get("ipv4_address"),
                ipv6_address=spec.get("ipv6_address"),
                extra=frozen_map(extra),
            )
        return out

    def service(self, name: str, raw: dict[str, Any], environment: Mapping[str, str | None]
                ) -> Service:
        path: KeyPath = ("services", name)
        extra: dict[str, Any] = {}
        extensions: dict[str, Any] = {}
        for key, value in raw.items():
            if key.startswith("x-"):
                extensions[key] = value
            elif key not in MODELED_SERVICE_KEYS:
                extra[key] = self.extra_value(key, value, (*path, key))
        networks = self.service_networks(raw.get("networks"))
        if not networks and "network_mode" not in raw and "provider" not in raw:
            networks = {"default": None}
        return Service(
            name=name,
            image=raw.get("image"),
            build=self.build(raw.get("build"), (*path, "build")),
            command=split_command(raw.get("command")),
            entrypoint=split_command(raw.get("entrypoint")),
            environment=frozen_map(environment),
            ports=self.ports(raw.get("ports") or [], (*path, "ports")),
            expose=tuple(_unique(scalar_text(e) for e in raw.get("expose") or [])),
            depends_on=frozen_map(self.depends_on(raw.get("depends_on"), raw)),
            healthcheck=self.healthcheck(raw.get("healthcheck"), (*path, "healthcheck")),
            deploy=self.deploy(raw.get("deploy"), (*path, "deploy")),
            restart=raw.get("restart"),
            stop_grace_period=self.duration(raw.get("stop_grace_period"),
                                            (*path, "stop_grace_period")),
            networks=frozen_map(networks),
            volumes=self.mounts(raw.get("volumes") or [], (*path, "volumes")),
            secrets=self.file_refs(raw.get("secrets") or [], (*path, "secrets"), "/run/secrets"),
            configs=self.file_refs(raw.get("configs") or [], (*path, "configs")),
            labels=frozen_map(self.labels(raw, path)),
            domainname=raw.get("domainname"),
            hostname=raw.get("hostname"),
            user=None if raw.get("user") is None else scalar_text(raw["user"]),
            working_dir=raw.get("working_dir"),
            profiles=tuple(_unique(raw.get("profiles") or [])),
            extensions=frozen_map(extensions),
            extra=frozen_map(extra),
        )

    def labels(self, raw: Mapping[str, Any], path: KeyPath) -> dict[str, str]:
        """`label_file` entries in order, then `labels` on top, as in Compose."""
        out: dict[str, str] = {}
        for index, file in enumerate(raw.get("label_file") or []):
            where = (*path, "label_file", index)
            try:
                with open(str(file), encoding="utf-8") as handle:
                    out.update(parse_dotenv(handle.read(), lambda _name: None))
            except OSError:
                self.report("file-not-found", f"the label file {file} does not exist", where,
                            "create it or fix the path (relative to the project directory)")
            except DotenvError as exc:
                self.report("env-file-syntax", f"{file}:{exc.line}: {exc.message}", where,
                            "lines look like KEY=value")
        out.update({k: v or "" for k, v in key_value_list(raw.get("labels")).items()})
        return out

    def extra_value(self, key: str, value: Any, path: KeyPath) -> Any:
        """Light normalization of the keys Dockyard keeps but does not model one by one."""
        if value is None:
            return None
        if key in _BOOL_KEYS:
            return self.boolean(value, path)
        if key in _INT_KEYS:
            return self.integer(value, path)
        if key == "mem_swappiness":  # a number Compose prints as a string
            number = self.integer(value, path)
            return None if number is None else str(number)
        if key in ("post_start", "pre_stop") and isinstance(value, list):
            return [self.hook(h) if isinstance(h, dict) else h for h in value]
        if key == "develop" and isinstance(value, dict):
            return self.develop(value)
        if key in _SIZE_KEYS:
            size = self.size(value, path)
            return None if size is None else str(size)  # Compose prints bytes as a string
        if key == "pull_policy":
            return "missing" if value == "if_not_present" else value
        if key == "stop_signal":
            return str(value)
        if key in ("cap_add", "cap_drop", "dns_opt", "security_opt", "links", "external_links",
                   "volumes_from", "device_cgroup_rules", "group_add"):
            return list(_unique(scalar_text(v) for v in value))
        if key == "dns":  # Compose drops an empty entry (`dns: ""` is no DNS server)
            return [v for v in _unique([value] if isinstance(value, str) else value) if v]
        if key in ("dns_search", "tmpfs"):
            return list(_unique([value] if isinstance(value, str) else value))
        if key == "devices":
            return [_device(v) for v in value]
        if key == "gpus":
            return self.device_requests([{}] if value == "all" else list(value), path)
        if key == "models":  # the models a service uses: {name: None or its variables}
            return {str(m): None for m in value} if isinstance(value, list) else dict(value)
        if key == "provider" and isinstance(value, dict):
            return _provider(value)
        if key == "blkio_config" and isinstance(value, dict):
            return self.blkio(value, path)
        if key == "logging" and isinstance(value, dict) and isinstance(value.get("options"),
                                                                          dict):
            return {**value, "options": {k: None if v is None else scalar_text(v)
                                         for k, v in value["options"].items()}}
        if key == "storage_opt" and isinstance(value, dict):
            return _driver_opts(value)
        if key in ("sysctls", "annotations"):
            return {k: v or "" for k, v in key_value_list(value).items()}
        if key == "extra_hosts":
            return _extra_hosts(value)
        if key == "ulimits":
            return {n: (self.integer(v, (*path, n)) if not isinstance(v, dict)
                        else {"soft": self.integer(v.get("soft"), (*path, n, "soft")),
                              "hard": self.integer(v.get("hard"), (*path, n, "hard"))})
                    for n, v in value.items()}
        return value

    def hook(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """A lifecycle hook (`post_start`, `pre_stop`, a watch's `exec`) as Compose prints it:
        the command split into a list, the environment a map (a name without a value takes it
        from the variables, or is dropped)."""
        out = dict(raw)
        if out.get("command") is not None:
            out["command"] = list(split_command(out["command"]) or ())
        if out.get("environment") is not None:
            out["environment"] = {
                k: self.variables[k] if v is None else v
                for k, v in key_value_list(out["environment"]).items()
                if v is not None or k in self.variables}
        return out

    def develop(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """`develop.watch` with each path absolute and each `exec` hook in long form."""
        out = dict(raw)
        if isinstance(raw.get("watch"), list):
            watch = []
            for rule in raw["watch"]:
                rule = dict(rule) if isinstance(rule, dict) else rule
                if isinstance(rule, dict):
                    if isinstance(rule.get("path"), str):
                        rule["path"] = self.abspath(rule["path"])
                    if isinstance(rule.get("exec"), dict):
                        rule["exec"] = self.hook(rule["exec"])
                watch.append(rule)
            out["watch"] = watch
        return out

    def blkio(self, value: Mapping[str, Any], path: KeyPath) -> dict[str, Any]:
        """`blkio_config` as Compose prints it: `Path` with `Rate` (bytes, or operations, as a
        string) or `Weight`."""
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "weight":
                out[key] = self.integer(item, (*path, key))
            elif isinstance(item, list):
                entries = []
                for i, entry in enumerate(item):
                    where = (*path, key, i)
                    entry = {k.lower(): v for k, v in entry.items()}  # printed capitalized
                    if key == "weight_device":
                        entries.append({"Path": entry.get("path"),
                                        "Weight": self.integer(entry.get("weight"),
                                                               (*where, "weight"))})
                        continue
                    rate = self.size(entry.get("rate"), (*where, "rate"))
                    entries.append({"Path": entry.get("path"),
                                    "Rate": None if rate is None else str(rate)})
                out[key] = entries
            else:
                out[key] = item
        return out

    # -- top level ----------------------------------------------------------------------------
    def resources_of(self, kind: str, raw: Mapping[str, Any]) -> dict[str, Resource]:
        out: dict[str, Resource] = {}
        for key, spec in (raw or {}).items():
            spec = dict(spec or {})
            external_raw = spec.pop("external", None)
            external = bool(to_bool(external_raw)) if not isinstance(external_raw, dict) \
                else True
            name = spec.pop("name", None)
            if name is None and isinstance(external_raw, dict):
                name = external_raw.get("name")
            if name is None:
                name = key if external else f"{self.project_name}_{key}"
            if kind in ("secrets", "configs") and isinstance(spec.get("file"), str):
                spec["file"] = self.abspath(spec["file"])
            if isinstance(spec.get("driver_opts"), dict):
                spec["driver_opts"] = _driver_opts(spec["driver_opts"])
            if spec.get("labels") is not None:  # a list or a mapping: a mapping of strings
                spec["labels"] = key_value_list(spec["labels"], none_as_empty=True)
            out[key] = Resource(name=str(name), external=external, settings=frozen_map(spec))
        return out


def _split_volume(text: str) -> list[str]:
    """`SOURCE:TARGET[:MODE]`, keeping a Windows drive letter (`C:\\x`) in the source."""
    parts = text.split(":")
    if len(parts) > 1 and len(parts[0]) == 1 and parts[0].isalpha() and parts[1].startswith(
        ("\\", "/")
    ):
        parts = [parts[0] + ":" + parts[1], *parts[2:]]
    return parts


def _extra_hosts(value: Any) -> list[str]:
    """`host=ip` entries sorted by host (Compose keeps them in a map), IPv6 without brackets."""
    pairs: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for host, ips in value.items():
            for ip in ips if isinstance(ips, list) else [ips]:
                pairs.append((str(host), str(ip)))
    else:
        for entry in value:
            text = str(entry)
            sep = "=" if "=" in text else ":"
            host, _, ips = text.partition(sep)
            # `host=ip1,ip2` is one entry per address, as in Compose (not in the mapping form)
            pairs.extend((host, ip) for ip in ips.split(","))
    out = []
    for host, ip in sorted(pairs, key=lambda pair: pair[0]):
        if ip.startswith("[") and ip.endswith("]"):
            ip = ip[1:-1]
        out.append(f"{host}={ip}")
    return out


def _driver_opts(value: Mapping[str, Any]) -> dict[str, str]:
    """Driver (and storage) options as Compose prints them: every value a string (`mtu:
    1450` -> "1450")."""
    return {str(k): scalar_text(v) for k, v in value.items()}


def _provider(value: Mapping[str, Any]) -> dict[str, Any]:
    """A `provider:` service's settings as Compose prints them: each option a list of strings
    (an option may be repeated on a provider's command line)."""
    out = dict(value)
    options = value.get("options")
    if isinstance(options, dict):
        out["options"] = {
            str(k): [scalar_text(v) for v in (item if isinstance(item, list) else [item])]
            for k, item in options.items()}
    return out


def _device(value: Any) -> Any:
    """A short `devices` entry in Compose's long form: `SOURCE[:TARGET[:PERMISSIONS]]`, where
    TARGET defaults to SOURCE and PERMISSIONS to rwm."""
    if isinstance(value, dict):
        return value  # the long form is printed as written
    parts = str(value).split(":")
    source = parts[0]
    target = source
    permissions = "rwm"
    if len(parts) == 2:
        target = parts[1]  # even `rw`: Compose reads the second field as the target
    elif len(parts) >= 3:
        target, permissions = parts[1], ":".join(parts[2:])
    return {"source": source, "target": target, "permissions": permissions}


def _unique(items: Any) -> list[Any]:
    seen: list[Any] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def make_project(
    normalizer: Normalizer,
    data: Mapping[str, Any],
    environments: Mapping[str, Mapping[str, str | None]],
    compose_files: tuple[str, ...],
    disabled: tuple[str, ...],
) -> Project:
    services = {
        name: normalizer.service(name, raw or {}, environments.get(name, {}))
        for name, raw in sorted((data.get("services") or {}).items())
    }
    # Like `docker compose config`, keep only the top-level resources some service uses.
    used_networks = {n for s in services.values() for n in s.networks}
    used_volumes = {m.source for s in services.values() for m in s.volumes
                    if m.type == "volume" and m.source}
    used_secrets = {r.source for s in services.values() for r in s.secrets}
    used_configs = {r.source for s in services.values() for r in s.configs}
    used_models = {m for s in services.values() for m in s.extra.get("models") or {}}
    for s in services.values():
        if s.build is not None:
            used_secrets |= {r if isinstance(r, str) else str(r.get("source"))
                             for r in s.build.extra.get("secrets") or []}
    networks_raw = {k: v for k, v in (data.get("networks") or {}).items() if k in used_networks}
    if "default" in used_networks and "default" not in networks_raw:
        networks_raw["default"] = None

    def used(section: str, names: set[str]) -> dict[str, Any]:
        return {k: v for k, v in (data.get(section) or {}).items() if k in names}

    return Project(
        name=normalizer.project_name,
        working_dir=normalizer.project_dir,
        compose_files=compose_files,
        services=frozen_map(services),
        networks=frozen_map(normalizer.resources_of("networks", networks_raw)),
        volumes=frozen_map(normalizer.resources_of("volumes", used("volumes", used_volumes))),
        secrets=frozen_map(normalizer.resources_of("secrets", used("secrets", used_secrets))),
        configs=frozen_map(normalizer.resources_of("configs", used("configs", used_configs))),
        models=frozen_map(used("models", used_models)),
        extensions=frozen_map({k: v for k, v in data.items() if k.startswith("x-")}),
        disabled_services=disabled,
    )
