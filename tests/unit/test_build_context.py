"""Build contexts: .dockerignore rules, reproducible packing, and the server's safety check."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from dockyard.build import dockerignore
from dockyard.build.context import BuildContextError, pack_context
from dockyard.build.safety import UnsafeArchive, check_archive


@pytest.mark.parametrize(("patterns", "path", "excluded"), [
    ("*.log", "app.log", True),
    ("*.log", "dir/app.log", False),  # `*` does not cross directories
    ("**/*.log", "dir/app.log", True),
    ("**/*.log", "app.log", True),
    ("node_modules", "node_modules/x/y.js", True),  # a directory covers its contents
    ("/node_modules", "node_modules", True),  # a leading / is dropped
    ("build/", "build/out.o", True),
    ("./tmp", "tmp/a", True),
    ("a?c", "abc", True),
    ("a?c", "a/c", False),
    ("[a-c]x", "bx", True),
    ("[!a-c]x", "dx", True),
    ("[!a-c]x", "ax", False),
    ("*\n!keep.txt", "keep.txt", False),  # the last match wins
    ("*\n!keep.txt", "other.txt", True),
    ("docs\n!docs/README.md", "docs/README.md", False),
    ("docs\n!docs/README.md", "docs/other.md", True),
    ("# comment\n\n  secret.env  ", "secret.env", True),
    ("\\#notcomment", "#notcomment", True),
    ("src/**/test", "src/a/b/test/x.py", True),
    ("src/**/test", "src/test", True),
])
def test_dockerignore(patterns: str, path: str, excluded: bool) -> None:
    assert dockerignore.is_excluded(path, dockerignore.parse(patterns)) is excluded


def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


def test_pack_is_reproducible_and_honours_dockerignore(tmp_path: Path) -> None:
    _tree(tmp_path, {"Dockerfile": "FROM scratch\n", "app.py": "print(1)\n",
                     ".dockerignore": "*.log\nnode_modules\nDockerfile\n",
                     "debug.log": "x", "node_modules/big/file.js": "x", "src/a.py": "a"})
    first = pack_context(str(tmp_path))
    os.utime(tmp_path / "app.py", (1, 1))
    (tmp_path / "src" / "a.py").chmod(0o600)
    second = pack_context(str(tmp_path))
    assert first.digest == second.digest and first.data == second.data
    names = _names(first.data)
    assert names == sorted(names)
    assert "Dockerfile" in names and ".dockerignore" in names  # always sent
    assert "app.py" in names and "src/a.py" in names and "src" in names
    assert "debug.log" not in names and not any(n.startswith("node_modules") for n in names)
    assert first.files == 4 and first.digest.startswith("sha256:")
    with tarfile.open(fileobj=io.BytesIO(first.data)) as tar:
        for member in tar:
            assert member.mtime == 0 and member.uid == 0 and member.uname == ""


def test_content_changes_change_the_digest(tmp_path: Path) -> None:
    _tree(tmp_path, {"Dockerfile": "FROM scratch\n", "app.py": "print(1)\n"})
    before = pack_context(str(tmp_path)).digest
    (tmp_path / "app.py").write_text("print(2)\n")
    assert pack_context(str(tmp_path)).digest != before


def test_executable_bit_is_kept(tmp_path: Path) -> None:
    _tree(tmp_path, {"Dockerfile": "FROM scratch\n", "run.sh": "#!/bin/sh\n"})
    (tmp_path / "run.sh").chmod(0o700)
    with tarfile.open(fileobj=io.BytesIO(pack_context(str(tmp_path)).data)) as tar:
        assert tar.getmember("run.sh").mode == 0o755
        assert tar.getmember("Dockerfile").mode == 0o644


def test_negated_file_inside_an_excluded_directory(tmp_path: Path) -> None:
    _tree(tmp_path, {"Dockerfile": "FROM scratch\n", ".dockerignore": "docs\n!docs/keep.md\n",
                     "docs/keep.md": "k", "docs/drop.md": "d"})
    names = _names(pack_context(str(tmp_path)).data)
    assert "docs/keep.md" in names and "docs/drop.md" not in names and "docs" in names


def test_missing_context_and_dockerfile_are_errors(tmp_path: Path) -> None:
    with pytest.raises(BuildContextError, match="not a directory"):
        pack_context(str(tmp_path / "nope"))
    with pytest.raises(BuildContextError, match="no Dockerfile") as caught:
        pack_context(str(tmp_path))
    assert caught.value.hint


def test_packed_context_passes_the_safety_check(tmp_path: Path) -> None:
    _tree(tmp_path, {"Dockerfile": "FROM scratch\n", "a/b.txt": "b"})
    (tmp_path / "a" / "link").symlink_to("b.txt")
    check_archive(pack_context(str(tmp_path)).data)


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, content in members:
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content) if content else None)
    return buffer.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.mark.parametrize(("member", "message"), [
    (_member("/etc/passwd"), "outside"),
    (_member("../escape"), "outside"),
    (_member("a/../../escape"), "outside"),
    (_member("evil", tarfile.SYMTYPE, "/etc"), "leads out"),
    (_member("a/evil", tarfile.SYMTYPE, "../../x"), "leads out"),
    (_member("up", tarfile.SYMTYPE, ".."), "leads out"),
    (_member("hard", tarfile.LNKTYPE, "../x"), "leads out"),
    (_member("dev", tarfile.CHRTYPE), "not a file"),
    (_member("blk", tarfile.BLKTYPE), "not a file"),
    (_member("fifo", tarfile.FIFOTYPE), "not a file"),
])
def test_unsafe_members_are_refused(member: tarfile.TarInfo, message: str) -> None:
    with pytest.raises(UnsafeArchive, match=message):
        check_archive(_tar((member, b"")))


def test_links_inside_the_context_are_fine() -> None:
    check_archive(_tar((_member("a/b"), b"x"), (_member("a/l", tarfile.SYMTYPE, "b"), b""),
                       (_member("a/h", tarfile.LNKTYPE, "a/b"), b"")))


def test_size_limits() -> None:
    data = _tar((_member("big"), b"x" * 5000))
    with pytest.raises(UnsafeArchive, match="limit"):
        check_archive(data, max_bytes=1000)
    with pytest.raises(UnsafeArchive, match="entries"):
        check_archive(_tar(*[(_member(f"f{i}"), b"") for i in range(5)]), max_members=3)


def test_compression_bomb_is_counted_unpacked() -> None:
    import gzip

    packed = gzip.compress(_tar((_member("zeros"), b"\0" * 2_000_000)))
    assert len(packed) < 100_000
    with pytest.raises(UnsafeArchive, match="unpacks to more"):
        check_archive(packed, max_bytes=1_000_000)


def test_garbage_is_refused() -> None:
    with pytest.raises(UnsafeArchive, match="not a readable tar"):
        check_archive(b"not a tar at all" * 100)
