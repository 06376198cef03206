"""Running a Pulumi program under the SDK's mocks (`pulumi.runtime.set_mocks`), as Pulumi
documents for unit tests: every resource the program registers is recorded with its inputs,
and answered with those inputs plus the outputs a test chooses."""

from __future__ import annotations

import asyncio
import gc
import os
import runpy
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import rpc, settings
from pulumi.runtime.mocks import MockMonitor

DYNAMIC_PROJECT = "pulumi-python:dynamic/dockyard:Project"


class Recorder(pulumi.runtime.Mocks):
    """Records each registration as (type, name, inputs); `outputs` adds outputs to one."""

    def __init__(self, outputs: Callable[[str, str, dict[str, Any]], dict[str, Any]] | None = None
                 ) -> None:
        self.registered: list[tuple[str, str, dict[str, Any]]] = []
        self.outputs = outputs

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        self.registered.append((args.typ, args.name, inputs))
        extra = self.outputs(args.typ, args.name, inputs) if self.outputs else {}
        return f"{args.name}-id", {**inputs, **extra}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None

    def of_type(self, typ: str) -> list[tuple[str, dict[str, Any]]]:
        return [(name, inputs) for t, name, inputs in self.registered if t == typ]


def _close_thread_loop() -> None:
    """Close the event loop the mock monitor made for this worker thread (Pulumi's
    `_ensure_event_loop`), so that none is left for the garbage collector to warn about."""
    if threading.current_thread() is threading.main_thread():
        return
    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:
        return
    if not loop.is_running():
        loop.close()
        asyncio.set_event_loop(None)


class _Monitor(MockMonitor):
    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC's name
        try:
            return super().RegisterResource(request)  # type: ignore[no-untyped-call]
        finally:
            _close_thread_loop()

    def ReadResource(self, request: Any) -> Any:  # noqa: N802 - gRPC's name
        try:
            return super().ReadResource(request)  # type: ignore[no-untyped-call]
        finally:
            _close_thread_loop()

    def Invoke(self, request: Any) -> Any:  # noqa: N802 - gRPC's name
        try:
            return super().Invoke(request)  # type: ignore[no-untyped-call]
        finally:
            _close_thread_loop()


@contextmanager
def _cwd(directory: Path) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(before)


def run_program(program: Path | Callable[[], Any], mocks: Recorder,
                config: Mapping[str, str] | None = None,
                secret_keys: tuple[str, ...] = (), project: str = "test") -> None:
    """Run a program (a `__main__.py`, in its directory as Pulumi runs it, or a function)
    under `mocks`, until every registration is done. `config` is the stack's config
    (`project:key` -> value); `secret_keys` are the secret ones; `project` is the Pulumi
    project's name (`name:` of its Pulumi.yaml)."""
    # A fresh event loop and root stack: a program that failed leaves failed Outputs behind,
    # which the next program's run would otherwise report as its own.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=project, stack="test", preview=False,
                             monitor=_Monitor(mocks))
    pulumi.runtime.set_all_config(dict(config or {}), list(secret_keys))

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def run() -> None:
        if isinstance(program, Path):
            path = program.resolve()
            with _cwd(path.parent):
                runpy.run_path(str(path), run_name="__main__")
        else:
            program()

    try:
        run()
    finally:
        _retrieve_failures(loop)
        loop.close()
        asyncio.set_event_loop(None)


def _retrieve_failures(loop: asyncio.AbstractEventLoop) -> None:
    """Take the errors of a failed program's Outputs: it raised them already, and asyncio
    would log each again when its future is collected."""
    futures = [*settings.SETTINGS.outputs, *asyncio.all_tasks(loop),
               *(o for o in gc.get_objects() if isinstance(o, asyncio.Future))]
    for future in futures:
        if future.done() and not future.cancelled():
            future.exception()
    settings.SETTINGS.outputs.clear()


def is_secret(value: Any) -> bool:
    return bool(rpc.is_rpc_secret(value))


def plain_strings(value: Any, inside_secret: bool = False) -> Iterator[str]:
    """Every string in `value` that is not inside a value marked secret."""
    if rpc.is_rpc_secret(value):
        yield from plain_strings(value["value"], True)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not inside_secret:
                yield str(key)
            yield from plain_strings(item, inside_secret)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from plain_strings(item, inside_secret)
    elif isinstance(value, str) and not inside_secret:
        yield value
