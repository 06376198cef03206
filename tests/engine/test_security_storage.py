"""What a tenant can grow on a real playground server's disk and memory, measured with bounds.

One real `dockyard server --mode playground` runs for the module (no ingress: nothing here is
public), started with a short context TTL, a small history and a small build-log cap. The
operator creates the account `mallory`, who then uses only the raw HTTP API (the CLI would not
send what an attacker sends). Each test reproduces one way of filling the server and shows it
bounded:

- three large build contexts no deployment uses are gone once the TTL has passed (the data
  directory's size comes back), and the server's memory stays flat while it receives them
  (an upload streams to disk; it was gathered whole in memory before);
- deployments with a huge `x-` key are refused (over the request or project size limit), and
  60 deployments of a project just under the limit grow the database by a bounded amount
  (history beyond --keep-deployments is pruned);
- a build printing megabytes keeps a stored log under the cap, ending with the truncation note.

The measured numbers are recorded as the test's `measured` property (in the JUnit XML) and
written to standard error (`pytest -s` shows them). Cleanup: the server is stopped,
then every container, network, volume and image carrying its server id is removed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engine.playground import playground_server
from tests.support.deployments import eventually
from tests.support.engine import engine_ready

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1 (run scripts/setup "
                       "as root)"),
]

MiB = 1 << 20
TTL = 6  # seconds an unused context is kept (--context-ttl)
KEEP = 5  # deployments kept per project (--keep-deployments)
LOG_CAP = 256 * 1024  # --max-build-log-bytes
UPLOAD = 160 * MiB  # each of the three contexts
IMAGE = "dockyard/busybox:1"
ACCOUNT = "mallory"


@dataclass
class Server:
    url: str
    data: Path
    root: Path
    process: subprocess.Popen[bytes]
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, headers=self.headers, timeout=30)

    def deploy(self, project: str, data: dict[str, Any],
               builds: dict[str, str] | None = None) -> httpx.Response:
        body = {"project": data, "builds": {k: {"digest": v} for k, v in (builds or {}).items()}}
        return httpx.post(f"{self.url}/v1/projects/{project}/deployments", json=body,
                          headers=self.headers, timeout=60)

    def finished(self, deployment: str, timeout: float = 120) -> str:
        def status() -> str | None:
            found = str(self.get(f"/v1/deployments/{deployment}").json()["status"])
            return None if found == "running" else found
        return eventually(status, f"deployment {deployment} to finish", timeout)

    def has(self, digest: str) -> bool:
        return httpx.head(f"{self.url}/v1/contexts/{digest}", headers=self.headers,
                          timeout=10).status_code == 200

    def rss(self) -> int:
        """The server process's resident memory, in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")


Record = Any  # pytest's record_property fixture


def measured(record: Record, text: str) -> None:
    record("measured", text)
    sys.stderr.write(f"\n[storage] {text}\n")


def disk_usage(root: Path) -> int:
    """Bytes the files under `root` take on disk."""
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
            except FileNotFoundError:
                continue
    return total


def database_bytes(data: Path) -> int:
    return sum(p.stat().st_size for p in data.glob("dockyard.db*") if p.is_file())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("storage")
    with playground_server(root, "--no-ingress", "--egress", "open", "--allow-image", IMAGE,
                           "--max-projects", "4", "--max-context-bytes", str(UPLOAD + MiB),
                           "--context-ttl", str(TTL), "--keep-deployments", str(KEEP),
                           "--max-build-log-bytes", str(LOG_CAP),
                           accounts=(ACCOUNT,)) as running:
        yield Server(running.url, running.data, root, running.process,
                     running.tokens[ACCOUNT])


# -- contexts: a TTL for what no deployment uses, and an upload never whole in memory ----------
def big_context(path: Path, name: str, size: int) -> str:
    """A tar of `size` zero bytes under `name`, written to `path`; its digest."""
    with tarfile.open(path, "w") as archive, open("/dev/zero", "rb") as zeros:
        info = tarfile.TarInfo(name)
        info.size = size
        archive.addfile(info, zeros)
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(4 * MiB):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as source:
        while chunk := source.read(MiB):
            yield chunk


def test_unused_large_uploads_are_gone_after_the_ttl_and_memory_stays_flat(
        server: Server, tmp_path: Path, record_property: Record) -> None:
    before = disk_usage(server.data)
    baseline = server.rss()
    peak = [baseline]
    uploading = threading.Event()
    uploading.set()

    def sample() -> None:
        while uploading.is_set():
            peak[0] = max(peak[0], server.rss())
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    digests, grown = [], 0
    started = time.monotonic()
    try:
        for n in range(3):
            path = tmp_path / f"context-{n}.tar"
            digest = big_context(path, f"blob-{n}", UPLOAD)
            response = httpx.put(f"{server.url}/v1/contexts/{digest}", content=chunks(path),
                                 headers=server.headers, timeout=300)
            assert response.status_code == 201, response.text
            digests.append(digest)
            grown = max(grown, disk_usage(server.data) - before)
            path.unlink()
    finally:
        uploading.clear()
        sampler.join()
    upload_seconds = time.monotonic() - started
    assert grown >= UPLOAD, f"the data directory grew only {grown} bytes"

    # Watched on disk: a HEAD by the owner counts as a use and would keep them.
    contexts = server.data / "contexts"
    gone = eventually(lambda: not any((contexts / (d[7:] + ".tar")).exists()
                                      for d in digests) or None,
                      "the unused contexts to be collected", timeout=TTL + 60)
    after = eventually(lambda: (lambda size: size if size <= before + 2 * MiB else None)(
        disk_usage(server.data)), "the data directory to shrink back", timeout=30)
    measured(record_property,
             f"3 uploads of {UPLOAD // MiB} MiB in {upload_seconds:.1f}s; data dir "
             f"{before / MiB:.1f} MiB before, grew up to {grown / MiB:.1f} MiB, "
             f"{after / MiB:.1f} MiB after the TTL ({TTL}s); server RSS "
             f"{baseline / MiB:.1f} MiB before, peak {peak[0] / MiB:.1f} MiB during the uploads")
    assert gone and not any(server.has(d) for d in digests)
    # Gathered in memory, one upload alone would add UPLOAD bytes (twice while joined).
    assert peak[0] - baseline < 64 * MiB, f"RSS grew {(peak[0] - baseline) / MiB:.1f} MiB"


