"""Software TCP segmentation (``segment_tcp``), ``fill_checksums`` and ``RxPacket``, checked
against scapy's own packet building (fields and checksums)."""

from __future__ import annotations

import random

from scapy.layers.inet import IP, TCP

from pytcp.stack import GsoPacket, Stack, StackConfig
from pytcp.tcp.segment import Segment
from pytcp.wire.offload import RxPacket, fill_checksums, segment_tcp
from pytcp.wire.tcp import ACK, CWR, FIN, PSH, TcpOptions

SRC, DST = "10.77.0.2", "10.77.0.1"


def _checksums_good(raw: bytes) -> bool:
    pkt = IP(raw)
    c = pkt.copy()
    del c.chksum
    del c[TCP].chksum
    return bytes(IP(bytes(c))) == raw


def _super(payload: bytes, flags: str = "PA", seq: int = 0xFFFFF000, **kw: object) -> bytes:
    return bytes(IP(src=SRC, dst=DST, id=100) /
                 TCP(sport=80, dport=40000, seq=seq, ack=7, flags=flags, window=501,
                     options=[("NOP", None), ("NOP", None), ("Timestamp", (5, 6))], **kw) /
                 payload)


def test_segment_tcp_cuts_like_linux_tso() -> None:
    data = random.Random(3).randbytes(10_000)
    pieces = segment_tcp(_super(data, "FPAC"), 1448)
    pkts = [IP(bytes(p)) for p in pieces]
    assert [len(bytes(p[TCP].payload)) for p in pkts] == [1448] * 6 + [10_000 - 6 * 1448]
    assert b"".join(bytes(p[TCP].payload) for p in pkts) == data
    assert [p[TCP].seq for p in pkts] == [(0xFFFFF000 + i * 1448) & 0xFFFFFFFF
                                         for i in range(7)]
    assert [str(p[TCP].flags) for p in pkts] == ["AC"] + ["A"] * 5 + ["FPA"]
    assert [p.id for p in pkts] == list(range(100, 107))
    assert all(p[TCP].options == [("NOP", None), ("NOP", None), ("Timestamp", (5, 6))]
               and p[TCP].ack == 7 and p[TCP].window == 501 for p in pkts)
    assert all(_checksums_good(bytes(p)) for p in pieces)


def test_segment_tcp_urgent_pointer_per_piece() -> None:
    pieces = segment_tcp(_super(b"u" * 4000, "UA", seq=1000, urgptr=2000), 1448)
    pkts = [IP(bytes(p)) for p in pieces]
    assert [(str(p[TCP].flags), p[TCP].urgptr) for p in pkts] == [
        ("AU", 2000), ("AU", 2000 - 1448), ("A", 0)]


def test_small_and_non_tcp_packets_come_back_whole() -> None:
    small = _super(b"x" * 100)
    assert segment_tcp(small, 1448) == [small]
    assert segment_tcp(memoryview(small), 1448) == [small]
    assert segment_tcp(b"\x45junk", 1448) == [b"\x45junk"]
    assert fill_checksums(b"\x45junk") == b"\x45junk"


def test_fill_checksums_completes_a_partial_checksum() -> None:
    raw = bytearray(_super(b"p" * 3000))
    raw[36:38] = b"\x12\x34"  # what a partial (pseudo-header) checksum looks like
    raw[10:12] = b"\0\0"
    assert not _checksums_good(bytes(raw))
    assert _checksums_good(bytes(fill_checksums(raw)))


def test_rx_packet_is_bytes_with_offload_metadata() -> None:
    p = RxPacket(memoryview(b"\x45abc")[1:])
    assert p == b"abc" and p.gso_size == 0 and p.csum_partial is False
    p.gso_size, p.csum_partial = 1448, True
    assert bytes(p) == b"abc" and type(bytes(p)) is bytes


def test_stack_gso_packet_carries_a_partial_checksum_its_pieces_are_whole() -> None:
    s = Stack(SRC, now=0.0, config=StackConfig(gso=True), secret=b"k" * 16,
              rng=random.Random(1))
    h = s.connect(0.0, DST, 5001)
    s.pending_packets()
    data = random.Random(9).randbytes(5000)
    h.conn._out.append(Segment(1, 2, ACK | PSH | FIN | CWR, 500, data,
                               TcpOptions(timestamp=(1, 2)), 0, 1448))
    s._service(h, 0.0)
    [pkt] = [p for p in s.pending_packets() if len(p) > 1500]
    assert isinstance(pkt, GsoPacket) and pkt.gso_size == 1448
    tcp_len = len(pkt) - 20
    # RFC 9293 3.1 pseudo-header sum, folded: what virtio-net NEEDS_CSUM expects.
    words = (0x0A4D, 0x0002, 0x0A4D, 0x0001, 6, tcp_len)
    c = sum(words)
    c = (c & 0xFFFF) + (c >> 16)
    assert int.from_bytes(pkt[36:38], "big") == c
    assert not _checksums_good(bytes(pkt))
    assert _checksums_good(bytes(fill_checksums(pkt)))
    pieces = segment_tcp(pkt, pkt.gso_size)
    assert b"".join(bytes(IP(bytes(p))[TCP].payload) for p in pieces) == data
    assert all(_checksums_good(bytes(p)) for p in pieces)
