"""httpx, imported without its command-line tool.

`import httpx` also imports `httpx._main` (its own CLI) when `click` is installed, which pulls
in click, rich and pygments: about 100 ms of every `dockyard` command's start-up, measured here.
Marking that one module absent makes httpx skip it, as it does when click is missing; nothing
of the client API depends on it.
"""

from __future__ import annotations

import sys

if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import httpx  # noqa: E402

__all__ = ["httpx"]
