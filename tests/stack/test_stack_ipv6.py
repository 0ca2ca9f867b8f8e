"""Stack over IPv6 and UDP in virtual time: ICMPv6 echo and errors, ND/MLD ignored quietly,
extension headers, fragments (overlaps, atomic), Packet Too Big, TCP over IPv6, UDP over
both families (checksums, port unreachable, ICMP errors to a connected endpoint, datagrams
fragmented and reassembled both ways)."""

from __future__ import annotations

import errno
import ipaddress
import random

from scapy.layers.inet import (  # type: ignore[import-untyped]
    ICMP,
    IP,
    TCP,  # type: ignore[import-untyped]
    UDP,
)
from scapy.layers.inet6 import (  # type: ignore[import-untyped]
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6MLReport2,
    ICMPv6ND_NS,
    ICMPv6ND_RS,
    ICMPv6PacketTooBig,
    ICMPv6ParamProblem,
    IPv6,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    RouterAlert,
    fragment6,
)

from pytcp.drops import DropReason
from pytcp.stack import Stack, StackConfig
from pytcp.tcp.state import State
from pytcp.udp import DatagramError, DatagramReady

US4, PEER4 = "10.0.0.2", "10.0.0.1"
US6, PEER6 = "fd00:77::2", "fd00:77::1"
U6 = int(ipaddress.IPv6Address(US6))
P6 = int(ipaddress.IPv6Address(PEER6))
P4 = int(ipaddress.IPv4Address(PEER4))


def make(**cfg: object) -> Stack:
    return Stack(US4, addr6=US6, now=0.0, secret=b"k", rng=random.Random(1),
                 config=StackConfig(**cfg))  # type: ignore[arg-type]


def test_ping6_echo_reply_checksum_and_data() -> None:
    s = make()
    req = IPv6(src=PEER6, dst=US6) / ICMPv6EchoRequest(id=7, seq=9, data=b"pytcp" * 20)
    s.receive_packet(0.0, bytes(req))
    [out] = s.pending_packets()
    rep = IPv6(bytes(out))
    assert (rep.src, rep.dst, rep.hlim) == (US6, PEER6, 64)
    er = rep[ICMPv6EchoReply]
    assert (er.id, er.seq, bytes(er.data)) == (7, 9, b"pytcp" * 20)
    ref = IPv6(src=US6, dst=PEER6) / ICMPv6EchoReply(id=7, seq=9, data=b"pytcp" * 20)
    assert bytes(ref) == bytes(out)  # scapy computes the same pseudo-header checksum
    assert s.stats["icmp6_echo"] == 1


def test_nd_and_mld_are_counted_and_ignored_quietly() -> None:
    s = make()
    rs = IPv6(src="fe80::1", dst="ff02::2", hlim=255) / ICMPv6ND_RS()
    ns = IPv6(src="::", dst="ff02::1:ff00:2", hlim=255) / ICMPv6ND_NS(tgt="fd00:77::1")
    mld = (IPv6(src="fe80::1", dst="ff02::16", hlim=1)
           / IPv6ExtHdrHopByHop(options=[RouterAlert()]) / ICMPv6MLReport2())
    for p in (rs, ns, mld):
        s.receive_packet(0.0, bytes(p))
    assert s.stats["ipv6_nd_mld_ignored"] == 3
    assert sum(s.drops.values()) == 0 and s.pending_packets() == []


def test_ipv6_off_counts_ipv6_ignored() -> None:
    s = Stack(US4, now=0.0, secret=b"k")
    s.receive_packet(0.0, bytes(IPv6(src=PEER6, dst=US6) / ICMPv6EchoRequest()))
    assert s.drops[DropReason.IPV6_IGNORED] == 1 and s.pending_packets() == []


def test_routing_header_type0_refused_with_parameter_problem() -> None:
    s = make()
    pkt = bytes(IPv6(src=PEER6, dst=US6) / IPv6ExtHdrRouting(type=0, addresses=["fd00::9"])
                / ICMPv6EchoRequest())
    s.receive_packet(0.0, pkt)
    [out] = s.pending_packets()
    pp = IPv6(bytes(out))[ICMPv6ParamProblem]
    assert (pp.code, pp.ptr) == (0, 42)
    assert s.drops[DropReason.ROUTING_HEADER] == 1


def test_unknown_next_header_parameter_problem_code1() -> None:
    s = make()
    s.receive_packet(0.0, bytes(IPv6(src=PEER6, dst=US6, nh=132) / (b"x" * 20)))
    [out] = s.pending_packets()
    pp = IPv6(bytes(out))[ICMPv6ParamProblem]
    assert (pp.code, pp.ptr) == (1, 6)
    assert s.drops[DropReason.UNSUPPORTED_PROTOCOL] == 1


