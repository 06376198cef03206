"""Engine error texts made safe to show a tenant.

The engine's errors are written for its owner: they may quote a file the engine read, an
environment it was given, or a path of the server's own. Before such a text reaches a tenant
(a service's reason in `ps`, an API error), it is reduced to one short line: control
characters (NUL included) become spaces, the engine's URLs, the server's data directory and
its secret files' paths are masked, whatever follows "environment variable" (where the engine
quotes values) is dropped, and the rest is cut to `MAX_CHARS`.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

MAX_CHARS = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_ENVIRONMENT = re.compile(r"(environment variable)s?\b.*", re.IGNORECASE | re.DOTALL)
_ENGINE_URL = re.compile(r"\b(?:http\+docker|http\+unix|unix|tcp|npipe)://\S+")
# Where the server keeps secret files by default (`server.tmpfs`): the engine quotes such a path
# when a mount fails; it names the server's id and the project's engine scope.
_SECRETS_DIR = re.compile(r"(?:/run/dockyard/|/dev/shm/dockyard-\d+/|/run/user/\d+/dockyard/)"
                          r"[^\s:\"']*")


@functools.lru_cache(maxsize=8)
def _data_forms(data: Path) -> tuple[str, ...]:
    """The data directory as written and resolved: resolved once, not at every state event."""
    return tuple(f for f in dict.fromkeys((str(data), str(data.resolve()))) if f and f != "/")


def scrub_engine_text(text: str, data: Path | None = None) -> str:
    """`text` as a tenant may see it (see the module's docstring)."""
    out = _CONTROL.sub(" ", text)
    out = _ENVIRONMENT.sub(r"\1 (value not shown)", out)
    out = _ENGINE_URL.sub("<engine>", out)  # the engine's address and the request's query
    out = _SECRETS_DIR.sub("<server-secrets>", out)
    for form in _data_forms(data) if data is not None else ():
        out = out.replace(form, "<server-data>")
    out = " ".join(out.split())
    return out if len(out) <= MAX_CHARS else out[:MAX_CHARS - 1] + "…"
