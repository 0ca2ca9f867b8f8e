"""RFC 2385 TCP MD5 signatures in the stack: two pytcp stacks with matching keys carry data
(every segment on the wire signed, checked with scapy's independent digest); the inbound rules
of Linux's tcp_inbound_md5_hash are counted drops (MD5_NOT_FOUND, MD5_UNEXPECTED,
MD5_FAILURE); keys per peer address with prefixes; GSO, Fast Open and SYN cookies with MD5."""

from __future__ import annotations

import dataclasses
import hashlib
import random

import pytest
from scapy.layers.inet import IP, TCP, calc_tcp_md5_hash  # type: ignore[import-untyped]
from test_stack_tcp import A_ADDR, B_ADDR, Wire, pair, transfer

from pytcp.drops import DropReason
from pytcp.stack import AcceptReady, Stack, TcpHandle
from pytcp.tcp.config import TcpConfig
from pytcp.tcp.md5 import MAX_KEYS, Md5Keys
from pytcp.wire.tcp import MD5_ZERO, TcpOptions, build_ipv4_tcp, sign_packet

KEY = b"bgp-session-key"


class TapWire(Wire):
    """A Wire that keeps a copy of every packet it moves."""

    def __init__(self, a: Stack, b: Stack) -> None:
        super().__init__(a, b)
        self.seen: list[bytes] = []

    def _move(self, src: Stack, dst: Stack) -> int:
        pkts = src.pending_packets()
        for p in pkts:
            self.seen.append(bytes(p))
            dst.receive_packet(self.now, p)
        self.packets += len(pkts)
        return len(pkts)


def keyed_pair(client_key: bytes = KEY, server_key: bytes = KEY,
               **cfg: object) -> tuple[TapWire, TcpHandle, object]:
    a, b = pair(**cfg)
    w = TapWire(a, b)
    lst = b.listen(80)
    lst.set_md5_key(A_ADDR, server_key)
    client = a.connect(w.now, B_ADDR, 80, md5_key=client_key)
    return w, client, lst


