"""tools/bench_segment.py runs and prints its figures (a smoke test, not a benchmark)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "bench_segment.py"


def test_bench_segment_prints_positive_figures() -> None:
    res = subprocess.run([sys.executable, str(TOOL), "--mb", "0.5", "--runs", "1", "--conns",
                          "5", "--prefill", "5", "--markdown"], capture_output=True, check=False, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    rows = [line for line in res.stdout.splitlines() if line.startswith("| ") and "µs/" in line]
    assert len(rows) == 4
    for row in rows:
        value = float(row.split("|")[2].replace(",", ""))
        assert value > 0
    assert re.search(r"\d+ data packets", res.stdout)


def test_bench_segment_rejects_a_bad_flag() -> None:
    res = subprocess.run([sys.executable, str(TOOL), "--runs", "0"], capture_output=True, check=False,
                         text=True, timeout=60)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
