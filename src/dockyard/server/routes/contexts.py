"""`/v1/contexts/<digest>`: build contexts, uploaded once and kept by digest per account."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from dockyard.server.auth import Who
from dockyard.server.control import ControlPlane
from dockyard.wire_models import ContextStored

UPLOAD_BATCH = 1 << 20  # bytes of a context upload held in memory at most


def add_routes(api: APIRouter, control: ControlPlane) -> None:

    @api.head("/v1/contexts/{digest}")
    def has_context(digest: str, who: Who) -> Response:
        return Response(status_code=200 if control.contexts.has(digest, str(who.id)) else 404)

    @api.put("/v1/contexts/{digest}", status_code=201)
    async def put_context(digest: str, request: Request, who: Who) -> ContextStored:
        """Stream the body to a temporary file of the context store, at most UPLOAD_BATCH
        bytes in memory; 413 at the first chunk over the size limit or the account's quota."""
        limits = control.settings.limits
        quota = limits.context_bytes if limits is not None else 0
        upload = await run_in_threadpool(control.contexts.begin, digest, str(who.id), quota)
        try:
            declared = request.headers.get("content-length", "")
            if declared.isdigit():
                upload.expect(int(declared))
            batch = bytearray()
            async for chunk in request.stream():
                batch += chunk
                if len(batch) >= UPLOAD_BATCH:
                    await run_in_threadpool(upload.write, bytes(batch))
                    batch.clear()
            await run_in_threadpool(upload.write, bytes(batch))
            await run_in_threadpool(upload.finish)
        finally:
            await run_in_threadpool(upload.close)
        return ContextStored(digest=digest)

