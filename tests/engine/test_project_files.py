"""Project files end to end (issue 13): the real CLI, a local server and the Docker Engine.

An httpd project (busybox httpd) whose config file and document root are relative bind
mounts deploys and serves with them; a config from `file:` and one from `content:` arrive
read-only; a writable relative mount keeps what a container wrote across a no-op `up`; a
changed config file replaces only the service that mounts it. Checked from inside the
containers (`docker exec`), so no ingress is needed. The project is cleaned up by label (the
`dockyard` fixture)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.deployments import (
    Dockyard,
    by_service,
    containers,
    docker_exec,
    ids_of,
)
from tests.support.engine import engine_ready

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not os.environ.get("CI") and not engine_ready(),
                       reason="no Docker Engine with dockyard/busybox:1 (run scripts/setup "
                       "as root)"),
]

COMPOSE = """\
services:
  web:
    image: dockyard/busybox:1
    command: [httpd, -f, -p, "8080", -h, /www, -c, /etc/httpd.conf]
    volumes:
      - ./conf/httpd.conf:/etc/httpd.conf:ro
      - type: bind
        source: ./static
        target: /www
        read_only: true
    healthcheck:
      test: [CMD, wget, -qO-, http://127.0.0.1:8080/]
      interval: 1s
      retries: 30
  worker:
    image: dockyard/busybox:1
    command: [sleep, "3600"]
    stop_grace_period: 1s
    volumes:
      - ./state:/state
    configs:
      - app
      - source: banner
        target: /etc/banner.txt
configs:
  app:
    file: ./conf/app.ini
  banner:
    content: welcome
"""


def _project(root: Path) -> Path:
    (root / "conf").mkdir(parents=True)
    (root / "static").mkdir()
    (root / "state").mkdir()
    (root / "conf" / "httpd.conf").write_text(".txt:text/x-first\n")
    (root / "conf" / "app.ini").write_text("mode=engine\n")
    (root / "static" / "index.html").write_text("<h1>files</h1>\n")
    (root / "static" / "hello.txt").write_text("hello from the project\n")
    (root / "state" / "seed.txt").write_text("seed\n")
    (root / "compose.yaml").write_text(COMPOSE)
    return root


def _one(project: str, service: str) -> dict[str, object]:
    (container,) = by_service(containers(project))[service]
    return container


def _sh(project: str, service: str, script: str) -> tuple[int, str]:
    result = docker_exec(_one(project, service), script)
    return result.returncode, result.stdout + result.stderr


def test_project_files_deploy_serve_and_replace_only_their_service(
        dockyard: Dockyard, tmp_path: Path) -> None:
    directory = _project(tmp_path / "site")
    project = dockyard.name("files")
    first = dockyard.up(directory, project)
    assert first.code == 0, str(first)
    assert "writes to it stay on the server" in first.err  # the writable ./state

    # Served with the project's config file (the .txt type) and document root.
    code, out = _sh(project, "web", "wget -S -O- http://127.0.0.1:8080/hello.txt 2>&1")
    assert code == 0 and "hello from the project" in out and "text/x-first" in out, out
    code, out = _sh(project, "web", "echo x >> /etc/httpd.conf; echo x > /www/new.html")
    assert code != 0 and "Read-only file system" in out, out

    # Configs from file: and content:, read-only at their targets.
    code, out = _sh(project, "worker", "cat /app /etc/banner.txt")
    assert code == 0 and out == "mode=engine\nwelcome", out
    code, out = _sh(project, "worker", "echo x > /app")
    assert code != 0 and "Read-only file system" in out, out

    # The writable copy: what the container writes stays across a no-op `up`.
    code, out = _sh(project, "worker", "cat /state/seed.txt && echo kept > /state/written")
    assert code == 0 and out == "seed\n", out
    before = {s: ids_of(c) for s, c in by_service(containers(project)).items()}
    again = dockyard.up(directory, project)
    assert again.code == 0, str(again)
    assert {s: ids_of(c) for s, c in by_service(containers(project)).items()} == before
    assert _sh(project, "worker", "cat /state/written") == (0, "kept\n")
    assert not (directory / "state" / "written").exists()  # never synced back

    # A changed config file replaces web only.
    (directory / "conf" / "httpd.conf").write_text(".txt:text/x-second\n")
    third = dockyard.up(directory, project)
    assert third.code == 0, str(third)
    after = {s: ids_of(c) for s, c in by_service(containers(project)).items()}
    assert after["worker"] == before["worker"] and not after["web"] & before["web"]
    code, out = _sh(project, "web", "wget -S -O- http://127.0.0.1:8080/hello.txt 2>&1")
    assert code == 0 and "text/x-second" in out, out
    assert _sh(project, "worker", "cat /state/written") == (0, "kept\n")  # its copy stays
