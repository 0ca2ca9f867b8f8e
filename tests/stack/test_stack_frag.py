"""IPv4 fragment reassembly (RFC 791, RFC 815): orders, overlaps, limits, timeout."""

from __future__ import annotations

import random

import pytest
from scapy.layers.inet import ICMP, IP, TCP  # type: ignore[import-untyped]

from pytcp.drops import DropReason
from pytcp.stack import Stack, StackConfig
from pytcp.stack_frag import FragmentReassembler, fragment_datagram

US = "10.0.0.2"
PEER = "10.0.0.1"
KEY = (1, 2, 6, 77)


def pieces(data: bytes, size: int) -> list[tuple[int, bool, bytes]]:
    return [(off, off + size < len(data), data[off:off + size])
            for off in range(0, len(data), size)]


DATA = bytes(random.Random(5).randbytes(4000))


@pytest.mark.parametrize("order", ["in_order", "reversed", "shuffled"])
def test_reassembles_in_any_order(order: str) -> None:
    r = FragmentReassembler()
    ps = pieces(DATA, 512)
    if order == "reversed":
        ps.reverse()
    elif order == "shuffled":
        random.Random(3).shuffle(ps)
    results = [r.add(0.0, KEY, off, more, chunk) for off, more, chunk in ps]
    assert results[:-1] == [None] * (len(ps) - 1)
    assert results[-1] == DATA
    assert len(r) == 0 and r.bytes_held == 0
    assert sum(r.drops.values()) == 0


def test_exact_duplicate_is_dropped_datagram_kept() -> None:
    r = FragmentReassembler()
    ps = pieces(DATA, 1000)
    assert r.add(0.0, KEY, *ps[0]) is None
    assert r.add(0.0, KEY, *ps[0]) is None  # same bytes again
    assert r.drops[DropReason.FRAGMENT_OVERLAP] == 1
    assert len(r) == 1
    out = [r.add(0.0, KEY, *p) for p in ps[1:]]
    assert out[-1] == DATA


@pytest.mark.parametrize("overlap", [
    (8, True, b"x" * 16),      # inside the first piece
    (992, True, b"y" * 16),    # straddles the first/second boundary
    (0, True, b"z" * 1000),    # same place, different bytes
])
def test_overlap_drops_the_whole_datagram(overlap: tuple[int, bool, bytes]) -> None:
    r = FragmentReassembler()
    ps = pieces(DATA, 1000)
    r.add(0.0, KEY, *ps[0])
    r.add(0.0, KEY, *ps[1])
    assert r.add(0.0, KEY, *overlap) is None
    assert r.drops[DropReason.FRAGMENT_OVERLAP] == 1
    assert len(r) == 0 and r.bytes_held == 0  # memory freed
    # the rest alone never completes it
    for p in ps[2:]:
        assert r.add(0.0, KEY, *p) is None


def test_invalid_fragments() -> None:
    r = FragmentReassembler()
    assert r.add(0.0, KEY, 0, True, b"a" * 7) is None  # not a multiple of 8
    assert r.add(0.0, KEY, 65528, False, b"a" * 16) is None  # past 65535
    assert r.drops[DropReason.FRAGMENT_INVALID] == 2
    r.add(0.0, KEY, 0, True, b"a" * 8)
    r.add(0.0, KEY, 16, False, b"b" * 8)  # total 24
    assert r.add(0.0, KEY, 24, True, b"c" * 8) is None  # beyond the known end
    assert r.drops[DropReason.FRAGMENT_INVALID] == 3 and len(r) == 0
    assert r.add(0.0, KEY, 8, False, b"a" * 8) is None  # last fragment: total 16
    assert r.add(0.0, KEY, 16, False, b"a" * 8) is None  # a second, different last fragment
    assert r.drops[DropReason.FRAGMENT_INVALID] == 4 and len(r) == 0


def test_timeout_counts_and_frees() -> None:
    r = FragmentReassembler(timeout=30.0)
    r.add(10.0, KEY, 0, True, b"a" * 800)
    r.add(20.0, (9, 9, 6, 1), 0, True, b"b" * 800)
    assert r.bytes_held == 1600 and r.next_deadline() == 40.0
    assert r.expire(39.9) == 0
    assert r.expire(40.0) == 1
    assert r.drops[DropReason.FRAGMENT_TIMEOUT] == 1
    assert r.bytes_held == 800 and r.next_deadline() == 50.0
    # late last fragment of the expired datagram does not resurrect it
    assert r.add(45.0, KEY, 800, False, b"a" * 8) is None
    assert r.expire(100.0) == 2
    assert len(r) == 0 and r.bytes_held == 0 and r.next_deadline() is None


