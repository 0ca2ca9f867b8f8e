"""IPv6 (with extension headers), ICMPv6 and UDP wire formats against scapy (property tests)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import UDP as UDP6  # same class, named for clarity
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6PacketTooBig,
    ICMPv6ParamProblem,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)

from pytcp.drops import DropReason, MalformedPacket
from pytcp.wire.icmpv6 import (
    DEST_UNREACHABLE,
    ECHO_REPLY,
    ECHO_REQUEST,
    MAX_QUOTE,
    PACKET_TOO_BIG,
    UNREACH_PORT,
    build_echo_reply6,
    build_echo_request6,
    build_error6,
    parse_icmpv6,
)
from pytcp.wire.ipv6 import (
    NH_FRAGMENT,
    NH_ICMPV6,
    NH_UDP,
    Ipv6ParamProblem,
    build_fragment_header,
    build_ipv6,
    parse_ipv6,
    pseudo_header_sum6,
)
from pytcp.wire.udp import build_udp, parse_udp

A = "fd00:77::2"
B = "fd00:77::1"
IA = int(ipaddress.IPv6Address(A))
IB = int(ipaddress.IPv6Address(B))

addrs6 = st.integers(1, (1 << 128) - 1)
addrs4 = st.integers(1, 0xFFFFFFFF)


@settings(max_examples=200, deadline=None)
@given(src=addrs6, dst=addrs6, data=st.binary(max_size=300), hop=st.integers(0, 255),
       tclass=st.integers(0, 255), flow=st.integers(0, 0xFFFFF))
def test_ipv6_header_round_trip_with_scapy(src: int, dst: int, data: bytes, hop: int,
                                           tclass: int, flow: int) -> None:
    pkt = build_ipv6(src=src, dst=dst, next_header=NH_UDP, payload=data, hop_limit=hop,
                     tclass=tclass, flow=flow)
    theirs = IPv6(bytes(pkt))
    assert (int(ipaddress.IPv6Address(theirs.src)),
            int(ipaddress.IPv6Address(theirs.dst))) == (src, dst)
    assert (theirs.hlim, theirs.tc, theirs.fl, theirs.nh, theirs.plen) == (
        hop, tclass, flow, NH_UDP, len(data))
    wire = bytes(IPv6(src=theirs.src, dst=theirs.dst, hlim=hop, tc=tclass, fl=flow, nh=200)
                 / data)
    p = parse_ipv6(wire)
    assert (p.src, p.dst, p.hop_limit, p.tclass, p.flow, p.proto) == (src, dst, hop, tclass,
                                                                       flow, 200)
    assert bytes(p.payload) == data and not p.has_frag and p.ext_len == 0


@settings(max_examples=100, deadline=None)
@given(chain=st.lists(st.sampled_from(["dst", "rt0", "frag"]), max_size=4),
       hbh=st.booleans(), data=st.binary(max_size=64), ident=st.integers(0, 0xFFFFFFFF),
       offset=st.integers(0, 100).map(lambda x: x * 8), more=st.booleans())
def test_extension_chain_walk_matches_scapy(chain: list[str], hbh: bool, data: bytes,
                                            ident: int, offset: int, more: bool) -> None:
    layers = IPv6(src=A, dst=B)
    if hbh:
        layers = layers / IPv6ExtHdrHopByHop()
    stop_at_frag = False
    for kind in chain:
        if kind == "dst":
            layers = layers / IPv6ExtHdrDestOpt()
        elif kind == "rt0":
            layers = layers / IPv6ExtHdrRouting(type=0, segleft=0, addresses=[])
        else:
            layers = layers / IPv6ExtHdrFragment(id=ident, offset=offset // 8, m=int(more))
            stop_at_frag = True
            break
    wire = bytes(layers / UDP6(sport=1, dport=2) / data)
    p = parse_ipv6(wire)
    parsed = IPv6(wire)
    frag = parsed.getlayer(IPv6ExtHdrFragment)
    if stop_at_frag:
        assert frag is not None and p.has_frag
        assert (p.frag_ident, p.frag_offset, p.frag_more) == (ident, offset, more)
        assert p.is_fragment == (more or offset != 0)
        assert p.proto == NH_UDP
        assert wire[len(wire) - len(p.payload):] == bytes(p.payload)
        assert len(p.unfrag) + 8 + len(p.payload) == len(wire)
    else:
        assert not p.has_frag and p.proto == NH_UDP
        assert bytes(p.payload) == bytes(parsed.getlayer(UDP6))


def test_routing_header_with_segments_left_is_refused() -> None:
    wire = bytes(IPv6(src=A, dst=B) / IPv6ExtHdrRouting(type=0, addresses=["fd00::9"])
                 / UDP6(sport=1, dport=2))
    with pytest.raises(Ipv6ParamProblem) as e:
        parse_ipv6(wire)
    assert e.value.reason is DropReason.ROUTING_HEADER
    assert (e.value.code, e.value.pointer) == (0, 42)  # the Routing Type field


def test_hop_by_hop_not_first_is_parameter_problem() -> None:
    wire = bytes(IPv6(src=A, dst=B) / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop()
                 / UDP6(sport=1, dport=2))
    with pytest.raises(Ipv6ParamProblem) as e:
        parse_ipv6(wire)
    assert (e.value.code, e.value.pointer) == (1, 40)  # the DestOpt's Next Header byte


def test_unknown_option_actions() -> None:
    from scapy.layers.inet6 import HBHOptUnknown

    for otype, reason_send in ((0x1E, None), (0x5E, False), (0x9E, True), (0xDE, True)):
        wire = bytes(IPv6(src=A, dst=B)
                     / IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=otype, optdata=b"ab")])
                     / UDP6(sport=1, dport=2))
        if reason_send is None:
            assert parse_ipv6(wire).proto == NH_UDP  # 00: skipped
            continue
        with pytest.raises(MalformedPacket) as e:
            parse_ipv6(wire)
        assert isinstance(e.value, Ipv6ParamProblem) == reason_send
        if reason_send:
            assert (e.value.code, e.value.pointer) == (2, 42)  # type: ignore[attr-defined]


def test_limits_and_lengths() -> None:
    too_many = IPv6(src=A, dst=B)
    for _ in range(9):
        too_many = too_many / IPv6ExtHdrDestOpt()
    with pytest.raises(MalformedPacket) as e:
        parse_ipv6(bytes(too_many / UDP6()))
    assert e.value.reason is DropReason.BAD_IPV6_EXT
    wire = bytes(IPv6(src=A, dst=B) / UDP6() / b"xy")
    with pytest.raises(MalformedPacket) as e:
        parse_ipv6(wire[:-1])  # payload length past the packet
    assert e.value.reason is DropReason.BAD_TOTAL_LENGTH
    assert bytes(parse_ipv6(wire + b"\0\0").payload) == wire[40:]  # link padding ignored
    with pytest.raises(MalformedPacket) as e:
        parse_ipv6(bytes(IP(dst="10.0.0.1") / UDP() / (b"x" * 20)))
    assert e.value.reason is DropReason.BAD_IP_VERSION
    with pytest.raises(MalformedPacket) as e:
        parse_ipv6(bytes(IPv6(src=A, dst=B) / IPv6ExtHdrDestOpt())[:44])
    assert e.value.reason is DropReason.BAD_TOTAL_LENGTH


def test_fragment_header_against_scapy() -> None:
    h = build_fragment_header(NH_UDP, 1232, True, 0xDEADBEEF)
    f = IPv6ExtHdrFragment(h)
    assert (f.nh, f.offset * 8, f.m, f.id) == (NH_UDP, 1232, 1, 0xDEADBEEF)
    with pytest.raises(ValueError):
        build_fragment_header(NH_UDP, 3, False, 1)
    pkt = build_ipv6(src=IA, dst=IB, next_header=NH_FRAGMENT, payload=h + b"x" * 16)
    p = parse_ipv6(pkt)
    assert p.is_fragment and p.frag_offset == 1232 and len(p.payload) == 16


@settings(max_examples=200, deadline=None)
@given(src=addrs6, dst=addrs6, ident=st.integers(0, 0xFFFF), seq=st.integers(0, 0xFFFF),
       data=st.binary(max_size=300), reply=st.booleans())
def test_icmpv6_echo_with_scapy(src: int, dst: int, ident: int, seq: int, data: bytes,
                                reply: bool) -> None:
    build = build_echo_reply6 if reply else build_echo_request6
    msg = build(ident, seq, data, src=src, dst=dst)
    sa, da = str(ipaddress.IPv6Address(src)), str(ipaddress.IPv6Address(dst))
    theirs = IPv6(bytes(IPv6(src=sa, dst=da, nh=NH_ICMPV6) / msg))
    layer = theirs.getlayer(ICMPv6EchoReply if reply else ICMPv6EchoRequest)
    assert layer is not None
    assert (layer.id, layer.seq, bytes(layer.data)) == (ident, seq, data)
    # scapy recomputes: the checksum we wrote must equal its own
    again = IPv6(src=sa, dst=da) / (ICMPv6EchoReply if reply else ICMPv6EchoRequest)(
        id=ident, seq=seq, data=data)
    wire = bytes(again)
    assert wire[40:] == msg
    m = parse_icmpv6(wire[40:], src, dst)
    assert (m.type, m.ident, m.seq, bytes(m.payload)) == (
        ECHO_REPLY if reply else ECHO_REQUEST, ident, seq, data)
    assert not m.is_error and len(m.original) == 0
    with pytest.raises(MalformedPacket) as e:
        parse_icmpv6(wire[40:], src ^ 1, dst)  # another pseudo-header
    assert e.value.reason is DropReason.BAD_CHECKSUM


def test_icmpv6_errors_with_scapy() -> None:
    original = bytes(IPv6(src=B, dst=A) / UDP6(sport=5, dport=9) / (b"z" * 2000))
    msg = build_error6(DEST_UNREACHABLE, UNREACH_PORT, original, src=IA, dst=IB)
    assert len(msg) == 8 + MAX_QUOTE and 40 + len(msg) == 1280
    wire = bytes(IPv6(src=A, dst=B, nh=NH_ICMPV6) / msg)
    du = IPv6(wire).getlayer(ICMPv6DestUnreach)
    assert du is not None and du.code == UNREACH_PORT
    assert bytes(IPv6(src=A, dst=B) / ICMPv6DestUnreach(code=4) / original[:MAX_QUOTE]) == wire
    m = parse_icmpv6(msg, IA, IB)
    assert m.is_error and bytes(m.original) == original[:MAX_QUOTE]
    ptb = bytes(IPv6(src=B, dst=A) / ICMPv6PacketTooBig(mtu=1400) / original[:200])
    m = parse_icmpv6(ptb[40:], IB, IA)
    assert (m.type, m.mtu) == (PACKET_TOO_BIG, 1400)
    pp = bytes(IPv6(src=B, dst=A) / ICMPv6ParamProblem(code=2, ptr=42) / original[:100])
    m = parse_icmpv6(pp[40:], IB, IA)
    assert (m.type, m.code, m.word, m.mtu) == (4, 2, 42, 0)
    with pytest.raises(MalformedPacket) as e:
        parse_icmpv6(b"\x80\0\0", IA, IB)
    assert e.value.reason is DropReason.BAD_ICMP
    with pytest.raises(ValueError):
        build_error6(ECHO_REQUEST, 0, b"", src=IA, dst=IB)


@settings(max_examples=200, deadline=None)
@given(v6=st.booleans(), src6=addrs6, dst6=addrs6, src4=addrs4, dst4=addrs4,
       sport=st.integers(0, 0xFFFF), dport=st.integers(0, 0xFFFF),
       data=st.binary(max_size=400))
def test_udp_round_trip_with_scapy(v6: bool, src6: int, dst6: int, src4: int, dst4: int,
                                   sport: int, dport: int, data: bytes) -> None:
    src, dst = (src6, dst6) if v6 else (src4, dst4)
    ip_cls = IPv6 if v6 else IP
    addr_cls = ipaddress.IPv6Address if v6 else ipaddress.IPv4Address
    sa, da = str(addr_cls(src)), str(addr_cls(dst))
    d = build_udp(src=src, dst=dst, sport=sport, dport=dport, payload=data, v6=v6)
    theirs = UDP(bytes(d))
    assert (theirs.sport, theirs.dport, theirs.len, bytes(theirs.payload)) == (
        sport, dport, 8 + len(data), data)
    ref = bytes(ip_cls(src=sa, dst=da) / UDP(sport=sport, dport=dport) / data)
    hl = 40 if v6 else 20
    assert ref[hl:] == bytes(d)  # the same checksum as scapy (0xFFFF for a computed zero)
    u = parse_udp(ref[hl:], src, dst, v6=v6)
    assert (u.sport, u.dport, u.length, bytes(u.payload)) == (sport, dport, 8 + len(data), data)


def test_udp_checksum_rules() -> None:
    d = build_udp(src=0x0A000001, dst=0x0A000002, sport=1, dport=2, payload=b"abc",
                  checksum=False)
    assert d[6:8] == b"\0\0"
    assert bytes(parse_udp(d, 1, 2).payload) == b"abc"  # zero: none, over IPv4
    with pytest.raises(MalformedPacket) as e:
        parse_udp(d, IA, IB, v6=True)
    assert e.value.reason is DropReason.BAD_UDP
    with pytest.raises(ValueError):
        build_udp(src=IA, dst=IB, sport=1, dport=2, v6=True, checksum=False)
    good = build_udp(src=IA, dst=IB, sport=1, dport=2, payload=b"abc", v6=True)
    bad = bytearray(good)
    bad[-1] ^= 1
    with pytest.raises(MalformedPacket) as e:
        parse_udp(bad, IA, IB, v6=True)
    assert e.value.reason is DropReason.BAD_CHECKSUM
    for length in (7, 12):
        short = bytearray(good)
        short[4:6] = length.to_bytes(2, "big")
        with pytest.raises(MalformedPacket) as e:
            parse_udp(short, IA, IB, v6=True)
        assert e.value.reason is DropReason.BAD_UDP
    # trailing padding past the length field is ignored
    assert bytes(parse_udp(bytes(good) + b"\0", IA, IB, v6=True).payload) == b"abc"
    assert pseudo_header_sum6(0, 0, 17, 0x10008) == 17 + 1 + 8
