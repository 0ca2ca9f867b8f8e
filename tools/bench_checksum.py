#!/usr/bin/env python3
"""Benchmark the Internet checksum: C extension (pytcp._native via cffi) vs pure Python.

Prints ns per call and Gbit/s for 1,460-byte and 64 KiB buffers (bytes, bytearray and an
odd-offset memoryview), and the native/Python speed ratio. Not a test; numbers on shared
VMs are noisy, so each figure is the best of several repeats.

    python3 tools/bench_checksum.py [--repeat 7] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import sys
import timeit
from collections.abc import Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pytcp import _pyfallback, native

SIZES = (1460, 65536)


def best_ns(fn: Callable[[], object], repeat: int, budget: float = 0.2) -> float:
    """Best-of-``repeat`` time per call in ns, each repeat running about ``budget`` seconds."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(1, int(number * budget / 0.2))
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e9


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()

    impls: list[tuple[str, Callable[..., int]]] = [("python", _pyfallback.csum_partial)]
    if native.HAVE_NATIVE:
        impls.insert(0, ("native", native.csum_partial))
    else:
        print("note: pytcp._native not loaded; only the Python fallback is measured",
              file=sys.stderr)

    rows: list[tuple[str, int, str, float]] = []
    for size in SIZES:
        data = os.urandom(size + 1)
        buffers = {
            "bytes": data[:size],
            "bytearray": bytearray(data[:size]),
            "memoryview+1": memoryview(data)[1:],  # odd start address
        }
        for impl_name, fn in impls:
            for kind, buf in buffers.items():
                ns = best_ns(lambda fn=fn, buf=buf: fn(buf), args.repeat)
                rows.append((impl_name, size, kind, ns))

    def ns_of(impl: str, size: int, kind: str) -> float:
        return next(r[3] for r in rows if r[:3] == (impl, size, kind))

    if args.markdown:
        print("| implementation | size | buffer | ns/call | Gbit/s |")
        print("|---|---:|---|---:|---:|")
    else:
        print(f"{'impl':8} {'size':>6} {'buffer':13} {'ns/call':>10} {'Gbit/s':>8}")
    for impl, size, kind, ns in rows:
        gbps = size * 8 / ns
        if args.markdown:
            print(f"| {impl} | {size:,} B | {kind} | {ns:,.0f} | {gbps:.2f} |")
        else:
            print(f"{impl:8} {size:6} {kind:13} {ns:10.0f} {gbps:8.2f}")
    if native.HAVE_NATIVE:
        print()
        for size in SIZES:
            ratio = ns_of("python", size, "bytes") / ns_of("native", size, "bytes")
            print(f"native/python speed ratio at {size:,} B (bytes): {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
