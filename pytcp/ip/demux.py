"""The host's IP layer: version dispatch, the transport demultiplexer, ICMP rate limiting.

This module owns :class:`IpLayer`, the mixin of :class:`pytcp.stack.Stack` that joins the
address families (``pytcp.ip.ipv4`` and ``pytcp.ip.ipv6``; ICMP in ``pytcp.ip.icmp`` and
``pytcp.ip.icmp6``) to the transports. A transport
sits behind two address-family-neutral calls, and adding one touches only this module:

- ``_deliver(now, proto, src, dst, payload, verify, v6, packet) -> bool``: a whole (reassembled)
  payload of protocol ``proto`` from ``src`` to ``dst`` (integers: 32-bit for IPv4, 128-bit
  for IPv6); ``verify`` says whether to check the transport checksum; ``packet`` is the
  datagram as received (for ICMP errors that quote it). False: no transport for ``proto``.
- ``_transport_error(now, quoted, typ, code, mtu)``: an ICMP error quoting one of our
  datagrams (:class:`pytcp.ip.icmp.Quoted`), with IPv4 type/code semantics.

TCP is the stack's own (``Stack._receive_tcp`` / ``Stack._tcp_icmp_error``), UDP is
``pytcp.udp`` (``_receive_udp`` / ``_udp_icmp_error``). TCP over IPv6 gets the addresses'
16-bit word sums where ``parse_tcp`` adds the IPv4 addresses' halves: the same one's-complement
pseudo-header sum (RFC 8200 8.1).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from pytcp.drops import DropReason, MalformedPacket
from pytcp.ip.icmp import IcmpLayer, Quoted
from pytcp.ip.icmp6 import Icmp6Layer
from pytcp.ip.ipv4 import Ipv4Layer
from pytcp.ip.ipv6 import Ipv6Layer
from pytcp.wire.ipv6 import addr_sum
from pytcp.wire.tcp import TcpHeader, parse_tcp

if TYPE_CHECKING:
    from pytcp.ip.fragments import FragmentReassembler
    from pytcp.stack import StackConfig

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17


class IpLayer(Ipv4Layer, Ipv6Layer, IcmpLayer, Icmp6Layer):
    """The IP layer of :class:`pytcp.stack.Stack` (a mixin; the stack holds the state)."""

    if TYPE_CHECKING:
        config: StackConfig
        stats: Counter[str]
        _drops: Counter[DropReason]
        _frag: FragmentReassembler
        _icmp_tokens: float
        _icmp_last: float

        def _receive_tcp(self, now: float, src: int, dst: int, th: TcpHeader,
                         ecn: int = 0, gso_size: int = 0) -> None: ...

        def _tcp_icmp_error(self, now: float, q: Quoted, typ: int, code: int,
                            mtu: int | None) -> None: ...

        def _gro_flush(self, now: float) -> None: ...

        def _receive_udp(self, now: float, src: int, dst: int, payload: bytes | memoryview,
                         verify: bool, v6: bool,
                         packet: bytes | bytearray | memoryview) -> None: ...

        def _udp_icmp_error(self, now: float, q: Quoted, typ: int, code: int,
                            mtu: int | None) -> None: ...

        _gro: object | None

    def _receive_ip(self, now: float, packet: bytes | bytearray | memoryview) -> None:
        """Every datagram the stack's TCP fast path did not take."""
        version = packet[0] >> 4 if len(packet) else 0
        if version == 4:
            self._receive_ip4(now, packet)
            return
        if version == 6:
            self._receive_ip6(now, packet)
            return
        raise MalformedPacket(DropReason.BAD_IP_VERSION,
                              f"version {packet[0] >> 4 if len(packet) else None}")

    def _before_other(self, now: float) -> None:
        """Anything but TCP data is processed after the coalesced (GRO) data before it."""
        if self._gro is not None:
            self._gro_flush(now)

    def _deliver(self, now: float, proto: int, src: int, dst: int, payload: bytes | memoryview,
                 verify: bool, v6: bool, packet: bytes | bytearray | memoryview) -> bool:
        if proto == PROTO_TCP:
            # The IP header's ECN field (RFC 3168 5) goes to the engine with the segment.
            if v6:
                th = parse_tcp(payload, addr_sum(src), addr_sum(dst), verify)
                ecn = (packet[1] >> 4) & 3 if len(packet) > 1 else 0
            else:
                th = parse_tcp(payload, src, dst, verify)
                ecn = packet[1] & 3 if len(packet) > 1 else 0
            self._receive_tcp(now, src, dst, th, ecn)
            return True
        if proto == PROTO_UDP:
            self._receive_udp(now, src, dst, payload, verify, v6, packet)
            return True
        if proto == PROTO_ICMP and not v6:
            self._receive_icmp(now, src, dst, payload)
            return True
        return False

    def _transport_error(self, now: float, q: Quoted, typ: int, code: int,
                         mtu: int | None) -> None:
        if q.proto == PROTO_TCP:
            self._tcp_icmp_error(now, q, typ, code, mtu)
            return
        if q.proto == PROTO_UDP:
            self._udp_icmp_error(now, q, typ, code, mtu)
            return
        self._drops[DropReason.ICMP_IGNORED] += 1

    def _icmp_error_allowed(self, now: float) -> bool:
        """Token bucket: at most ``icmp_errors_per_sec`` ICMP errors a second (burst as much)."""
        rate = self.config.icmp_errors_per_sec
        if rate <= 0:
            return False
        self._icmp_tokens = min(float(rate), self._icmp_tokens + (now - self._icmp_last) * rate)
        self._icmp_last = now
        if self._icmp_tokens >= 1.0:
            self._icmp_tokens -= 1.0
            return True
        return False

    def _ip_deadline(self) -> float | None:
        """The earliest reassembly timeout, or None."""
        a = self._frag.next_deadline()
        b = self._frag6.next_deadline()
        return a if b is None or (a is not None and a < b) else b

    def _ip_timers(self, now: float) -> None:
        """Reassembly timeouts (and the Time Exceeded messages they call for)."""
        self._frag.expire(now)
        if self._frag.timed_out_quotes:
            self._send_frag_time_exceeded(now)
        self._frag6.expire(now)
        if self._frag6.timed_out_quotes:
            self._send_frag6_time_exceeded(now)
