"""Pulumi's dynamic provider host as the engine runs it: `python -m pulumi.dynamic` in its own
process, spoken to over gRPC with the engine's wire format (properties as protobuf Structs)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc  # type: ignore[import-untyped]  # grpcio ships no type hints
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2_grpc

from pulumi_dockyard import ProjectProvider


def struct(props: dict[str, Any]) -> Any:
    """`props` as the engine sends them (Pulumi's own serialization)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(rpc.serialize_properties(props, {}))
    finally:
        loop.close()


def unstruct(value: Any) -> Any:
    """A Struct the host answered, as Python values (secrets keep their marker)."""
    return rpc.deserialize_properties(value)


def with_provider(props: dict[str, Any]) -> dict[str, Any]:
    """The properties of a Project's dynamic resource: its inputs and the pickled provider."""
    return {"__provider": serialize_provider(ProjectProvider()), **props}


@contextmanager
def provider_host() -> Iterator[Any]:
    """A running host and a gRPC client of it (`ResourceProviderStub`); it inherits this
    process's environment (DOCKYARD_HOME ...), as the engine's child inherits the user's."""
    process = subprocess.Popen([sys.executable, "-m", "pulumi.dynamic"],
                               stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    port = process.stdout.readline().strip()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield provider_pb2_grpc.ResourceProviderStub(channel)
    finally:
        channel.close()
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()
