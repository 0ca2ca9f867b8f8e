"""The capture says why: the engine's reason on every packet that is not new data or a plain
ACK, the drop reason on every received packet the stack dropped, what the impairment stage did,
the interface block naming the interface and pytcp's address, and a capture cut short by
SIGKILL that tshark still reads to its last whole block. Read back with tshark's
``frame.comment`` (what Wireshark shows in the packet list)."""

from __future__ import annotations

import asyncio
import random
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytcp.api.aio import open_connection, start_server
from pytcp.api.pair import memory_pair
from pytcp.link.impair import Impairment
from pytcp.pcap import PcapWriter
from pytcp.script.parser import parse_script
from pytcp.script.runner import Runner

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed")

# A passive open; 1000 bytes that are not acknowledged (the RTO resends them); a zero window
# (probed); a segment with a bad checksum (dropped), the same one good; close() with that
# data unread (RST).
SCRIPT = """\
0.000 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0    < S 0:0(0) win 65535 <mss 1460>
+0    > S. 0:0(0) ack 1 <mss 1460>
+0.1  < . 1:1(0) ack 1 win 65535
+0    accept(3, ..., ...) = 4
+0    write(4, ..., 1000) = 1000
+0    > P. 1:1001(1000) ack 1
+0.3  > P. 1:1001(1000) ack 1
+0.1  < . 1:1(0) ack 1001 win 0
+0    write(4, ..., 100) = 100
+0.3~+2 > . 1000:1000(0) ack 1
+0    < . 1:1(0) ack 1001 win 0
+0    < P. 1:11(10) ack 1001 win 0 bad_csum
+0    < P. 1:11(10) ack 1001 win 0
+0    > . 1001:1001(0) ack 11
+0    close(4) = 0
+0    > R. 1001:1001(0) ack 11
"""


def _tshark(path: Path, *fields: str) -> tuple[list[list[str]], str]:
    assert TSHARK is not None
    cmd = [TSHARK, "-r", str(path), "-T", "fields", "-E", "separator=|"]
    for f in fields:
        cmd += ["-e", f]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if "Running as user" not in ln]
    return [ln.split("|") for ln in res.stdout.splitlines()], "\n".join(errors)


def test_a_scripted_capture_says_why_each_special_packet_left_or_was_dropped(
        tmp_path: Path) -> None:
    path = tmp_path / "why.pcapng"
    with PcapWriter(path, ifname="pytcp-script") as pcap:
        Runner(parse_script(SCRIPT), pcap=pcap).run()
    rows, errors = _tshark(path, "frame.number", "tcp.flags.str", "tcp.seq_raw",
                           "frame.comment")
    assert errors == ""
    comments = {int(r[0]): r[3] for r in rows if r[3]}
    assert comments == {
        5: "retransmission after RTO",
        7: "zero-window probe",
        9: "dropped: bad TCP or ICMP checksum",
        12: "RST: closed with unread data",
    }
    assert "R" in rows[11][1]
    # Everything else (handshake, new data, plain ACKs) carries no comment.
    assert len(rows) == 12


# A handshake whose ACK is late (the SYN-ACK is sent again), an in-window RST (challenge ACK),
# out-of-order data (duplicate ACK with SACK), old data again (D-SACK), then an idle
# connection with keep-alives on (a probe).
SCRIPT2 = """\
0.000 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0    < S 0:0(0) win 65535 <mss 1460,sackOK,nop,nop>
+0    > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK>
+1    > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK>
+0.1  < . 1:1(0) ack 1 win 65535
+0    accept(3, ..., ...) = 4
+0.1  < R 1001:1001(0) win 0
+0    > . 1:1(0) ack 1
+0.1  < P. 1001:1101(100) ack 1 win 65535
+0    > . 1:1(0) ack 1 <nop,nop,sack 1001:1101>
+0    < P. 1:1001(1000) ack 1 win 65535
+0    > . 1:1(0) ack 1101
+0.1  < P. 1:101(100) ack 1 win 65535
+0    > . 1:1(0) ack 1101 <nop,nop,sack 1:101>
+0    setsockopt(4, SOL_SOCKET, SO_KEEPALIVE, [1], 4) = 0
+0    setsockopt(4, IPPROTO_TCP, TCP_KEEPIDLE, [10], 4) = 0
+9.9  > . 0:0(0) ack 1101
"""


