"""HAProxy's runtime API: a project's routes leaving and coming back, batched against one
command per connection, in one run.

    .venv/bin/python bench/runtime_api_bench.py [--routes 100] [--rounds 5] [--json]

A real HAProxy (the ingress driver, `dockyard.ingress.haproxy.HAProxy`, no Docker) starts with
`--routes` routes, then, `--rounds` times, every route is removed (what `compose down` does
before it stops anything) and added back on the spare backends (what an `up` does): each a
runtime update with no reload. Both are timed with the driver's batching (`batched`: commands
joined into lines of up to 8 KiB) and with one admin-socket connection per command, as the
driver sent them before. Medians, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import dockyard.ingress.haproxy as haproxy
from dockyard.ingress.routes import Check, Route, Upstream


def routes(count: int, port_offset: int) -> dict[str, Route]:
    """`count` HTTP routes, one replica each (nothing needs to listen: nothing is checked)."""
    out: dict[str, Route] = {}
    for i in range(count):
        key = f"bench/p/s{i}/8080"
        out[key] = Route(key, (f"s{i}.p.bench.test",), Check.HTTP).with_upstreams(
            [Upstream("127.0.0.1", 20000 + port_offset + i, f"c{i}")], [])
    return out


def measure(count: int, rounds: int, batch_bytes: int) -> dict[str, float]:
    """Median seconds to remove every route, and to add them back, with lines of runtime
    commands up to `batch_bytes` long (0: one command per connection)."""
    removals: list[float] = []
    additions: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        sock = haproxy.bind_listener("127.0.0.1", 0, flag="--http-port")
        proxy = haproxy.HAProxy(Path(tmp) / "ingress", sock, None)
        proxy.batch_bytes = batch_bytes
        try:
            proxy.start(routes(count, 0))
            for round_ in range(rounds):
                pid = proxy._worker_pid()
                start = time.perf_counter()
                proxy.apply({})
                removals.append(time.perf_counter() - start)
                start = time.perf_counter()
                proxy.apply(routes(count, round_ + 1))  # new ports: every slot changes
                additions.append(time.perf_counter() - start)
                if proxy._worker_pid() != pid:
                    raise SystemExit("HAProxy reloaded: the runtime API was not measured")
        finally:
            proxy.stop()
            sock.close()
    return {"remove": statistics.median(removals), "add": statistics.median(additions)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--routes", type=int, default=100, help="routes (default 100)")
    parser.add_argument("--rounds", type=int, default=5, help="removals and additions")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.routes < 1 or args.rounds < 1:
        parser.error("--routes and --rounds must be positive")
    batched = measure(args.routes, args.rounds, haproxy.BATCH_BYTES)
    single = measure(args.routes, args.rounds, 0)
    result: dict[str, Any] = {
        "routes": args.routes,
        **{what: {"batched": round(batched[what], 4), "one_per_connection":
                  round(single[what], 4), "ratio": round(batched[what] / single[what], 3)}
           for what in ("remove", "add")}}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for what in ("remove", "add"):
        row = result[what]
        print(f"{what} {args.routes} routes: batched {row['batched']:.4f} s, one command per "
              f"connection {row['one_per_connection']:.4f} s ({row['ratio']:.2f}x)")


if __name__ == "__main__":
    main()
