"""ICMP for the stack: the demultiplexing of ICMP errors to TCP connections.

This module owns reading the original datagram quoted in an ICMP error (RFC 792: the IP
header plus at least the first 64 bits of its payload) to find which TCP connection it is
about (RFC 1122 4.2.3.9, RFC 5927). The quoted datagram is truncated on purpose, so it is read here with its own small
parser rather than with ``parse_ipv4``, which would reject its total length.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

ICMP_ECHO_REPLY = 0
ICMP_DEST_UNREACH = 3
ICMP_SOURCE_QUENCH = 4
ICMP_ECHO_REQUEST = 8
ICMP_TIME_EXCEEDED = 11
ICMP_PARAM_PROBLEM = 12

ERROR_TYPES = frozenset({ICMP_DEST_UNREACH, ICMP_SOURCE_QUENCH, ICMP_TIME_EXCEEDED,
                         ICMP_PARAM_PROBLEM})


class QuotedTcp(NamedTuple):
    """The part of a quoted TCP/IPv4 datagram an ICMP error lets us read."""

    src: int
    dst: int
    sport: int
    dport: int
    seq: int


def parse_quoted_tcp(original: bytes | bytearray | memoryview) -> QuotedTcp | None:
    """Read addresses, ports and sequence number of the TCP segment quoted in an ICMP error;
    ``None`` if the quote is not an IPv4 TCP datagram with at least 8 bytes of TCP header."""
    if len(original) < 28:
        return None
    vihl = original[0]
    if vihl >> 4 != 4:
        return None
    ihl = (vihl & 0x0F) * 4
    if ihl < 20 or len(original) < ihl + 8 or original[9] != 6:
        return None
    # A non-first fragment quotes no TCP header.
    if struct.unpack_from("!H", original, 6)[0] & 0x1FFF:
        return None
    src, dst = struct.unpack_from("!II", original, 12)
    sport, dport, seq = struct.unpack_from("!HHI", original, ihl)
    return QuotedTcp(src, dst, sport, dport, seq)