def test_fragmented_ping6_reassembled_and_reply_fragmented() -> None:
    s = make()
    data = bytes(range(256)) * 12
    req = IPv6(src=PEER6, dst=US6) / IPv6ExtHdrFragment(id=5) / ICMPv6EchoRequest(
        id=1, seq=2, data=data)
    frags = fragment6(req, 1280)
    assert len(frags) == 3
    for f in reversed(frags):
        s.receive_packet(0.0, bytes(f))
    out = s.pending_packets()
    assert len(out) == 3 and all(len(p) <= 1500 for p in out)
    assert s.stats["reassembled6"] == 1 and s.stats["fragmented6"] == 1
    # reassemble our reply with our own peer stack: same data back
    peer = Stack(PEER4, addr6=PEER6, now=0.0, secret=b"p")
    for p in out:
        peer.receive_packet(0.0, bytes(p))
    assert peer.stats["reassembled6"] == 1
    assert peer.drops[DropReason.ICMP_IGNORED] == 1  # an echo reply it did not ask for


def test_overlapping_fragments_drop_the_datagram_rfc5722() -> None:
    s = make()
    body = bytes(ICMPv6EchoRequest(id=1, seq=1, data=b"a" * 64))
    base = IPv6(src=PEER6, dst=US6)
    f1 = base / IPv6ExtHdrFragment(nh=58, id=9, offset=0, m=1) / body[:32]
    f2 = base / IPv6ExtHdrFragment(nh=58, id=9, offset=2, m=1) / body[16:48]  # overlaps
    f3 = base / IPv6ExtHdrFragment(nh=58, id=9, offset=6, m=0) / body[48:]
    for f in (f1, f2, f3):
        s.receive_packet(0.0, bytes(f))
    assert s.drops[DropReason.FRAGMENT_OVERLAP] == 1
    assert s.pending_packets() == []


def test_atomic_fragment_processed_at_once_rfc6946() -> None:
    s = make()
    pkt = IPv6(src=PEER6, dst=US6) / IPv6ExtHdrFragment(id=3, offset=0, m=0) / \
        ICMPv6EchoRequest(id=4, seq=4)
    s.receive_packet(0.0, bytes(pkt))
    [out] = s.pending_packets()
    assert IPv6(bytes(out))[ICMPv6EchoReply].id == 4
    assert s.stats["atomic_fragments"] == 1 and len(s._frag6) == 0


def test_reassembly_timeout_sends_time_exceeded() -> None:
    s = make()
    f1 = IPv6(src=PEER6, dst=US6) / IPv6ExtHdrFragment(nh=17, id=9, offset=0, m=1) / (b"a" * 64)
    s.receive_packet(0.0, bytes(f1))
    assert s.next_deadline() == 30.0
    s.handle_timers(30.0)
    [out] = s.pending_packets()
    te = IPv6(bytes(out))
    assert te.payload.type == 3 and te.payload.code == 1
    assert s.drops[DropReason.FRAGMENT_TIMEOUT] == 1


def _handshake6(s: Stack, port: int = 80) -> tuple[object, int]:
    syn = IPv6(src=PEER6, dst=US6) / TCP(sport=40000, dport=port, flags="S", seq=1000,
                                          options=[("MSS", 1440)])
    s.receive_packet(0.0, bytes(syn))
    [sa] = s.pending_packets()
    p = IPv6(bytes(sa))
    assert p[TCP].flags == "SA" and p[TCP].ack == 1001
    assert dict(p[TCP].options)["MSS"] == 1440  # MTU 1500 - 60
    ref = IPv6(bytes(sa))
    del ref[TCP].chksum
    assert bytes(IPv6(bytes(ref))) == bytes(sa)  # TCP checksum over the IPv6 pseudo-header
    iss = p[TCP].seq
    s.receive_packet(0.0, bytes(IPv6(src=PEER6, dst=US6) / TCP(
        sport=40000, dport=port, flags="A", seq=1001, ack=iss + 1)))
    return p, iss


def test_tcp_over_ipv6_listener_handshake_and_data() -> None:
    s = make()
    lst = s.listen(80)
    _, iss = _handshake6(s)
    h = lst.accept()
    assert h is not None and h.state is State.ESTABLISHED
    assert h.key.local_addr == U6 and h.key.remote_addr == P6
    s.receive_packet(0.0, bytes(IPv6(src=PEER6, dst=US6) / TCP(
        sport=40000, dport=80, flags="PA", seq=1001, ack=iss + 1) / b"hello"))
    assert h.receive(0.0) == b"hello"
    h.send(0.0, b"x" * 3000)
    out = [IPv6(bytes(p)) for p in s.pending_packets()]
    data = [p for p in out if len(p[TCP].payload)]
    assert [len(p[TCP].payload) for p in data] == [1440, 1440, 120]
    for p in data:
        raw = bytes(p)
        del p[TCP].chksum
        assert bytes(IPv6(bytes(p))) == raw


