"""No loss on a lossless link (issue 7 item 6): the TUN's transmit queue (the kernel's queue of
packets for pytcp) is long enough for pytcp's receive window, so a bulk download into pytcp
with no impairment loses nothing there: the interface's ``tx_dropped`` stays 0.
(``tools/bench_txqueue.py`` measures 1 GB and the kernel's default 500 for comparison.)
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import HOST_ADDR, file_sha256, sha256
from tools.netns import REPO_ROOT, Netns, pytcp_argv, pytcp_env

SIZE = 64 * 1024 * 1024
PORT = 8080


def test_bulk_download_into_pytcp_has_no_tun_tx_drops(netns: Netns, tmp_path: Path) -> None:
    root = tmp_path / "www"
    root.mkdir()
    data = random.Random(64).randbytes(SIZE)
    (root / "blob").write_bytes(data)
    server = netns.popen([sys.executable, str(REPO_ROOT / "tools" / "bench.py"),
                          "--serve-kernel", str(root), str(PORT)], stdout=subprocess.PIPE)
    assert server.stdout is not None
    assert server.stdout.readline().strip() == b"listening"
    out = tmp_path / "out"
    # --no-offload: MSS-sized packets, the queue's worst case (with the default offloads the
    # kernel hands over 64 KB super-packets and the queue holds far more).
    res = netns.run(pytcp_argv("get", "-v", f"http://{HOST_ADDR}:{PORT}/blob", "-o", str(out),
                               "--no-offload"),
                    timeout=120, env=pytcp_env(), cwd=str(REPO_ROOT))
    err = res.stderr.decode(errors="replace")
    assert res.returncode == 0, err[-3000:]
    assert file_sha256(out) == sha256(data)
    found = re.search(r"kernel tx_packets=(\d+) tx_dropped=(\d+) txqueuelen=(\d+)", err)
    assert found is not None, err[-3000:]
    tx_packets, tx_dropped, qlen = (int(x) for x in found.groups())
    print(f"64 MiB: kernel tx_packets={tx_packets} tx_dropped={tx_dropped} txqueuelen={qlen}")
    assert qlen >= 1000 and tx_packets >= SIZE // 1500
    assert tx_dropped == 0
