"""What any client can do on a machine loaded by a project's own health checks, beside Dockyard.

    .venv/bin/python bench/floor_bench.py [--size 100] [--interval 1s] [--rounds 9] [--json]

Deploys scale_bench's project (N public busybox services, a health check every `--interval`)
with Dockyard, then times these commands interleaved, round after round, while the project
runs, and reports each one's median elapsed time:
- the interpreter alone (`python -S -c pass`, `python -c pass`);
- Python importing what any Compose client in Python needs (argparse, json, socket,
  dataclasses), then also PyYAML parsing the project's `compose.yaml`: the floor of a
  Python `up`, before any validation or request;
- `docker ps -q`, the engine's own Go client listing container ids: the floor of a `ps`;
- `dockyard compose ps` and a no-op `dockyard compose up`.

With 1-s checks, N = 100 on 2 cores, the machine runs at load average 60-120, and every
process waits for a core: the floors show which of scale_bench's absolute goals (no-op `up`
under 0.5 s, `ps` under 0.3 s) no client can meet on that machine. Everything the run created
is removed at the end, also after a failure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy_bench import (  # noqa: E402  (scripts beside this one)
    DOCKER,
    DOCKYARD,
    OURS,
    child_env,
    clean_engine,
    free_port,
    run,
    stop_server,
)
from scale_bench import write_project  # noqa: E402


def commands(project: Path) -> dict[str, list[str]]:
    python = sys.executable
    parse = ("import argparse, json, socket, dataclasses, yaml; "
             f"yaml.safe_load(open({str(project / 'compose.yaml')!r}))")
    return {
        "python -S -c pass": [python, "-S", "-c", "pass"],
        "python -c pass": [python, "-c", "pass"],
        "python: import argparse json socket dataclasses":
            [python, "-c", "import argparse, json, socket, dataclasses"],
        "python: the same, and yaml parses compose.yaml": [python, "-c", parse],
        "docker ps -q": [DOCKER, "ps", "-q"],
        "dockyard compose ps": [str(DOCKYARD), "compose", "ps", "-p", OURS],
        "dockyard compose up (no-op)": [str(DOCKYARD), "compose", "up", "-p", OURS],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=100, help="services (default 100)")
    parser.add_argument("--interval", default="1s", help="health-check interval (default 1s)")
    parser.add_argument("--rounds", type=int, default=9, help="timings of each command")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.size < 1 or args.rounds < 1:
        parser.error("--size and --rounds must be positive")
    with tempfile.TemporaryDirectory() as tmp:
        home, project = Path(tmp) / "home", Path(tmp) / "project"
        write_project(project, args.size, args.interval)
        env = child_env(home, free_port())
        samples: dict[str, list[float]] = {}
        try:
            clean_engine()
            run([str(DOCKYARD), "compose", "up", "-p", OURS], project, env)
            for _ in range(args.rounds):
                for name, cmd in commands(project).items():
                    samples.setdefault(name, []).append(run(cmd, project, env))
        except RuntimeError as exc:
            sys.exit(str(exc))
        finally:
            stop_server(home)
            clean_engine()
    medians = {name: round(statistics.median(values), 3) for name, values in samples.items()}
    if args.json:
        print(json.dumps({"size": args.size, "interval": args.interval, "median_s": medians},
                         indent=2))
        return
    print(f"N = {args.size}, health checks every {args.interval}: median elapsed of "
          f"{args.rounds} interleaved rounds")
    for name, value in medians.items():
        print(f"  {value:7.3f} s  {name}")


if __name__ == "__main__":
    main()
