"""Compose port syntax, short and long, into `Port` values.

Short syntax is `[[HOST_IP:][PUBLISHED]:]TARGET[/PROTOCOL]` where PUBLISHED and TARGET may be
ranges; a range of targets expands to one port each, as Compose does. IPv6 host addresses are
written in brackets (`[::1]:6001:6001`). A bare number is a target port.
"""

from __future__ import annotations

import re
from typing import Any

from dockyard.compose.models import Port, PortMode

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


class PortSyntaxError(ValueError):
    pass


class PortOutOfRange(PortSyntaxError):
    """A port number outside 1-65535, found while parsing (so a range is never expanded)."""


def _parse_range(text: str, what: str, spec: str) -> tuple[int, int]:
    m = _RANGE.match(text)
    if m is None:
        raise PortSyntaxError(f"invalid {what} {text!r} in port {spec!r}")
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else start
    for number in (start, end):
        if not 1 <= number <= 65535:
            raise PortOutOfRange(f"port {number} is outside 1-65535")
    if end < start:
        raise PortSyntaxError(f"invalid {what} range {text!r} in port {spec!r}: end before start")
    return start, end


def parse_short(spec: str | int | float) -> list[Port]:
    if isinstance(spec, bool):
        raise PortSyntaxError(f"invalid port {spec!r}")
    if isinstance(spec, int | float):
        if isinstance(spec, float) and not spec.is_integer():
            raise PortSyntaxError(f"invalid port {spec!r}")
        return [Port(target=int(spec))]
    text = spec.strip()
    protocol = "tcp"
    if "/" in text:
        text, protocol = text.rsplit("/", 1)
        if not protocol:
            raise PortSyntaxError(f"invalid protocol in port {spec!r}")
    host_ip: str | None = None
    if text.startswith("["):
        close = text.find("]")
        if close == -1 or text[close + 1: close + 2] != ":":
            raise PortSyntaxError(f"invalid IPv6 address in port {spec!r}")
        host_ip = text[1:close]
        rest = text[close + 2:]
        parts = rest.split(":")
        if len(parts) == 1:
            parts = ["", parts[0]]
        if len(parts) != 2:
            raise PortSyntaxError(f"invalid port {spec!r}")
        published, target = parts
    else:
        parts = text.split(":")
        if len(parts) == 1:
            published, target = "", parts[0]
        elif len(parts) == 2:
            published, target = parts
        elif len(parts) == 3:
            host_ip, published, target = parts
        else:
            raise PortSyntaxError(
                f"invalid port {spec!r}: use [HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL]"
            )
    t_start, t_end = _parse_range(target, "container port", spec)
    host_ip = host_ip or None
    if not published:
        return [Port(target=t, host_ip=host_ip, protocol=protocol)
                for t in range(t_start, t_end + 1)]
    p_start, p_end = _parse_range(published, "published port", spec)
    if t_start == t_end:
        pub = str(p_start) if p_start == p_end else f"{p_start}-{p_end}"
        return [Port(target=t_start, published=pub, host_ip=host_ip, protocol=protocol)]
    if (t_end - t_start) != (p_end - p_start):
        raise PortSyntaxError(
            f"invalid port {spec!r}: the published range and the container range differ in size"
        )
    return [
        Port(target=t, published=str(p_start + i), host_ip=host_ip, protocol=protocol)
        for i, t in enumerate(range(t_start, t_end + 1))
    ]


def parse_long(spec: dict[str, Any]) -> Port:
    target = spec.get("target")
    if target is None:
        raise PortSyntaxError("a port in long syntax needs 'target'")
    try:
        target_int = int(str(target).strip())
    except ValueError:
        raise PortSyntaxError(f"invalid container port {target!r}") from None
    published = spec.get("published")
    pub = None if published is None or published == "" else str(published)
    if pub is not None:
        _parse_range(pub, "published port", pub)
    mode = str(spec.get("mode") or PortMode.INGRESS.value)
    return Port(
        target=target_int,
        published=pub,
        host_ip=spec.get("host_ip") or None,
        protocol=str(spec.get("protocol") or "tcp"),
        mode=mode,
        app_protocol=spec.get("app_protocol"),
        name=spec.get("name"),
    )


def port_numbers(port: Port) -> list[int]:
    """The target and every published port number, for range checks."""
    numbers = [port.target]
    if port.published:
        start, _, end = port.published.partition("-")
        numbers.append(int(start))
        if end:
            numbers.append(int(end))
    return numbers
