"""Shutdown under impairment (issue 7 item 5): with loss, delay and reordering on both
directions, SIGINT/SIGTERM in the middle of a download still ends every client's connection
with a FIN or a RST within a bound (the README: FIN, then RST after 2 s), and pytcp exits 0.
"""

from __future__ import annotations

import signal
import socket
import time

import pytest

from tests.e2e.conftest import STACK_ADDR, Data, StartPytcp
from tools.netns import Netns

IMPAIR = "loss=0.05,delay=20,reorder=0.05"
BOUND = 6.0  # seconds after the signal: the 2 s grace, the final RST, and slack for the VM


def _until_end(sock: socket.socket, bound: float) -> tuple[str, int]:
    """Read until EOF ("fin") or a reset ("rst"); ("open", n) if neither came in time."""
    deadline = time.monotonic() + bound
    got = 0
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(1 << 16)
        except ConnectionResetError:
            return "rst", got
        except TimeoutError:
            break
        if not data:
            return "fin", got
        got += len(data)
    return "open", got


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_download_under_impairment_ends_every_client(
        netns: Netns, start_pytcp: StartPytcp, e2e_data: Data, sig: int) -> None:
    up = start_pytcp(netns, "--http", "80", "--root", str(e2e_data.root), "--impair", IMPAIR,
                     "--seed", "7")
    request = f"GET /big HTTP/1.1\r\nHost: {STACK_ADDR}\r\n\r\n".encode()
    reading = netns.socket()  # keeps reading: sees the rest of the data, then FIN or RST
    stalled = netns.socket()  # stops reading: its window closes; only a RST can end it
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    try:
        for s in (reading, stalled):
            s.settimeout(10)
            s.connect((STACK_ADDR, 80))
            s.sendall(request)
        first = 0
        while first < 200_000:  # mid-download: the 10 MB file is far from done
            chunk = reading.recv(1 << 16)
            assert chunk, "the download ended early"
            first += len(chunk)
        assert stalled.recv(1000)
        began = time.monotonic()
        up.proc.send_signal(sig)
        end, more = _until_end(reading, BOUND)
        took = time.monotonic() - began
        assert end in ("fin", "rst"), f"no FIN or RST {BOUND} s after the signal ({more} bytes)"
        # The stalled client's buffer is full of data; behind it must come the RST.
        end2, _ = _until_end(stalled, max(0.5, BOUND - took))
        assert end2 == "rst", f"the stalled client saw {end2}"
        print(f"reading client: {end} after {took:.2f} s (+{more} bytes); stalled: {end2}")
    finally:
        reading.close()
        stalled.close()
    rc = up.proc.wait(timeout=10)
    assert rc == 0, f"exit status {rc}; stderr:\n{up.stderr()}"
    assert "Traceback" not in up.stderr(), up.stderr()
