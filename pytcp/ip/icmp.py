"""ICMP for IPv4 (RFC 792, RFC 1122 3.2.2): echo replies and errors handed to transports.

This module owns :class:`IcmpLayer` (the part of the host's IP layer that answers echo
requests and hands an ICMP error to the transport it quotes) and reading the original datagram
quoted in an ICMP error (RFC 792: the IP header plus at least the first 64 bits of its
payload) to find which connection or endpoint it is about (RFC 1122 4.2.3.9, RFC 5927). The
quoted datagram is truncated on purpose, so it is read here with its own small parser rather
than with ``parse_ipv4``, which would reject its total length.
"""

from __future__ import annotations

import struct
from collections import Counter
from typing import TYPE_CHECKING, NamedTuple

from pytcp.drops import DropReason
from pytcp.wire.icmp import build_echo_reply, parse_icmp

if TYPE_CHECKING:
    from pytcp.stack import StackConfig

ICMP_ECHO_REPLY = 0
ICMP_DEST_UNREACH = 3
ICMP_SOURCE_QUENCH = 4
ICMP_ECHO_REQUEST = 8
ICMP_TIME_EXCEEDED = 11
ICMP_PARAM_PROBLEM = 12

ERROR_TYPES = frozenset({ICMP_DEST_UNREACH, ICMP_SOURCE_QUENCH, ICMP_TIME_EXCEEDED,
                         ICMP_PARAM_PROBLEM})


class Quoted(NamedTuple):
    """The transport header an ICMP or ICMPv6 error quotes (address-family neutral):
    ``word`` is the 32-bit word after the ports (TCP: the sequence number)."""

    proto: int
    src: int
    dst: int
    sport: int
    dport: int
    word: int


class QuotedTcp(NamedTuple):
    """The part of a quoted TCP/IPv4 datagram an ICMP error lets us read."""

    src: int
    dst: int
    sport: int
    dport: int
    seq: int


def parse_quoted_tcp(original: bytes | bytearray | memoryview) -> QuotedTcp | None:
    """Read addresses, ports and sequence number of the TCP segment quoted in an ICMP error;
    ``None`` if the quote is not an IPv4 TCP datagram with at least 8 bytes of TCP header
    (:func:`parse_quoted` restricted to TCP)."""
    q = parse_quoted(original)
    if q is None or q.proto != 6:
        return None
    return QuotedTcp(q.src, q.dst, q.sport, q.dport, q.word)


def parse_quoted(original: bytes | bytearray | memoryview) -> Quoted | None:
    """Protocol, addresses, ports and the next 32-bit word of the datagram quoted in an ICMP
    error; ``None`` unless it is an IPv4 datagram (not a later fragment) with 8 bytes of
    its transport header."""
    if len(original) < 28:
        return None
    vihl = original[0]
    if vihl >> 4 != 4:
        return None
    ihl = (vihl & 0x0F) * 4
    if ihl < 20 or len(original) < ihl + 8:
        return None
    if struct.unpack_from("!H", original, 6)[0] & 0x1FFF:
        return None
    src, dst = struct.unpack_from("!II", original, 12)
    sport, dport, word = struct.unpack_from("!HHI", original, ihl)
    return Quoted(original[9], src, dst, sport, dport, word)


class IcmpLayer:
    """ICMP of the host's IP layer (a mixin of :class:`pytcp.stack.Stack`)."""

    if TYPE_CHECKING:
        config: StackConfig
        addr: int
        stats: Counter[str]
        _drops: Counter[DropReason]

        def _output_datagram(self, src: int, dst: int, proto: int,
                             payload: bytes | bytearray) -> None: ...

        def _transport_error(self, now: float, q: Quoted, typ: int, code: int,
                             mtu: int | None) -> None: ...

    def _receive_icmp(self, now: float, src: int, dst: int, payload: bytes | memoryview) -> None:
        msg = parse_icmp(payload, self.config.verify_checksums)
        t = msg.type
        if t == ICMP_ECHO_REQUEST:
            # RFC 1122 3.2.2.6: reply with the same identifier, sequence number and data.
            self.stats["icmp_echo"] += 1
            body = build_echo_reply(msg.ident, msg.seq, msg.payload)
            self._output_datagram(dst, src, 1, body)
            return
        if t in ERROR_TYPES:
            q = parse_quoted(msg.original)
            if q is None or q.src != self.addr:
                self._drops[DropReason.ICMP_IGNORED] += 1
                return
            # RFC 1191: "fragmentation needed" carries the next-hop MTU (0 = unknown).
            self._transport_error(now, q, t, msg.code, msg.mtu or None)
            return
        self._drops[DropReason.ICMP_IGNORED] += 1
