"""RFC 2385 TCP MD5 signature option: parse/build and the digest, checked against scapy's
independent implementation (scapy.layers.inet.calc_tcp_md5_hash) and a hand-built vector."""

from __future__ import annotations

import hashlib
import ipaddress
import struct

import pytest
from scapy.layers.inet import IP, TCP, calc_tcp_md5_hash
from scapy.layers.inet6 import IPv6

from pytcp.wire.ipv4 import parse_ipv4
from pytcp.wire.tcp import (
    ACK,
    MD5_ZERO,
    PSH,
    SYN,
    TcpOptions,
    build_ipv4_tcp,
    encode_options,
    md5_digest,
    md5_option_offset,
    parse_options,
    parse_tcp,
    sign_packet,
)

SRC = int(ipaddress.IPv4Address("192.0.2.1"))
DST = int(ipaddress.IPv4Address("192.168.0.1"))
KEY = b"very secret key"


def test_option_round_trip_and_linux_layout() -> None:
    digest = bytes(range(16))
    raw = encode_options(TcpOptions(mss=1460, sack_permitted=True, wscale=7, md5=digest))
    # Linux tcp_options_write: nop nop md5 first, then the SYN options.
    assert raw[:20] == b"\x01\x01\x13\x12" + digest
    assert raw[20:24] == b"\x02\x04\x05\xb4"
    opts, kinds = parse_options(raw)
    assert opts.md5 == digest and opts.mss == 1460 and opts.wscale == 7
    assert kinds[:3] == (1, 1, 19)


def test_wrong_length_md5_is_ignored() -> None:
    # A kind 19 with a length other than 18 is skipped by its length (as Linux).
    opts, kinds = parse_options(b"\x13\x06abcd\x01\x01")
    assert opts.md5 is None and kinds == (19, 1, 1)


def test_md5_with_ts_leaves_no_room_for_sack() -> None:
    raw = encode_options(TcpOptions(timestamp=(1, 2), sack_blocks=((1, 2), (3, 4)),
                                    md5=MD5_ZERO))
    assert len(raw) == 32  # md5 (20) + nop nop TS (12); 8 bytes cannot hold a SACK block


@pytest.mark.parametrize("payload", [b"", b"hello, signed world", bytes(range(256)) * 5])
def test_signed_packet_matches_scapy(payload: bytes) -> None:
    pkt = build_ipv4_tcp(src=SRC, dst=DST, sport=40000, dport=179, seq=0x01020304,
                         ack=0xA0B0C0D0, flags=ACK | PSH, window=4321, urg=0,
                         options=TcpOptions(timestamp=(100, 200), md5=MD5_ZERO),
                         payload=payload)
    assert sign_packet(pkt, KEY)
    sp = IP(bytes(pkt))
    # scapy's own digest of the same segment (its TCP layer above its IP layer).
    want = calc_tcp_md5_hash(sp[TCP], KEY)
    assert dict(sp[TCP].options)["MD5"] == want
    # The checksum was recomputed over the signed bytes: the parser accepts it.
    ip = parse_ipv4(bytes(pkt))
    th = parse_tcp(ip.payload, SRC, DST)
    assert th.options.md5 == want and bytes(th.payload) == payload


def test_signed_syn_matches_hand_built_vector() -> None:
    pkt = build_ipv4_tcp(src=SRC, dst=DST, sport=1234, dport=179, seq=7, ack=0, flags=SYN,
                         window=65535, options=TcpOptions(mss=1460, md5=MD5_ZERO))
    sign_packet(pkt, KEY)
    seg = bytes(pkt[20:])
    # RFC 2385 2.0 by hand: pseudo-header (src, dst, 0, 6, length), the 20-byte header with
    # checksum 0, no data, the key.
    hdr = struct.pack("!HHIIBBHHH", 1234, 179, 7, 0, (len(seg) // 4) << 4, SYN, 65535, 0, 0)
    pseudo = (ipaddress.IPv4Address(SRC).packed + ipaddress.IPv4Address(DST).packed
              + bytes((0, 6)) + len(seg).to_bytes(2, "big"))
    want = hashlib.md5(pseudo + hdr + KEY).digest()
    off = md5_option_offset(seg)
    assert off == 24 and seg[off:off + 16] == want


def test_ipv6_digest_matches_scapy() -> None:
    src6 = int(ipaddress.IPv6Address("2001:db8::1"))
    dst6 = int(ipaddress.IPv6Address("2001:db8::2"))
    p = IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(
        sport=5, dport=6, flags="PA", seq=9, ack=10,
        options=[("NOP", None), ("NOP", None), ("MD5", bytes(16))]) / b"data"
    raw = bytes(p)
    want = calc_tcp_md5_hash(IPv6(raw)[TCP], KEY)
    assert md5_digest(KEY, src6, dst6, raw[40:], v6=True) == want


def test_sign_packet_without_option_is_false() -> None:
    pkt = build_ipv4_tcp(src=SRC, dst=DST, sport=1, dport=2, seq=0, ack=0, flags=ACK,
                         window=1)
    before = bytes(pkt)
    assert not sign_packet(pkt, KEY) and bytes(pkt) == before


def test_digest_of_header_and_payload_apart_is_the_same() -> None:
    pkt = build_ipv4_tcp(src=SRC, dst=DST, sport=1, dport=2, seq=3, ack=4, flags=ACK,
                         window=5, options=TcpOptions(md5=MD5_ZERO), payload=b"x" * 999)
    th = parse_tcp(bytes(pkt[20:]), SRC, DST)
    whole = md5_digest(KEY, SRC, DST, bytes(pkt[20:]))
    assert md5_digest(KEY, SRC, DST, th.header, False, th.payload) == whole