def test_tcp_over_ipv6_closed_port_rst_and_default_mss_1220() -> None:
    s = make()
    s.receive_packet(0.0, bytes(IPv6(src=PEER6, dst=US6) / TCP(sport=1, dport=9, flags="S")))
    [rst] = s.pending_packets()
    assert IPv6(bytes(rst))[TCP].flags == "RA"
    # connect over IPv6: the SYN from our IPv6 address
    h = s.connect(0.0, PEER6, 8000)
    [syn] = s.pending_packets()
    p = IPv6(bytes(syn))
    assert (p.src, p.dst, p[TCP].dport, p[TCP].flags) == (US6, PEER6, 8000, "S")
    # the peer's SYN-ACK without an MSS option: the IPv6 default 1220 (MUST-15)
    s.receive_packet(0.0, bytes(IPv6(src=PEER6, dst=US6) / TCP(
        sport=8000, dport=p[TCP].sport, flags="SA", seq=5, ack=p[TCP].seq + 1)))
    assert h.state is State.ESTABLISHED
    assert h.conn.snd_mss == 1220


def test_packet_too_big_lowers_tcp_mss_and_path_mtu() -> None:
    s = make()
    lst = s.listen(80)
    _handshake6(s)
    h = lst.accept()
    assert h is not None
    h.send(0.0, b"y" * 1440)
    [seg] = s.pending_packets()
    ptb = IPv6(src="fd00:99::1", dst=US6) / ICMPv6PacketTooBig(mtu=1300) / bytes(seg)[:1232]
    s.receive_packet(0.1, bytes(ptb))
    out = [IPv6(bytes(p)) for p in s.pending_packets()]
    assert out and max(len(p[TCP].payload) for p in out) <= 1300 - 60
    assert s.path_mtu6(P6) == 1300
    # below 1280 is raised to 1280 (RFC 8201 4)
    ptb2 = IPv6(src="fd00:99::1", dst=US6) / ICMPv6PacketTooBig(mtu=600) / bytes(seg)[:1232]
    s.receive_packet(0.2, bytes(ptb2))
    assert s.path_mtu6(P6) == 1280


def test_udp_port_unreachable_both_families_and_rate_limit() -> None:
    s = make(icmp_errors_per_sec=5)
    u4 = bytes(IP(src=PEER4, dst=US4) / UDP(sport=5, dport=7) / b"hi")
    s.receive_packet(0.0, u4)
    [out] = s.pending_packets()
    icmp = IP(bytes(out))[ICMP]
    assert (icmp.type, icmp.code) == (3, 3) and bytes(icmp.payload) == u4[:28]
    u6 = bytes(IPv6(src=PEER6, dst=US6) / UDP(sport=5, dport=7) / b"hi")
    s.receive_packet(0.0, u6)
    [out] = s.pending_packets()
    du = IPv6(bytes(out))[ICMPv6DestUnreach]
    assert du.code == 4 and bytes(du.payload) == u6
    for _ in range(20):
        s.receive_packet(0.0, u6)
    assert len(s.pending_packets()) == 3  # 5 tokens in the bucket
    assert s.stats["udp_no_port"] == 22


def test_udp_endpoint_receives_both_families_and_checks_checksums() -> None:
    s = make()
    ep = s.udp_bind(53)
    s.receive_packet(0.0, bytes(IP(src=PEER4, dst=US4) / UDP(sport=5, dport=53) / b"four"))
    s.receive_packet(0.0, bytes(IPv6(src=PEER6, dst=US6) / UDP(sport=6, dport=53) / b"six"))
    zero4 = IP(src=PEER4, dst=US4) / UDP(sport=7, dport=53, chksum=0) / b"nock"
    s.receive_packet(0.0, bytes(zero4))  # IPv4: zero = no checksum, accepted
    zero6 = IPv6(src=PEER6, dst=US6) / UDP(sport=7, dport=53, chksum=0) / b"nock"
    s.receive_packet(0.0, bytes(zero6))  # IPv6: refused (RFC 8200 8.1)
    bad = bytearray(bytes(IPv6(src=PEER6, dst=US6) / UDP(sport=8, dport=53) / b"bad"))
    bad[-1] ^= 0xFF
    s.receive_packet(0.0, bytes(bad))
    got = [ep.recvfrom() for _ in range(3)]
    assert got == [(b"four", (P4, 5)), (b"six", (P6, 6)), (b"nock", (P4, 7))]
    assert ep.recvfrom() is None
    assert s.drops[DropReason.BAD_UDP] == 1 and s.drops[DropReason.BAD_CHECKSUM] == 1
    evs = s.pending_events()
    assert evs == [(ep, DatagramReady())]  # once: the queue went from empty to not empty


