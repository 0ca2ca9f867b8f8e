"""Stack, IPv4 and ICMP side: echo replies, RST for closed ports (RFC 9293 3.10.7.1), bad and
broadcast sources, malformed packets counted without exceptions."""

from __future__ import annotations

import random

from scapy.layers.inet import ICMP, IP, TCP  # type: ignore[import-untyped]

from pytcp.drops import DropReason
from pytcp.stack import Stack

US = "10.0.0.2"
PEER = "10.0.0.1"


def test_echo_request_gets_exact_reply(stack: Stack) -> None:
    req = IP(src=PEER, dst=US, id=77) / ICMP(type=8, id=0x1234, seq=7) / (b"pytcp!" * 10)
    stack.receive_packet(1.0, bytes(req))
    out = stack.pending_packets()
    assert len(out) == 1
    rep = IP(bytes(out[0]))
    assert rep.src == US and rep.dst == PEER and rep.proto == 1 and rep.ttl == 64
    assert rep[ICMP].type == 0 and rep[ICMP].code == 0
    assert rep[ICMP].id == 0x1234 and rep[ICMP].seq == 7
    assert bytes(rep[ICMP].payload) == b"pytcp!" * 10
    # checksums as scapy computes them
    good = IP(bytes(out[0]))
    del good.chksum
    del good[ICMP].chksum
    assert bytes(IP(bytes(good))) == bytes(out[0])
    assert stack.pending_packets() == []
    assert stack.stats["icmp_echo"] == 1


def test_large_echo_reply_is_fragmented(stack: Stack) -> None:
    data = bytes(range(256)) * 12  # 3072 bytes: needs 3 fragments at MTU 1500
    req = IP(src=PEER, dst=US) / ICMP(type=8, id=1, seq=2) / data
    for frag in _fragments(bytes(req), 1480):
        stack.receive_packet(1.0, frag)
    out = [IP(bytes(p)) for p in stack.pending_packets()]
    assert len(out) == 3
    assert all(len(bytes(p)) <= 1500 for p in out)
    assert [p.frag * 8 for p in out] == [0, 1480, 2960]
    assert [bool(p.flags.MF) for p in out] == [True, True, False]
    whole = b"".join(bytes(p.payload) for p in out)
    icmp = ICMP(whole)
    assert icmp.type == 0 and icmp.id == 1 and icmp.seq == 2 and bytes(icmp.payload) == data


