"""ICMP wire format against scapy: echo request/reply, destination unreachable, malformed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, IPerror, TCPerror

from pytcp.drops import DropReason, MalformedPacket
from pytcp.wire.icmp import (
    DEST_UNREACHABLE,
    ECHO_REPLY,
    ECHO_REQUEST,
    TIME_EXCEEDED,
    UNREACH_FRAG_NEEDED,
    UNREACH_PORT,
    build_dest_unreachable,
    build_echo_reply,
    build_echo_request,
    parse_icmp,
)
from pytcp.wire.tcp import SYN, build_ipv4_tcp


def _checksum_ok(msg: bytes) -> bool:
    icmp = ICMP(msg)
    want = icmp.chksum
    del icmp.chksum
    return ICMP(bytes(icmp)).chksum == want


@settings(max_examples=200, deadline=None)
@given(ident=st.integers(0, 0xFFFF), seq=st.integers(0, 0xFFFF), data=st.binary(max_size=300),
       reply=st.booleans())
def test_echo_round_trip_with_scapy(ident: int, seq: int, data: bytes, reply: bool) -> None:
    build = build_echo_reply if reply else build_echo_request
    msg = build(ident, seq, data)
    theirs = ICMP(msg)
    assert (theirs.type, theirs.code) == ((ECHO_REPLY if reply else ECHO_REQUEST), 0)
    assert (theirs.id, theirs.seq, bytes(theirs.payload)) == (ident, seq, data)
    assert _checksum_ok(msg)
    # and scapy-built messages parse to the same fields
    wire = bytes(ICMP(type=8, id=ident, seq=seq) / data)
    m = parse_icmp(wire)
    assert (m.type, m.code, m.ident, m.seq, bytes(m.payload)) == (8, 0, ident, seq, data)
    assert m.checksum == ICMP(wire).chksum
    assert not m.is_error and len(m.original) == 0


def test_dest_unreachable_quotes_header_and_8_bytes() -> None:
    original = bytes(build_ipv4_tcp(src=0x0A000001, dst=0x0A000002, sport=4321, dport=80,
                                    seq=0xDEADBEEF, ack=0, flags=SYN, window=1000,
                                    payload=b"x" * 50))
    msg = build_dest_unreachable(UNREACH_PORT, original)
    assert len(msg) == 8 + 20 + 8
    theirs = ICMP(msg)
    assert (theirs.type, theirs.code) == (DEST_UNREACHABLE, UNREACH_PORT)
    assert theirs[IPerror].src == "10.0.0.1"
    assert (theirs[TCPerror].sport, theirs[TCPerror].seq) == (4321, 0xDEADBEEF)
    assert _checksum_ok(msg)
    m = parse_icmp(msg)
    assert m.is_error and bytes(m.original) == original[:28]
    assert m.mtu == 0


def test_dest_unreachable_honours_ip_options_and_mtu() -> None:
    original = bytes(IP(src="1.1.1.1", dst="2.2.2.2", options=[b"\x01\x01\x01\x00"])
                     / TCP(sport=1, dport=2) / b"payload")
    msg = build_dest_unreachable(UNREACH_FRAG_NEEDED, original, mtu=1280)
    assert len(msg) == 8 + 24 + 8
    assert ICMP(msg).nexthopmtu == 1280
    m = parse_icmp(msg)
    assert (m.type, m.code, m.mtu) == (DEST_UNREACHABLE, UNREACH_FRAG_NEEDED, 1280)
    assert bytes(m.original) == original[:32]


def test_scapy_built_error_parses() -> None:
    quoted = bytes(IP(src="3.3.3.3", dst="4.4.4.4") / TCP(sport=5, dport=6))[:28]
    wire = bytes(ICMP(type=TIME_EXCEEDED, code=0) / quoted)
    m = parse_icmp(wire)
    assert (m.type, m.code, m.is_error) == (TIME_EXCEEDED, 0, True)
    assert bytes(m.original) == quoted


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"", DropReason.BAD_ICMP),
        (build_echo_request(1, 2)[:7], DropReason.BAD_ICMP),
        (build_echo_request(1, 2, b"abc")[:-1] + b"x", DropReason.BAD_CHECKSUM),
        (bytes(8), DropReason.BAD_CHECKSUM),
    ],
    ids=["empty", "7-bytes", "bad-checksum", "all-zero"],
)
def test_malformed_icmp(wire: bytes, reason: DropReason) -> None:
    with pytest.raises(MalformedPacket) as exc:
        parse_icmp(wire)
    assert exc.value.reason is reason


def test_checksum_may_be_left_unverified() -> None:
    assert parse_icmp(bytes(8), verify_checksum=False).type == ECHO_REPLY