def test_an_endless_upload_is_refused_and_leaves_nothing(server: Server) -> None:
    """A body without Content-Length (chunked) that goes on past the size limit: 413, and
    nothing of it is kept. (The account's quota, 2 GiB in playground mode, is the same check
    on the same stream: tests/api/test_storage.py.)"""
    sent = [0]

    def endless() -> Iterator[bytes]:
        while sent[0] < 4 * UPLOAD:
            sent[0] += MiB
            yield b"\0" * MiB

    try:
        response = httpx.put(f"{server.url}/v1/contexts/sha256:{'1' * 64}", content=endless(),
                             headers=server.headers, timeout=120)
    except httpx.HTTPError:
        response = None  # the server answered and closed while the client still sent
    if response is not None:
        assert response.status_code == 413, response.text
        assert "over the server's limit" in response.json()["error"]
    assert not list((server.data / "contexts").glob("*.part"))


# -- the stored project and history ------------------------------------------------------------
def deployment_of(response: httpx.Response) -> str:
    assert response.status_code == 202, response.text
    return str(response.json()["deployment"])


def x_project(size: int) -> dict[str, Any]:
    return {"name": "bulky", "x-blob": "a" * size,
            "services": {"web": {"image": IMAGE, "deploy": {"replicas": 0}}}}


def test_deployments_with_a_huge_x_key_are_refused_or_bounded(
        server: Server, record_property: Record) -> None:
    before = database_bytes(server.data)
    refused = [server.deploy("bulky", x_project(int(3.9 * MiB))) for _ in range(60)]
    codes = {r.status_code for r in refused}
    assert codes <= {413, 422}, codes
    over_project = server.deploy("bulky", x_project(int(1.5 * MiB)))  # under the request limit
    assert over_project.status_code == 422, over_project.text
    diagnostic = over_project.json()["diagnostics"][0]
    assert diagnostic["code"] == "project-too-large" and diagnostic["path"] == "x-blob"
    after_refused = database_bytes(server.data)

    started = time.monotonic()
    ids = []
    for _ in range(60):
        deployment = deployment_of(server.deploy("bulky", x_project(900 * 1024)))
        assert server.finished(deployment) == "succeeded"
        ids.append(deployment)
    seconds = time.monotonic() - started
    listed = [d["id"] for d in server.get("/v1/deployments?project=bulky&limit=100").json()]
    after = database_bytes(server.data)
    measured(record_property,
             f"database {before / MiB:.2f} MiB; after 60 refused deployments with a 3.9 MiB "
             f"x- key (HTTP {sorted(codes)}) {after_refused / MiB:.2f} MiB; after 60 "
             f"deployments with a 900 KiB x- key in {seconds:.1f}s {after / MiB:.2f} MiB "
             f"({len(listed)} deployments kept)")
    assert after_refused - before < MiB
    assert listed[0] == ids[-1] and len(listed) <= KEEP + 1
    # Unpruned, the 60 would add 54 MB; the kept ones hold about KEEP x 0.9 MB (+ WAL).
    assert after - before < 20 * MiB, f"the database grew {(after - before) / MiB:.1f} MiB"


# -- build logs -----------------------------------------------------------------------------------
def test_a_build_printing_megabytes_keeps_its_stored_log_under_the_cap(
        server: Server, record_property: Record) -> None:
    dockerfile = (f"FROM {IMAGE}\nRUN yes '0123456789 abcdefghij 0123456789 abcdefghij "
                  "0123456789 abcdefghij' | head -n 200000\n").encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        archive.addfile(info, io.BytesIO(dockerfile))
    data = buffer.getvalue()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    put = httpx.put(f"{server.url}/v1/contexts/{digest}", content=data, headers=server.headers,
                    timeout=60)
    assert put.status_code == 201, put.text
    project = {"name": "chatty", "services": {"web": {"build": {"context": "."},
                                                      "deploy": {"replicas": 0}}}}
    deployment = deployment_of(server.deploy("chatty", project, {"web": digest}))
    assert server.finished(deployment, timeout=300) == "succeeded"
    with sqlite3.connect(server.data / "dockyard.db") as db:
        stored, lines = db.execute(
            "SELECT SUM(LENGTH(CAST(line AS BLOB)) + 1), COUNT(*) FROM build_logs "
            "WHERE deployment_id = ? AND service = 'web'", (deployment,)).fetchone()
        note = db.execute("SELECT line FROM build_logs WHERE deployment_id = ? "
                          "ORDER BY id DESC LIMIT 1", (deployment,)).fetchone()[0]
    measured(record_property,
             f"a build printing ~12 MB stored {stored} bytes in {lines} lines (cap {LOG_CAP}); "
             f"last line: {note}")
    assert stored <= LOG_CAP + 1024
    assert note.startswith("[build log truncated") and "dropped" in note
    dropped = int(note.split("; ")[1].split(" bytes")[0])
    assert dropped > 10 * MiB
    text = server.get("/v1/projects/chatty/logs?type=build").text
    assert "build log truncated" in text and len(text) < 4 * LOG_CAP
    json.loads(text.split("data: ", 1)[1].split("\n", 1)[0])  # the stream is well formed
