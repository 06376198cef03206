"""Where a deployment starts from, as recorded with it: this client's version, the local user,
and the project directory's git checkout (commit, dirty flag, branch) when it is one.

Read on the client: the server never sees the project directory. Git is asked through its own
command (`git`), so whatever git understands (worktrees, submodules, `safe.directory`) counts;
no git, or a directory outside a checkout, records no git fields rather than failing a deploy.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from dockyard import __version__
from dockyard.wire_models import DeployOrigin

GIT_TIMEOUT = 5.0  # seconds per git command: a deploy never waits long on a slow disk


def local_origin(directory: str | Path | None,
                 environ: Mapping[str, str] | None = None) -> DeployOrigin:
    """The origin of a deployment of the project in `directory`; None for one that runs a
    recorded deployment again (a rollback), which no local checkout describes.

    One `git status --porcelain=v2 --branch` answers commit, branch and dirty flag at once, and
    git is not started at all when no `.git` is found in `directory` or above it (and
    `GIT_DIR` does not point elsewhere): a process costs a deploy more than all the rest of
    this, most of all on a busy machine.
    """
    environ = os.environ if environ is None else environ
    plain = DeployOrigin(client_version=__version__, user=_user())
    if directory is None or not (_inside_checkout(Path(directory)) or "GIT_DIR" in environ):
        return plain
    answer = _git(directory, "status", "--porcelain=v2", "--branch",
                  "--untracked-files=normal", "--", ".")
    if answer is None:  # no git, or not a checkout after all
        return plain
    commit, branch, dirty = _parse_status(answer)
    if commit is None:  # no commit yet
        return plain
    return replace(plain, git_commit=commit, git_dirty=dirty, git_branch=branch)


def _inside_checkout(directory: Path) -> bool:
    """Whether `directory` or a parent holds `.git` (a directory, or a worktree's file)."""
    try:
        here = directory.resolve()
    except OSError:
        return False
    return any((parent / ".git").exists() for parent in (here, *here.parents))


def _parse_status(text: str) -> tuple[str | None, str | None, bool]:
    """(commit, branch, dirty) from `git status --porcelain=v2 --branch`: the `# branch.oid`
    and `# branch.head` headers (`(initial)`: no commit; `(detached)`: no branch), and any
    entry line makes the directory dirty."""
    commit = branch = None
    dirty = False
    for line in text.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.removeprefix("# branch.oid ").strip()
            commit = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.removeprefix("# branch.head ").strip()
            branch = None if head == "(detached)" else head
        elif line and not line.startswith("#"):
            dirty = True
    return commit, branch, dirty


def _git(directory: str | Path, *args: str) -> str | None:
    """git's answer (its output, unstripped); None when git is missing or says no."""
    import subprocess  # only when there is a checkout to ask about

    try:
        done = subprocess.run(["git", "-C", str(directory), *args], capture_output=True,
                              text=True, timeout=GIT_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return ""
