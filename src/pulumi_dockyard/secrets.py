"""The program's secrets become Dockyard configs, before anything is registered.

A `services` map may hold `pulumi.Output`s anywhere; some are secret (`Output.secret(...)`,
`Config().require_secret(...)`). Pulumi would send the provider their plain values, so they
are taken out here, in the program: an environment value that is secret becomes the config of
the variable's name, and the environment refers to it (`NAME: ${NAME}`, filled by the server
when it deploys). The configs travel as one secret input (encrypted in Pulumi's state,
encrypted at rest on the server); the services the provider sees, records and sends hold
no secret. A secret anywhere else (an image, a command) has no config to become: an error
names where it is.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from pulumi_dockyard.errors import UnsupportedField

CONFIG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


@dataclass
class _Found:
    configs: dict[str, str] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)  # config -> the first path using it
    resources: set[pulumi.Resource] = field(default_factory=set)
    known: bool = True


async def _walk(value: Any, path: tuple[str, ...], secret: bool, found: _Found) -> Any:
    if isinstance(value, pulumi.Output):
        found.resources |= await value.resources()
        known = await value.is_known()
        secret = secret or await value.is_secret()
        inner = await value.future(with_unknowns=True)
        if not known:
            found.known = False
            return None
        return await _walk(inner, path, secret, found)
    if isinstance(value, Awaitable):
        return await _walk(await value, path, secret, found)
    if isinstance(value, Mapping):
        return {k: await _walk(v, (*path, str(k)), secret, found) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [await _walk(v, (*path, str(i)), secret, found) for i, v in enumerate(value)]
    if not secret or value is None:
        return value
    return _config(value, path, found)


def _config(value: Any, path: tuple[str, ...], found: _Found) -> str:
    where = "services." + ".".join(path)
    if len(path) != 3 or path[1] != "environment":
        raise UnsupportedField(where, "a secret can only be an environment value (it becomes "
                               "a Dockyard config)", "pass the secret in `environment`")
    name = path[2]
    if not CONFIG_NAME.fullmatch(name):
        raise UnsupportedField(where, f"{name!r} cannot name a Dockyard config (a letter or "
                               "_, then up to 63 letters, digits or _)",
                               "rename the variable")
    text = str(value)
    if name in found.configs and found.configs[name] != text:
        raise UnsupportedField(where, f"the secret differs from the one of "
                               f"{found.where[name]}, and both would be the config {name}",
                               "give the variables different names")
    found.configs[name] = text
    found.where.setdefault(name, where)
    return "${" + name + "}"


def split(services: Any) -> tuple[pulumi.Output[Any], pulumi.Output[dict[str, str]]]:
    """(the services with each secret replaced by a reference to its config, the configs as
    one secret Output). Both depend on every resource the services depend on."""
    done: asyncio.Future[tuple[Any, _Found]] = asyncio.ensure_future(_split(services))

    def part(pick: Callable[[tuple[Any, _Found]], Any]) -> asyncio.Future[Any]:
        async def get() -> Any:
            return pick(await done)

        task = asyncio.ensure_future(get())
        # An error is the Outputs' to report: retrieved here, so it is not logged again.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return task

    def outputs(secret: bool) -> tuple[Any, ...]:
        return (part(lambda r: r[1].resources), part(lambda r: r[1].known),
                part(lambda r: secret))

    resources, known, public = outputs(False)
    plain = pulumi.Output(resources, part(lambda r: r[0]), known, public)
    resources, known, secret = outputs(True)
    configs = pulumi.Output(resources, part(lambda r: r[1].configs), known, secret)
    return plain, configs


async def _split(services: Any) -> tuple[Any, _Found]:
    found = _Found()
    plain = await _walk(services, (), False, found)
    return plain, found
