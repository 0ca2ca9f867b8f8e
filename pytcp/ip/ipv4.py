"""IPv4 of the host's IP layer (RFC 791, RFC 1122 3): the general receive path and output.

This module owns :class:`Ipv4Layer`, a mixin of :class:`pytcp.stack.Stack`: validating a
received IPv4 datagram (destination ours, source a unicast host: RFC 1122 3.2.1.3, MUST-57,
MUST-63), reassembling fragments (``pytcp.ip.fragments``), handing the payload to the
transport demultiplexer (``pytcp.ip.demux``), answering an unknown protocol with Protocol
Unreachable, and sending non-TCP datagrams (fragmented to the MTU). The stack's receive fast
path (a whole TCP datagram, ``parse_ipv4_tcp``) stays in ``pytcp.stack``; everything else
comes here.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from pytcp.drops import DropReason
from pytcp.ip.fragments import FragmentReassembler, fragment_datagram
from pytcp.wire.icmp import build_dest_unreachable, build_icmp
from pytcp.wire.ipv4 import parse_ipv4
from pytcp.wire.offload import RxPacket

if TYPE_CHECKING:
    from pytcp.stack import StackConfig

PROTO_ICMP = 1
PROTO_TCP = 6


def martian(a: int) -> bool:
    """0.0.0.0/8, 127/8 and 224/3 (multicast, class E, limited broadcast) are never a valid
    unicast host (RFC 1122 3.2.1.3)."""
    top = a >> 24
    return top == 0 or top == 127 or top >= 224


class Ipv4Layer:
    """IPv4 receive (general path) and output (a mixin of :class:`pytcp.stack.Stack`)."""

    if TYPE_CHECKING:
        config: StackConfig
        addr: int
        stats: Counter[str]
        _drops: Counter[DropReason]
        _bcast: int | None
        _frag: FragmentReassembler
        _ident: int

        def _queue_packet(self, pkt: bytes | bytearray) -> None: ...

        def _icmp_error_allowed(self, now: float) -> bool: ...

        def _before_other(self, now: float) -> None: ...

        def _deliver(self, now: float, proto: int, src: int, dst: int,
                     payload: bytes | memoryview, verify: bool, v6: bool,
                     packet: bytes | bytearray | memoryview) -> bool: ...

    def _receive_ip4(self, now: float, packet: bytes | bytearray | memoryview) -> None:
        ip = parse_ipv4(packet, self.config.verify_checksums)
        src = ip.src
        dst = ip.dst
        if dst != self.addr:
            if dst == 0xFFFFFFFF or dst == self._bcast or (dst >> 28) == 14:
                # MUST-57: SYNs (and anything else) to broadcast/multicast are dropped silently.
                self._drops[DropReason.BROADCAST_DEST if ip.proto == PROTO_TCP
                            else DropReason.NOT_FOR_US] += 1
            else:
                self._drops[DropReason.NOT_FOR_US] += 1
            return
        # MUST-63 / RFC 1122 3.2.1.3: never accept a broadcast, multicast or zero source.
        if martian(src) or src == self._bcast or src == self.addr:
            self._drops[DropReason.BAD_SOURCE] += 1
            return
        payload: bytes | memoryview = ip.payload
        proto = ip.proto
        fragment = ip.mf or ip.frag_offset
        if proto != PROTO_TCP or fragment:
            self._before_other(now)  # (coalesced TCP data before it is processed first)
        if fragment:
            whole = self._frag.add(now, (src, dst, ip.proto, ip.ident), ip.frag_offset, ip.mf,
                                   payload, ip.header)
            if self._frag.timed_out_quotes:
                self._send_frag_time_exceeded(now)
            if whole is None:
                return
            payload = whole
            self.stats["reassembled"] += 1
        # A checksum the link's kernel vouched for (virtio-net NEEDS_CSUM/DATA_VALID) is
        # trusted, not recomputed; a reassembled datagram is always checked.
        verify = self.config.verify_checksums and (type(packet) is not RxPacket
                                                   or payload is not ip.payload)
        if self._deliver(now, proto, src, dst, payload, verify, False, packet):
            return
        self._drops[DropReason.UNSUPPORTED_PROTOCOL] += 1
        # RFC 1122 3.2.2.1: SHOULD send Protocol Unreachable (code 2), rate-limited
        # (RFC 1812 4.3.2.8); only for a whole datagram, whose header we still have.
        if not fragment and self._icmp_error_allowed(now):
            self.stats["icmp_unreachable_sent"] += 1
            self._output_datagram(dst, src, PROTO_ICMP,
                                  build_dest_unreachable(2, bytes(ip.header) +
                                                         bytes(payload[:8])))

    def _send_frag_time_exceeded(self, now: float) -> None:
        """RFC 1122 3.3.2 / RFC 792: Time Exceeded, code 1 (fragment reassembly time exceeded)
        for each timed-out datagram whose first fragment had arrived; rate-limited."""
        quotes = self._frag.timed_out_quotes
        self._frag.timed_out_quotes = []
        for quote in quotes:
            src = int.from_bytes(quote[12:16], "big")
            if self._icmp_error_allowed(now):
                self.stats["icmp_time_exceeded_sent"] += 1
                self._output_datagram(self.addr, src, PROTO_ICMP,
                                      build_icmp(11, 1, 0, 0, quote))

    def _output_datagram(self, src: int, dst: int, proto: int,
                         payload: bytes | bytearray) -> None:
        """Send a non-TCP IPv4 datagram, fragmented if it does not fit the MTU."""
        self._ident = (self._ident + 1) & 0xFFFF
        for pkt in fragment_datagram(src=src, dst=dst, proto=proto, payload=payload,
                                     ident=self._ident, ttl=self.config.ttl,
                                     mtu=self.config.mtu):
            self._queue_packet(pkt)
