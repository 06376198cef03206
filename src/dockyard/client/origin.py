"""Where a deployment starts from, as recorded with it: this client's version, the local user,
and the project directory's git checkout (commit, dirty flag, branch) when it is one.

Read on the client: the server never sees the project directory. Git is asked through its own
command (`git`), so whatever git understands (worktrees, submodules, `safe.directory`) counts;
no git, or a directory outside a checkout, records no git fields rather than failing a deploy.
"""

from __future__ import annotations

import getpass
import subprocess
from pathlib import Path

from dockyard import __version__
from dockyard.wire_models import DeployOrigin

GIT_TIMEOUT = 5.0  # seconds per git command: a deploy never waits long on a slow disk


def local_origin(directory: str | Path | None) -> DeployOrigin:
    """The origin of a deployment of the project in `directory`; None for one that runs a
    recorded deployment again (a rollback), which no local checkout describes."""
    commit = None if directory is None else _git(directory, "rev-parse", "--verify", "HEAD")
    if commit is None:
        return DeployOrigin(client_version=__version__, user=_user())
    assert directory is not None
    status = _git(directory, "status", "--porcelain", "--untracked-files=normal", "--", ".")
    branch = _git(directory, "symbolic-ref", "--quiet", "--short", "HEAD")
    return DeployOrigin(client_version=__version__, user=_user(), git_commit=commit,
                        git_dirty=None if status is None else bool(status),
                        git_branch=branch or None)


def _git(directory: str | Path, *args: str) -> str | None:
    """git's answer, stripped; None when git is missing or says no."""
    try:
        done = subprocess.run(["git", "-C", str(directory), *args], capture_output=True,
                              text=True, timeout=GIT_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return ""
