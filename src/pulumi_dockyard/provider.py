"""The dynamic providers: Pulumi's create, diff, update, read and delete of a Project, each
one call of `operations`.

Pulumi pickles a provider with `dill` into the stack's state and runs it in another process
(`python -m pulumi.dynamic`), so a provider holds nothing: no client, no lock, no connection.
Each operation opens its own client from the resource's properties.
`tests/unit/test_pulumi_provider.py` round-trips it through another process.

Secrets: Pulumi hands a dynamic provider plain values (it declares no secret support), so
every output that carries the program's config values (`configs`) is returned marked secret,
and Pulumi keeps it encrypted in the state as it keeps the secret input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)
from pulumi.runtime import rpc

from pulumi_dockyard import operations
from pulumi_dockyard.errors import PulumiDockyardError
from pulumi_dockyard.fields import to_compose

# Set by Pulumi on a dynamic provider's properties: the pickled provider itself.
_PROVIDER_KEY = "__provider"


def plain(value: Any) -> Any:
    """`value` with Pulumi's secret markers taken off (the provider's inputs and old outputs
    may carry them); what the server is sent."""
    value = rpc.unwrap_rpc_secret(value)
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items() if k != _PROVIDER_KEY}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _unknown(value: Any) -> bool:
    if isinstance(value, str):
        return value == rpc.UNKNOWN
    if isinstance(value, Mapping):
        return any(_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_unknown(v) for v in value)
    return False


def _outs(props: Mapping[str, Any], found: Mapping[str, Any]) -> dict[str, Any]:
    """The outputs: the inputs, the configs marked secret, what the server answered."""
    out = {k: v for k, v in props.items() if k != "configs"}
    out["configs"] = rpc.wrap_rpc_secret(dict(props.get("configs") or {}))
    out.update(found)
    return out


class ProjectProvider(ResourceProvider):
    """A Dockyard project: `create` and `update` deploy and wait, `diff` is Dockyard's plan,
    `read` is `ps`, `delete` is `down`. Stateless, so that Pulumi can pickle it."""

    serialize_as_secret_always = False  # nothing secret is captured: it holds nothing

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        props = plain(news)
        failures = []
        if not _unknown(props):
            try:
                to_compose(str(props.get("project_name") or ""), props.get("services") or {},
                           str(props.get("program_dir") or "."), props.get("networks"),
                           props.get("volumes"))
            except PulumiDockyardError as exc:
                where = getattr(exc, "path", "services")
                failures.append(CheckFailure(where.split(".")[0], str(exc)))
        return CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = plain(props)
        resource_id = operations.new_id(str(inputs["project_name"]))
        found = operations.deploy(inputs, resource_id, first=True)
        return CreateResult(resource_id, _outs(inputs, found))

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        old, new = plain(olds), plain(news)
        if _unknown(new):
            return DiffResult(changes=None)  # Pulumi compares the inputs itself
        changed, replaces = operations.changes(old, new, id_)
        return DiffResult(changes=changed, replaces=replaces, delete_before_replace=False)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        old, new = plain(olds), plain(news)
        found = operations.deploy(new, id_, first=False, old_configs=old.get("configs"))
        return UpdateResult(_outs(new, found))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        inputs = plain(props)
        found = operations.read(inputs)
        if found is None:
            return ReadResult(None, {})  # gone: Pulumi drops it from the state
        return ReadResult(id_, _outs(inputs, found))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        operations.delete(plain(props), id_)
