"""A pull's progress (`registry.progress`), fed the engine's messages as docker-py decodes them."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.registry.progress import MIB, PullProgress

DIGEST = "sha256:" + "ab" * 32


def fed(*messages: Mapping[str, object]) -> PullProgress:
    progress = PullProgress()
    for message in messages:
        progress.feed(message)
    return progress


def downloading(layer: str, current: int, total: int) -> dict[str, object]:
    return {"status": "Downloading", "id": layer,
            "progressDetail": {"current": current, "total": total},
            "progress": "[==>   ]"}


def test_a_whole_pull() -> None:
    progress = fed(
        {"status": "Pulling from library/nginx", "id": "1.27"},
        {"status": "Pulling fs layer", "id": "a", "progressDetail": {}},
        {"status": "Pulling fs layer", "id": "b", "progressDetail": {}},
        {"status": "Already exists", "id": "c", "progressDetail": {}},
        {"status": "Waiting", "id": "b", "progressDetail": {}},
    )
    assert (progress.downloaded, progress.total) == (0, 0)
    assert progress.text("nginx:1.27") == "pulling nginx:1.27"
    progress.feed(downloading("a", 30 * MIB, 60 * MIB))
    progress.feed(downloading("b", 4 * MIB, 20 * MIB))
    assert (progress.downloaded, progress.total) == (34 * MIB, 80 * MIB)
    assert progress.text("nginx:1.27") == "pulling nginx:1.27 (34/80 MiB)"
    for message in ({"status": "Verifying Checksum", "id": "a", "progressDetail": {}},
                    {"status": "Download complete", "id": "a", "progressDetail": {}},
                    {"status": "Extracting", "id": "a",
                     "progressDetail": {"current": 1, "total": 90 * MIB}},
                    {"status": "Pull complete", "id": "a", "progressDetail": {}}):
        progress.feed(message)
    assert (progress.downloaded, progress.total) == (64 * MIB, 80 * MIB)
    assert not progress.finished
    progress.feed({"status": "Download complete", "id": "b"})
    progress.feed({"status": "Pull complete", "id": "b"})
    progress.feed({"status": f"Digest: {DIGEST}"})
    progress.feed({"status": "Status: Downloaded newer image for nginx:1.27"})
    assert (progress.downloaded, progress.total) == (80 * MIB, 80 * MIB)
    assert (progress.digest, progress.error, progress.up_to_date, progress.finished) == (
        DIGEST, None, False, True)


def test_an_image_already_up_to_date() -> None:
    progress = fed({"status": "Pulling from library/nginx", "id": "1.27"},
                   {"status": f"Digest: {DIGEST}"},
                   {"status": "Status: Image is up to date for nginx:1.27"})
    assert (progress.up_to_date, progress.digest, progress.total) == (True, DIGEST, 0)
    assert progress.text("nginx:1.27") == "pulling nginx:1.27"


@pytest.mark.parametrize(("message", "error"), [
    ({"error": "manifest unknown", "errorDetail": {"message": "manifest unknown: x"}},
     "manifest unknown: x"),
    ({"error": "unauthorized: authentication required"},
     "unauthorized: authentication required"),
    ({"errorDetail": {"message": "EOF"}}, "EOF"),
    ({"error": "boom", "errorDetail": {}}, "boom"),
])
def test_an_error_ends_the_pull(message: Mapping[str, object], error: str) -> None:
    progress = fed({"status": "Pulling fs layer", "id": "a"}, message)
    assert (progress.error, progress.finished) == (error, True)


@pytest.mark.parametrize(("downloaded", "total", "text"), [
    (0, 5 * MIB, "pulling x (0.0/5.0 MiB)"),
    (int(1.25 * MIB), int(9.9 * MIB), "pulling x (1.2/9.9 MiB)"),
    (3 * MIB, 10 * MIB, "pulling x (3/10 MiB)"),
    (512, 1024, "pulling x (0.0/0.0 MiB)"),
    (34 * MIB + 1, 80 * MIB, "pulling x (34/80 MiB)"),
])
def test_sizes_in_mib(downloaded: int, total: int, text: str) -> None:
    assert fed(downloading("a", downloaded, total)).text("x") == text


def test_a_layer_downloaded_in_one_piece_counts_when_extracted() -> None:
    progress = fed({"status": "Pulling fs layer", "id": "a"},
                   {"status": "Download complete", "id": "a"},
                   {"status": "Extracting", "id": "a",
                    "progressDetail": {"current": 100, "total": 2 * MIB}})
    assert (progress.downloaded, progress.total) == (2 * MIB, 2 * MIB)


@pytest.mark.parametrize("message", [
    {}, {"status": 3}, {"status": "Downloading", "id": "a", "progressDetail": "x"},
    {"status": "Downloading", "id": "a", "progressDetail": {"current": True, "total": "9"}},
    {"status": "Downloading", "id": "a", "progressDetail": {"current": -4, "total": -1}},
    {"status": "Downloading", "id": 7}, {"id": "a"}, {"error": ""}, {"errorDetail": None},
])
def test_odd_messages_are_ignored(message: Mapping[str, object]) -> None:
    progress = fed(message)
    assert (progress.downloaded, progress.total, progress.error) == (0, 0, None)


def test_reports_are_throttled_but_the_end_is_always_reported() -> None:
    progress = PullProgress()
    assert progress.should_report(100.0)
    assert not progress.should_report(100.2)
    assert not progress.should_report(100.49)
    assert progress.should_report(100.5)
    assert not progress.should_report(100.6)
    progress.feed({"status": "Status: Downloaded newer image for x"})
    assert progress.should_report(100.61)  # finished: reported at once
    assert not progress.should_report(100.62)
    assert not progress.should_report(200.0)  # and only once


_event = st.one_of(
    st.builds(lambda i, c, t: downloading(i, c, t), st.sampled_from("abc"),
              st.integers(0, 10**9), st.integers(0, 10**9)),
    st.builds(lambda i, s: {"status": s, "id": i}, st.sampled_from("abc"),
              st.sampled_from(["Pulling fs layer", "Waiting", "Already exists",
                               "Download complete", "Pull complete", "Verifying Checksum"])))


@given(st.lists(_event, max_size=30))
def test_downloaded_never_exceeds_total(events: list[dict[str, object]]) -> None:
    progress = fed(*events)
    assert 0 <= progress.downloaded
    assert progress.text("x").startswith("pulling x")
    if progress.total:
        done, _, rest = progress.text("x").partition("(")[2].partition("/")
        assert float(done) <= float(rest.split()[0])
