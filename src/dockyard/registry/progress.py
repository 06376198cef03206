"""A pull's progress, read from the engine's JSON messages one at a time.

The engine streams one message per layer event (`{"status": "Downloading", "id": LAYER,
"progressDetail": {"current": N, "total": M}}`), then `Digest: sha256:...` and a final
`Status: Downloaded newer image for ...` or `Status: Image is up to date for ...`; a failure is
`{"error": ..., "errorDetail": {"message": ...}}`. Sizes count the layers being downloaded whose
size the registry has told (a layer that `Already exists` is not downloaded, so not counted).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

REPORT_INTERVAL = 0.5  # seconds between two reports of one pull
MIB = 1 << 20

_DONE = frozenset({"Download complete", "Verifying Checksum", "Pull complete",
                   "Extracting"})


@dataclass(slots=True)
class _Layer:
    current: int = 0
    total: int = 0  # 0: not known yet


class PullProgress:
    """Fed every message of one pull (`feed`); says how far it is and how it ended."""

    def __init__(self) -> None:
        self._layers: dict[str, _Layer] = {}
        self.digest: str | None = None  # the manifest digest, from the `Digest:` line
        self.error: str | None = None  # the engine's error text, when the pull failed
        self.up_to_date = False  # the engine already had the registry's image
        self.finished = False  # the final status line or an error was seen
        self._last_report: float | None = None
        self._final_reported = False

    def feed(self, message: Mapping[str, object]) -> None:
        error = message.get("error")
        detail = message.get("errorDetail")
        if isinstance(detail, Mapping) and isinstance(detail.get("message"), str) and detail[
                "message"]:
            error = detail["message"]
        if isinstance(error, str) and error:
            self.error = error
            self.finished = True
            return
        status = message.get("status")
        if not isinstance(status, str):
            return
        layer_id = message.get("id")
        if status.startswith("Digest: "):
            self.digest = status.removeprefix("Digest: ").strip() or None
        elif status.startswith("Status: "):
            self.up_to_date = status.startswith("Status: Image is up to date")
            self.finished = True
        elif isinstance(layer_id, str) and layer_id:
            self._layer_event(layer_id, status, message.get("progressDetail"))

    def _layer_event(self, layer_id: str, status: str, detail: object) -> None:
        if status == "Already exists":
            self._layers.pop(layer_id, None)
            return
        if status in ("Pulling fs layer", "Waiting"):
            self._layers.setdefault(layer_id, _Layer())
            return
        layer = self._layers.get(layer_id)
        if layer is None:  # a tag line (`1.27: Pulling from library/nginx`) or an unknown id
            if status not in _DONE and status != "Downloading":
                return
            layer = self._layers.setdefault(layer_id, _Layer())
        current, total = _numbers(detail)
        if status == "Downloading":
            if total:
                layer.total = total
            if current is not None:
                layer.current = min(current, layer.total) if layer.total else current
        elif status == "Extracting" and not layer.total and total:
            layer.total = total  # downloaded in one piece: the size shows only now
            layer.current = total
        elif status in _DONE:
            layer.current = max(layer.current, layer.total)

    @property
    def downloaded(self) -> int:
        """Bytes downloaded so far, over the layers whose size is known."""
        return sum(layer.current for layer in self._layers.values() if layer.total)

    @property
    def total(self) -> int:
        """Bytes to download, over the layers whose size is known so far (it grows)."""
        return sum(layer.total for layer in self._layers.values())

    def text(self, reference: str) -> str:
        """`pulling nginx:1.27 (34/80 MiB)`, or `pulling nginx:1.27` before sizes are known."""
        total = self.total
        if not total:
            return f"pulling {reference}"
        done = min(self.downloaded, total)
        if total >= 10 * MIB:
            sizes = f"{done / MIB:.0f}/{total / MIB:.0f}"
        else:
            sizes = f"{done / MIB:.1f}/{total / MIB:.1f}"
        return f"pulling {reference} ({sizes} MiB)"

    def should_report(self, now: float) -> bool:
        """Whether to show progress now (`now`: a monotonic clock, in seconds): at most once
        per `REPORT_INTERVAL`, and once more when the pull has finished."""
        if self.finished:
            if self._final_reported:
                return False
            self._final_reported = True
            self._last_report = now
            return True
        if self._last_report is not None and now - self._last_report < REPORT_INTERVAL:
            return False
        self._last_report = now
        return True


def _numbers(detail: object) -> tuple[int | None, int]:
    """`progressDetail`'s current and total (0 when absent)."""
    if not isinstance(detail, Mapping):
        return None, 0
    current, total = detail.get("current"), detail.get("total")
    valid_current = current if isinstance(current, int) and not isinstance(current, bool) \
        and current >= 0 else None
    valid_total = total if isinstance(total, int) and not isinstance(total, bool) \
        and total > 0 else 0
    return valid_current, valid_total
