"""UDP for the sans-I/O host (RFC 768, RFC 1122 4.1, RFC 8085): endpoints over both families.

This module owns :class:`UdpEndpoint` (one bound port: a bounded receive queue of datagrams,
an optional connected peer, the errors ICMP reported) and :class:`UdpLayer`, the mixin of
:class:`pytcp.stack.Stack` that demultiplexes UDP datagrams to endpoints by destination port,
answers a datagram to a closed port with ICMP/ICMPv6 port unreachable (RFC 1122 4.1.3.1,
RFC 4443 3.1; rate-limited), and sends datagrams (fragmented by the IP layer when larger than
the MTU). Addresses are integers: 32-bit for IPv4, 128-bit for IPv6; an endpoint bound to no
address receives on both families.

As Linux, ICMP errors are reported only to a *connected* endpoint (the quoted datagram's
destination is its peer): the error is queued (``pending_error()``, like ``SO_ERROR``) and a
:class:`DatagramError` event is posted; an unconnected endpoint ignores them (RFC 8085 5.2
leaves the choice; Linux needs IP_RECVERR for them). Bounds: each endpoint's receive queue
holds at most ``rcvbuf`` bytes (a datagram past it is dropped and counted in
``stats["udp_rcvbuf_errors"]``, Linux's RcvbufErrors), 16 errors, and the stack at most
``StackConfig.max_connections`` endpoints.
"""

from __future__ import annotations

import errno
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytcp.drops import DropReason
from pytcp.wire.icmp import build_dest_unreachable
from pytcp.wire.ipv6 import HEADER_LEN as IPV6_HEADER_LEN
from pytcp.wire.udp import PROTO_UDP, build_udp, parse_udp

if TYPE_CHECKING:
    from pytcp.ip.icmp import Quoted
    from pytcp.stack import StackConfig

MAX_ERRORS = 16
DEFAULT_RCVBUF = 256 * 1024
MAX_PAYLOAD4 = 65535 - 20 - 8
MAX_PAYLOAD6 = 65535 - 8

# ICMP (IPv4 semantics) -> errno, as Linux __udp4_lib_err / icmp_err_convert.
_UNREACH_ERRNO = {0: errno.ENETUNREACH, 1: errno.EHOSTUNREACH, 2: errno.ENOPROTOOPT,
                  3: errno.ECONNREFUSED, 4: errno.EMSGSIZE, 13: errno.EHOSTUNREACH}


@dataclass(frozen=True, slots=True)
class DatagramReady:
    """An endpoint's receive queue went from empty to not empty."""


@dataclass(frozen=True, slots=True)
class DatagramError:
    """ICMP reported an error for a connected endpoint (``errno``: ECONNREFUSED...)."""

    errno: int


def is_v6(addr: int) -> bool:
    """Addresses above 32 bits are IPv6 (``::/96`` is never a valid IPv6 peer here)."""
    return addr > 0xFFFFFFFF


