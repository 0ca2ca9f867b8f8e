"""IPv4 header (RFC 791 3.1): parse from a buffer without copying, build into a buffer.

This module owns the IPv4 wire format and nothing else: no routing, no fragment reassembly
(that is the stack's), no state. ``parse_ipv4`` checks what a receiver must check before
trusting a datagram (version, IHL, total length, header checksum per RFC 1122 3.2.1.1-2) and
raises only :class:`pytcp.drops.MalformedPacket` for bad input. IP options are honoured only
in the sense that IHL is respected and the options are skipped (RFC 1122 3.2.1.8: ignore
unknown options; RFC 9293 MUST-50).

``ihl`` is the raw field (32-bit words, as in RFC 791 and scapy); ``len(packet.header)`` is the
header length in bytes. ``frag_offset`` is in bytes (the raw field times 8).
"""

from __future__ import annotations

import socket
import struct

from pytcp import native
from pytcp.drops import DropReason, MalformedPacket

Buffer = bytes | bytearray | memoryview

PROTO_ICMP = 1
PROTO_TCP = 6

HEADER_LEN = 20  # without options
_FLAG_DF = 0x4000
_FLAG_MF = 0x2000
_OFFSET_MASK = 0x1FFF

# version/IHL, TOS, total length, identification, flags/fragment offset, TTL, protocol,
# header checksum, source, destination.
_HDR = struct.Struct("!BBHHHBBHII")
_unpack_hdr = _HDR.unpack_from
_pack_hdr = _HDR.pack_into


class Ipv4Packet:
    """A parsed IPv4 datagram; ``header`` and ``payload`` are views into the input buffer."""

    __slots__ = (
        "checksum",
        "df",
        "dst",
        "frag_offset",
        "header",
        "ident",
        "ihl",
        "mf",
        "payload",
        "proto",
        "src",
        "tos",
        "total_length",
        "ttl",
    )

    ihl: int
    tos: int
    total_length: int
    ident: int
    df: bool
    mf: bool
    frag_offset: int
    ttl: int
    proto: int
    checksum: int
    src: int
    dst: int
    header: memoryview
    payload: memoryview

    @property
    def is_fragment(self) -> bool:
        """True when this datagram is a piece of a larger one (MF set or offset nonzero)."""
        return self.mf or self.frag_offset != 0

    def __repr__(self) -> str:
        flags = ("DF" if self.df else "") + ("MF" if self.mf else "")
        return (f"Ipv4Packet({int_to_ip(self.src)} > {int_to_ip(self.dst)} proto={self.proto} "
                f"len={self.total_length} ihl={self.ihl} id={self.ident} flags={flags or '-'} "
                f"frag={self.frag_offset} ttl={self.ttl} tos={self.tos:#x})")


def parse_ipv4(buf: Buffer, verify_checksum: bool = True) -> Ipv4Packet:
    """Parse an IPv4 datagram. Bytes past the total length (link padding) are ignored.

    Raises :class:`MalformedPacket` (only) with ``TRUNCATED``, ``BAD_IP_VERSION``,
    ``BAD_IHL``, ``BAD_TOTAL_LENGTH`` or ``BAD_IP_CHECKSUM``.
    """
    n = len(buf)
    if n < HEADER_LEN:
        raise MalformedPacket(DropReason.TRUNCATED, f"{n} bytes, IPv4 header needs 20")
    vihl, tos, total, ident, frag, ttl, proto, csum, src, dst = _unpack_hdr(buf, 0)
    if vihl >> 4 != 4:
        raise MalformedPacket(DropReason.BAD_IP_VERSION, f"version {vihl >> 4}")
    ihl = vihl & 0x0F
    hlen = ihl << 2
    if hlen < HEADER_LEN or hlen > n:
        raise MalformedPacket(DropReason.BAD_IHL, f"IHL {ihl} with {n} bytes")
    if total < hlen or total > n:
        raise MalformedPacket(DropReason.BAD_TOTAL_LENGTH,
                              f"total length {total}, header {hlen}, buffer {n}")
    mv = buf if type(buf) is memoryview else memoryview(buf)
    header = mv[:hlen]
    if verify_checksum:
        # RFC 1071: the sum over a header including its checksum field is 0xFFFF (-0).
        if hlen == HEADER_LEN:
            s = ((vihl << 8) + tos + total + ident + frag + (ttl << 8) + proto + csum
                 + (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF))
            s = (s & 0xFFFF) + (s >> 16)
            s = (s & 0xFFFF) + (s >> 16)
        else:
            s = native.csum_partial(header)
        if s != 0xFFFF:
            raise MalformedPacket(DropReason.BAD_IP_CHECKSUM, f"checksum {csum:#06x}")
    p = Ipv4Packet()
    p.ihl = ihl
    p.tos = tos
    p.total_length = total
    p.ident = ident
    p.df = bool(frag & _FLAG_DF)
    p.mf = bool(frag & _FLAG_MF)
    p.frag_offset = (frag & _OFFSET_MASK) << 3
    p.ttl = ttl
    p.proto = proto
    p.checksum = csum
    p.src = src
    p.dst = dst
    p.header = header
    p.payload = mv[hlen:total]
    return p