def test_limits_evict_oldest() -> None:
    r = FragmentReassembler(max_datagrams=3, max_bytes=10_000, max_fragments=4)
    for i in range(5):
        r.add(float(i), (1, 2, 6, i), 0, True, b"q" * 1000)
    assert len(r) == 3 and r.drops[DropReason.FRAGMENT_LIMIT] == 2
    assert r.next_deadline() == 2.0 + 30.0  # datagrams 0 and 1 went first
    # byte limit: a 9 KB fragment pushes out older ones
    r.add(6.0, (1, 2, 6, 99), 0, True, b"w" * 9000)
    assert r.bytes_held <= 10_000
    # fragments per datagram
    r2 = FragmentReassembler(max_fragments=4)
    for j in range(4):
        r2.add(0.0, KEY, j * 16, True, b"e" * 8)
    assert r2.add(0.0, KEY, 200, True, b"e" * 8) is None
    assert r2.drops[DropReason.FRAGMENT_LIMIT] == 1 and len(r2) == 0


def test_hostile_flood_stays_bounded() -> None:
    rng = random.Random(9)
    r = FragmentReassembler(max_bytes=64 * 1024, max_datagrams=16)
    for i in range(20_000):
        key = (1, 2, 6, rng.randrange(64))
        r.add(i * 0.001, key, rng.randrange(0, 8000) * 8, rng.random() < 0.9,
              b"h" * (8 * rng.randrange(1, 20)))
        assert r.bytes_held <= 64 * 1024 and len(r) <= 16
    assert r.bytes_held == sum(d.nbytes for d in r._table.values())


def test_fragment_datagram_round_trip() -> None:
    frags = fragment_datagram(src=1, dst=2, proto=1, payload=DATA, ident=5, ttl=64, mtu=576)
    assert all(len(f) <= 576 for f in frags)
    r = FragmentReassembler()
    got = None
    for f in frags:
        ip = IP(f)
        assert ip.chksum == IP(bytes(ip.copy())).chksum  # checksum as scapy computes it
        got = r.add(0.0, KEY, ip.frag * 8, bool(ip.flags.MF), bytes(ip.payload))
    assert got == DATA
    assert len(fragment_datagram(src=1, dst=2, proto=1, payload=b"x" * 100, ident=1, ttl=64,
                                 mtu=1500)) == 1


def _frag_packets(pkt: bytes, size: int) -> list[bytes]:
    ip = IP(pkt)
    payload = bytes(ip.payload)
    return [bytes(IP(src=ip.src, dst=ip.dst, id=ip.id, proto=ip.proto,
                     flags="MF" if off + size < len(payload) else 0, frag=off // 8)
                  / payload[off:off + size])
            for off in range(0, len(payload), size)]


def test_stack_reassembles_tcp_and_times_out() -> None:
    s = Stack(US, now=0.0, config=StackConfig(frag_timeout=30.0), secret=b"k")
    seg = IP(src=PEER, dst=US, id=4242) / TCP(sport=5555, dport=9, seq=100, flags="S") / (b"d" * 300)
    frags = _frag_packets(bytes(seg), 96)
    for f in reversed(frags):
        s.receive_packet(1.0, f)
    out = s.pending_packets()
    assert len(out) == 1  # the reassembled SYN to a closed port got its RST
    rst = IP(bytes(out[0]))
    assert rst[TCP].flags == "RA" and rst[TCP].ack == 100 + 1 + 300
    # incomplete datagram: deadline, then timeout counted and memory freed
    s.receive_packet(2.0, frags[0])
    assert s.next_deadline() == pytest.approx(32.0)
    s.handle_timers(31.9)
    assert s.drops[DropReason.FRAGMENT_TIMEOUT] == 0
    s.handle_timers(32.0)
    assert s.drops[DropReason.FRAGMENT_TIMEOUT] == 1
    assert s.next_deadline() is None and s._frag.bytes_held == 0
    # RFC 1122 3.3.2: the first fragment had come, so ICMP Time Exceeded code 1 quoting it
    [out] = s.pending_packets()
    te = IP(bytes(out))
    assert (te.src, te.dst) == (US, PEER)
    assert te[ICMP].type == 11 and te[ICMP].code == 1
    assert bytes(te[ICMP].payload) == frags[0][:28]
    # a datagram whose first fragment never came times out silently
    s.receive_packet(40.0, frags[1])
    s.handle_timers(70.0)
    assert s.drops[DropReason.FRAGMENT_TIMEOUT] == 2
    assert s.pending_packets() == []


def test_stack_fragmented_ping_overlap_dropped() -> None:
    s = Stack(US, now=0.0, secret=b"k")
    req = IP(src=PEER, dst=US, id=7) / ICMP(type=8, id=1, seq=1) / (b"p" * 200)
    frags = _frag_packets(bytes(req), 64)
    evil = bytes(IP(src=PEER, dst=US, id=7, proto=1, flags="MF", frag=4) / (b"E" * 64))
    s.receive_packet(0.0, frags[0])
    s.receive_packet(0.0, evil)  # overlaps frags[0] at offset 32
    for f in frags[1:]:
        s.receive_packet(0.0, f)
    assert s.drops[DropReason.FRAGMENT_OVERLAP] == 1
    assert s.pending_packets() == []  # no reply built from a mix
    assert s.stats["icmp_echo"] == 0
