"""IPv6 of the host's IP layer (RFC 8200): receive, reassembly, output, path MTU.

This module owns :class:`Ipv6Layer`, a mixin of :class:`pytcp.stack.Stack`:

- receive: ``parse_ipv6`` walks the extension headers (limits, Routing header refused,
  Parameter Problem answered: ``pytcp.wire.ipv6``); the kernel's neighbour discovery and MLD
  on the TUN (to multicast groups, from ``::`` or link-local sources) are counted in
  ``stats["ipv6_nd_mld_ignored"]`` and ignored quietly, not as drops; anything else must be
  for ``addr6`` from a unicast source (RFC 4291 2.7: never a multicast source);
- fragments (RFC 8200 4.5) go through a reassembler of their own (key: source, destination,
  identification), with the same bounds as IPv4; an overlap drops the whole datagram (RFC
  5722); an atomic fragment (offset 0, M=0) is processed at once, outside reassembly (RFC
  6946); the reassembled packet is the first fragment's unfragmentable part with the Fragment
  header's Next Header put in its place, parsed again (RFC 8200 4.5 reassembly);
- an unknown Next Header is answered by Parameter Problem code 1 (RFC 8200 4);
- output of non-TCP packets: fragmented with a Fragment header when larger than the path MTU
  (RFC 8200 5: sources fragment, to no less than 1280), the path MTU learned from Packet Too
  Big (RFC 8201: lowered only, never under 1280; an entry ages out after 10 minutes).
"""

from __future__ import annotations

import random
from collections import Counter, OrderedDict
from typing import TYPE_CHECKING

from pytcp.drops import DropCounter, DropReason, MalformedPacket
from pytcp.ip.fragments import FragmentReassembler
from pytcp.wire.icmpv6 import (
    ND_MLD_TYPES,
    PARAM_NEXT_HEADER,
    PARAMETER_PROBLEM,
    TIME_EXCEEDED,
    TIME_REASSEMBLY,
)
from pytcp.wire.ipv6 import (
    HEADER_LEN,
    MIN_MTU,
    NH_FRAGMENT,
    NH_ICMPV6,
    NH_NONE,
    Ipv6ParamProblem,
    build_fragment_header,
    build_ipv6,
    parse_ipv6,
)
from pytcp.wire.offload import RxPacket

if TYPE_CHECKING:
    from pytcp.stack import StackConfig

PMTU_TIMEOUT = 600.0  # RFC 8201 4: at least 5 minutes (Linux mtu_expires 600 s)
PMTU_MAX_ENTRIES = 1024


def parse_addr6(text: str | int) -> int:
    """A 128-bit integer from an IPv6 address (text or integer)."""
    import ipaddress

    if isinstance(text, int):
        if not 0 <= text < 1 << 128:
            raise ValueError(f"IPv6 address {text} out of range")
        return text
    return int(ipaddress.IPv6Address(text))


def bad_source6(a: int) -> bool:
    """Unspecified, loopback or multicast: never the source of a packet to us (RFC 4291)."""
    return a <= 1 or a >> 120 == 0xFF


