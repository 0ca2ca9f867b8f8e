"""UDP datagrams (RFC 768) over IPv4 and IPv6: parse, build.

This module owns the UDP wire format only. The checksum covers the pseudo-header of the
address family (RFC 768 for IPv4, RFC 8200 8.1 for IPv6) and the whole datagram; a computed
checksum of zero is sent as 0xFFFF. A received checksum of zero means "none" over IPv4
(RFC 768, RFC 1122 4.1.3.4) and is refused over IPv6 (RFC 8200 8.1: ``BAD_UDP``).

The length field must be at least 8 and at most the bytes the IP layer carried; bytes past it
(link padding) are ignored, as Linux ``udp_rcv`` trims them. ``parse_udp`` raises only
:class:`pytcp.drops.MalformedPacket`.
"""

from __future__ import annotations

import struct

from pytcp import native
from pytcp.drops import DropReason, MalformedPacket
from pytcp.wire.ipv6 import pseudo_header_sum6

Buffer = bytes | bytearray | memoryview

PROTO_UDP = 17
HEADER_LEN = 8

_HDR = struct.Struct("!HHHH")
_unpack_hdr = _HDR.unpack_from
_pack_hdr = _HDR.pack_into
_pack_csum = struct.Struct("!H").pack_into


def pseudo_sum(src: int, dst: int, length: int, v6: bool) -> int:
    """The UDP pseudo-header partial sum for either family (``src``/``dst`` integers)."""
    if v6:
        return pseudo_header_sum6(src, dst, PROTO_UDP, length)
    return native.pseudo_header_sum(src, dst, PROTO_UDP, length)


class UdpDatagram:
    """A parsed UDP datagram; ``payload`` is a view into the input buffer."""

    __slots__ = ("checksum", "dport", "length", "payload", "sport")

    sport: int
    dport: int
    length: int
    checksum: int
    payload: memoryview

    def __repr__(self) -> str:
        return f"UdpDatagram({self.sport} -> {self.dport} len={self.length})"


def parse_udp(buf: Buffer, src: int, dst: int, verify_checksum: bool = True, *,
              v6: bool = False) -> UdpDatagram:
    """Parse a UDP datagram (the IP payload) from ``src`` to ``dst``; ``v6`` selects the
    IPv6 pseudo-header and forbids a zero checksum."""
    n = len(buf)
    if n < HEADER_LEN:
        raise MalformedPacket(DropReason.TRUNCATED, f"{n} bytes, UDP header needs 8")
    mv = buf if type(buf) is memoryview else memoryview(buf)
    sport, dport, length, csum = _unpack_hdr(mv, 0)
    if length < HEADER_LEN or length > n:
        raise MalformedPacket(DropReason.BAD_UDP, f"UDP length {length} with {n} bytes")
    if length < n:
        mv = mv[:length]
    if csum == 0:
        if v6:
            raise MalformedPacket(DropReason.BAD_UDP, "zero UDP checksum over IPv6")
    elif verify_checksum and native.csum_partial(mv, pseudo_sum(src, dst, length,
                                                                v6)) != 0xFFFF:
        raise MalformedPacket(DropReason.BAD_CHECKSUM, f"UDP checksum {csum:#06x}")
    d = UdpDatagram()
    d.sport = sport
    d.dport = dport
    d.length = length
    d.checksum = csum
    d.payload = mv[HEADER_LEN:]
    return d


def build_udp(*, src: int, dst: int, sport: int, dport: int, payload: Buffer = b"",
              v6: bool = False, checksum: bool = True) -> bytearray:
    """A UDP datagram (header + payload) with its checksum; ``checksum=False`` sends zero
    (IPv4 only: RFC 768 lets a sender omit it)."""
    length = HEADER_LEN + len(payload)
    if length > 0xFFFF:
        raise ValueError(f"UDP payload of {len(payload)} bytes does not fit 65527")
    if not checksum and v6:
        raise ValueError("a UDP checksum is mandatory over IPv6 (RFC 8200 8.1)")
    d = bytearray(length)
    try:
        _pack_hdr(d, 0, sport, dport, length, 0)
    except struct.error as err:
        raise ValueError(f"UDP header field out of range: {err}") from None
    d[HEADER_LEN:] = payload
    if checksum:
        c = native.checksum(d, pseudo_sum(src, dst, length, v6))
        _pack_csum(d, 6, c or 0xFFFF)  # RFC 768: a computed zero is sent as all ones
    return d