def test_keyed_connection_carries_data_every_segment_signed() -> None:
    w, client, lst = keyed_pair()
    w.run_until(lambda: (lst, AcceptReady()) in w.events)
    server = lst.accept()  # type: ignore[attr-defined]
    assert server is not None and server.md5_key == KEY
    data = random.Random(7).randbytes(200_000)
    got = transfer(w, client, server, data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    client.close(w.now)
    w.run_until(lambda: server.conn.at_eof)
    server.close(w.now)
    w.run_until(lambda: w.a.time_wait_count == 1 or not w.a.connections())
    assert len(w.seen) > 100
    for raw in w.seen:
        p = IP(raw)
        opts = dict(p[TCP].options)
        assert opts["MD5"] == calc_tcp_md5_hash(p[TCP], KEY), p.summary()
        # RFC 6691: the option bytes come out of the MSS: 1460 - 20 (MD5), no timestamps
        # beside SACK (Linux tcp_synack_options).
        assert len(p[TCP].payload) <= 1440
    syn = IP(w.seen[0])[TCP]
    assert syn.flags == "S" and "Timestamp" not in dict(syn.options)
    assert client.conn.snd_mss == 1440 and not client.conn.ts_ok
    assert w.a.drops.total() == 0 and w.b.drops.total() == 0


def test_wrong_key_is_md5_failure_and_no_connection() -> None:
    w, _client, lst = keyed_pair(server_key=b"another key")
    w.run_until(lambda: w.b.drops[DropReason.MD5_FAILURE] >= 2, max_time=10)
    assert lst.pending == 0  # type: ignore[attr-defined]
    assert not w.b.connections()
    assert all(IP(raw)[TCP].flags == "S" for raw in w.seen)  # nothing answered


def test_unsigned_syn_to_keyed_listener_is_md5_not_found() -> None:
    a, b = pair()
    w = Wire(a, b)
    lst = b.listen(80)
    lst.set_md5_key(A_ADDR, KEY)
    a.connect(w.now, B_ADDR, 80)
    w.run_until(lambda: b.drops[DropReason.MD5_NOT_FOUND] >= 1, max_time=5)
    assert not b.connections() and not b.pending_packets()


def test_signed_syn_to_unkeyed_listener_is_md5_unexpected() -> None:
    a, b = pair()
    w = Wire(a, b)
    b.listen(80)
    a.connect(w.now, B_ADDR, 80, md5_key=KEY)
    w.run_until(lambda: b.drops[DropReason.MD5_UNEXPECTED] >= 1, max_time=5)
    assert not b.connections()


def test_signed_segment_to_closed_port_is_dropped_without_rst(stack: Stack) -> None:
    pkt = build_ipv4_tcp(src=int.from_bytes(bytes((10, 0, 0, 1)), "big"),
                         dst=stack.addr, sport=1000, dport=81, seq=1, ack=0, flags=0x02,
                         window=100, options=TcpOptions(md5=MD5_ZERO))
    sign_packet(pkt, KEY)
    stack.receive_packet(0.0, bytes(pkt))
    assert stack.drops[DropReason.MD5_UNEXPECTED] == 1 and not stack.pending_packets()


def test_keyed_listener_signs_its_rst_to_a_stray_ack() -> None:
    _a, b = pair()
    lst = b.listen(80)
    lst.set_md5_key(A_ADDR, KEY)
    src = int.from_bytes(bytes((10, 1, 0, 1)), "big")
    pkt = build_ipv4_tcp(src=src, dst=b.addr, sport=999, dport=80, seq=5, ack=77,
                         flags=0x10, window=100, options=TcpOptions(md5=MD5_ZERO))
    sign_packet(pkt, KEY)
    b.receive_packet(0.0, bytes(pkt))
    out = b.pending_packets()
    assert len(out) == 1
    rst = IP(bytes(out[0]))[TCP]
    assert rst.flags == "R" and rst.seq == 77
    assert dict(rst.options)["MD5"] == calc_tcp_md5_hash(rst, KEY)


def test_md5_turns_off_gso_and_fastopen() -> None:
    w, client, lst = keyed_pair(gso=True)
    w.run_until(lambda: (lst, AcceptReady()) in w.events)
    server = lst.accept()  # type: ignore[attr-defined]
    assert server is not None
    client.send(w.now, bytes(30_000))
    pkts = w.a.pending_packets()
    assert pkts and all(len(p) <= 1500 for p in pkts)  # cut here, each piece signed
    for raw in pkts:
        p = IP(bytes(raw))
        assert dict(p[TCP].options)["MD5"] == calc_tcp_md5_hash(p[TCP], KEY)
    # Fast Open: a signed connect sends no cookie request even when asked for one.
    tfo = dataclasses.replace(TcpConfig.linux(), fastopen=3)
    a2, _b2 = pair(tcp=tfo)
    a2.connect(0.0, B_ADDR, 80, fastopen=True)
    plain = IP(bytes(a2.pending_packets()[0]))[TCP]
    assert "TFO" in dict(plain.options)  # (the same call unkeyed asks for a cookie)
    h = a2.connect(0.0, B_ADDR, 80, fastopen=True, md5_key=KEY)
    syn = IP(bytes(a2.pending_packets()[0]))[TCP]
    assert "TFO" not in dict(syn.options) and "MD5" in dict(syn.options)
    assert h.fastopen_sent == 0


def test_syncookie_connection_is_keyed() -> None:
    a, b = pair(syncookies=2)
    w = TapWire(a, b)
    lst = b.listen(80)
    lst.set_md5_key(A_ADDR, KEY)
    client = a.connect(w.now, B_ADDR, 80, md5_key=KEY)
    w.run_until(lambda: (lst, AcceptReady()) in w.events)
    server = lst.accept()
    assert server is not None and server.md5_key == KEY
    assert b.stats["syncookies_validated"] == 1
    got = transfer(w, client, server, b"x" * 5000)
    assert got == b"x" * 5000
    for raw in w.seen:
        p = IP(raw)
        assert dict(p[TCP].options)["MD5"] == calc_tcp_md5_hash(p[TCP], KEY)


def test_key_table_prefixes_delete_and_bounds() -> None:
    t = Md5Keys()
    t.set(0x0A000000, b"net", prefix=8)
    t.set(0x0A010000, b"subnet", prefix=16)
    t.set(0x0A010001, b"host")
    assert t.lookup(0x0A010001) == b"host"
    assert t.lookup(0x0A010002) == b"subnet"  # longest prefix wins
    assert t.lookup(0x0A020002) == b"net"
    assert t.lookup(0x0B000001) is None
    assert t.lookup(0x0A010001, v6=True) is None  # another family
    t.set(0x0A010001, b"")  # keylen 0 deletes (Linux)
    assert t.lookup(0x0A010001) == b"subnet"
    with pytest.raises(KeyError):
        t.set(0x0A010001, b"")
    with pytest.raises(ValueError):
        t.set(1, b"k" * 81)
    with pytest.raises(ValueError):
        t.set(1, b"k", prefix=33)
    full = Md5Keys()
    for i in range(MAX_KEYS):
        full.set(i + 1, b"k")
    with pytest.raises(ValueError):
        full.set(0xFFFF, b"k")
    full.set(1, b"replaced")  # replacing an entry needs no room
    assert full.lookup(1) == b"replaced"


def test_keyed_connection_over_ipv6_signed_with_the_ipv6_pseudo_header() -> None:
    from scapy.layers.inet6 import IPv6  # type: ignore[import-untyped]

    a = Stack("10.0.0.1", addr6="fd00:77::1", now=0.0, secret=b"a" * 16,
              rng=random.Random(1))
    b = Stack("10.0.0.2", addr6="fd00:77::2", now=0.0, secret=b"b" * 16,
              rng=random.Random(2))
    w = TapWire(a, b)
    lst = b.listen(80)
    lst.set_md5_key("fd00:77::1", KEY)
    lst.set_md5_key("10.0.0.1", b"the IPv4 key")  # another family: not this peer's
    client = a.connect(w.now, "fd00:77::2", 80, md5_key=KEY)
    w.run_until(lambda: (lst, AcceptReady()) in w.events)
    server = lst.accept()
    assert server is not None and server.md5_key == KEY
    got = transfer(w, client, server, b"v6" * 5000)
    assert got == b"v6" * 5000
    assert len(w.seen) > 5
    for raw in w.seen:
        p = IPv6(raw)
        assert dict(p[TCP].options)["MD5"] == calc_tcp_md5_hash(p[TCP], KEY)
    assert a.drops.total() == 0 and b.drops.total() == 0
