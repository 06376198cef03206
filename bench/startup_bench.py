"""`compose config` file by file against Docker Compose v2, and where Dockyard's start-up goes.

    .venv/bin/python bench/startup_bench.py [--runs N] [--cases GLOB] [--imports N] [--json]

For every valid case of tests/corpus (or those matching --cases), both tools print the config
`--runs` times, interleaved run by run so both see the same machine load; each case gets the
median wall time of each tool and their ratio. Reported: the median ratio over the cases (a
typical file), the worst case, the ratio on the `app-*` cases (modelled on real projects:
awesome-compose style stacks), and the time of one pass over all the cases. Then the imports of
one `dockyard compose config` (`python -X importtime`, the minimum of `--import-runs` runs), the
slowest first, so a regression in start-up names its module.

Goal (issue 13): a typical real-world file within 2x of Compose v2. The package is byte-compiled
first and PYTHONDONTWRITEBYTECODE is removed from the children's environment (a normal installed
run). Timings are never asserted in tests.
"""

from __future__ import annotations

import argparse
import compileall
import fnmatch
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from config_bench import (  # noqa: E402  (a sibling script, not a package)
    DOCKYARD,
    ROOT,
    case_args,
    clean_env,
    reference_binary,
    valid_cases,
)

REAL_WORLD = "app-*"


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(cmd)} in {cwd}\n{result.stderr}")
    return elapsed


def per_case(runs: int, pattern: str, home: str) -> list[dict[str, Any]]:
    compose = reference_binary()
    out = []
    for case, spec in valid_cases():
        if not fnmatch.fnmatch(case.name, pattern):
            continue
        args = case_args(spec)
        workdir = case / (spec.get("args") or {}).get("workdir", ".")
        env = clean_env(home, {str(k): str(v) for k, v in (spec.get("environ") or {}).items()})
        ours_cmd = [str(DOCKYARD), "compose", *args, "config"]
        theirs_cmd = [str(compose), *args, "config"]
        timed(ours_cmd, workdir, env)
        timed(theirs_cmd, workdir, env)  # warm the file cache once
        ours: list[float] = []
        theirs: list[float] = []
        for _ in range(runs):
            ours.append(timed(ours_cmd, workdir, env))
            theirs.append(timed(theirs_cmd, workdir, env))
        d, c = statistics.median(ours), statistics.median(theirs)
        out.append({"case": case.name, "dockyard": d, "compose_v2": c, "ratio": d / c})
    return out


def imports(runs: int, home: str) -> list[dict[str, Any]]:
    """Self and cumulative import times (ms) of one `compose config`, the minimum per module."""
    code = ("import sys; from dockyard.cli.main import main; "
            "sys.exit(main(['compose', 'config', '-C', 'examples/shop']))")
    self_ms: dict[str, float] = defaultdict(lambda: float("inf"))
    cumulative: dict[str, float] = defaultdict(lambda: float("inf"))
    for _ in range(runs):
        err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT,
                             env=clean_env(home), capture_output=True, text=True,
                             check=False).stderr
        for line in err.splitlines():
            parts = line.removeprefix("import time:").split("|")
            if len(parts) != 3 or not parts[0].strip().isdigit():
                continue
            name = parts[2].strip()
            self_ms[name] = min(self_ms[name], int(parts[0]) / 1000)
            cumulative[name] = min(cumulative[name], int(parts[1]) / 1000)
    return [{"module": m, "self_ms": self_ms[m], "cumulative_ms": cumulative[m]}
            for m in sorted(self_ms, key=lambda m: -self_ms[m])]


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = [r["ratio"] for r in rows]
    real = [r["ratio"] for r in rows if fnmatch.fnmatch(r["case"], REAL_WORLD)]
    worst = max(rows, key=lambda r: r["ratio"])
    return {
        "cases": len(rows),
        "median_ratio": statistics.median(ratios),
        "worst": {"case": worst["case"], "ratio": worst["ratio"]},
        "real_world_median_ratio": statistics.median(real) if real else None,
        "pass_seconds": {"dockyard": sum(r["dockyard"] for r in rows),
                         "compose_v2": sum(r["compose_v2"] for r in rows)},
        "median_seconds": {"dockyard": statistics.median(r["dockyard"] for r in rows),
                           "compose_v2": statistics.median(r["compose_v2"] for r in rows)},
        "goal_typical_within_2x": statistics.median(ratios) <= 2.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="runs of each tool per case")
    parser.add_argument("--cases", default="*", metavar="GLOB", help="only these cases")
    parser.add_argument("--imports", type=int, default=15, metavar="N",
                        help="print the N slowest imports (0: none)")
    parser.add_argument("--import-runs", type=int, default=5, metavar="N",
                        help="runs of -X importtime (the minimum per module is kept)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not DOCKYARD.exists():
        sys.exit(f"no dockyard executable at {DOCKYARD}: run scripts/setup first")
    compileall.compile_dir(str(ROOT / "src"), quiet=1)
    with tempfile.TemporaryDirectory() as tmp:
        rows = per_case(args.runs, args.cases, str(Path(tmp) / "home"))
        if not rows:
            sys.exit(f"no valid corpus case matches {args.cases!r}")
        slow = imports(args.import_runs, str(Path(tmp) / "home")) if args.imports else []
    results: dict[str, Any] = {"summary": summary(rows), "cases": rows,
                               "imports": slow[:args.imports]}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'case':<40}{'dockyard (s)':>14}{'compose v2 (s)':>16}{'ratio':>8}")
    for row in sorted(rows, key=lambda r: -r["ratio"]):
        print(f"{row['case']:<40}{row['dockyard']:>14.3f}{row['compose_v2']:>16.3f}"
              f"{row['ratio']:>8.2f}")
    s = results["summary"]
    print(f"\n{s['cases']} cases; median ratio {s['median_ratio']:.2f} (worst "
          f"{s['worst']['case']} {s['worst']['ratio']:.2f}); app-* cases "
          f"{s['real_world_median_ratio'] or float('nan'):.2f}; one pass "
          f"{s['pass_seconds']['dockyard']:.2f} s against {s['pass_seconds']['compose_v2']:.2f} s")
    print(f"goal typical file within 2x: {'met' if s['goal_typical_within_2x'] else 'NOT met'}")
    if slow:
        print(f"\nslowest imports of `dockyard compose config` (ms, min of {args.import_runs}):")
        print(f"{'self':>8}{'cumulative':>12}  module")
        for row in slow[:args.imports]:
            print(f"{row['self_ms']:>8.2f}{row['cumulative_ms']:>12.2f}  {row['module']}")


if __name__ == "__main__":
    main()
