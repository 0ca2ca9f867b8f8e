"""ICMP messages (RFC 792): parse any message, build echo request/reply and destination
unreachable.

This module owns the ICMP wire format only; answering pings and matching ICMP errors to
connections is the stack's job. The functions here work on the ICMP message (the IPv4
payload), not on the enclosing datagram.

``parse_icmp`` raises only :class:`pytcp.drops.MalformedPacket`: ``BAD_ICMP`` for a message
shorter than the 8-byte ICMP header, ``BAD_CHECKSUM`` for a checksum mismatch.
"""

from __future__ import annotations

import struct

from pytcp import native
from pytcp.drops import DropReason, MalformedPacket

Buffer = bytes | bytearray | memoryview

# Types (RFC 792, RFC 1122 3.2.2).
ECHO_REPLY = 0
DEST_UNREACHABLE = 3
SOURCE_QUENCH = 4
REDIRECT = 5
ECHO_REQUEST = 8
TIME_EXCEEDED = 11
PARAMETER_PROBLEM = 12

# Destination unreachable codes (RFC 792, RFC 1122 3.2.2.1, RFC 1191).
UNREACH_NET = 0
UNREACH_HOST = 1
UNREACH_PROTOCOL = 2
UNREACH_PORT = 3
UNREACH_FRAG_NEEDED = 4  # "fragmentation needed and DF set"; carries the next-hop MTU
UNREACH_SOURCE_ROUTE = 5
UNREACH_ADMIN = 13

# Messages that quote the datagram that caused them (RFC 792).
ERROR_TYPES = frozenset({DEST_UNREACHABLE, SOURCE_QUENCH, REDIRECT, TIME_EXCEEDED,
                         PARAMETER_PROBLEM})

HEADER_LEN = 8

_HDR = struct.Struct("!BBHHH")  # type, code, checksum, identifier/unused, sequence/MTU
_unpack_hdr = _HDR.unpack_from
_pack_hdr = _HDR.pack_into
_pack_csum = struct.Struct("!H").pack_into

_EMPTY = memoryview(b"")


class IcmpMessage:
    """A parsed ICMP message; ``payload`` and ``original`` are views into the input buffer.

    ``ident``/``seq`` are the second header word's two halves (echo identifier and sequence;
    for other types whatever the sender put there). ``payload`` is everything after the 8-byte
    header; for error messages ``original`` is the same bytes (the quoted IP header plus at
    least 8 bytes of its payload, RFC 792) and is empty for other types. ``mtu`` is the
    next-hop MTU of a "fragmentation needed" message (RFC 1191 4), else 0.
    """

    __slots__ = ("checksum", "code", "ident", "mtu", "original", "payload", "seq", "type")

    type: int
    code: int
    checksum: int
    ident: int
    seq: int
    mtu: int
    payload: memoryview
    original: memoryview

    @property
    def is_error(self) -> bool:
        return self.type in ERROR_TYPES

    def __repr__(self) -> str:
        return (f"IcmpMessage(type={self.type} code={self.code} ident={self.ident} "
                f"seq={self.seq} mtu={self.mtu} len={len(self.payload)})")


def parse_icmp(buf: Buffer, verify_checksum: bool = True) -> IcmpMessage:
    """Parse an ICMP message (the IPv4 payload)."""
    n = len(buf)
    if n < HEADER_LEN:
        raise MalformedPacket(DropReason.BAD_ICMP, f"{n} bytes, ICMP header needs 8")
    mv = buf if type(buf) is memoryview else memoryview(buf)
    typ, code, csum, ident, seq = _unpack_hdr(mv, 0)
    # RFC 792: the checksum covers the whole ICMP message; the sum over it is 0xFFFF (-0).
    if verify_checksum and native.csum_partial(mv) != 0xFFFF:
        raise MalformedPacket(DropReason.BAD_CHECKSUM, f"ICMP checksum {csum:#06x}")
    m = IcmpMessage()
    m.type = typ
    m.code = code
    m.checksum = csum
    m.ident = ident
    m.seq = seq
    m.mtu = seq if typ == DEST_UNREACHABLE and code == UNREACH_FRAG_NEEDED else 0
    m.payload = mv[HEADER_LEN:]
    m.original = m.payload if typ in ERROR_TYPES else _EMPTY
    return m


def build_icmp(typ: int, code: int, word1: int, word2: int, payload: Buffer = b"") -> bytes:
    """An ICMP message with a checksum: 8-byte header (type, code, checksum, two 16-bit
    words) and ``payload``."""
    msg = bytearray(HEADER_LEN + len(payload))
    try:
        _pack_hdr(msg, 0, typ, code, 0, word1, word2)
    except struct.error as err:
        raise ValueError(f"ICMP header field out of range: {err}") from None
    msg[HEADER_LEN:] = payload
    _pack_csum(msg, 2, native.checksum(msg))
    return bytes(msg)


def build_echo_request(ident: int, seq: int, payload: Buffer = b"") -> bytes:
    """An ICMP echo request message (type 8)."""
    return build_icmp(ECHO_REQUEST, 0, ident, seq, payload)


def build_echo_reply(ident: int, seq: int, payload: Buffer = b"") -> bytes:
    """An ICMP echo reply message (type 0) echoing a request's identifier, sequence and data
    (RFC 792; RFC 1122 3.2.2.6: the data is returned unchanged)."""
    return build_icmp(ECHO_REPLY, 0, ident, seq, payload)


def build_dest_unreachable(code: int, original_ip_packet: Buffer, mtu: int = 0) -> bytes:
    """An ICMP destination unreachable message (type 3) quoting ``original_ip_packet``: its IP
    header (IHL honoured) plus the first 8 bytes of its payload (RFC 792). ``mtu`` fills the
    next-hop MTU field for code 4 (RFC 1191 4)."""
    orig = original_ip_packet
    hlen = (orig[0] & 0x0F) * 4 if len(orig) else 0
    quote = orig[:min(len(orig), max(hlen, 20) + 8)]
    return build_icmp(DEST_UNREACHABLE, code, 0, mtu if code == UNREACH_FRAG_NEEDED else 0,
                      quote)
