"""write_private: atomic, with its mode from the first byte, exclusive when asked."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from dockyard.files import write_private


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_bytes_and_text_owner_only(tmp_path: Path) -> None:
    write_private(tmp_path / "a", b"key\n")
    write_private(tmp_path / "b", "tökén\n")
    assert (tmp_path / "a").read_bytes() == b"key\n"
    assert (tmp_path / "b").read_text(encoding="utf-8") == "tökén\n"
    assert _mode(tmp_path / "a") == _mode(tmp_path / "b") == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no temporary file left


@pytest.mark.parametrize("mode", [0o400, 0o440, 0o644])
def test_the_mode_asked(tmp_path: Path, mode: int) -> None:
    write_private(tmp_path / "f", b"x", mode)
    assert _mode(tmp_path / "f") == mode
    assert (tmp_path / "f").read_bytes() == b"x"


def test_replaces_whatever_was_there(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"old and longer")
    path.chmod(0o644)
    write_private(path, b"new")
    assert path.read_bytes() == b"new"
    assert _mode(path) == 0o600


def test_a_symlink_at_the_path_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    (tmp_path / "f").symlink_to(victim)
    write_private(tmp_path / "f", b"secret")
    assert victim.read_bytes() == b"untouched"
    assert not (tmp_path / "f").is_symlink()


def test_the_mode_is_set_before_any_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real_fchmod = os.fchmod

    def fchmod(fd: int, mode: int) -> None:
        seen.append(os.fstat(fd).st_size)
        real_fchmod(fd, mode)

    monkeypatch.setattr(os, "fchmod", fchmod)
    write_private(tmp_path / "f", b"secret", 0o640)
    assert seen == [0]


def test_exclusive_leaves_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    write_private(path, b"first", exclusive=True)
    with pytest.raises(FileExistsError):
        write_private(path, b"second", exclusive=True)
    assert path.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_exclusive_racers_agree_on_one_winner(tmp_path: Path) -> None:
    path = tmp_path / "key"
    won: list[bytes] = []
    start = threading.Barrier(8)

    def race(value: bytes) -> None:
        start.wait()
        try:
            write_private(path, value, exclusive=True)
            won.append(value)
        except FileExistsError:
            pass

    threads = [threading.Thread(target=race, args=(b"%d" % i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert path.read_bytes() == won[0]


def test_errors_leave_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError):
        write_private(tmp_path / "missing" / "f", b"x")

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="Input/output"):
        write_private(tmp_path / "f", b"x")
    assert list(tmp_path.iterdir()) == []
