"""IPv4 wire format: scapy is the oracle both ways; each malformed header has its DropReason."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, IPOption_EOL, IPOption_NOP, IPOption_RR

from pytcp.drops import DropReason, MalformedPacket
from pytcp.wire.ipv4 import (
    PROTO_ICMP,
    PROTO_TCP,
    build_ipv4_header,
    int_to_ip,
    ip_to_int,
    ipv4_header_checksum,
    parse_ipv4,
)

ip_options = st.lists(
    st.sampled_from(["nop", "eol", "rr"]), max_size=5  # at most 5*7 bytes: fits 40
).map(lambda names: [
    {"nop": IPOption_NOP, "eol": IPOption_EOL, "rr": lambda: IPOption_RR(routers=["1.2.3.4"])}[n]()
    for n in names
])


@settings(max_examples=300, deadline=None)
@given(
    tos=st.integers(0, 255), ident=st.integers(0, 0xFFFF), flags=st.integers(0, 7),
    frag=st.integers(0, 0x1FFF), ttl=st.integers(0, 255), proto=st.integers(0, 255),
    src=st.integers(0, 2**32 - 1), dst=st.integers(0, 2**32 - 1), options=ip_options,
    payload=st.binary(max_size=200), padding=st.binary(max_size=8),
)
def test_scapy_built_datagrams_parse_to_the_same_fields(
    tos: int, ident: int, flags: int, frag: int, ttl: int, proto: int, src: int, dst: int,
    options: list[object], payload: bytes, padding: bytes,
) -> None:
    pkt = IP(tos=tos, id=ident, flags=flags, frag=frag, ttl=ttl, proto=proto,
             src=int_to_ip(src), dst=int_to_ip(dst), options=options) / payload
    wire = bytes(pkt)
    theirs = IP(wire)
    p = parse_ipv4(wire + padding)
    assert (p.ihl, p.tos, p.total_length, p.ident) == (theirs.ihl, tos, theirs.len, ident)
    assert (p.df, p.mf) == (bool(flags & 2), bool(flags & 1))
    assert p.frag_offset == frag * 8
    assert (p.ttl, p.proto, p.checksum) == (ttl, proto, theirs.chksum)
    assert (p.src, p.dst) == (src, dst)
    assert bytes(p.header) == wire[:theirs.ihl * 4]  # options are inside the header, skipped
    assert bytes(p.payload) == payload  # link padding past the total length is not payload
    assert isinstance(p.payload, memoryview)
    assert p.is_fragment == bool(flags & 1 or frag)


@settings(max_examples=300, deadline=None)
@given(
    tos=st.integers(0, 255), ident=st.integers(0, 0xFFFF), ttl=st.integers(0, 255),
    proto=st.integers(0, 255), src=st.integers(0, 2**32 - 1), dst=st.integers(0, 2**32 - 1),
    payload_len=st.integers(0, 0xFFFF - 20), df=st.booleans(), mf=st.booleans(),
    frag_units=st.integers(0, 0x1FFF), offset=st.integers(0, 5),
)
def test_pytcp_built_headers_decode_in_scapy(
    tos: int, ident: int, ttl: int, proto: int, src: int, dst: int, payload_len: int,
    df: bool, mf: bool, frag_units: int, offset: int,
) -> None:
    buf = bytearray(b"\x77" * (offset + 20 + 3))
    n = build_ipv4_header(buf, offset, src=src, dst=dst, proto=proto, payload_len=payload_len,
                          ttl=ttl, ident=ident, df=df, tos=tos, mf=mf,
                          frag_offset=frag_units * 8)
    assert n == 20
    assert buf[:offset] == b"\x77" * offset and buf[offset + 20:] == b"\x77" * 3
    hdr = bytes(buf[offset:offset + 20])
    ip = IP(hdr)
    assert (ip.version, ip.ihl, ip.tos, ip.len, ip.id) == (4, 5, tos, 20 + payload_len, ident)
    assert (int(ip.flags), ip.frag, ip.ttl, ip.proto) == (df * 2 + mf, frag_units, ttl, proto)
    assert (ip.src, ip.dst) == (int_to_ip(src), int_to_ip(dst))
    del ip.chksum
    assert IP(bytes(ip)).chksum == IP(hdr).chksum  # scapy recomputes the same checksum
    # And our own parser accepts it (checksum verified) when the payload is there.
    parsed = parse_ipv4(hdr + bytes(payload_len))
    assert (parsed.src, parsed.dst, parsed.total_length) == (src, dst, 20 + payload_len)


def test_options_header_checksum_is_verified() -> None:
    wire = bytearray(bytes(IP(src="1.2.3.4", dst="5.6.7.8", options=[IPOption_NOP()] * 4)
                           / b"abc"))
    assert parse_ipv4(wire).ihl == 6
    wire[21] ^= 0x01  # inside the options
    with pytest.raises(MalformedPacket) as exc:
        parse_ipv4(wire)
    assert exc.value.reason is DropReason.BAD_IP_CHECKSUM
    assert parse_ipv4(wire, verify_checksum=False).ihl == 6


def _header(vihl: int = 0x45, total: int = 20, extra: bytes = b"", fix_csum: bool = True) -> bytes:
    hdr = bytearray(struct.pack("!BBHHHBBHII", vihl, 0, total, 1, 0, 64, 6, 0, 0x01020304,
                                0x05060708))
    if fix_csum:
        s = sum(struct.unpack("!10H", hdr))
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        struct.pack_into("!H", hdr, 10, ~s & 0xFFFF)
    return bytes(hdr) + extra


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (b"", DropReason.TRUNCATED),
        (_header()[:19], DropReason.TRUNCATED),
        (_header(vihl=0x65), DropReason.BAD_IP_VERSION),
        (_header(vihl=0x05), DropReason.BAD_IP_VERSION),
        (_header(vihl=0x44), DropReason.BAD_IHL),
        (_header(vihl=0x40), DropReason.BAD_IHL),
        (_header(vihl=0x4F, total=60, extra=bytes(20)), DropReason.BAD_IHL),  # 60 > 40 bytes
        (_header(vihl=0x46, total=24), DropReason.BAD_IHL),  # options past a 20-byte buffer
        (_header(total=19), DropReason.BAD_TOTAL_LENGTH),  # smaller than the header
        (_header(total=0), DropReason.BAD_TOTAL_LENGTH),
        (_header(total=21), DropReason.BAD_TOTAL_LENGTH),  # larger than the buffer
        (_header(total=65535, extra=bytes(100)), DropReason.BAD_TOTAL_LENGTH),
        (_header(fix_csum=False), DropReason.BAD_IP_CHECKSUM),
    ],
    ids=["empty", "19-bytes", "version-6", "version-0", "ihl-4", "ihl-0", "ihl-15-past",
         "ihl-6-past", "total-19", "total-0", "total-21", "total-65535", "bad-checksum"],
)
def test_malformed_datagram(wire: bytes, reason: DropReason) -> None:
    with pytest.raises(MalformedPacket) as exc:
        parse_ipv4(wire)
    assert exc.value.reason is reason


def test_total_length_smaller_than_buffer_is_link_padding() -> None:
    wire = _header(total=24, extra=b"abcd" + bytes(18))  # Ethernet-style minimum frame padding
    p = parse_ipv4(wire)
    assert bytes(p.payload) == b"abcd"


def test_address_helpers() -> None:
    assert ip_to_int("10.77.0.1") == 0x0A4D0001
    assert int_to_ip(0x0A4D0001) == "10.77.0.1"
    assert int_to_ip(ip_to_int("255.255.255.255")) == "255.255.255.255"
    for bad in ("10.0.0", "10.0.0.256", "1.2.3.4.5", "a.b.c.d", "10.0.0.-1", "", "1..2.3"):
        with pytest.raises(ValueError):
            ip_to_int(bad)
    assert (PROTO_ICMP, PROTO_TCP) == (1, 6)


def test_build_refuses_misuse() -> None:
    with pytest.raises(ValueError):
        build_ipv4_header(bytearray(19), 0, src=1, dst=2, proto=6, payload_len=0)
    with pytest.raises(ValueError):
        build_ipv4_header(bytearray(20), 0, src=1, dst=2, proto=6, payload_len=65516)
    with pytest.raises(ValueError):
        build_ipv4_header(bytearray(20), 0, src=1, dst=2, proto=6, payload_len=0, frag_offset=5)
    with pytest.raises(ValueError):
        build_ipv4_header(bytearray(20), 0, src=1, dst=2, proto=256, payload_len=0)


def test_header_checksum_helper_matches_the_built_header() -> None:
    buf = bytearray(20)
    build_ipv4_header(buf, 0, src=0x01020304, dst=0x05060708, proto=6, payload_len=100,
                      ttl=9, ident=77, df=False, tos=4, mf=True, frag_offset=64)
    frag = 0x2000 | 8
    assert struct.unpack_from("!H", buf, 10)[0] == ipv4_header_checksum(
        tos=4, total_length=120, ident=77, frag=frag, ttl=9, proto=6, src=0x01020304,
        dst=0x05060708)
