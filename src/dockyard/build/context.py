"""Packing a build context into a reproducible tar with a content digest (the client side).

The same files give the same bytes and so the same digest, whatever their modification times,
owners or the order the file system lists them in: the server uses the digest to skip an upload
it already has and to decide that an unchanged service needs no rebuild. `.dockerignore` is
honoured with Docker's rules; the Dockerfile and `.dockerignore` are always sent, as Docker does.
Only regular files, directories and symbolic links are packed (sockets, pipes and devices cannot
be part of a build).
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass

from dockyard.build import dockerignore
from dockyard.errors import DockyardError


class BuildContextError(DockyardError):
    """The build context cannot be packed (missing directory or Dockerfile, unreadable file)."""


@dataclass(frozen=True, slots=True)
class PackedContext:
    data: bytes  # an uncompressed tar
    digest: str  # "sha256:<hex>" of `data`
    files: int
    size: int  # bytes of file content


def _mode(st_mode: int, is_dir: bool) -> int:
    if is_dir or st_mode & 0o111:
        return 0o755
    return 0o644


def _entries(root: str, rules: list[dockerignore.Rule],
             always: frozenset[str] | set[str]) -> list[str]:
    """Relative paths to pack, sorted; directories that only hold excluded files are left out."""
    negations = any(rule.negated for rule in rules)
    out: list[str] = []
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(directory, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
        kept_dirs = []
        for name in sorted(dirnames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            full = os.path.join(directory, name)
            if os.path.islink(full):
                filenames.append(name)  # a link to a directory is packed as a link
                continue
            if dockerignore.is_excluded(rel, rules) and not negations:
                continue  # nothing below can come back: do not even walk it
            kept_dirs.append(name)
            if not dockerignore.is_excluded(rel, rules):
                out.append(rel + "/")
        dirnames[:] = kept_dirs
        for name in filenames:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if rel in always or not dockerignore.is_excluded(rel, rules):
                out.append(rel)
    # Parents of every kept file are needed even when the directory itself was excluded.
    wanted = set(out)
    for path in list(wanted):
        parent = path.rstrip("/").rpartition("/")[0]
        while parent and parent + "/" not in wanted:
            wanted.add(parent + "/")
            parent = parent.rpartition("/")[0]
    return sorted(wanted)


def pack_context(context_dir: str, dockerfile: str = "Dockerfile") -> PackedContext:
    """Pack `context_dir` for a build with `dockerfile` (relative to the context)."""
    root = os.path.abspath(context_dir)
    if not os.path.isdir(root):
        raise BuildContextError(f"the build context {root} is not a directory",
                                hint="fix `build.context` in the Compose file")
    dockerfile_rel = os.path.normpath(dockerfile).replace(os.sep, "/")
    if not os.path.isfile(os.path.join(root, dockerfile_rel)):
        raise BuildContextError(f"no {dockerfile_rel} in the build context {root}",
                                hint="create it, or set `build.dockerfile`")
    return pack_entries(root, directory_entries(root, {dockerfile_rel, ".dockerignore"}))


def directory_entries(root: str, always: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """What of `root` is packed: everything but what its `.dockerignore` excludes (`always`
    is packed whatever it says)."""
    ignore_path = os.path.join(root, ".dockerignore")
    rules: list[dockerignore.Rule] = []
    if os.path.isfile(ignore_path):
        with open(ignore_path, encoding="utf-8", errors="replace") as handle:
            rules = dockerignore.parse(handle.read())
    return _entries(root, rules, always)


def pack_entries(root: str, entries: list[str]) -> PackedContext:
    """A reproducible tar of `entries` (relative to `root`, directories ending in `/`)."""
    import hashlib  # here: a deployment with nothing to pack never loads tar and OpenSSL
    import tarfile

    buffer = io.BytesIO()
    files = 0
    size = 0
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in entries:
            full = os.path.join(root, rel.rstrip("/"))
            try:
                st = os.lstat(full)
            except OSError as exc:
                raise BuildContextError(f"cannot read {full}: {exc.strerror}") from None
            info = tarfile.TarInfo(rel.rstrip("/"))
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(full)
                info.mode = 0o777
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                info.size = st.st_size
                info.mode = _mode(st.st_mode, False)
                try:
                    with open(full, "rb") as handle:
                        tar.addfile(info, handle)
                except OSError as exc:
                    raise BuildContextError(f"cannot read {full}: {exc.strerror}",
                                            hint="fix its permissions or list it in "
                                            ".dockerignore") from None
                files += 1
                size += st.st_size
    data = buffer.getvalue()
    return PackedContext(data, "sha256:" + hashlib.sha256(data).hexdigest(), files, size)
