"""Hostile inputs: build-context archives a client uploads, and Compose files a user loads.

Each is refused with a clear error (`UnsafeArchive`, or `ProjectInvalid` with its diagnostics),
never a traceback, a hang or an exhausted memory: time is measured on a plain run under a
`signal.setitimer` budget (so a hang fails the test instead of the run), memory as the
`tracemalloc` peak of a second run (tracing slows Python code down several times, so that run
gets a larger budget and its time is not asserted).

Already covered elsewhere, not repeated here:
- `check_archive` on single members (`..`, absolute, links out, devices, fifo), a 2 MB gzip
  bomb against a 1 MB limit, garbage: tests/unit/test_build_context.py;
- uploads refused over the API (`..`, absolute, wrong digest, over the size limit):
  tests/api/test_api.py::test_unsafe_or_mislabelled_uploads_are_refused;
- the list-alias "billion laughs": tests/unit/test_alias_bomb.py (parse_yaml) and
  tests/unit/test_loader_fuzz.py::test_alias_bomb_is_refused_quickly (load_project, 2 s);
  a recursive alias: tests/unit/test_units_ports_yaml.py.
Here: the same kinds through the server's `ContextStore` with nothing written anywhere, the
escapes a lexical check misses (through a symlink the archive itself creates), compression
bombs at the server's real limit and in the tar headers, alias bombs of other shapes, deep
nesting and huge files, each with time and memory bounds.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import hashlib
import io
import lzma
import os
import signal
import tarfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import pytest

from dockyard.build.safety import DEFAULT_MAX_BYTES, UnsafeArchive, check_archive
from dockyard.compose import LoadOptions, load_project
from dockyard.errors import DockyardError, ProjectInvalid
from dockyard.server.contexts import ContextStore

MiB = 1 << 20


class TooSlow(BaseException):
    """Raised by the timer: a BaseException, so no `except Exception` in the code hides it."""


@contextmanager
def budget(seconds: float) -> Iterator[None]:
    def on_alarm(_signum: int, _frame: FrameType | None) -> None:
        raise TooSlow(f"did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True, slots=True)
class Outcome:
    error: BaseException | None  # what the action raised (None: it returned)
    seconds: float


def timed(action: Callable[[], object], seconds: float) -> Outcome:
    """Run `action` untraced; a run longer than `seconds` fails the test right away."""
    start = time.monotonic()
    error: BaseException | None = None
    try:
        with budget(seconds):
            action()
    except TooSlow:
        error = TooSlow()  # fail below, out of the handler: no traceback into the timer
    except Exception as exc:  # the outcome is what the test checks
        error = exc
    if isinstance(error, TooSlow):
        pytest.fail(f"still running after {seconds} s (a hang, or far too slow)")
    return Outcome(error, time.monotonic() - start)


def peak_memory(action: Callable[[], object], seconds: float) -> int:
    """The tracemalloc peak (bytes) of one run of `action`, whatever it raises."""
    slow = False
    tracemalloc.start()
    try:
        with budget(seconds):
            action()
    except TooSlow:
        slow = True
    except Exception:  # only the memory is measured here
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    if slow:
        pytest.fail(f"the traced run is still running after {seconds} s")
    return peak


# == Build-context archives =======================================================================

def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "",
            pax: dict[str, str] | None = None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    if pax:
        info.pax_headers = dict(pax)
    return info


def _tar(*members: tuple[tarfile.TarInfo, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for info, content in members:
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content) if content else None)
    return buffer.getvalue()


def _link_to_here() -> tuple[tarfile.TarInfo, bytes]:
    """`a -> .`: harmless alone (it points inside), but `a/..` is then the parent of the
    context, which a check on the names alone (`a/..` normalizes to `.`) does not see."""
    return _member("a", tarfile.SYMTYPE, "."), b""


HOSTILE: dict[str, tuple[list[tuple[tarfile.TarInfo, bytes]], str]] = {
    # name -> (members, what the error says)
    "dot-dot": ([(_member("../evil"), b"x")], "outside"),
    "dot-dot deep": ([(_member("a/b/../../../evil"), b"x")], "outside"),
    "dot then dot-dot": ([(_member("./../evil"), b"x")], "outside"),
    "absolute": ([(_member("/tmp/evil"), b"x")], "outside"),
    "absolute, two slashes": ([(_member("//evil"), b"x")], "outside"),
    "pax path header": ([(_member("fine", pax={"path": "../evil"}), b"x")], "outside"),
    "empty name": ([(_member("fine", pax={"path": ""}), b"x")], "outside"),
    "symlink absolute": ([(_member("evil", tarfile.SYMTYPE, "/etc"), b"")], "leads out"),
    "symlink up": ([(_member("a/evil", tarfile.SYMTYPE, "../../x"), b"")], "leads out"),
    "symlink to the parent": ([(_member("up", tarfile.SYMTYPE, ".."), b"")], "leads out"),
    "pax linkpath header": ([(_member("l", tarfile.SYMTYPE, "fine",
                                      pax={"linkpath": "../../etc"}), b"")], "leads out"),
    "hard link up": ([(_member("hard", tarfile.LNKTYPE, "../x"), b"")], "leads out"),
    "hard link absolute": ([(_member("hard", tarfile.LNKTYPE, "/etc/passwd"), b"")],
                           "leads out"),
    # the name is inside by its letters, but goes through a symlink the archive made
    "symlink through a symlink": ([_link_to_here(),
                                   (_member("a/l", tarfile.SYMTYPE, ".."), b""),
                                   (_member("l/pwned"), b"owned")], "leads out"),
    "file through a symlink": ([_link_to_here(), (_member("a/../pwned"), b"owned")],
                               "outside"),
    "hard link through a symlink": ([_link_to_here(),
                                     (_member("h", tarfile.LNKTYPE, "a/../victim"), b""),
                                     (_member("h"), b"owned")], "leads out"),
    "character device": ([(_member("tty", tarfile.CHRTYPE), b"")], "not a file"),
    "block device": ([(_member("sda", tarfile.BLKTYPE), b"")], "not a file"),
    "fifo": ([(_member("pipe", tarfile.FIFOTYPE), b"")], "not a file"),
}


def _snapshot(root: Path) -> dict[str, str]:
    """Every path under `root` with a digest of what it is (file content, link target)."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            out[str(path)] = "-> " + os.readlink(path)
        elif path.is_file():
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[str(path)] = "dir"
    return out


