#!/usr/bin/env python3
"""Long fuzzing runs (``make fuzz``): each target of tests/fuzz/targets.py under atheris for
``--seconds`` seconds, one after the other, with a corpus kept between runs.

    python3 tools/fuzz.py [--seconds 600] [--targets wire,stack,script] [--dir .fuzz]

The corpus grows in ``DIR/corpus/TARGET`` (seeded from tests/fuzz/seeds.py each run);
inputs that break an invariant land in ``DIR/crashes/`` (``crash-*``, ``timeout-*``,
``oom-*``). Exit status 0 when no target found anything, 1 otherwise, 2 for bad flags. Every
crash found becomes a regression test in tests/fuzz/test_fuzz_regressions.py.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fuzz.seeds import write_seeds  # noqa: E402
from tests.fuzz.targets import TARGETS  # noqa: E402


def _targets(text: str) -> list[str]:
    names = [t for t in text.split(",") if t]
    bad = [t for t in names if t not in TARGETS]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown target {','.join(bad) or text!r}: choose from {','.join(TARGETS)}")
    return names


def _seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid --seconds {text!r}: whole seconds") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid --seconds {text!r}: at least 1")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        """One line and exit 2 for a bad flag."""
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def main(argv: list[str] | None = None) -> int:
    p = _Parser(description="Run pytcp's fuzz targets for long.")
    p.add_argument("--seconds", type=_seconds, default=600, help="per target (default 600)")
    p.add_argument("--targets", type=_targets, default=list(TARGETS),
                   help=f"comma-separated, of {','.join(TARGETS)} (default: all)")
    p.add_argument("--dir", type=Path, default=REPO / ".fuzz",
                   help="corpus and crash directory (default .fuzz)")
    args = p.parse_args(argv)
    logging.disable(logging.CRITICAL)  # seed generation: "possible SYN flooding" and the like
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("fuzz: atheris is not installed (pip install atheris)", file=sys.stderr)
        return 2
    crashes = args.dir / "crashes"
    crashes.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep)
    found = 0
    for target in args.targets:
        corpus = args.dir / "corpus" / target
        corpus.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            n = write_seeds(target, Path(tmp))
            before = set(crashes.iterdir())
            t0 = time.monotonic()
            proc = subprocess.run(
                [sys.executable, str(REPO / "tests/fuzz/run.py"), target,
                 f"-max_total_time={args.seconds}", "-rss_limit_mb=2048", "-timeout=30",
                 f"-artifact_prefix={crashes}/{target}-", "-print_final_stats=1",
                 str(corpus), tmp],
                cwd=REPO, env=env, capture_output=True, text=True, check=False,
                timeout=args.seconds + 300)
            took = time.monotonic() - t0
        new = sorted(set(crashes.iterdir()) - before)
        stats = [line for line in proc.stderr.splitlines()
                 if line.startswith(("Done ", "stat::number_of_executed_units",
                                     "stat::average_exec_per_sec"))]
        corpus_n = len(list(corpus.iterdir()))
        print(f"{target}: {took:.0f} s, {n} seeds, corpus {corpus_n}, exit {proc.returncode}; "
              + "; ".join(stats))
        if proc.returncode != 0 or new:
            found += 1
            print("\n".join(proc.stderr.splitlines()[-40:]), file=sys.stderr)
            for path in new:
                print(f"{target}: problem input kept in {path}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
