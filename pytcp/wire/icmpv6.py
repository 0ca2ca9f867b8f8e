"""ICMPv6 messages (RFC 4443): parse any message, build echo reply/request and errors.

This module owns the ICMPv6 wire format only; answering pings, rate limiting and matching
errors to connections is the IP layer's job (``pytcp.ip.icmp6``). The functions work on the
ICMPv6 message (the upper-layer payload). Unlike ICMP for IPv4, the checksum covers the IPv6
pseudo-header (RFC 4443 2.3, RFC 8200 8.1), so parse and build take the two addresses.

``parse_icmpv6`` raises only :class:`pytcp.drops.MalformedPacket`: ``BAD_ICMP`` for a message
shorter than its 8-byte header (4 for the type/code/checksum plus the 32-bit word every
message has), ``BAD_CHECKSUM`` for a checksum mismatch.
"""

from __future__ import annotations

import struct

from pytcp import native
from pytcp.drops import DropReason, MalformedPacket
from pytcp.wire.ipv6 import MIN_MTU, NH_ICMPV6, pseudo_header_sum6

Buffer = bytes | bytearray | memoryview

# Error messages (RFC 4443 3).
DEST_UNREACHABLE = 1
PACKET_TOO_BIG = 2
TIME_EXCEEDED = 3
PARAMETER_PROBLEM = 4
# Informational messages (RFC 4443 4).
ECHO_REQUEST = 128
ECHO_REPLY = 129
# Multicast Listener Discovery (RFC 2710, RFC 3810) and Neighbor Discovery (RFC 4861).
MLD_QUERY = 130
MLD_REPORT = 131
MLD_DONE = 132
ND_ROUTER_SOLICIT = 133
ND_ROUTER_ADVERT = 134
ND_NEIGHBOR_SOLICIT = 135
ND_NEIGHBOR_ADVERT = 136
ND_REDIRECT = 137
MLDV2_REPORT = 143
ND_MLD_TYPES = frozenset({MLD_QUERY, MLD_REPORT, MLD_DONE, ND_ROUTER_SOLICIT,
                          ND_ROUTER_ADVERT, ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT,
                          ND_REDIRECT, MLDV2_REPORT})

# Destination Unreachable codes (RFC 4443 3.1).
UNREACH_NO_ROUTE = 0
UNREACH_ADMIN = 1
UNREACH_BEYOND_SCOPE = 2
UNREACH_ADDR = 3
UNREACH_PORT = 4
# Time Exceeded codes (RFC 4443 3.3).
TIME_HOP_LIMIT = 0
TIME_REASSEMBLY = 1
# Parameter Problem codes (RFC 4443 3.4).
PARAM_HEADER_FIELD = 0
PARAM_NEXT_HEADER = 1
PARAM_OPTION = 2

HEADER_LEN = 8
# RFC 4443 2.4 (c): an error quotes as much of the invoking packet as fits in the minimum MTU.
MAX_QUOTE = MIN_MTU - 40 - HEADER_LEN

_HDR = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
_unpack_hdr = _HDR.unpack_from
_pack_hdr = _HDR.pack_into
_pack_csum = struct.Struct("!H").pack_into

_EMPTY = memoryview(b"")


class Icmpv6Message:
    """A parsed ICMPv6 message; ``payload`` and ``original`` are views into the input.

    ``ident``/``seq`` are the halves of the 32-bit word after the checksum (echo identifier
    and sequence); ``word`` is that word whole (the MTU of Packet Too Big, the pointer of
    Parameter Problem). ``original`` is the quoted packet of an error (types < 128), else
    empty."""

    __slots__ = ("checksum", "code", "ident", "original", "payload", "seq", "type", "word")

    type: int
    code: int
    checksum: int
    ident: int
    seq: int
    word: int
    payload: memoryview
    original: memoryview

    @property
    def is_error(self) -> bool:
        return self.type < 128  # RFC 4443 2.1: the high-order bit of the type is 0

    @property
    def mtu(self) -> int:
        """The MTU of a Packet Too Big message (RFC 4443 3.2), else 0."""
        return self.word if self.type == PACKET_TOO_BIG else 0

    def __repr__(self) -> str:
        return (f"Icmpv6Message(type={self.type} code={self.code} word={self.word} "
                f"len={len(self.payload)})")


def parse_icmpv6(buf: Buffer, src: int, dst: int, verify_checksum: bool = True
                 ) -> Icmpv6Message:
    """Parse an ICMPv6 message sent from ``src`` to ``dst`` (128-bit integers)."""
    n = len(buf)
    if n < HEADER_LEN:
        raise MalformedPacket(DropReason.BAD_ICMP, f"{n} bytes, ICMPv6 header needs 8")
    mv = buf if type(buf) is memoryview else memoryview(buf)
    typ, code, csum, ident, seq = _unpack_hdr(mv, 0)
    # RFC 4443 2.3: the checksum covers the pseudo-header and the whole message.
    if verify_checksum and native.csum_partial(
            mv, pseudo_header_sum6(src, dst, NH_ICMPV6, n)) != 0xFFFF:
        raise MalformedPacket(DropReason.BAD_CHECKSUM, f"ICMPv6 checksum {csum:#06x}")
    m = Icmpv6Message()
    m.type = typ
    m.code = code
    m.checksum = csum
    m.ident = ident
    m.seq = seq
    m.word = (ident << 16) | seq
    m.payload = mv[HEADER_LEN:]
    m.original = m.payload if typ < 128 else _EMPTY
    return m


def build_icmpv6(typ: int, code: int, word: int, payload: Buffer, *, src: int,
                 dst: int) -> bytes:
    """An ICMPv6 message: type, code, checksum (over the pseudo-header of ``src``/``dst``),
    the 32-bit ``word`` and ``payload``."""
    msg = bytearray(HEADER_LEN + len(payload))
    try:
        _pack_hdr(msg, 0, typ, code, 0, word >> 16, word & 0xFFFF)
    except struct.error as err:
        raise ValueError(f"ICMPv6 header field out of range: {err}") from None
    msg[HEADER_LEN:] = payload
    _pack_csum(msg, 2, native.checksum(msg, pseudo_header_sum6(src, dst, NH_ICMPV6, len(msg))))
    return bytes(msg)


def build_echo_request6(ident: int, seq: int, payload: Buffer = b"", *, src: int,
                        dst: int) -> bytes:
    """An ICMPv6 Echo Request (type 128, RFC 4443 4.1)."""
    return build_icmpv6(ECHO_REQUEST, 0, (ident << 16) | seq, payload, src=src, dst=dst)


def build_echo_reply6(ident: int, seq: int, payload: Buffer = b"", *, src: int,
                      dst: int) -> bytes:
    """An ICMPv6 Echo Reply (type 129, RFC 4443 4.2): identifier, sequence and data of the
    request, unchanged."""
    return build_icmpv6(ECHO_REPLY, 0, (ident << 16) | seq, payload, src=src, dst=dst)


def build_error6(typ: int, code: int, original_packet: Buffer, *, src: int, dst: int,
                 word: int = 0) -> bytes:
    """An ICMPv6 error (type < 128) quoting as much of ``original_packet`` as keeps the
    error within the minimum MTU (RFC 4443 2.4 (c)); ``word``: the MTU of Packet Too Big,
    the pointer of Parameter Problem, else 0 (unused)."""
    if typ >= 128:
        raise ValueError(f"type {typ} is not an ICMPv6 error")
    return build_icmpv6(typ, code, word, bytes(original_packet[:MAX_QUOTE]), src=src, dst=dst)