def _naive_extraction(data: bytes, root: Path) -> list[str]:
    """What a plain extractor (tarfile with no filter, as `tar` without its own guards) changes
    outside the directory it extracts into: the evidence when a hostile archive is accepted."""
    target = root / "extracted"
    target.mkdir(parents=True)
    (root / "victim").write_text("the host's file")
    before = _snapshot(root)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        try:
            tar.extractall(target, filter="fully_trusted")
        except (OSError, tarfile.TarError) as exc:
            return [f"(extraction stopped: {exc})"]
    after = _snapshot(root)
    return sorted(p for p in set(before) | set(after)
                  if not p.startswith(str(target)) and before.get(p) != after.get(p))


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_archive_is_refused_and_nothing_is_written(tmp_path: Path,
                                                             case: str) -> None:
    members, message = HOSTILE[case]
    data = _tar(*members)
    server = tmp_path / "server"
    store = ContextStore(server / "contexts", max_bytes=DEFAULT_MAX_BYTES)
    (tmp_path / "victim").write_text("the host's file")
    before = _snapshot(tmp_path)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    try:
        store.put(digest, data)
    except UnsafeArchive as exc:
        assert message in exc.message, exc.message
        assert exc.message.startswith(("the build context", "the link", "the hard link"))
    else:
        escaped = _naive_extraction(data, tmp_path / "scratch")
        pytest.fail(f"accepted; extracted by a plain extractor it changes, outside its "
                    f"directory: {escaped}")
    assert _snapshot(tmp_path) == before  # nothing kept, no temporary file left
    assert not store.has(digest)


