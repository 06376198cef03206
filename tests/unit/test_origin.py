"""The origin a deployment records, read from a real temporary git repository: commit, dirty
flag and branch; nothing of git outside a checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dockyard import __version__
from dockyard.client.origin import _parse_status, local_origin


def git(directory: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(directory), *args], check=True,
                          capture_output=True, text=True)
    return done.stdout.strip()


def test_a_checkout_gives_its_commit_branch_and_dirty_flag(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    project = repo / "services" / "shop"
    project.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (project / "compose.yaml").write_text("services: {}\n")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one")
    head = git(repo, "rev-parse", "HEAD")

    clean = local_origin(project)
    assert (clean.git_commit, clean.git_dirty, clean.git_branch) == (head, False, "main")
    assert clean.client_version == __version__

    (repo / "elsewhere.txt").write_text("outside the project directory\n")
    assert local_origin(project).git_dirty is False  # only the project's directory counts
    (project / "compose.yaml").write_text("services: {web: {image: x}}\n")
    assert local_origin(project).git_dirty is True
    (project / "compose.yaml").write_text("services: {}\n")
    (project / "new.env").write_text("A=1\n")  # an untracked file changes what deploys
    assert local_origin(project).git_dirty is True

    git(repo, "checkout", "-q", "--detach")
    detached = local_origin(project)
    assert detached.git_commit == head and detached.git_branch is None


def test_outside_a_checkout_and_for_a_rollback_there_is_no_git(tmp_path: Path) -> None:
    plain = local_origin(tmp_path)
    assert (plain.git_commit, plain.git_dirty, plain.git_branch) == (None, None, None)
    assert local_origin(None).git_commit is None
    assert local_origin(tmp_path / "missing").git_commit is None


def test_a_repository_without_a_commit_records_no_git(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    assert local_origin(tmp_path).git_commit is None


def test_git_is_not_started_outside_a_checkout(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"git was started: {args}")

    monkeypatch.setattr(subprocess, "run", refuse)
    assert local_origin(tmp_path, environ={}).git_commit is None
    with pytest.raises(AssertionError, match="git was started"):  # GIT_DIR: git decides
        local_origin(tmp_path, environ={"GIT_DIR": str(tmp_path / "elsewhere.git")})


def test_status_headers_give_commit_branch_and_dirty_flag() -> None:
    clean = "# branch.oid abc123\n# branch.head main\n"
    assert _parse_status(clean) == ("abc123", "main", False)
    assert _parse_status("# branch.oid (initial)\n# branch.head main\n") == (None, "main",
                                                                             False)
    detached = "# branch.oid abc123\n# branch.head (detached)\n? new.env\n"
    assert _parse_status(detached) == ("abc123", None, True)
    changed = clean + "1 .M N... 100644 100644 100644 a b compose.yaml\n"
    assert _parse_status(changed) == ("abc123", "main", True)