class UdpEndpoint:
    """A bound UDP port. ``user_data`` is for the owner (the runtime dispatches events to
    ``user_data.handle_event``)."""

    def __init__(self, stack: UdpLayer, port: int, local_addr: int | None,
                 rcvbuf: int = DEFAULT_RCVBUF) -> None:
        self._stack = stack
        self.port = port
        self.local_addr = local_addr  # None: any address of either family
        self.remote: tuple[int, int] | None = None
        self.rcvbuf = rcvbuf
        self.queue: deque[tuple[bytes, tuple[int, int]]] = deque()
        self.queued_bytes = 0
        self.errors: deque[int] = deque(maxlen=MAX_ERRORS)
        self.user_data: Any = None
        self.closed = False
        self.rx_datagrams = 0
        self.tx_datagrams = 0
        self.drops = 0

    def connect(self, addr: int, port: int) -> None:
        """Fix the peer: only its datagrams are received, ``send`` goes to it, and ICMP
        errors about it are reported (RFC 8085 5.2; Linux connected UDP)."""
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port} out of range 1..65535")
        self.remote = (addr, port)

    def sendto(self, now: float, data: bytes | bytearray | memoryview, addr: int,
               port: int) -> int:
        """Send one datagram; returns its payload length."""
        if self.closed:
            raise OSError(errno.EBADF, "endpoint closed")
        return self._stack._udp_send(now, self, data, addr, port)

    def send(self, now: float, data: bytes | bytearray | memoryview) -> int:
        if self.remote is None:
            raise OSError(errno.EDESTADDRREQ, "not connected")
        return self.sendto(now, data, *self.remote)

    def recvfrom(self) -> tuple[bytes, tuple[int, int]] | None:
        """The oldest queued datagram and its source, or ``None``."""
        if not self.queue:
            return None
        data, src = self.queue.popleft()
        self.queued_bytes -= len(data)
        return data, src

    def pending_error(self) -> int | None:
        """The oldest ICMP-reported errno (cleared), as ``SO_ERROR``; or ``None``."""
        return self.errors.popleft() if self.errors else None

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._stack._udp_unbind(self)
        self.queue.clear()
        self.queued_bytes = 0

    @property
    def family(self) -> str:
        a = self.local_addr
        return "any" if a is None else ("ipv6" if is_v6(a) else "ipv4")

    def __repr__(self) -> str:
        return f"<UdpEndpoint port={self.port} remote={self.remote} queued={len(self.queue)}>"