def test_udp_large_datagrams_fragmented_and_reassembled_both_ways() -> None:
    a = make()
    b = Stack(PEER4, addr6=PEER6, now=0.0, secret=b"p", rng=random.Random(2))
    ea = a.udp_bind(7)
    eb = b.udp_bind(9)
    for dst, src in ((P4, int(ipaddress.IPv4Address(US4))), (P6, U6)):
        for size in (0, 1, 1472, 1473, 20000, 65507):
            data = random.Random(size).randbytes(size)
            assert ea.sendto(0.0, data, dst, 9) == size
            for p in a.pending_packets():
                assert len(p) <= 1500
                b.receive_packet(0.0, p)
            assert eb.recvfrom() == (data, (src, 7)), size
            eb.sendto(0.0, data, src, 7)
            for p in b.pending_packets():
                a.receive_packet(0.0, p)
            assert ea.recvfrom() == (data, (dst, 9))
    assert sum(a.drops.values()) == 0 and sum(b.drops.values()) == 0


def test_icmp_errors_reach_only_a_connected_udp_endpoint() -> None:
    s = make()
    ep = s.udp_bind(4000)
    ep.connect(P6, 9)
    ep.send(0.0, b"q")
    [sent] = s.pending_packets()
    err = IPv6(src=PEER6, dst=US6) / ICMPv6DestUnreach(code=4) / bytes(sent)
    s.receive_packet(0.0, bytes(err))
    assert ep.pending_error() == errno.ECONNREFUSED and ep.pending_error() is None
    assert (ep, DatagramError(errno.ECONNREFUSED)) in s.pending_events()
    other = s.udp_bind(4001)  # unconnected: ignored, as Linux without IP_RECVERR
    other.sendto(0.0, b"q", P4, 9)
    [sent4] = s.pending_packets()
    s.receive_packet(0.0, bytes(IP(src=PEER4, dst=US4) / ICMP(type=3, code=3) / sent4[:28]))
    assert other.pending_error() is None
    assert s.drops[DropReason.ICMP_IGNORED] == 1


def test_isn_and_syn_cookies_hash_whole_ipv6_addresses() -> None:
    from pytcp.tcp.isn import IsnGenerator
    from pytcp.tcp.syncookie import SynCookies

    gen = IsnGenerator(b"secret")
    other = P6 ^ (1 << 100)  # differs only above the low 32 bits
    assert gen.offset(U6, 80, P6, 4000) != gen.offset(U6, 80, other, 4000)
    c = SynCookies(b"secret")
    cookie, _ = c.make(0.0, U6, 80, P6, 4000, 7, 1440)
    assert c.check(0.0, U6, 80, P6, 4000, 7, cookie) is not None
    assert c.check(0.0, U6, 80, other, 4000, 7, cookie) is None


def test_syn_cookie_handshake_over_ipv6() -> None:
    s = make(syncookies=2)
    lst = s.listen(80)
    syn = IPv6(src=PEER6, dst=US6) / TCP(sport=40001, dport=80, flags="S", seq=99,
                                          options=[("MSS", 1440)])
    s.receive_packet(0.0, bytes(syn))
    [sa] = s.pending_packets()
    p = IPv6(bytes(sa))
    assert p[TCP].flags == "SA" and s.stats["syncookies_sent"] == 1
    s.receive_packet(0.1, bytes(IPv6(src=PEER6, dst=US6) / TCP(
        sport=40001, dport=80, flags="A", seq=100, ack=p[TCP].seq + 1)))
    h = lst.accept()
    assert h is not None and h.state is State.ESTABLISHED
    assert s.stats["syncookies_validated"] == 1


def test_a_lowered_path_mtu_bounds_the_mss_of_new_connections() -> None:
    s = make()
    s.listen(80)
    _handshake6(s)
    h = s.connections()[0]
    h.send(0.0, b"z" * 1440)
    [seg] = s.pending_packets()
    s.receive_packet(0.1, bytes(IPv6(src="fd00:99::1", dst=US6) / ICMPv6PacketTooBig(mtu=1400)
                                / bytes(seg)[:1232]))
    s.pending_packets()
    s.connect(0.2, PEER6, 9000)
    syn = [IPv6(bytes(p)) for p in s.pending_packets() if IPv6(bytes(p))[TCP].flags == "S"]
    assert dict(syn[0][TCP].options)["MSS"] == 1400 - 60
