"""What a long history costs: 1,000 deployments of the example, then the server's memory, the
SQLite file's size, and the latency of `ps` and `deployments`.

    .venv/bin/python bench/history_bench.py [--deployments 1000] [--json]

`examples/shop` is deployed once with the CLI (a temporary `DOCKYARD_HOME`, its own local
server with default settings: the history keeps the last 50 deployments per project), then
deployed again and again through the Python client (each a no-op `up` that the server records
with its events, waiting for each to end), as a busy CI would. At the end: the server's
resident memory (VmRSS), the size of `dockyard.db` with its WAL, and the median of 20 timed
`dockyard compose ps` and `dockyard deployments` runs (the CLI, as a user runs them). Then
`down`, and everything is removed. Nothing here is compared with Compose, which has no
history.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy_bench import (  # noqa: E402  (a script beside this one)
    DOCKYARD,
    OURS,
    child_env,
    clean_engine,
    copy_project,
    free_port,
    run,
    stop_server,
)

from dockyard.cli.commands.deploy import prepare  # noqa: E402
from dockyard.client.api import Client  # noqa: E402
from dockyard.client.local import running_server, server_dir  # noqa: E402
from dockyard.compose import LoadOptions  # noqa: E402


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def timed(cmd: list[str], cwd: Path, env: dict[str, str], runs: int = 20) -> float:
    return statistics.median(run(cmd, cwd, env) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {"deployments": args.deployments}
    with tempfile.TemporaryDirectory() as tmp:
        home, project = Path(tmp) / "home", Path(tmp) / "shop"
        copy_project(project)
        env = {**child_env(home, free_port()), "DOCKYARD_HTTP_PORT": "0",
               "DOCKYARD_HTTPS_PORT": "0"}  # beside any other server on 80 and 443
        try:
            clean_engine()
            run([str(DOCKYARD), "compose", "up", "-p", OURS], project, env)
            found = running_server(env)
            if found is None:
                sys.exit("the local server is not running")
            url, pid = found
            token = (server_dir(env) / "local-token").read_text().strip()
            results["rss_kib_after_first"] = rss_kib(pid)
            os.environ["METRICS_PORT"] = env["METRICS_PORT"]
            name, data, builds, _, _ = prepare(LoadOptions(
                working_dir=str(project), project_name=OURS, environ=dict(env)))
            start = time.perf_counter()
            with Client(url, token, timeout=120) as client:
                for _ in range(args.deployments - 1):
                    deployment = client.deploy(name, data, builds)
                    for kind, item in client.events(deployment):
                        if kind == "end" and item.get("status") != "succeeded":
                            sys.exit(f"deployment {deployment} ended {item}")
            results["seconds_per_deployment"] = round(
                (time.perf_counter() - start) / max(1, args.deployments - 1), 3)
            results["rss_kib"] = rss_kib(pid)
            database = server_dir(env) / "dockyard.db"
            results["database_bytes"] = sum(
                p.stat().st_size for p in database.parent.glob("dockyard.db*"))
            results["ps_seconds"] = round(timed(
                [str(DOCKYARD), "compose", "ps", "-p", OURS], project, env), 3)
            results["deployments_seconds"] = round(timed(
                [str(DOCKYARD), "deployments", "-p", OURS], project, env), 3)
            run([str(DOCKYARD), "compose", "down", "-p", OURS], project, env)
        finally:
            stop_server(home)
            clean_engine()
            shutil.rmtree(home, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for key, value in results.items():
        print(f"{key:<26}{value}")


if __name__ == "__main__":
    main()