class UdpLayer:
    """UDP demultiplexing and output (a mixin of :class:`pytcp.stack.Stack`)."""

    if TYPE_CHECKING:
        config: StackConfig
        addr: int
        addr6: int | None
        stats: Counter[str]
        rng: Any
        _drops: Counter[DropReason]
        _events: list[Any]

        def _output_datagram(self, src: int, dst: int, proto: int,
                             payload: bytes | bytearray) -> None: ...

        def _output_ip6(self, dst: int, proto: int, payload: bytes | bytearray,
                        now: float | None = None) -> None: ...

        def _icmp_error_allowed(self, now: float) -> bool: ...

        def _send_icmp6_error(self, now: float, typ: int, code: int,
                              packet: bytes | bytearray | memoryview, word: int = 0) -> None: ...

    _udp: dict[int, UdpEndpoint]

    def _init_udp(self) -> None:
        self._udp = {}

    # ----- application side

    def udp_bind(self, port: int = 0, *, addr: int | None = None,
                 rcvbuf: int = DEFAULT_RCVBUF) -> UdpEndpoint:
        """Bind a UDP port (0: an ephemeral one); ``addr`` None receives on both families."""
        if len(self._udp) >= self.config.max_connections:
            raise OSError(errno.ENOBUFS, "UDP endpoint table full")
        if port == 0:
            lo, hi = self.config.ephemeral_ports
            n = hi - lo + 1
            start = self.rng.randrange(n)
            for i in range(n):
                cand = lo + (start + i) % n
                if cand not in self._udp:
                    port = cand
                    break
            else:
                raise OSError(errno.EADDRINUSE, "no free ephemeral UDP port")
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port} out of range 1..65535")
        if port in self._udp:
            raise OSError(errno.EADDRINUSE, f"UDP port {port} already bound")
        if addr is not None and addr not in (self.addr, self.addr6):
            raise OSError(errno.EADDRNOTAVAIL, "not one of the stack's addresses")
        ep = UdpEndpoint(self, port, addr, rcvbuf)
        self._udp[port] = ep
        return ep

    def udp_endpoints(self) -> list[UdpEndpoint]:
        return list(self._udp.values())

    def _udp_unbind(self, ep: UdpEndpoint) -> None:
        if self._udp.get(ep.port) is ep:
            del self._udp[ep.port]

    def _udp_send(self, now: float, ep: UdpEndpoint, data: bytes | bytearray | memoryview,
                  addr: int, port: int) -> int:
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port} out of range 1..65535")
        v6 = is_v6(addr)
        n = len(data)
        if n > (MAX_PAYLOAD6 if v6 else MAX_PAYLOAD4):
            raise OSError(errno.EMSGSIZE, f"{n} bytes do not fit one UDP datagram")
        if v6:
            src = self.addr6
            if src is None:
                raise OSError(errno.EAFNOSUPPORT, "IPv6 is off")
            if ep.local_addr is not None and ep.local_addr != src:
                raise OSError(errno.EINVAL, "endpoint bound to an IPv4 address")
            dgram = build_udp(src=src, dst=addr, sport=ep.port, dport=port, payload=data,
                              v6=True)
            self._output_ip6(addr, PROTO_UDP, dgram, now)
        else:
            if ep.local_addr is not None and ep.local_addr != self.addr:
                raise OSError(errno.EINVAL, "endpoint bound to an IPv6 address")
            if addr == 0 or addr >> 24 == 127:
                raise OSError(errno.ENETUNREACH, "not a reachable IPv4 address")
            dgram = build_udp(src=self.addr, dst=addr, sport=ep.port, dport=port,
                              payload=data)
            self._output_datagram(self.addr, addr, PROTO_UDP, dgram)
        ep.tx_datagrams += 1
        self.stats["udp_tx"] += 1
        return n

    # ----- network side (the demultiplexer's transport interface)

    def _receive_udp(self, now: float, src: int, dst: int, payload: bytes | memoryview,
                     verify: bool, v6: bool, packet: bytes | bytearray | memoryview) -> None:
        d = parse_udp(payload, src, dst, verify, v6=v6)
        ep = self._udp.get(d.dport)
        if ep is None or (ep.local_addr is not None and ep.local_addr != dst):
            self._drops[DropReason.NO_SOCKET] += 1
            self.stats["udp_no_port"] += 1
            # RFC 1122 4.1.3.1 / RFC 4443 3.1: port unreachable, rate-limited.
            if v6:
                self._send_icmp6_error(now, 1, 4, packet)
            elif self._icmp_error_allowed(now):
                self.stats["icmp_unreachable_sent"] += 1
                ihl = (packet[0] & 0x0F) * 4 if len(packet) else 20
                self._output_datagram(dst, src, 1, build_dest_unreachable(
                    3, bytes(packet[:ihl]) + bytes(payload[:8])))
            return
        if ep.remote is not None and ep.remote != (src, d.sport):
            self._drops[DropReason.NO_SOCKET] += 1  # a connected endpoint takes its peer only
            return
        data = bytes(d.payload)
        if ep.queued_bytes + len(data) > ep.rcvbuf and ep.queue:
            ep.drops += 1
            self.stats["udp_rcvbuf_errors"] += 1
            return
        ep.rx_datagrams += 1
        self.stats["udp_rx"] += 1
        was_empty = not ep.queue
        ep.queue.append((data, (src, d.sport)))
        ep.queued_bytes += len(data)
        if was_empty:
            self._events.append((ep, DatagramReady()))

    def _udp_icmp_error(self, now: float, q: Quoted, typ: int, code: int,
                        mtu: int | None) -> None:
        ep = self._udp.get(q.sport)
        if ep is None or ep.remote != (q.dst, q.dport):
            self._drops[DropReason.ICMP_IGNORED] += 1
            return
        if typ == 3:
            err = _UNREACH_ERRNO.get(code, errno.EHOSTUNREACH)
        elif typ == 11:
            err = errno.EHOSTUNREACH
        elif typ == 12:
            err = errno.EPROTO
        else:
            self._drops[DropReason.ICMP_IGNORED] += 1
            return
        self.stats["udp_icmp_errors"] += 1
        ep.errors.append(err)
        self._events.append((ep, DatagramError(err)))


def udp_max_payload(v6: bool) -> int:
    """The largest UDP payload one datagram carries (65,507 over IPv4, 65,527 over IPv6)."""
    return MAX_PAYLOAD6 if v6 else MAX_PAYLOAD4


__all__ = [
    "IPV6_HEADER_LEN",
    "DatagramError",
    "DatagramReady",
    "UdpEndpoint",
    "UdpLayer",
    "is_v6",
    "udp_max_payload",
]