def test_challenge_dup_dsack_keepalive_and_synack_retransmission_say_why(
        tmp_path: Path) -> None:
    path = tmp_path / "why2.pcapng"
    with PcapWriter(path, ifname="pytcp-script") as pcap:
        Runner(parse_script(SCRIPT2), pcap=pcap).run()
    rows, errors = _tshark(path, "frame.number", "frame.comment")
    assert errors == ""
    assert {int(r[0]): r[1] for r in rows if r[1]} == {
        3: "SYN-ACK retransmission",
        5: "dropped: RST in the window but not exact: answered by a challenge ACK (RFC 5961)",
        6: "challenge ACK (RFC 5961)",
        8: "duplicate ACK (out-of-order data)",
        11: "dropped: sequence number outside the receive window (RFC 9293 3.10.7.4)",
        12: "D-SACK (duplicate data received, RFC 2883)",
        13: "keep-alive probe",
    }
    assert len(rows) == 13


def test_a_rst_for_a_closed_port_says_so_and_only_while_annotating() -> None:
    from scapy.all import IP, TCP, raw  # type: ignore[import-untyped]

    from pytcp.stack import Stack

    syn = raw(IP(src="10.77.0.1", dst="10.77.0.2") / TCP(sport=40000, dport=9, flags="S"))
    stack = Stack("10.77.0.2", now=0.0, secret=b"k")
    stack.receive_packet(0.0, syn)
    (plain,) = stack.pending_packets()
    assert getattr(plain, "note", None) is None  # no capture: no note, nothing kept
    assert stack.rx_drop_reasons == []
    stack.annotate = True
    stack.receive_packet(0.1, syn)
    (noted,) = stack.pending_packets()
    assert bytes(noted)[20:] == bytes(plain)[20:]  # the same segment (IP ident aside), noted
    assert noted.note == "RST: no connection for this segment (RFC 9293 3.10.7.1)"
    assert [r.value for r in stack.rx_drop_reasons if r is not None] == ["no_socket"]


def test_impairment_and_drops_are_commented_in_a_runtime_capture(tmp_path: Path) -> None:
    path = tmp_path / "impair.pcapng"
    path_b = tmp_path / "sender.pcapng"
    payload = random.Random(3).randbytes(300_000)

    async def main() -> bytes:
        with PcapWriter(path, ifname="mem0", description="pytcp at 10.0.0.1",
                        ipv4="10.0.0.1/24") as pcap, PcapWriter(path_b) as pcap_b:
            async with memory_pair(seed=4, pcap_a=pcap, pcap_b=pcap_b,
                                   impair_a_in="loss=0.03,dup=0.03,corrupt=0.03") as (a, b):
                a.impair_out = Impairment("loss=0.03,delay=2", random.Random(5))

                async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                    w.write(payload)
                    await w.drain()
                    w.close()

                await start_server(serve, 80, runtime=b)
                reader, writer = await open_connection("10.0.0.2", 80, runtime=a)
                data = await asyncio.wait_for(reader.read(-1), 60)
                writer.close()
                return data

    assert asyncio.run(main()) == payload
    rows, errors = _tshark(path, "frame.comment", "frame.p2p_dir", "frame.interface_name",
                           "frame.interface_description")
    assert errors == ""
    assert {(r[2], r[3]) for r in rows} == {("mem0", "pytcp at 10.0.0.1")}
    comments = [(r[0], r[1]) for r in rows if r[0]]
    texts = [c for c, _ in comments]
    assert any(c == "impairment: lost" for c in texts)  # inbound, lost before the stack
    assert any(c.endswith("impairment: lost (never sent)") for c in texts)  # outbound
    assert any("impairment: duplicated" in c for c in texts)
    assert any("impairment: delayed" in c for c in texts)
    corrupted = [c for c in texts if "impairment: corrupted byte" in c]
    assert corrupted
    # Every byte is under a checksum: each corrupted packet was dropped, and says why.
    assert all("; dropped: " in c for c in corrupted), corrupted
    # Losses make the receiver (a) send duplicate ACKs and the sender (b) retransmit.
    assert any(c.startswith("duplicate ACK") or c.startswith("D-SACK") for c in texts)
    rows_b, errors = _tshark(path_b, "frame.comment")
    assert errors == ""
    sent_why = {r[0] for r in rows_b if r[0]}
    # (which kind depends on timing: RACK, TLP, fast retransmit, RTO...)
    assert any("retransmi" in c or "tail loss probe" in c for c in sent_why), sent_why