class Ipv6Layer:
    """IPv6 receive, reassembly and output (a mixin of :class:`pytcp.stack.Stack`)."""

    if TYPE_CHECKING:
        config: StackConfig
        stats: Counter[str]
        rng: random.Random
        _drops: Counter[DropReason]

        def _queue_packet(self, pkt: bytes | bytearray) -> None: ...

        def _before_other(self, now: float) -> None: ...

        def _deliver(self, now: float, proto: int, src: int, dst: int,
                     payload: bytes | memoryview, verify: bool, v6: bool,
                     packet: bytes | bytearray | memoryview) -> bool: ...

        def _receive_icmp6(self, now: float, src: int, dst: int,
                           payload: bytes | memoryview,
                           packet: bytes | bytearray | memoryview) -> None: ...

        def _send_icmp6_error(self, now: float, typ: int, code: int,
                              packet: bytes | bytearray | memoryview, word: int = 0) -> None: ...

    addr6: int | None = None

    def _init_ip6(self, addr6: str | int | None, now: float) -> None:
        cfg = self.config
        self.addr6 = None if addr6 is None else parse_addr6(addr6)
        if self.addr6 is not None and (bad_source6(self.addr6) or self.addr6 >> 64 == 0):
            raise ValueError(f"{addr6} is not a unicast IPv6 host address")
        self._frag6 = FragmentReassembler(timeout=cfg.frag_timeout, max_bytes=cfg.frag_max_bytes,
                                          max_datagrams=cfg.frag_max_datagrams,
                                          max_fragments=cfg.frag_max_fragments)
        self._frag6.drops = DropCounter()
        self._ident6 = self.rng.randrange(1 << 32)
        # Path MTU per destination (RFC 8201): dst -> (mtu, expiry), oldest first.
        self._pmtu6: OrderedDict[int, tuple[int, float]] = OrderedDict()

    @property
    def mss6(self) -> int:
        """The MSS announced over IPv6: MTU - 60 (RFC 9293 3.7.1, MUST-15)."""
        return self.config.mtu - 60

    def path_mtu6(self, dst: int, now: float | None = None) -> int:
        """The path MTU to ``dst``: the link MTU unless a Packet Too Big lowered it."""
        e = self._pmtu6.get(dst)
        if e is None:
            return self.config.mtu
        if now is not None and e[1] <= now:
            del self._pmtu6[dst]
            return self.config.mtu
        return e[0]

    def _learn_pmtu6(self, now: float, dst: int, mtu: int) -> int:
        """RFC 8201 4: a Packet Too Big lowers the path MTU (never under 1280, never up)."""
        mtu = max(MIN_MTU, min(mtu, self.config.mtu))
        if mtu < self.path_mtu6(dst, now):
            self._pmtu6[dst] = (mtu, now + PMTU_TIMEOUT)
            self._pmtu6.move_to_end(dst)
            while len(self._pmtu6) > PMTU_MAX_ENTRIES:
                self._pmtu6.popitem(last=False)
            self.stats["pmtu6_lowered"] += 1
        return self.path_mtu6(dst, now)

    def _receive_ip6(self, now: float, packet: bytes | bytearray | memoryview) -> None:
        me = self.addr6
        if me is None:
            # IPv6 off: counted IPV6_IGNORED when well-formed (Stack._malformed), else
            # BAD_IP_VERSION.
            raise MalformedPacket(DropReason.BAD_IP_VERSION, "IPv6 is off")
        try:
            p = parse_ipv6(packet)
        except Ipv6ParamProblem as e:
            if e.send and len(packet) >= HEADER_LEN and int.from_bytes(
                    packet[24:40], "big") == me and not bad_source6(
                    int.from_bytes(packet[8:24], "big")):
                self._send_icmp6_error(now, PARAMETER_PROBLEM, e.code, packet, e.pointer)
            raise
        src = p.src
        dst = p.dst
        if (p.proto == NH_ICMPV6 and len(p.payload) >= 1 and p.payload[0] in ND_MLD_TYPES
                and not p.is_fragment):
            # The kernel's neighbour discovery (RFC 4861) and MLD (RFC 3810): pytcp sits on a
            # point-to-point TUN with no link-layer addresses; counted, ignored quietly.
            self.stats["ipv6_nd_mld_ignored"] += 1
            return
        if dst != me:
            self._drops[DropReason.NOT_FOR_US] += 1
            return
        if bad_source6(src) or src == me:
            self._drops[DropReason.BAD_SOURCE] += 1
            return
        self._before_other(now)
        payload: bytes | memoryview = p.payload
        proto = p.proto
        whole_packet: bytes | bytearray | memoryview = packet
        if p.is_fragment:
            frag = self._frag6
            data = frag.add(now, (src, dst, 256, p.frag_ident), p.frag_offset, p.frag_more,
                            payload, bytes(packet[:len(p.unfrag) + 8]))
            if frag.timed_out_quotes:
                self._send_frag6_time_exceeded(now)
            if data is None:
                return
            self.stats["reassembled6"] += 1
            # RFC 8200 4.5: the first fragment's unfragmentable part, its last Next Header
            # the Fragment header's, then the fragmentable data; parsed again.
            head = bytearray(p.unfrag)
            nh_at = p.nh_ptr if len(p.unfrag) > HEADER_LEN else 6
            head[nh_at] = proto
            if len(head) - HEADER_LEN + len(data) > 0xFFFF:
                self._drops[DropReason.FRAGMENT_INVALID] += 1
                return
            head[4:6] = (len(head) - HEADER_LEN + len(data)).to_bytes(2, "big")
            whole_packet = bytes(head) + data
            p = parse_ipv6(whole_packet)
            if p.has_frag:  # a second Fragment header
                self._drops[DropReason.FRAGMENT_INVALID] += 1
                return
            payload = p.payload
            proto = p.proto
        elif p.has_frag:
            self.stats["atomic_fragments"] += 1  # RFC 6946: processed in isolation
        if proto == NH_ICMPV6:
            self._receive_icmp6(now, src, dst, payload, whole_packet)
            return
        if proto == NH_NONE:
            self.stats["ipv6_no_next_header"] += 1  # RFC 8200 4.7: nothing follows
            return
        verify = self.config.verify_checksums and (type(packet) is not RxPacket
                                                   or whole_packet is not packet)
        if self._deliver(now, proto, src, dst, payload, verify, True, whole_packet):
            return
        self._drops[DropReason.UNSUPPORTED_PROTOCOL] += 1
        # RFC 8200 4: an unrecognized Next Header: Parameter Problem code 1.
        self._send_icmp6_error(now, PARAMETER_PROBLEM, PARAM_NEXT_HEADER, whole_packet,
                               p.nh_ptr if p.ext_len else 6)

    def _send_frag6_time_exceeded(self, now: float) -> None:
        """RFC 8200 4.5: Time Exceeded code 1 when the first fragment had arrived."""
        quotes = self._frag6.timed_out_quotes
        self._frag6.timed_out_quotes = []
        for quote in quotes:
            self._send_icmp6_error(now, TIME_EXCEEDED, TIME_REASSEMBLY, quote)

    def _output_ip6(self, dst: int, proto: int, payload: bytes | bytearray,
                    now: float | None = None) -> None:
        """Send a non-TCP IPv6 packet from ``addr6``, fragmented to the path MTU."""
        src = self.addr6
        assert src is not None
        hop = self.config.ttl
        mtu = self.path_mtu6(dst, now)
        if HEADER_LEN + len(payload) <= mtu:
            self._queue_packet(build_ipv6(src=src, dst=dst, next_header=proto,
                                          payload=payload, hop_limit=hop))
            return
        self._ident6 = ident = (self._ident6 + 1) & 0xFFFFFFFF
        self.stats["fragmented6"] += 1
        step = (mtu - HEADER_LEN - 8) & ~7
        mv = memoryview(payload)
        n = len(mv)
        off = 0
        while off < n:
            chunk = mv[off:off + step]
            more = off + len(chunk) < n
            fh = build_fragment_header(proto, off, more, ident)
            self._queue_packet(build_ipv6(src=src, dst=dst, next_header=NH_FRAGMENT,
                                          payload=fh + bytes(chunk), hop_limit=hop))
            off += len(chunk)
