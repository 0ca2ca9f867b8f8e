#!/usr/bin/env python3
"""No loss on a lossless link: kernel TX drops on the TUN during a bulk download into pytcp.

Owns the measurement behind docs/robustness.md "The TUN's queue" (not a test). In one
throw-away network namespace, a kernel HTTP server (``tools/bench.py``'s sendfile server)
serves a file of ``--size-mb`` MiB and ``pytcp get -v`` downloads it through the TUN, once per
variant (default: pytcp's own txqueuelen, then the kernel's default 500). The kernel's side
of the TUN sends the data, so its transmit queue is the one that overflows when it is shorter
than what pytcp's receive window lets the kernel send at once: the figure is the interface's
``tx_dropped`` as ``pytcp get -v`` logs it just before it removes the interface.

Run as root:  python3 tools/bench_txqueue.py [--size-mb 1024] [--variants '--no-offload,--no-offload --txqueuelen 500']
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.netns import REPO_ROOT, Netns, environment_problem, pytcp_argv, pytcp_env

HOST_ADDR = "10.77.0.1"
PORT = 8080
_STATS = re.compile(r"kernel tx_packets=(\d+) tx_dropped=(\d+) txqueuelen=(\d+)")


def run_variant(ns: Netns, size: int, extra: list[str], timeout: float) -> dict[str, float]:
    """One ``pytcp get`` of the file; returns seconds, Mbit/s and the TUN's counters."""
    began = time.monotonic()
    res = ns.run(pytcp_argv("get", "-v", *extra, f"http://{HOST_ADDR}:{PORT}/blob", "-o", "-"),
                 timeout=timeout, stdout=subprocess.DEVNULL, env=pytcp_env(),
                 cwd=str(REPO_ROOT))
    seconds = time.monotonic() - began
    err = res.stderr.decode(errors="replace")
    if res.returncode:
        raise RuntimeError(f"pytcp get {' '.join(extra)} failed: {err[-2000:]}")
    found = _STATS.search(err)
    if found is None:
        raise RuntimeError(f"no TUN statistics in the -v log: {err[-2000:]}")
    tx_packets, tx_dropped, qlen = (int(x) for x in found.groups())
    return {"seconds": seconds, "mbit": size * 8 / seconds / 1e6, "tx_packets": tx_packets,
            "tx_dropped": tx_dropped, "txqueuelen": qlen}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="file size (MiB), default 1024")
    parser.add_argument("--variants", default="--no-offload,--no-offload --txqueuelen 500",
                        metavar="LIST",
                        help="comma-separated extra `pytcp get` flags, one row each (default: "
                             "pytcp's own txqueuelen, then the kernel's 500)")
    parser.add_argument("--timeout", type=float, default=900.0, help="per download, seconds")
    args = parser.parse_args(argv)
    problem = environment_problem()
    if problem:
        print(f"bench_txqueue: {problem}", file=sys.stderr)
        return 2
    size = args.size_mb * 1024 * 1024
    rows = []
    with tempfile.TemporaryDirectory(prefix="pytcp-txq-") as tmp:
        root = Path(tmp)
        with open(root / "blob", "wb") as f:
            f.truncate(size)  # sparse: sendfile reads zeros from the page cache
        root.chmod(0o755)
        with Netns("pytcp-txq") as ns:
            # The host address exists only while pytcp's TUN is up: bind to any address.
            server = ns.popen([sys.executable, str(REPO_ROOT / "tools" / "bench.py"),
                               "--serve-kernel", str(root), str(PORT)], stdout=subprocess.PIPE)
            assert server.stdout is not None
            server.stdout.readline()  # "listening"
            for variant in args.variants.split(","):
                extra = variant.split()
                rows.append((variant.strip() or "(pytcp's txqueuelen)",
                             run_variant(ns, size, extra, args.timeout)))
    print(f"pytcp get of {args.size_mb} MiB from a kernel sendfile server over the TUN, "
          f"no impairment")
    print()
    print("| pytcp get flags | txqueuelen | seconds | Mbit/s | kernel tx_packets | tx_dropped |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(f"| {name} | {r['txqueuelen']:.0f} | {r['seconds']:.1f} | {r['mbit']:.0f} | "
              f"{r['tx_packets']:,.0f} | {r['tx_dropped']:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