def test_a_capture_killed_with_sigkill_is_readable_to_its_last_whole_block(
        tmp_path: Path) -> None:
    path = tmp_path / "killed.pcapng"
    writer = textwrap.dedent(f"""
        import sys, time
        from pytcp.pcap import PcapWriter
        from scapy.all import IP, TCP, raw
        pkt = raw(IP(src="10.77.0.2", dst="10.77.0.1") / TCP(flags="PA") / (b"x" * 1400))
        w = PcapWriter({str(path)!r}, ifname="pytcp0", description="pytcp at 10.77.0.2")
        print("started", flush=True)
        i = 0
        while True:
            w.write(time.time(), pkt, "out", f"packet {{i}}" if i % 3 == 0 else None)
            i += 1
            if i % 7 == 0:
                w.flush()
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE,
                            cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"started\n"
    deadline = time.monotonic() + 30
    while path.stat().st_size < 200_000 and time.monotonic() < deadline:
        time.sleep(0.02)  # (busy machines: wait for data, not for a fixed time)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    data = path.read_bytes()
    whole, tail = _whole_blocks(data)
    assert len(tail) < 2000  # at most the block being written when the kill came
    epbs = [blk for blk in whole if struct.unpack_from("<I", blk)[0] == 6]
    assert len(epbs) > 50
    res = subprocess.run([str(TSHARK), "-r", str(path), "-T", "fields", "-e", "frame.comment"],
                         capture_output=True, text=True, timeout=60, check=False)
    rows = res.stdout.splitlines()
    # tshark shows every whole block, in order, with its comment...
    assert len(rows) == len(epbs)
    assert all(r == (f"packet {i}" if i % 3 == 0 else "") for i, r in enumerate(rows))
    # ...and complains only when the tail is a partial block.
    assert ("cut short" in res.stderr) == bool(tail), res.stderr
    # The block check can fail: the same file cut inside its last block is seen as such.
    whole2, tail2 = _whole_blocks(data[:len(data) - len(tail) - 5])
    assert len(whole2) == len(whole) - 1 and tail2


def _whole_blocks(data: bytes) -> tuple[list[bytes], bytes]:
    """pcapng blocks whose leading and trailing lengths agree, and the partial tail."""
    out = []
    off = 0
    while off + 12 <= len(data):
        n = struct.unpack_from("<I", data, off + 4)[0]
        if n < 12 or off + n > len(data) or struct.unpack_from("<I", data, off + n - 4)[0] != n:
            break
        out.append(data[off:off + n])
        off += n
    return out, data[off:]


def test_every_drop_reason_and_tx_reason_has_a_sentence() -> None:
    """The capture comments and the status legend need one for each (add yours here)."""
    from pytcp.drops import DROP_DESCRIPTIONS, DropReason
    from pytcp.tcp.reasons import TxReason

    assert {r.value for r in DropReason} == set(DROP_DESCRIPTIONS)
    assert all(len(r.value) > 5 for r in TxReason)


def test_a_window_update_and_a_zero_window_answer_say_why(tmp_path: Path) -> None:
    """tests/scripts/window/receiver-sws.pkt: a 1-byte probe of the closed window is dropped
    and answered; reading enough opens the window with a window update."""
    from pytcp.script.runner import run_script

    script = Path(__file__).resolve().parents[1] / "scripts" / "window" / "receiver-sws.pkt"
    path = tmp_path / "sws.pcapng"
    assert run_script(str(script), pcap_path=str(path)).ok
    rows, errors = _tshark(path, "frame.number", "tcp.window_size_value", "frame.comment")
    assert errors == ""
    assert {int(r[0]): (int(r[1]), r[2]) for r in rows if r[2]} == {
        10: (65535, "dropped: sequence number outside the receive window (RFC 9293 3.10.7.4)"),
        11: (0, "duplicate ACK (out-of-window segment)"),
        12: (1100, "window update"),
    }