def _fragments(pkt: bytes, size: int) -> list[bytes]:
    """Cut an IPv4 packet (no options) into fragments carrying ``size`` payload bytes each."""
    ip = IP(pkt)
    payload = bytes(ip.payload)
    out = []
    for off in range(0, len(payload), size):
        chunk = payload[off:off + size]
        f = IP(src=ip.src, dst=ip.dst, id=ip.id, proto=ip.proto, ttl=ip.ttl,
               flags="MF" if off + size < len(payload) else 0, frag=off // 8) / chunk
        out.append(bytes(f))
    return out


def test_rst_for_closed_port_without_ack(stack: Stack) -> None:
    # RFC 9293 3.10.7.1: ACK off -> <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
    syn = IP(src=PEER, dst=US) / TCP(sport=40000, dport=81, seq=1000, flags="S")
    stack.receive_packet(1.0, bytes(syn))
    out = stack.pending_packets()
    assert len(out) == 1
    rst = IP(bytes(out[0]))
    assert (rst.src, rst.dst) == (US, PEER)
    assert (rst[TCP].sport, rst[TCP].dport) == (81, 40000)
    assert rst[TCP].flags == "RA"
    assert rst[TCP].seq == 0 and rst[TCP].ack == 1001 and rst[TCP].window == 0
    assert bytes(rst[TCP].payload) == b""
    chk = IP(bytes(out[0]))
    del chk.chksum
    del chk[TCP].chksum
    assert bytes(IP(bytes(chk))) == bytes(out[0])
    assert stack.drops[DropReason.NO_SOCKET] == 1
    assert stack.stats["rst_sent"] == 1

    # data + FIN count in SEG.LEN; seq wraps modulo 2**32
    seg = IP(src=PEER, dst=US) / TCP(sport=40000, dport=81, seq=2**32 - 3, flags="FP") / b"abcde"
    stack.receive_packet(1.0, bytes(seg))
    rst = IP(bytes(stack.pending_packets()[0]))
    assert rst[TCP].flags == "RA" and rst[TCP].seq == 0 and rst[TCP].ack == 3


def test_rst_for_closed_port_with_ack(stack: Stack) -> None:
    # RFC 9293 3.10.7.1: ACK on -> <SEQ=SEG.ACK><CTL=RST>
    seg = IP(src=PEER, dst=US) / TCP(sport=40001, dport=82, seq=5, ack=0xDEADBEEF, flags="PA") / b"x"
    stack.receive_packet(1.0, bytes(seg))
    rst = IP(bytes(stack.pending_packets()[0]))
    assert rst[TCP].flags == "R"
    assert rst[TCP].seq == 0xDEADBEEF and rst[TCP].ack == 0
    assert (rst[TCP].sport, rst[TCP].dport) == (82, 40001)


def test_no_rst_for_rst(stack: Stack) -> None:
    for flags in ("R", "RA"):
        stack.receive_packet(1.0, bytes(IP(src=PEER, dst=US) / TCP(dport=83, flags=flags)))
    assert stack.pending_packets() == []
    assert stack.drops[DropReason.NO_SOCKET] == 2


def test_not_for_us_and_bad_sources(stack: Stack) -> None:
    cases = [
        (IP(src=PEER, dst="10.0.0.3") / TCP(dport=80, flags="S"), DropReason.NOT_FOR_US),
        (IP(src=PEER, dst="255.255.255.255") / TCP(dport=80, flags="S"), DropReason.BROADCAST_DEST),
        (IP(src=PEER, dst="224.0.0.1") / TCP(dport=80, flags="S"), DropReason.BROADCAST_DEST),
        (IP(src=PEER, dst="224.0.0.1") / ICMP(), DropReason.NOT_FOR_US),
        (IP(src="255.255.255.255", dst=US) / TCP(dport=80, flags="S"), DropReason.BAD_SOURCE),
        (IP(src="224.0.0.5", dst=US) / TCP(dport=80, flags="S"), DropReason.BAD_SOURCE),
        (IP(src="0.0.0.0", dst=US) / TCP(dport=80, flags="S"), DropReason.BAD_SOURCE),
        (IP(src="127.0.0.1", dst=US) / ICMP(type=8), DropReason.BAD_SOURCE),
        (IP(src=US, dst=US) / TCP(dport=80, flags="S"), DropReason.BAD_SOURCE),  # land
    ]
    for pkt, reason in cases:
        before = stack.drops[reason]
        stack.receive_packet(1.0, bytes(pkt))
        assert stack.drops[reason] == before + 1, (pkt.summary(), reason)
    assert stack.pending_packets() == []  # none of them gets an answer


def test_directed_broadcast_with_prefix() -> None:
    from pytcp.stack import StackConfig

    s = Stack(US, now=0.0, config=StackConfig(prefixlen=24), secret=b"k")
    s.receive_packet(0.0, bytes(IP(src="10.0.0.255", dst=US) / TCP(dport=1, flags="S")))
    s.receive_packet(0.0, bytes(IP(src=PEER, dst="10.0.0.255") / TCP(dport=1, flags="S")))
    assert s.drops[DropReason.BAD_SOURCE] == 1
    assert s.drops[DropReason.BROADCAST_DEST] == 1
    assert s.pending_packets() == []


def test_malformed_packets_counted_never_raise(stack: Stack) -> None:
    rng = random.Random(1234)
    seeds = [
        bytes(IP(src=PEER, dst=US) / TCP(sport=1, dport=2, flags="S",
                                         options=[("MSS", 1460), ("SAckOK", b""),
                                                  ("Timestamp", (1, 0)), ("WScale", 7)])),
        bytes(IP(src=PEER, dst=US) / TCP(sport=1, dport=2, flags="PA") / (b"data" * 20)),
        bytes(IP(src=PEER, dst=US) / ICMP(type=8) / b"ping"),
        bytes(IP(src=PEER, dst=US) / ICMP(type=3, code=3) / bytes(IP(src=US, dst=PEER) / TCP())[:28]),
        bytes(IP(src=PEER, dst=US, flags="MF", id=9) / (b"f" * 64)),
    ]
    n = 4000
    for i in range(n):
        pkt = bytearray(rng.choice(seeds))
        kind = i % 4
        if kind == 0:  # flip bytes
            for _ in range(rng.randint(1, 4)):
                pkt[rng.randrange(len(pkt))] ^= rng.randrange(1, 256)
        elif kind == 1:  # truncate
            pkt = pkt[:rng.randrange(len(pkt))]
        elif kind == 2:  # flip bytes but keep the IP header valid so deeper layers see it
            for _ in range(rng.randint(1, 3)):
                pkt[rng.randrange(20, len(pkt))] ^= rng.randrange(1, 256)
        else:  # random garbage
            pkt = bytearray(rng.randbytes(rng.randrange(0, 80)))
        stack.receive_packet(float(i), bytes(pkt))
        stack.pending_packets()
    drops = stack.drops
    assert drops[DropReason.STACK_ERROR] == 0
    assert stack.stats["rx_packets"] == n
    assert sum(drops.values()) > n // 2
    for reason in (DropReason.TRUNCATED, DropReason.BAD_IP_CHECKSUM, DropReason.BAD_CHECKSUM,
                   DropReason.BAD_IP_VERSION):
        assert drops[reason] > 0, reason


def test_unsupported_protocol_gets_rate_limited_protocol_unreachable() -> None:
    from pytcp.stack import StackConfig

    s = Stack(US, now=0.0, config=StackConfig(icmp_errors_per_sec=10), secret=b"k")
    udp = bytes(IP(src=PEER, dst=US, proto=132, id=99) / (b"u" * 40))
    s.receive_packet(0.0, udp)
    [out] = s.pending_packets()
    rep = IP(bytes(out))
    assert (rep.src, rep.dst) == (US, PEER)
    assert rep[ICMP].type == 3 and rep[ICMP].code == 2  # RFC 1122 3.2.2.1
    assert bytes(rep[ICMP].payload) == udp[:28]  # IP header + 8 bytes (RFC 792)
    assert s.drops[DropReason.UNSUPPORTED_PROTOCOL] == 1
    for _ in range(50):  # a burst: at most the bucket's size gets answers
        s.receive_packet(0.0, udp)
    assert len(s.pending_packets()) == 9
    s.receive_packet(1.0, udp)  # refilled a second later
    assert len(s.pending_packets()) == 1
    assert s.drops[DropReason.UNSUPPORTED_PROTOCOL] == 52


def test_output_ip_header_fields() -> None:
    from pytcp.stack import StackConfig

    s = Stack(US, now=0.0, config=StackConfig(ttl=99), secret=b"k", rng=random.Random(3))
    for port in (1, 2):
        s.receive_packet(0.0, bytes(IP(src=PEER, dst=US) / TCP(dport=port, flags="S")))
    a, b = (IP(bytes(p)) for p in s.pending_packets())
    for p in (a, b):
        assert p.version == 4 and p.ihl == 5 and p.tos == 0 and p.ttl == 99
        assert p.flags == "DF" and p.frag == 0 and p.proto == 6 and p.len == 40
    assert b.id == (a.id + 1) & 0xFFFF  # a fresh identification per datagram


def test_ipv6_packets_are_counted_as_ipv6_not_as_malformed(stack: Stack) -> None:
    """The kernel's router solicitations on a fresh TUN are IPv6, not a bad IPv4 version."""
    from scapy.layers.inet6 import IPv6, ICMPv6ND_RS  # type: ignore[import-untyped]

    rs = bytes(IPv6(src="fe80::1", dst="ff02::2", hlim=255) / ICMPv6ND_RS())
    stack.receive_packet(0.0, rs)
    bogus = bytearray(rs)
    bogus[5] ^= 1  # the payload length no longer matches: not an IPv6 packet either
    stack.receive_packet(0.0, bytes(bogus))
    assert stack.drops[DropReason.IPV6_IGNORED] == 1
    assert stack.drops[DropReason.BAD_IP_VERSION] == 1
    assert stack.pending_packets() == []