def ipv4_header_checksum(*, tos: int, total_length: int, ident: int, frag: int, ttl: int,
                         proto: int, src: int, dst: int) -> int:
    """The checksum field of an option-less IPv4 header with these fields (computed from the
    integers; no buffer needed). ``frag`` is the raw flags/fragment-offset word."""
    s = ((0x45 << 8) + tos + total_length + ident + frag + (ttl << 8) + proto
         + (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def build_ipv4_header(buf: bytearray | memoryview, offset: int, *, src: int, dst: int,
                      proto: int, payload_len: int, ttl: int = 64, ident: int = 0,
                      df: bool = True, tos: int = 0, mf: bool = False,
                      frag_offset: int = 0) -> int:
    """Write a 20-byte IPv4 header (no options) with its checksum at ``buf[offset:]``.

    ``frag_offset`` is in bytes (a multiple of 8). Returns the number of bytes written (20).
    Raises ``ValueError`` for values that do not fit their fields (local misuse).
    """
    total = HEADER_LEN + payload_len
    if offset < 0 or offset + HEADER_LEN > len(buf):
        raise ValueError(f"buffer of {len(buf)} bytes has no room for a header at {offset}")
    if not 0 <= payload_len <= 0xFFFF - HEADER_LEN:
        raise ValueError(f"payload length {payload_len} does not fit an IPv4 datagram")
    if frag_offset & 7 or not 0 <= frag_offset <= _OFFSET_MASK << 3:
        raise ValueError(f"fragment offset {frag_offset} is not a multiple of 8 in range")
    frag = (frag_offset >> 3) | (_FLAG_DF if df else 0) | (_FLAG_MF if mf else 0)
    s = ((0x45 << 8) + tos + total + ident + frag + (ttl << 8) + proto
         + (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    csum = ~s & 0xFFFF
    try:
        _pack_hdr(buf, offset, 0x45, tos, total, ident, frag, ttl, proto, csum, src, dst)
    except struct.error as err:
        raise ValueError(f"IPv4 header field out of range: {err}") from None
    return HEADER_LEN


def ip_to_int(addr: str) -> int:
    """``"10.0.0.1"`` -> ``0x0A000001``. Raises ``ValueError`` for a malformed address."""
    parts = addr.split(".")
    if len(parts) != 4 or not all(p.isdigit() and p.isascii() and len(p) <= 3 for p in parts):
        raise ValueError(f"not a dotted-quad IPv4 address: {addr!r}")
    value = 0
    for p in parts:
        octet = int(p)
        if octet > 255:
            raise ValueError(f"not a dotted-quad IPv4 address: {addr!r}")
        value = (value << 8) | octet
    return value


def int_to_ip(addr: int) -> str:
    """``0x0A000001`` -> ``"10.0.0.1"``."""
    return socket.inet_ntoa(addr.to_bytes(4, "big"))