def _compressed(compress: Callable[[bytes], bytes], parts: list[tuple[bytes, int]]) -> bytes:
    """A compressed stream of `parts` (bytes, times), as concatenated members: gzip, bzip2
    and xz readers all read on from one member to the next. A repeated part is compressed
    once, so a stream of hundreds of MiB is built in a fraction of a second."""
    out = []
    for chunk, times in parts:
        packed = _pack(compress, chunk)
        out.append(packed * times)
    return b"".join(out)


@functools.cache
def _pack(compress: Callable[[bytes], bytes], chunk: bytes) -> bytes:
    return compress(chunk)


def _header(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = kind
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def _zeros_bomb(compress: Callable[[bytes], bytes], total: int, member: int = 8 * MiB) -> bytes:
    """Members of `member` zero bytes until `total`, then the end of the archive."""
    parts: list[tuple[bytes, int]] = []
    for index in range(-(-total // member)):
        parts += [(_header(f"zeros-{index}", member), 1), (bytes(MiB), member // MiB)]
    return _compressed(compress, [*parts, (bytes(1024), 1)])


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress}


def test_a_gzip_bomb_is_refused_quickly_at_the_servers_limit() -> None:
    """520 MiB of zeros in about 600 KB of gzip, against the default limit (512 MiB)."""
    bomb = _zeros_bomb(gzip.compress, DEFAULT_MAX_BYTES + 8 * MiB)
    assert len(bomb) < 1 * MiB
    outcome = timed(lambda: check_archive(bomb), 30)
    assert isinstance(outcome.error, UnsafeArchive), outcome
    assert "unpacks to more than" in outcome.error.message
    # Observed about 2 to 3 s here (decompressing up to the limit to skip the members); the
    # 30 s budget above catches a hang, and no wall-clock bound is asserted (a loaded machine
    # made one flaky).


@pytest.mark.parametrize("kind", list(COMPRESSORS))
def test_a_compression_bomb_is_refused_with_bounded_memory(kind: str) -> None:
    bomb = _zeros_bomb(COMPRESSORS[kind], 256 * MiB)
    assert len(bomb) < 1 * MiB
    limit = 64 * MiB
    outcome = timed(lambda: check_archive(bomb, max_bytes=limit), 30)
    assert isinstance(outcome.error, UnsafeArchive), outcome
    assert "unpacks to more than" in outcome.error.message
    peak = peak_memory(lambda: check_archive(bomb, max_bytes=limit), 60)
    # Observed: well under 1 MiB (members are skipped, not read).
    assert peak < 64 * MiB, f"{peak / MiB:.0f} MiB"


def _header_bomb(kind: bytes, size: int) -> bytes:
    """A tar whose first header is an extension (pax or GNU long name) of `size` bytes, the
    bytes of which a reader keeps in memory whole, then an empty file: gzip-compressed."""
    if kind in (tarfile.XHDTYPE, tarfile.XGLTYPE):
        prefix = f"{size} comment=".encode()  # one pax record, as long as the header's data
        body: list[tuple[bytes, int]] = [(prefix, 1)]
        filler = size - len(prefix) - 1
        body += [(b"a" * MiB, filler // MiB), (b"a" * (filler % MiB) + b"\n", 1)]
    else:
        body = [(b"a" * MiB, size // MiB), (b"a" * (size % MiB), 1)]
    padding = bytes(-size % 512)
    return _compressed(gzip.compress, [(_header("././@LongLink", size, kind), 1), *body,
                                       (padding, 1), (_header("f", 0), 1), (bytes(1024), 1)])


HEADER_KINDS = {"pax": tarfile.XHDTYPE, "pax global": tarfile.XGLTYPE,
                "GNU long name": tarfile.GNUTYPE_LONGNAME,
                "GNU long link": tarfile.GNUTYPE_LONGLINK}


@pytest.mark.parametrize("kind", list(HEADER_KINDS))
def test_a_bomb_in_a_tar_header_is_refused_with_bounded_memory(kind: str) -> None:
    """The size limit counts the members' data; an extension header's data (a name, pax
    records) is read into memory whole by the tar reader before any member is seen."""
    bomb = _header_bomb(HEADER_KINDS[kind], 100 * MiB)
    assert len(bomb) < 1 * MiB
    limit = 64 * MiB
    outcome = timed(lambda: check_archive(bomb, max_bytes=limit), 30)
    assert isinstance(outcome.error, UnsafeArchive), outcome
    assert outcome.seconds < 5, outcome
    peak = peak_memory(lambda: check_archive(bomb, max_bytes=limit), 120)
    assert peak < 64 * MiB, f"{peak / MiB:.0f} MiB"


# == Compose files ================================================================================

def _load(tmp_path: Path, text: str) -> Callable[[], object]:
    (tmp_path / "compose.yaml").write_text(text)
    return lambda: load_project(LoadOptions(working_dir=str(tmp_path), environ={}))


def _refused(outcome: Outcome, tmp_path: Path) -> ProjectInvalid:
    """The load raised ProjectInvalid (not a RecursionError, MemoryError or anything else),
    with every diagnostic complete and the errors located in the file."""
    assert isinstance(outcome.error, ProjectInvalid), outcome
    assert isinstance(outcome.error, DockyardError)
    errors = outcome.error.errors
    assert errors, outcome.error.diagnostics
    for diagnostic in outcome.error.diagnostics:
        assert diagnostic.code and diagnostic.message
        assert "Traceback" not in diagnostic.message
    assert any(d.location.file == str(tmp_path / "compose.yaml") for d in errors), errors
    return outcome.error


SERVICE = "services:\n  web:\n    image: x\n"


def _merge_key_bomb(levels: int) -> str:
    """Each level merges nine copies of the one before (`<<: [*a, *a, ...]`): the merged keys
    are the same at every level, so the document stays small once merged; but walking every
    merged source multiplies by nine per level."""
    lines = ["x-a0: &a0 {k: v}"]
    for level in range(1, levels + 1):
        lines.append(f"x-a{level}: &a{level} {{<<: [" +
                     ", ".join([f"*a{level - 1}"] * 9) + "]}")
    return "\n".join(lines) + f"\n{SERVICE}    x-bomb: *a{levels}\n"


def _mapping_alias_bomb(levels: int) -> str:
    """The billion laughs with mappings instead of lists: nine keys per level, each the level
    before."""
    keys = "abcdefghi"
    lines = ["x-a0: &a0 {" + ", ".join(f"{k}: lol" for k in keys) + "}"]
    for level in range(1, levels + 1):
        lines.append(f"x-a{level}: &a{level} {{" +
                     ", ".join(f"{k}: *a{level - 1}" for k in keys) + "}")
    return "\n".join(lines) + f"\n{SERVICE}    x-bomb: *a{levels}\n"


@pytest.mark.parametrize("text", [_mapping_alias_bomb(9), _merge_key_bomb(9)],
                         ids=["mapping aliases", "merge keys"])
def test_an_alias_bomb_is_refused_in_bounded_time_and_memory(tmp_path: Path,
                                                             text: str) -> None:
    assert len(text) < 2000
    action = _load(tmp_path, text)
    outcome = timed(action, 10)
    error = _refused(outcome, tmp_path)
    assert [d.code for d in error.errors] == ["yaml-syntax"]
    assert outcome.seconds < 10
    # Observed: mapping aliases ~30 MiB (the node tree up to the 200,000-value limit).
    assert peak_memory(action, 60) < 64 * MiB


DEPTH = 10_000


def _indented_maps(depth: int) -> str:
    return SERVICE + "    x-deep:\n" + "".join(
        " " * (6 + i) + "a:\n" for i in range(depth)) + " " * (6 + depth) + "b: 1\n"


DEEP = {
    "flow lists": SERVICE + "    x-deep: " + "[" * DEPTH + "]" * DEPTH + "\n",
    "flow maps": SERVICE + "    x-deep: " + "{a: " * DEPTH + "1" + "}" * DEPTH + "\n",
    "flow maps and lists": SERVICE + "    x-deep: " + "[{a: " * DEPTH + "1" + "}]" * DEPTH
                           + "\n",
    "complex keys": SERVICE + "    x-deep: " + "{? " * DEPTH + "1" + "}" * DEPTH + "\n",
    "block lists": SERVICE + "    x-deep:\n      " + "- " * DEPTH + "x\n",
    # indentation grows with depth: 2,000 levels are already a 2 MB file
    "block maps": _indented_maps(2_000),
    "top level": "[" * DEPTH + "]" * DEPTH + "\n",
    "in environment": "services:\n  web:\n    image: x\n    environment: "
                      + "{a: " * DEPTH + "1" + "}" * DEPTH + "\n",
    "in a service's place": "services:\n  web: " + "{a: " * DEPTH + "1" + "}" * DEPTH + "\n",
    "in networks": "networks: " + "{a: " * DEPTH + "1" + "}" * DEPTH + "\n" + SERVICE,
}


@pytest.mark.parametrize("case", list(DEEP))
def test_deep_nesting_is_a_diagnostic(tmp_path: Path, case: str) -> None:
    action = _load(tmp_path, DEEP[case])
    outcome = timed(action, 10)
    error = _refused(outcome, tmp_path)
    assert [d.code for d in error.errors] == ["yaml-syntax"], error.errors
    assert "nest" in error.errors[0].message, error.errors[0].message
    assert outcome.seconds < 10
    # Observed: under 5 MiB (libyaml stops at its nesting limit before building anything).
    assert peak_memory(action, 60) < 64 * MiB


@pytest.mark.parametrize("depth", [100, 250, 480, 495, 600, 990])
@pytest.mark.parametrize("shape", ["maps", "lists"])
def test_nesting_near_the_limits_loads_or_is_a_diagnostic(tmp_path: Path, depth: int,
                                                          shape: str) -> None:
    """Depths around where the parser and the recursive stages after it (line map, copy,
    interpolation, normalization) give up: never a RecursionError."""
    deep = ("{a: " * depth + "'${X:-1}'" + "}" * depth if shape == "maps"
            else "[" * depth + "]" * depth)
    outcome = timed(_load(tmp_path, SERVICE + "    x-deep: " + deep + "\n"), 10)
    if outcome.error is not None:
        _refused(outcome, tmp_path)


HUGE = 50 * MiB
_LABEL = "      - LABEL_%07d=vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\n"

HUGE_FILES = {
    "one comment": lambda: SERVICE + "#" + "x" * HUGE + "\n",
    "one value": lambda: SERVICE + "    x-big: '" + "x" * HUGE + "'\n",
    "many values": lambda: SERVICE + "    labels:\n" + "".join(
        _LABEL % i for i in range(HUGE // len(_LABEL % 0))),
}


@pytest.mark.parametrize("case", list(HUGE_FILES))
def test_a_huge_compose_file_is_refused_in_bounded_time_and_memory(tmp_path: Path,
                                                                   case: str) -> None:
    """A Compose file of 50 MB is no Compose file a person wrote: it is refused with a
    diagnostic that says what is wrong with it (here: none of its values is an alias)."""
    text = HUGE_FILES[case]()
    assert len(text) >= HUGE
    action = _load(tmp_path, text)
    del text
    outcome = timed(action, 10)
    error = _refused(outcome, tmp_path)
    assert not any("alias" in d.message for d in error.errors), error.errors
    assert outcome.seconds < 10
    # Observed (tracemalloc peak): 100 MiB for the comment, 150 MiB for the long value (the
    # text read, and its copy for the parser), 450 MiB for many values (the node tree); the
    # bound is a little above the largest.
    assert peak_memory(action, 120) < 512 * MiB
