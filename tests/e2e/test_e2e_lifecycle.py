"""``pytcp up`` as a process: SIGTERM/SIGINT shut it down cleanly (the kernel-side connection
sees a FIN, exit status 0, the TUN is gone), and its ``--pcap`` capture is valid for tshark
(no bad checksum, nothing malformed) and shows the handshake and the FIN exchange.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import STACK_ADDR, Data, StartPytcp, curl
from tools.netns import Netns

ECHO = 7


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_sends_fin_exits_zero_and_removes_the_interface(
        netns: Netns, start_pytcp: StartPytcp, sig: int) -> None:
    up = start_pytcp(netns, "--echo", str(ECHO))
    sock = netns.socket()
    sock.settimeout(10)
    sock.connect((STACK_ADDR, ECHO))
    sock.sendall(b"ping?")
    assert sock.recv(100) == b"ping?"

    up.proc.send_signal(sig)
    sock.settimeout(5)
    try:
        end = sock.recv(100)
    except ConnectionResetError:
        end = None
    assert end == b"", "the kernel-side connection did not see a FIN (got a reset or data)"
    sock.close()  # answer with our FIN so the stack can finish gracefully

    rc = up.proc.wait(timeout=10)
    assert rc == 0, f"exit status {rc}; stderr:\n{up.stderr()}"
    links = subprocess.run(["ip", "-n", netns.name, "-o", "link"], capture_output=True,
                           text=True, timeout=10, check=False).stdout
    assert "pytcp0" not in links


def _tshark(*args: str) -> str:
    res = subprocess.run(["tshark", "-n", "-o", "tcp.check_checksum:TRUE",
                          "-o", "ip.check_checksum:TRUE", *args],
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("extra", [("--no-offload",), (), ("--pcap-segments",)],
                         ids=["plain", "offload", "offload-per-mss"])
def test_pcap_of_a_session_is_valid_and_shows_handshake_and_fin(
        netns: Netns, start_pytcp: StartPytcp, e2e_data: Data, tmp_path: Path,
        extra: tuple[str, ...]) -> None:
    # With offloads (the default) the capture holds the super-segments that crossed the TUN,
    # checksums filled in; --pcap-segments (and --no-offload) give MSS-sized packets.
    capture = tmp_path / "session.pcapng"
    up = start_pytcp(netns, "--http", "80", "--root", str(e2e_data.root),
                     "--pcap", str(capture), *extra)
    # The largest small file (tens of KB): many segments, or super-segments with offloads.
    path = max(e2e_data.small, key=lambda p: len(e2e_data.small[p]))
    res = curl(netns, "-o", str(tmp_path / "got"), f"http://{STACK_ADDR}{path}", timeout=30)
    assert res.returncode == 0, res.stderr.decode()
    assert (tmp_path / "got").read_bytes() == e2e_data.small[path]
    time.sleep(0.3)  # the last ACK of the close reaches the stack
    rc = up.stop(signal.SIGTERM)
    assert rc == 0, up.stderr()

    bad = _tshark("-r", str(capture), "-Y",
                  "_ws.malformed || _ws.expert.severity >= error || "
                  "ip.checksum.status == 0 || tcp.checksum.status == 0")
    assert bad.strip() == "", f"bad or malformed packets in the capture:\n{bad}"

    rows = _tshark("-r", str(capture), "-Y", "tcp", "-T", "fields", "-e", "ip.src",
                   "-e", "tcp.flags", "-e", "tcp.checksum.status", "-e", "ip.len").split("\n")
    packets = [(src, int(flags, 16)) for src, flags, status, _ in
               (row.split("\t") for row in rows if row)]
    biggest = max(int(row.split("\t")[3]) for row in rows if row)
    if extra:
        assert biggest <= 1500, f"a {biggest}-byte packet in a per-MSS capture"
    else:
        assert biggest > 1500, "no super-segment in the capture of an offloaded session"
    assert packets, "no TCP packets in the capture"
    statuses = {row.split("\t")[2] for row in rows if row}
    assert statuses == {"1"}, f"TCP checksums not all verified good: {statuses}"
    client, server = "10.77.0.1", STACK_ADDR
    syn, synack, fin = 0x002, 0x012, 0x001
    kinds = [(src, flags & 0x017) for src, flags in packets]
    assert kinds[0] == (client, syn), kinds[:3]
    assert kinds[1] == (server, synack), kinds[:3]
    assert kinds[2][0] == client and kinds[2][1] & 0x012 == 0x010, kinds[:3]
    fins = [(src, flags) for src, flags in packets if flags & fin]
    assert {src for src, _ in fins} == {client, server}, f"FINs seen: {fins}"
    assert not [p for p in packets if p[1] & 0x004], "the session ended with a reset"


def test_signal_with_a_peer_that_never_closes_resets_after_grace(
        netns: Netns, start_pytcp: StartPytcp) -> None:
    up = start_pytcp(netns, "--echo", str(ECHO))
    sock = netns.socket()
    sock.settimeout(10)
    sock.connect((STACK_ADDR, ECHO))
    sock.sendall(b"hello")
    assert sock.recv(100) == b"hello"

    began = time.monotonic()
    up.proc.send_signal(signal.SIGTERM)
    sock.settimeout(5)
    assert sock.recv(100) == b"", "no FIN from pytcp after SIGTERM"
    # We stay in CLOSE-WAIT: pytcp must give up with a RST after its 2 s grace, then exit 0.
    rc = up.proc.wait(timeout=15)
    took = time.monotonic() - began
    assert rc == 0, f"exit status {rc}; stderr:\n{up.stderr()}"
    assert 1.5 <= took <= 10, f"exited {took:.2f} s after SIGTERM (grace is 2 s)"
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        sock.send(b"after the reset")
        sock.send(b"after the reset")  # a send after a RST fails (the first may be queued)
    sock.close()
