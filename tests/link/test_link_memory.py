"""MemoryLink: a pair of non-blocking packet pipes over an AF_UNIX SEQPACKET socketpair."""

from __future__ import annotations

import select

from pytcp.link import Link
from pytcp.link.memory import MemoryLink


def test_round_trip_keeps_boundaries_and_order() -> None:
    a, b = MemoryLink.pair()
    try:
        assert isinstance(a, Link)
        assert b.read_batch() == []
        pkts = [bytes([i]) * (i * 37 % 1500 + 1) for i in range(50)]
        for p in pkts:
            a.write(p)
        r, _, _ = select.select([b.fileno()], [], [], 1.0)
        assert r == [b.fileno()]
        assert b.read_batch(10) == pkts[:10]
        assert b.read_batch() == pkts[10:]
        assert b.read_batch() == []
        big = bytes(range(256)) * 256  # 64 KiB: a GSO-sized packet
        b.write(big[:65535])
        b.write(bytearray(b"x"))
        b.write(memoryview(b"yz"))
        assert a.read_batch() == [big[:65535], b"x", b"yz"]
        assert a.stats["tx_packets"] == 50 and b.stats["rx_packets"] == 50
    finally:
        a.close()
        b.close()
    assert a.closed and b.read_batch() == []
    a.close()  # twice is fine


def test_full_buffer_drops_instead_of_blocking() -> None:
    a, b = MemoryLink.pair(bufsize=4096)
    try:
        for _ in range(2000):  # bounded: the buffer fills long before this
            a.write(b"z" * 1000)
            if a.stats["tx_dropped"]:
                break
        assert a.stats["tx_dropped"] >= 1
        got = b.read_batch(10_000)
        assert 0 < len(got) == a.stats["tx_packets"]
    finally:
        a.close()
        b.close()


def test_write_after_peer_close_is_counted() -> None:
    a, b = MemoryLink.pair()
    b.close()
    a.write(b"lost")
    assert a.stats["tx_errors"] == 1
    a.close()


def test_write_batch_is_write_in_one_loop() -> None:
    """write_batch gives the same packets, order and counters as write one by one; on a full
    buffer it drops (tx_dropped) the packets that would block and returns what it wrote."""
    a, b = MemoryLink.pair()
    try:
        pkts = [bytes([i]) * (i * 53 % 1400 + 1) for i in range(40)]
        assert a.write_batch(pkts[:25]) == 25
        a.write_batch(pkts[25:])
        assert b.read_batch() == pkts
        assert a.stats["tx_packets"] == 40 and "tx_dropped" not in a.stats
    finally:
        a.close()
        b.close()
    assert a.write_batch([b"x", b"y"]) == 0 and a.stats["tx_errors"] == 2
    c, d = MemoryLink.pair(bufsize=4096)
    try:
        sent = c.write_batch([bytes(1000)] * 500)
        assert 0 < sent < 500
        assert c.stats["tx_dropped"] == 500 - sent and c.stats["tx_packets"] == sent
        got = d.read_batch(1000)
        assert len(got) == sent
    finally:
        c.close()
        d.close()
