"""ICMPv6 of the host's IP layer (RFC 4443): echo, errors sent and received.

This module owns :class:`Icmp6Layer`, a mixin of :class:`pytcp.stack.Stack`:

- Echo Request is answered with an Echo Reply carrying the same identifier, sequence and data
  (RFC 4443 4.2);
- neighbour discovery and MLD messages are counted and ignored (``pytcp.ip.ipv6`` takes those
  to multicast groups before they get here);
- an error quoting one of our packets goes to the transport it quotes with the IPv4 type and
  code of the same meaning (RFC 4443 3.1 codes as Linux ``icmpv6_err_convert``: port
  unreachable is a hard error, the rest soft); Packet Too Big lowers the path MTU (RFC 8201)
  and reaches TCP as "fragmentation needed" with the MTU an IPv4 path would need for the same
  segment size (the IPv6 MTU minus 20);
- errors we send obey RFC 4443 2.4: never about an ICMPv6 error, a multicast destination or
  a packet from an unspecified/multicast source (e), rate-limited with IPv4's token bucket (f),
  the invoking packet quoted up to the minimum MTU (c).
"""

from __future__ import annotations

import struct
from collections import Counter
from typing import TYPE_CHECKING

from pytcp.drops import DropReason, MalformedPacket
from pytcp.ip.icmp import Quoted
from pytcp.wire.icmpv6 import (
    DEST_UNREACHABLE,
    ECHO_REQUEST,
    ND_MLD_TYPES,
    PACKET_TOO_BIG,
    PARAMETER_PROBLEM,
    TIME_EXCEEDED,
    build_echo_reply6,
    build_error6,
    parse_icmpv6,
)
from pytcp.wire.ipv6 import HEADER_LEN, NH_FRAGMENT, NH_ICMPV6, walk_extensions

if TYPE_CHECKING:
    from pytcp.stack import StackConfig

# ICMPv6 Destination Unreachable code -> the IPv4 (type 3) code of the same meaning.
_UNREACH_TO_V4 = {0: 0, 1: 13, 2: 0, 3: 1, 4: 3, 5: 13, 6: 13}


def parse_quoted6(original: bytes | bytearray | memoryview) -> Quoted | None:
    """The transport header quoted in an ICMPv6 error (after the IPv6 header and any
    extension headers); ``None`` if it is not there (or the quote is a later fragment)."""
    n = len(original)
    if n < HEADER_LEN + 8 or original[0] >> 4 != 6:
        return None
    mv = memoryview(bytes(original))
    src = int.from_bytes(mv[8:24], "big")
    dst = int.from_bytes(mv[24:40], "big")
    try:
        nh, off, _ptr = walk_extensions(mv, HEADER_LEN, mv[6], dst=dst, first=True)
    except MalformedPacket:
        return None
    if nh == NH_FRAGMENT:
        if off + 8 > n or struct.unpack_from("!H", mv, off + 2)[0] & 0xFFF8:
            return None
        nh = mv[off]
        off += 8
    if off + 8 > n:
        return None
    sport, dport, word = struct.unpack_from("!HHI", mv, off)
    return Quoted(nh, src, dst, sport, dport, word)


class Icmp6Layer:
    """ICMPv6 (a mixin of :class:`pytcp.stack.Stack`)."""

    if TYPE_CHECKING:
        config: StackConfig
        addr6: int | None
        stats: Counter[str]
        _drops: Counter[DropReason]

        def _output_ip6(self, dst: int, proto: int, payload: bytes | bytearray,
                        now: float | None = None) -> None: ...

        def _icmp_error_allowed(self, now: float) -> bool: ...

        def _learn_pmtu6(self, now: float, dst: int, mtu: int) -> int: ...

        def _transport_error(self, now: float, q: Quoted, typ: int, code: int,
                             mtu: int | None) -> None: ...

    def _receive_icmp6(self, now: float, src: int, dst: int, payload: bytes | memoryview,
                       packet: bytes | bytearray | memoryview) -> None:
        msg = parse_icmpv6(payload, src, dst, self.config.verify_checksums)
        t = msg.type
        if t == ECHO_REQUEST:
            self.stats["icmp6_echo"] += 1
            self._output_ip6(src, NH_ICMPV6,
                             build_echo_reply6(msg.ident, msg.seq, msg.payload, src=dst, dst=src),
                             now)
            return
        if t in ND_MLD_TYPES:
            self.stats["ipv6_nd_mld_ignored"] += 1
            return
        if msg.is_error:
            q = parse_quoted6(msg.original)
            if q is None or q.src != self.addr6:
                self._drops[DropReason.ICMP_IGNORED] += 1
                return
            self.stats["icmp6_errors_received"] += 1
            if t == PACKET_TOO_BIG:
                mtu = self._learn_pmtu6(now, q.dst, msg.mtu)
                self._transport_error(now, q, 3, 4, mtu - 20)
            elif t == DEST_UNREACHABLE:
                self._transport_error(now, q, 3, _UNREACH_TO_V4.get(msg.code, 0), None)
            elif t == TIME_EXCEEDED:
                self._transport_error(now, q, 11, msg.code, None)
            elif t == PARAMETER_PROBLEM:
                self._transport_error(now, q, 12, 0, None)
            else:
                self._drops[DropReason.ICMP_IGNORED] += 1
            return
        self._drops[DropReason.ICMP_IGNORED] += 1

    def _send_icmp6_error(self, now: float, typ: int, code: int,
                          packet: bytes | bytearray | memoryview, word: int = 0) -> None:
        """An ICMPv6 error about ``packet`` (a whole received IPv6 packet), if RFC 4443 2.4
        allows one and the rate limit has a token."""
        me = self.addr6
        if me is None or len(packet) < HEADER_LEN:
            return
        src = int.from_bytes(packet[8:24], "big")
        dst = int.from_bytes(packet[24:40], "big")
        if src <= 1 or src >> 120 == 0xFF or dst >> 120 == 0xFF or dst != me:
            return  # RFC 4443 2.4 (e)
        q = parse_quoted6(packet)
        if q is not None and q.proto == NH_ICMPV6 and (q.sport >> 8) < 128:
            return  # RFC 4443 2.4 (e.1): never about an ICMPv6 error message
        if not self._icmp_error_allowed(now):
            self.stats["icmp6_errors_rate_limited"] += 1
            return
        self.stats["icmp6_errors_sent"] += 1
        self._output_ip6(src, NH_ICMPV6, build_error6(typ, code, packet, src=me, dst=src,
                                                      word=word), now)
