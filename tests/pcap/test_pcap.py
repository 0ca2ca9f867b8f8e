"""pcapng writer: tshark and scapy read back the packets, timestamps and directions."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from scapy.all import IP, TCP, UDP, raw  # type: ignore
from scapy.utils import rdpcap

from pytcp.pcap import LINKTYPE_IPV4, PcapWriter

TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed")


def _packets() -> list[bytes]:
    syn = raw(IP(src="10.77.0.2", dst="10.77.0.1", id=1) / TCP(sport=40000, dport=80, flags="S", seq=1000))
    synack = raw(IP(src="10.77.0.1", dst="10.77.0.2", id=2) / TCP(sport=80, dport=40000, flags="SA", seq=5000, ack=1001))
    data = raw(IP(src="10.77.0.2", dst="10.77.0.1", id=3) / TCP(sport=40000, dport=80, flags="PA", seq=1001, ack=5001) / b"hello")
    odd = raw(IP(src="10.77.0.2", dst="10.77.0.1", id=4) / UDP(sport=1, dport=2) / b"abc")  # 31 bytes: padding
    return [syn, synack, data, odd]


def _tshark(path: Path, *fields: str, extra: tuple[str, ...] = ()) -> list[list[str]]:
    assert TSHARK is not None
    cmd = [TSHARK, "-r", str(path), "-T", "fields", "-E", "separator=|", *extra]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout
    return [line.split("|") for line in out.splitlines()]


@needs_tshark
def test_tshark_reads_packets_timestamps_and_directions(tmp_path: Path) -> None:
    path = tmp_path / "cap.pcapng"
    pkts = _packets()
    base_ns = 1_700_000_000_123_456_789
    with PcapWriter(path) as w:
        w.write(base_ns, pkts[0], "in")
        w.write(base_ns + 1_000, pkts[1], "out")
        w.flush()
        w.write(1_700_000_001.5, pkts[2], "in")
        w.write(base_ns + 2_000_000_000, pkts[3])
    rows = _tshark(path, "frame.time_epoch", "frame.len", "ip.id", "tcp.flags.str")
    assert len(rows) == 4
    assert rows[0][0] == "1700000000.123456789"
    assert rows[1][0] == "1700000000.123457789"
    assert rows[2][0] == "1700000001.500000000"
    assert [int(r[1]) for r in rows] == [len(p) for p in pkts]
    assert [int(r[2], 16) for r in rows] == [1, 2, 3, 4]
    # Direction: tshark 4.0 shows epb_flags as frame.packet_flags_direction.
    dirs = _tshark(path, "frame.packet_flags_direction")
    assert [int(d[0], 16) if d[0] else None for d in dirs] == [1, 2, 1, None]
    assert rows[0][3] == "··········S·"  # parsed as TCP


@needs_tshark
def test_capture_is_wellformed_and_checksums_valid(tmp_path: Path) -> None:
    path = tmp_path / "ok.pcapng"
    with PcapWriter(path, tsresol=6) as w:
        for i, p in enumerate(_packets()):
            w.write(1_700_000_000.0 + i, p, "out")
    bad = _tshark(path, "frame.number", extra=(
        "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
        "-Y", "_ws.malformed || _ws.expert.severity >= error"))
    assert bad == []
    rows = _tshark(path, "frame.time_epoch")
    assert [r[0] for r in rows] == [f"170000000{i}.000000000" for i in range(4)]


def test_scapy_reads_back_bytes(tmp_path: Path) -> None:
    path = tmp_path / "s.pcapng"
    pkts = _packets()
    with PcapWriter(str(path), linktype=LINKTYPE_IPV4) as w:
        for i, p in enumerate(pkts):
            w.write(10.25 + i, p, "in" if i % 2 == 0 else "out")
    got = rdpcap(str(path))
    assert [bytes(p) for p in got] == pkts
    assert [float(p.time) for p in got] == [10.25, 11.25, 12.25, 13.25]


def test_file_object_layout_and_not_closed() -> None:
    f = io.BytesIO()
    w = PcapWriter(f, tsresol=6)
    pkt = b"\x45" + b"\x00" * 20  # 21 bytes -> 3 bytes padding
    w.write(2**32 + 5, pkt, "out")  # ns -> 2**32//1000 + 0 microseconds
    w.close()
    assert not f.closed
    data = f.getvalue()
    # SHB
    btype, blen, magic = struct.unpack_from("<III", data, 0)
    assert (btype, magic) == (0x0A0D0D0A, 0x1A2B3C4D)
    assert struct.unpack_from("<I", data, blen - 4)[0] == blen
    off = blen
    btype, ilen, linktype = struct.unpack_from("<IIH", data, off)
    assert (btype, linktype) == (1, 101)
    assert b"\x09\x00\x01\x00\x06" in data[off:off + ilen]  # if_tsresol = 6
    off += ilen
    btype, elen, ifid, hi, lo, cap, orig = struct.unpack_from("<IIIIIII", data, off)
    assert (btype, ifid, cap, orig) == (6, 0, 21, 21)
    assert (hi << 32) | lo == (2**32 + 5) // 1000
    assert data[off + 28:off + 28 + 21] == pkt
    assert data[off + 49:off + 52] == b"\x00\x00\x00"
    assert struct.unpack_from("<HHI", data, off + 52) == (2, 4, 2)
    assert struct.unpack_from("<I", data, off + elen - 4)[0] == elen
    assert off + elen == len(data)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        PcapWriter(io.BytesIO(), tsresol=3)
    w = PcapWriter(io.BytesIO())
    with pytest.raises(ValueError):
        w.write(0, b"x", "sideways")  # type: ignore[arg-type]
    w.close()
    with pytest.raises(ValueError):
        w.write(0, b"x", "in")


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from scapy.utils import RawPcapNgReader  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(
    records=st.lists(
        st.tuples(st.integers(0, 2**63 - 1), st.binary(max_size=300),
                  st.sampled_from(["in", "out", None])),
        max_size=12),
    tsresol=st.sampled_from([6, 9]),
)
def test_any_packets_round_trip_through_scapy(
        records: list[tuple[int, bytes, str | None]], tsresol: int) -> None:
    f = io.BytesIO()
    with PcapWriter(f, tsresol=tsresol) as w:
        for ts, pkt, direction in records:
            w.write(ts, pkt, direction)  # type: ignore[arg-type]
    f.seek(0)
    got = list(RawPcapNgReader(f))
    assert [data for data, _ in got] == [pkt for _, pkt, _ in records]
    div = 1 if tsresol == 9 else 1000
    for (data, meta), (ts, pkt, direction) in zip(got, records):
        assert (meta.tshigh << 32 | meta.tslow) == ts // div
        assert meta.wirelen == len(pkt)
        assert meta.direction == {"in": 1, "out": 2, None: None}[direction]
    assert len(f.getvalue()) % 4 == 0


def test_snaplen_truncates_captured_bytes_but_keeps_original_length() -> None:
    f = io.BytesIO()
    pkt = bytes(range(100))
    with PcapWriter(f, snaplen=40) as w:
        w.write(1, pkt, "in")
    f.seek(0)
    [(data, meta)] = list(RawPcapNgReader(f))
    assert data == pkt[:40]
    assert meta.wirelen == 100
