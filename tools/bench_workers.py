#!/usr/bin/env python3
"""Scaling of ``pytcp up --workers N`` (a multi-queue TUN, one process per queue).

Owns the benchmark behind docs/performance.md "More than one core". In a throw-away network
namespace it starts ``pytcp up --http 80 --root DIR --workers N`` for each N given and runs
wrk (1 thread) against a 1 KB file on pytcp's address over the TUN: keep-alive with
``--conns`` connections, and new connections (``Connection: close``) with the same count.
It prints requests/s per N (median of ``--runs``) and the ratio to N=1. wrk, the kernel's
TCP and pytcp share the machine's cores, so read the ratio as what one more pytcp process
buys on this machine, not as pytcp's own scaling.

Run as root:  python3 tools/bench_workers.py [--workers 1,2] [--seconds 5] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.netns import Netns, PytcpUp, environment_problem

STACK_ADDR = "10.77.0.2"


def wrk_rate(ns: Netns, url: str, conns: int, seconds: float, close: bool) -> float:
    """Requests/s wrk measured (1 thread); raises if wrk failed or saw errors."""
    argv = ["wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", "--timeout", "5s"]
    if close:
        argv += ["-H", "Connection: close"]
    res = ns.run([*argv, url], timeout=seconds + 30)
    out = res.stdout.decode() if isinstance(res.stdout, bytes) else str(res.stdout)
    if res.returncode != 0:
        raise RuntimeError(f"wrk failed: {out} {res.stderr!r}")
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m is None:
        raise RuntimeError(f"no Requests/sec in wrk's output: {out}")
    return float(m.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2", help="comma-separated N (default 1,2)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per wrk run (default 5)")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per figure (median)")
    parser.add_argument("--conns", type=int, default=50, help="wrk connections (default 50)")
    args = parser.parse_args(argv)
    try:
        counts = [int(x) for x in args.workers.split(",")]
    except ValueError:
        print(f"bench_workers: invalid --workers {args.workers!r}: e.g. 1,2", file=sys.stderr)
        return 2
    if not counts or min(counts) < 1 or args.runs < 1 or args.seconds <= 0 or args.conns < 1:
        print("bench_workers: --workers, --runs, --seconds and --conns must be positive",
              file=sys.stderr)
        return 2
    problem = environment_problem()
    if problem:
        print(f"bench_workers: {problem}", file=sys.stderr)
        return 2
    rows: list[tuple[int, list[float], list[float]]] = []
    with tempfile.TemporaryDirectory(prefix="pytcp-benchw-") as tmp:
        root = Path(tmp) / "www"
        root.mkdir()
        (root / "small").write_bytes(os.urandom(1024))
        os.chmod(tmp, 0o755)
        ns = Netns("pytcp-benchw")
        try:
            for n in counts:
                up = PytcpUp(ns, ["--http", "80", "--root", str(root), "--workers", str(n)],
                             Path(tmp))
                try:
                    up.wait_ready(30)
                    url = f"http://{STACK_ADDR}/small"
                    keep = [wrk_rate(ns, url, args.conns, args.seconds, False)
                            for _ in range(args.runs)]
                    new = [wrk_rate(ns, url, args.conns, args.seconds, True)
                           for _ in range(args.runs)]
                finally:
                    if up.stop() != 0:
                        print(f"bench_workers: pytcp up --workers {n} did not exit 0: "
                              f"{up.stderr()}", file=sys.stderr)
                rows.append((n, keep, new))
        finally:
            ns.close()
    base_keep = statistics.median(rows[0][1])
    base_new = statistics.median(rows[0][2])
    print(f"wrk -t1 -c{args.conns} -d{args.seconds:g}s, 1 KB file over the TUN, "
          f"{os.cpu_count()} cores, median of {args.runs}")
    print()
    print("| workers | keep-alive req/s | ratio | new connections req/s | ratio | runs "
          "(keep-alive; new) |")
    print("|---:|---:|---:|---:|---:|---|")
    for n, keep, new in rows:
        k = statistics.median(keep)
        c = statistics.median(new)
        print(f"| {n} | {k:,.0f} | {k / base_keep:.2f} | {c:,.0f} | {c / base_new:.2f} | "
              f"{', '.join(f'{r:,.0f}' for r in keep)}; {', '.join(f'{r:,.0f}' for r in new)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
