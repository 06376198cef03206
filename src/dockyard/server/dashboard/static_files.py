"""The dashboard's static files (its stylesheet and scripts, htmx vendored) as one route.

A route rather than a mounted directory: only the files shipped in `static/` are known, by
name, so no path a request names reaches the file system; and like every other route of the
app it is an `APIRoute` that the tests enumerate.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from dockyard.api_errors import NotFound

KINDS = {".css": "text/css", ".js": "text/javascript", ".md": "text/plain",
         ".LICENSE": "text/plain"}
CACHE = "public, max-age=3600"


def shipped(root: Path) -> dict[str, Path]:
    """Every file under `root`, by its path relative to it (`vendor/htmx.min.js`)."""
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix in KINDS}


def add_static(router: APIRouter, root: Path) -> None:
    files = shipped(root)

    @router.get("/static/{name:path}", include_in_schema=False)
    def static(name: str) -> Response:
        path = files.get(name)
        if path is None:
            raise NotFound(f"no dashboard file {name!r}")
        return FileResponse(path, media_type=KINDS[path.suffix],
                            headers={"Cache-Control": CACHE, "X-Content-Type-Options": "nosniff"})
