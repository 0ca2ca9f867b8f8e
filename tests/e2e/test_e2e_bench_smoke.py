"""tools/bench.py runs (issue 8 item 5): nginx and pytcp side by side in throw-away namespaces,
every workload measured, with tiny sizes and 1-second wrk runs. Not a benchmark: a smoke
test that the benchmark works and that pytcp answers every workload."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from tools.netns import REPO_ROOT


@pytest.mark.skipif(shutil.which("nginx") is None or shutil.which("wrk") is None,
                    reason="nginx and wrk are needed (make install-test installs them)")
def test_bench_runs_every_workload_against_nginx_and_pytcp() -> None:
    res = subprocess.run([sys.executable, "tools/bench.py", "--runs", "1", "--size-mb", "1",
                          "--duration", "1", "--timeout", "30"],
                         cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=120,
                         check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    rows = [line for line in res.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| workload")]
    assert [r.split("|")[1].strip() for r in rows] == [
        "bulk download (curl from the server)", "bulk upload (pytcp get / curl from nginx)",
        "keep-alive, 1 connection", "keep-alive, 50 connections",
        "new connections (Connection: close), 50"]
    for r in rows:
        cells = [c.strip() for c in r.split("|")[1:-1]]
        kernel, pytcp, ratio = (float(re.sub(r"[^\d.]", "", c)) for c in cells[1:4])
        assert kernel > 0 and pytcp > 0 and ratio > 0, r
    # A keep-alive request must not wait ~40 ms for Nagle and a delayed ACK (issue 8):
    # that alone would cap one connection at ~25 requests/s.
    keepalive1 = rows[2].split("|")[3]
    assert float(re.sub(r"[^\d.]", "", keepalive1)) > 100, rows[2]
