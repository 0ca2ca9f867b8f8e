"""The sans-I/O host: IP datagrams in, IP datagrams out, TCP connections in between.

This module owns :class:`Stack`: its IP layer (the ``pytcp.ip`` mixins) validates and
demultiplexes incoming packets (fragment reassembly, ICMP echo, ICMP errors handed to the
connection they quote); this module takes whole TCP/IPv4 datagrams on a fast path, finds the TCP connection for a segment by
its 4-tuple (or creates one for a SYN to a listener), answers segments for no connection with
the RST of RFC 9293 3.10.7.1, turns the engine's output segments back into IPv4 packets, and
keeps a timer heap over all connections. It never reads a clock (``now`` is an argument),
never touches a socket, and no exception from network input escapes ``receive_packet``: every
discarded packet is counted in ``drops`` under a :class:`~pytcp.drops.DropReason`.
"""

from __future__ import annotations

import errno
import hashlib
import heapq
import ipaddress
import logging
import os
import random
import struct
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

from pytcp import native
from pytcp.drops import DropCounter, DropReason, MalformedPacket
from pytcp.ip.demux import IpLayer
from pytcp.ip.fragments import FragmentReassembler
from pytcp.ip.icmp import Quoted
from pytcp.stack_history import CLOSED_KEPT, MAX_CONNECTIONS, ConnHistory
from pytcp.tcp.events import Closed, Connected, Event
from pytcp.tcp.md5 import MAX_KEY_LEN as MD5_MAX_KEY_LEN
from pytcp.tcp.md5 import Md5Keys
from pytcp.tcp.md5 import inbound_verdict as md5_inbound_verdict
from pytcp.tcp.rcvwnd import initial_window
from pytcp.tcp.reasons import TxReason
from pytcp.tcp.segment import Segment
from pytcp.tcp.seq import seq_add, seq_between, seq_le
from pytcp.tcp.state import State
from pytcp.tcp.syncookie import SynCookies, cookie_ts_offset, decode_tsecr, encode_tsval
from pytcp.udp import UdpLayer
from pytcp.wire.ipv6 import addr_sum
from pytcp.wire.offload import RxPacket
from pytcp.wire.tcp import (
    ACK,
    CWR,
    FIN,
    MD5_ZERO,
    NO_OPTIONS,
    PSH,
    RST,
    SYN,
    URG,
    TcpHeader,
    TcpOptions,
    encode_options,
    parse_ipv4_tcp,
    sign_packet,
)

if TYPE_CHECKING:
    from pytcp.tcp.config import TcpConfig
    from pytcp.tcp.connection import Connection
    from pytcp.tcp.timewait import TimeWait

log = logging.getLogger(__name__)

PROTO_ICMP = 1
PROTO_TCP = 6

_IPV4_TCP_HDR = struct.Struct("!BBHHHBBH4s4sHH")  # IPv4 header (20) + TCP ports (4)
_IPV6_TCP_HDR = struct.Struct("!IHBB16s16sHH")  # IPv6 header (40) + TCP ports (4)
_IP_LEN_ID = struct.Struct("!HH")
_U16 = struct.Struct("!H")
_TCP_REST = struct.Struct("!IIBBHHH")  # seq ack offset flags window checksum urg, at TCP+4


@dataclass(frozen=True, slots=True)
class StackConfig:
    """Host-level settings (the TCP engine's are in :class:`pytcp.tcp.config.TcpConfig`)."""

    mtu: int = 1500
    gso: bool = False  # False: cut super-segments to gso_size before output
    ttl: int = 64
    frag_timeout: float = 30.0  # RFC 791 / Linux ipfrag_time
    frag_max_bytes: int = 4 * 1024 * 1024  # Linux ipfrag_high_thresh
    frag_max_datagrams: int = 256
    frag_max_fragments: int = 128  # per datagram
    max_connections: int = 65536  # live connections (TIME-WAIT entries are not counted)
    max_time_wait: int = 65536  # compact TIME-WAIT entries (Linux tcp_max_tw_buckets)
    # Out-of-order plus unread bytes of all connections together (Linux tcp_mem); past it
    # out-of-order queues are pruned, then arriving data is dropped (pytcp.tcp.memory).
    recv_memory_limit: int = 64 * 1024 * 1024
    backlog: int = 128  # default for listen(): the accept queue (established, not accepted)
    syn_backlog: int = 256  # default SYN-queue limit (SYN-RECEIVED entries) of a listener
    # Linux tcp_syncookies: 0 = never (a SYN beyond the SYN queue is dropped), 1 = when the
    # SYN queue is full (RFC 4987 3.6), 2 = for every SYN.
    syncookies: int = 1
    ephemeral_ports: tuple[int, int] = (32768, 60999)  # Linux ip_local_port_range
    verify_checksums: bool = True
    prefixlen: int | None = None  # our subnet, to recognise its directed broadcast
    icmp_errors_per_sec: int = 100  # rate limit of the ICMP errors we send (0 = none)
    gro: bool = True  # coalesce in-order data segments of one flow within a read batch

    def __post_init__(self) -> None:
        if not 68 <= self.mtu <= 65535:
            raise ValueError(f"mtu {self.mtu}: IPv4 needs 68..65535")
        if not 1 <= self.ttl <= 255:
            raise ValueError(f"ttl {self.ttl}: must be 1..255")
        lo, hi = self.ephemeral_ports
        if not 1 <= lo <= hi <= 65535:
            raise ValueError(f"ephemeral_ports {self.ephemeral_ports}: need 1 <= lo <= hi <= 65535")
        if self.syncookies not in (0, 1, 2):
            raise ValueError(f"syncookies {self.syncookies}: must be 0, 1 or 2")
        if self.syn_backlog < 1 or self.backlog < 1:
            raise ValueError("backlog and syn_backlog must be >= 1")


class GsoPacket(bytearray):
    """An IPv4/TCP super-packet (``StackConfig.gso``): ``gso_size`` is the payload size the
    link (TUN TSO) must cut it into; it is the engine's segment size, which honours the peer's
    MSS. Its TCP checksum field holds only the folded pseudo-header sum (a partial checksum
    the kernel finishes, virtio-net NEEDS_CSUM); ``pytcp.wire.offload.segment_tcp`` /
    ``fill_checksums`` make whole packets of it. Otherwise just a ``bytearray``. ``note`` as
    :class:`NotedPacket`'s (may be unset)."""

    __slots__ = ("gso_size", "note", "origin")

    gso_size: int
    note: str


class NotedPacket(bytearray):
    """An outgoing packet that says why it left (``note``: a :class:`TxReason`'s text, and
    what the impairment stage did to it); a capture writes the note as the packet comment.
    Only segments with a reason become one; everything else stays a plain ``bytearray``."""

    __slots__ = ("note", "origin")

    note: str
    origin: object  # (impairment) the packet this one is a changed copy of, if any


class NotedBytes(bytes):
    """An immutable packet with a ``note`` (and the ``origin`` it was copied from): what the
    impairment stage releases when it changed, delayed or duplicated a packet."""

    note: str
    origin: object


class FourTuple(NamedTuple):
    local_addr: int
    local_port: int
    remote_addr: int
    remote_port: int


# The most payload one coalesced (GRO) segment gathers, as Linux's 64 KB GRO packets.
GRO_MAX_BYTES = 65535 - 60 - 20


class _GroGroup:
    """In-order data segments of one connection, gathered within a read batch (GRO)."""

    __slots__ = ("ack", "end", "flags", "h", "hlen", "key", "kinds", "limit", "open",
                 "options", "parts", "seq", "size", "total", "window")

    def __init__(self, h: TcpHandle, key: FourTuple, th: TcpHeader, limit: int) -> None:
        n = len(th.payload)
        self.h = h
        self.key = key
        self.seq = th.seq
        self.end = (th.seq + n) & 0xFFFFFFFF
        self.limit = limit
        self.ack = th.ack
        self.window = th.window
        self.options = th.options
        self.kinds = th.option_kinds
        self.flags = th.flags
        self.size = n  # every segment but the last has this size (Linux tcp_gro_receive)
        self.total = n
        self.open = True  # False after PSH or a shorter segment: nothing more joins
        self.parts: list[memoryview] = [th.payload]
        self.hlen = len(th.header) + (20 if key.remote_addr <= 0xFFFFFFFF else 40)  # per part


@dataclass(frozen=True, slots=True)
class AcceptReady:
    """A listener has an established connection waiting in its accept queue."""


# Linux IP_MTU_DISCOVER modes (include/uapi/linux/in.h) and those that set DF on TCP segments
# (ip_dont_fragment; PROBE: DF set, path MTU not used to size segments).
IP_PMTUDISC_DONT, IP_PMTUDISC_WANT, IP_PMTUDISC_DO, IP_PMTUDISC_PROBE = 0, 1, 2, 3
IP_PMTUDISC_INTERFACE, IP_PMTUDISC_OMIT = 4, 5
PMTUDISC_SETS_DF = frozenset({IP_PMTUDISC_WANT, IP_PMTUDISC_DO, IP_PMTUDISC_PROBE})


def tcp_template(local: int, remote: int, lport: int, rport: int, tos: int,
                 ttl: int, df: bool = True) -> tuple[bytes, int, int]:
    """The IP header + TCP ports of a segment from ``local`` to ``remote`` (an IPv6 header
    when the addresses are 128-bit), the IPv4 header's partial sum (-1 for IPv6: no header
    checksum) and the pseudo-header sum without length plus the ports (RFC 9293 3.1, RFC
    8200 8.1). ``df``: the IPv4 Don't Fragment bit (RFC 1191; IP_MTU_DISCOVER)."""
    if local > 0xFFFFFFFF:
        tmpl = _IPV6_TCP_HDR.pack(0x60000000 | (tos << 20), 0, PROTO_TCP, ttl,
                                  local.to_bytes(16, "big"), remote.to_bytes(16, "big"),
                                  lport, rport)
        return tmpl, -1, addr_sum(local) + addr_sum(remote) + PROTO_TCP + lport + rport
    tmpl = _IPV4_TCP_HDR.pack(0x45, tos, 0, 0, 0x4000 if df else 0, ttl, PROTO_TCP, 0,
                              local.to_bytes(4, "big"), remote.to_bytes(4, "big"), lport, rport)
    return (tmpl, native.csum_partial(tmpl[:20]),
            native.pseudo_header_sum(local, remote, PROTO_TCP, 0) + lport + rport)


def addr_text(a: int) -> str:
    """An address integer as text (IPv6 for 128-bit values)."""
    if a > 0xFFFFFFFF:
        return str(ipaddress.IPv6Address(a))
    return f"{a >> 24}.{a >> 16 & 255}.{a >> 8 & 255}.{a & 255}"


def _to_addr(addr: str | int) -> int:
    """An address as an integer: IPv4 dotted quad or 32-bit int; IPv6 text or 128-bit int
    (an IPv4-mapped IPv6 address is the IPv4 address, as a dual-stack socket sees it)."""
    if isinstance(addr, int):
        if not 0 <= addr < 1 << 128:
            raise ValueError(f"address {addr} out of range")
        if addr >> 32 == 0xFFFF:
            return addr & 0xFFFFFFFF
        return addr
    a = ipaddress.ip_address(addr.split("%")[0])
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        return int(a.ipv4_mapped)
    return int(a)


def _is_ipv6(packet: bytes | bytearray | memoryview) -> bool:
    """Version 6 and a payload length that matches (RFC 8200 3): a real IPv6 packet."""
    n = len(packet)
    return n >= 40 and packet[0] >> 4 == 6 and 40 + (packet[4] << 8 | packet[5]) == n


def _martian(a: int) -> bool:
    """0.0.0.0/8, 127/8 and 224/3 (multicast, class E, limited broadcast) are never a valid
    unicast host (RFC 1122 3.2.1.3)."""
    top = a >> 24
    return top == 0 or top == 127 or top >= 224


class ConnCounters:
    """What one connection cost on the wire, as pytcp counted it (Linux's tcpi_segs_in /
    tcpi_segs_out): segments and bytes both ways, and when it opened and ended.

    ``wire_*`` are whole IP packets (IP + TCP headers + payload), ``data_*`` payload bytes
    (retransmissions included); a super-segment counts as the MSS-sized segments it becomes
    on the wire, a coalesced (GRO) one as the segments it gathered. ``ended`` is the stack's
    time when the connection was forgotten or replaced by its TIME-WAIT entry (``end_state``
    then says which), else None. A small object of its own, so an owner (the lab) may keep it
    after the connection is gone. Segments answered by the TIME-WAIT entry are not counted.
    """

    __slots__ = ("data_in", "data_out", "end_state", "ended", "opened", "segs_in",
                 "segs_out", "wire_in", "wire_out")

    def __init__(self, opened: float) -> None:
        self.opened = opened
        self.ended: float | None = None
        self.end_state = ""
        self.segs_in = self.segs_out = 0
        self.wire_in = self.wire_out = 0
        self.data_in = self.data_out = 0


class TcpHandle:
    """One TCP connection as the application sees it: the engine plus its 4-tuple.

    The application calls go to the engine and the resulting segments are queued on the stack
    at once, so the next ``Stack.pending_packets()`` carries them.
    """

    __slots__ = (
        "__weakref__",
        "_deadline",
        "_ipsum",
        "_ipsum_ect",
        "_obytes",
        "_oobj",
        "_osum",
        "_psum",
        "_stack",
        "_tmpl",
        "_tmpl_ect",
        "_tw",
        "accepted",
        "conn",
        "counters",
        "fastopen_sent",
        "history",
        "key",
        "listener",
        "md5_key",
        "pmtudisc",
        "tos",
        "user_data",
    )

    def __init__(self, stack: Stack, key: FourTuple, conn: Connection,
                 listener: Listener | None = None) -> None:
        self.key = key
        self.conn = conn
        self.user_data: Any = None
        self.fastopen_sent = 0  # data bytes the SYN carried (RFC 7413, connect(fastopen=))
        # RFC 2385: the key this connection signs its segments with and checks the peer's
        # against (None: unsigned); fixed when the connection is made.
        self.md5_key: bytes | None = None
        self.counters = ConnCounters(getattr(conn, "created", 0.0))  # segments and bytes both ways
        # A bounded history for the dashboard (None unless Stack.enable_history).
        self.history: ConnHistory | None = stack._new_history(conn) \
            if stack._history_on else None
        self.listener = listener  # the listener that created it, until accepted
        self.accepted = listener is None
        self._stack = stack
        self._deadline: float | None = None
        self._tw: TimeWait | None = None  # the compact TIME-WAIT entry that replaced it
        # The pseudo-header sum without the length, plus the ports (RFC 9293 3.1).
        self._psum = (native.pseudo_header_sum(key.local_addr, key.remote_addr, PROTO_TCP, 0)
                      + key.local_port + key.remote_port)
        # The last options value sent and its encoding and checksum partial sum: a burst's
        # segments share one options object (header template for the options).
        self._oobj: object = NO_OPTIONS
        self._obytes = b""
        self._osum = 0
        self.tos = 0
        self.pmtudisc = IP_PMTUDISC_WANT
        self._tmpl = b""
        self._ipsum = 0
        self._build_template()

    def _build_template(self) -> None:
        """The IPv4 header + TCP ports of every segment of this connection (DF set, RFC
        1191, unless :meth:`set_pmtudisc` says otherwise; TOS from :meth:`set_tos`) and its
        partial checksum (without length and ident)."""
        key = self.key
        df = self.pmtudisc in PMTUDISC_SETS_DF
        self._tmpl, self._ipsum, self._psum = tcp_template(
            key.local_addr, key.remote_addr, key.local_port, key.remote_port, self.tos,
            self._stack.config.ttl, df)
        # The same with ECT(0) in the ECN field (RFC 3168 5), for new data of an ECN
        # connection (Segment.ecn).
        self._tmpl_ect, self._ipsum_ect, _ = tcp_template(
            key.local_addr, key.remote_addr, key.local_port, key.remote_port,
            (self.tos & ~3) | 2, self._stack.config.ttl, df)

    def set_pmtudisc(self, mode: int) -> None:
        """Linux IP_MTU_DISCOVER (ip(7)) for this connection's IPv4 segments: ``IP_PMTUDISC_
        WANT`` (the default), ``DO`` and ``PROBE`` set DF (RFC 1191 path MTU discovery);
        ``DONT``, ``INTERFACE`` and ``OMIT`` send without DF; ``INTERFACE`` and ``OMIT`` also
        ignore ICMP "fragmentation needed" (Linux ip_sk_accept_pmtu). ``ValueError``
        outside 0..5."""
        if not IP_PMTUDISC_DONT <= mode <= IP_PMTUDISC_OMIT:
            raise ValueError(f"IP_MTU_DISCOVER mode {mode} out of range 0..5")
        self.pmtudisc = mode
        self._build_template()

    def set_tos(self, tos: int) -> None:
        """The IP TOS / Diffserv byte of every later segment of this connection (RFC 9293
        3.9.1.1 and RFC 1122 4.2.4.2, MUST-48: the application may set it; IP_TOS)."""
        if not 0 <= tos <= 0xFF:
            raise ValueError(f"TOS {tos} out of range 0..255")
        self.tos = tos
        self._build_template()

    # ----- application calls -----

    def send(self, now: float, data: bytes | bytearray | memoryview, push: bool = True,
             urgent: bool = False, more: bool = False, eor: bool = False) -> int:
        """``more``: MSG_MORE (a partial last segment waits for the next send); ``eor``:
        MSG_EOR (no segment joins these bytes with later ones)."""
        try:
            return self.conn.send(now, data, push, urgent, more, eor)
        finally:
            self._stack._service(self, now)

    def receive(self, now: float, max_bytes: int = -1) -> bytes:
        try:
            return self.conn.receive(now, max_bytes)
        finally:
            self._stack._service(self, now)

    def shutdown(self, now: float) -> None:
        try:
            self.conn.shutdown(now)
        finally:
            self._stack._service(self, now)

    def close(self, now: float) -> None:
        try:
            self.conn.close(now)
        finally:
            self._stack._service(self, now)

    def abort(self, now: float) -> None:
        try:
            self.conn.abort(now)
        finally:
            self._stack._service(self, now)

    def set_nodelay(self, flag: bool, now: float | None = None) -> None:
        """Nagle off (True) or on (MUST-17); may release held data at once."""
        try:
            self.conn.set_nodelay(flag)
        finally:
            self._stack._service(self, self._stack._now if now is None else now)

    def set_quickack(self, flag: bool, now: float | None = None) -> None:
        """TCP_QUICKACK (Linux): leave (True) or enter (False) pingpong mode; True sends a
        pending ACK of drained data at once."""
        t = self._stack._now if now is None else now
        try:
            self.conn.set_quickack(t, flag)
        finally:
            self._stack._service(self, t)

    def set_cork(self, flag: bool, now: float | None = None) -> None:
        """TCP_CORK on (True) or off; uncorking may release a held segment at once."""
        try:
            self.conn.set_cork(flag)
        finally:
            self._stack._service(self, self._stack._now if now is None else now)

    def set_keepalive(self, flag: bool, idle: float | None = None,
                      interval: float | None = None, count: int | None = None,
                      now: float | None = None) -> None:
        """Keep-alives on/off (RFC 9293 3.8.4); the stack's timer heap picks up the timer."""
        try:
            self.conn.set_keepalive(flag, idle, interval, count)
        finally:
            self._stack._service(self, self._stack._now if now is None else now)

    # ----- introspection -----

    def info(self) -> Any:
        return self.conn.info()

    @property
    def state(self) -> Any:
        tw = self._tw
        if tw is not None:  # handed to a compact TIME-WAIT entry: TIME-WAIT until it ends
            return tw.state if self._stack._timewait.get(self.key) is tw else State.CLOSED
        return self.conn.state

    @property
    def open(self) -> bool:
        """Still in the stack's table (not yet CLOSED)."""
        return self._stack._conns.get(self.key) is self

    def __repr__(self) -> str:
        k = self.key
        return (f"<TcpHandle {addr_text(k.local_addr)}:{k.local_port} -> "
                f"{addr_text(k.remote_addr)}:{k.remote_port} {self.conn.state}>")


class Listener:
    """A passive open on a port. ``accept()`` returns established connections in order."""

    def __init__(self, stack: Stack, port: int, backlog: int, syn_backlog: int = 256) -> None:
        self._stack = stack
        self.port = port
        self.backlog = backlog  # accept queue: established connections not yet accepted
        self.syn_backlog = syn_backlog  # SYN queue: SYN-RECEIVED entries
        # When the last SYN cookie was sent (None: never): cookie ACKs are checked only up
        # to two cookie periods after it (Linux tcp_synq_no_recent_overflow).
        self.last_cookie_at: float | None = None
        self.user_data: Any = None
        self.closed = False
        # MUST-48: the TOS byte given to connections this listener accepts (as Linux, an
        # accepted socket inherits the listener's IP_TOS); see set_tos.
        self.tos = 0
        self._embryonic: dict[FourTuple, TcpHandle] = {}  # SYN-RECEIVED, not yet Connected
        self._queue: deque[TcpHandle] = deque()  # ESTABLISHED, not yet accepted
        # RFC 7413 (Linux TCP_FASTOPEN on a listener): the most Fast Open connections still
        # in SYN-RECEIVED at once (0: no Fast Open), and those connections.
        self.fastopen_qlen = 0
        self._fo_children: dict[FourTuple, TcpHandle] = {}
        # RFC 2385 keys per peer address (Linux TCP_MD5SIG on a listening socket): a
        # connection from a peer with a key takes it (signed both ways, no Fast Open).
        self.md5 = Md5Keys()

    def set_md5_key(self, addr: str | int, key: bytes, prefix: int | None = None) -> None:
        """Linux ``setsockopt(TCP_MD5SIG[_EXT])``: sign the connections from ``addr`` (its
        first ``prefix`` bits) with ``key`` (RFC 2385); an empty key removes the entry.
        Connections already made keep the key they had (Linux copies it to the child)."""
        a = _to_addr(addr)
        self.md5.set(a, key, v6=a > 0xFFFFFFFF, prefix=prefix)
        if key:
            self._stack._md5_on = True

    def set_fastopen(self, qlen: int) -> None:
        """Accept data in SYNs with a valid cookie (RFC 7413 4.2.2) for at most ``qlen``
        connections that have not completed their handshake (RFC 7413 5.1); 0 turns it off.
        Needs ``TcpConfig.fastopen`` bit 2 (on by default)."""
        if qlen < 0:
            raise ValueError("fastopen queue length must be >= 0")
        self.fastopen_qlen = qlen

    def fastopen_pending(self) -> int:
        """Fast Open connections of this listener still in SYN-RECEIVED."""
        gone = [k for k, h in self._fo_children.items()
                if not h.open or h.conn.state is not State.SYN_RECEIVED]
        for k in gone:
            del self._fo_children[k]
        return len(self._fo_children)

    @property
    def pending(self) -> int:
        """Half-open plus established-but-not-accepted connections."""
        return len(self._embryonic) + len(self._queue)

    @property
    def syn_queue(self) -> int:
        """SYN-RECEIVED entries (compared with ``syn_backlog``)."""
        return len(self._embryonic)

    @property
    def accept_queue(self) -> int:
        """Established connections not yet accepted (compared with ``backlog``)."""
        return len(self._queue)

    def set_tos(self, tos: int) -> None:
        """The IP TOS byte of connections created from now on (their SYN-ACK included)."""
        if not 0 <= tos <= 0xFF:
            raise ValueError(f"TOS {tos} out of range 0..255")
        self.tos = tos

    def accept(self, closed: bool = False) -> TcpHandle | None:
        """The oldest established connection not yet accepted, or ``None``.

        A connection that ended while queued (reset, timed out) stays in the queue (Linux
        keeps the child socket): ``closed=True`` returns it too, CLOSED, with its unread
        bytes and the error its events reported (the socket API's accept(), whose first
        read or write then fails); by default it is skipped and dropped."""
        while self._queue:
            h = self._queue.popleft()
            if closed or h.open:
                h.accepted = True
                h.listener = None
                return h
        return None

    def close(self, now: float | None = None) -> None:
        """Stop listening; connections not yet accepted are aborted (RST)."""
        if self.closed:
            return
        self.closed = True
        stack = self._stack
        if stack._listeners.get(self.port) is self:
            del stack._listeners[self.port]
        t = stack._now if now is None else now
        pending = list(self._embryonic.values()) + list(self._queue)
        self._embryonic.clear()
        self._queue.clear()
        for h in pending:
            if h.open:
                h.abort(t)

    def __repr__(self) -> str:
        return (f"<Listener port={self.port} syn={self.syn_queue}/{self.syn_backlog} "
                f"accept={self.accept_queue}/{self.backlog}>")


class Stack(IpLayer, UdpLayer):
    """A TCP/IPv4 host with one address, driven by packets, application calls and time."""

    def __init__(self, addr: str | int, *, now: float, config: StackConfig | None = None,
                 tcp_config: TcpConfig | None = None, secret: bytes | None = None,
                 rng: random.Random | None = None, addr6: str | int | None = None) -> None:
        """``addr6``: the stack's IPv6 address (None: IPv6 off, its packets ignored)."""
        self.addr = _to_addr(addr)
        if self.addr > 0xFFFFFFFF or _martian(self.addr):
            raise ValueError(f"{addr_text(self.addr)} is not a unicast IPv4 host address")
        self.config = config if config is not None else StackConfig()
        if tcp_config is None:
            from pytcp.tcp.config import TcpConfig

            tcp_config = TcpConfig.linux()
        self.tcp_config = tcp_config
        self.rng = rng if rng is not None else random.Random()
        self._secret = secret if secret is not None else os.urandom(16)
        from pytcp.tcp.isn import IsnGenerator

        self._isn = IsnGenerator(self._secret)
        self._cookies = SynCookies(self._secret)
        # TCP Fast Open (RFC 7413): the server's cookie keys (derived from the secret and
        # rotated, unless TcpConfig.fastopen_key sets one) and the client's cookie cache.
        from pytcp.tcp.fastopen import CookieCache, CookieJar

        self.fastopen_jar = CookieJar(
            secret=hashlib.blake2s(self._secret, person=b"pytcpTFO").digest(),
            lifetime=tcp_config.fastopen_key_lifetime)
        self._fastopen_key_text = ""
        self.fastopen_cache = CookieCache()
        self._now = now
        cfg = self.config
        self._bcast: int | None = None
        if cfg.prefixlen is not None and cfg.prefixlen < 31:
            net = ipaddress.IPv4Network((self.addr, cfg.prefixlen), strict=False)
            self._bcast = int(net.broadcast_address)
        self._mss = cfg.mtu - 40
        self._init_ip6(addr6, now)  # (pytcp.ip.ipv6; after self.rng and self.config)
        self._init_udp()
        self._frag = FragmentReassembler(timeout=cfg.frag_timeout, max_bytes=cfg.frag_max_bytes,
                                         max_datagrams=cfg.frag_max_datagrams,
                                         max_fragments=cfg.frag_max_fragments)
        self._conns: dict[FourTuple, TcpHandle] = {}
        # TIME-WAIT: compact entries (pytcp.tcp.timewait), not counted in max_connections,
        # expiring in insertion order (same 2*MSL for all; a restart re-queues the entry).
        self._timewait: dict[FourTuple, TimeWait] = {}
        # RFC 2385: some socket has (had) an MD5 key: every segment is then checked (before
        # that, only one carrying the option, which no socket can expect).
        self._md5_on = False
        self._tw_queue: deque[TimeWait] = deque()
        from pytcp.tcp.memory import RecvMemory

        self.rmem = RecvMemory(self.config.recv_memory_limit)
        self._listeners: dict[int, Listener] = {}
        self._packets: list[bytes | bytearray] = []
        self._events: list[tuple[TcpHandle | Listener, Event | AcceptReady]] = []
        # During receive_batch: connections touched by the batch, serviced once at its end.
        self._deferred: dict[TcpHandle, None] | None = None
        self._gro: _GroGroup | None = None  # segments being coalesced (inside receive_batch)
        self._timers: list[tuple[float, int, FourTuple]] = []  # (deadline, order, key), lazy
        self._timer_order = 0
        self._ident = self.rng.randrange(0x10000)
        self._icmp_tokens = float(self.config.icmp_errors_per_sec)
        self._icmp_last = now
        self._drops: Counter[DropReason] = DropCounter()
        self._closed_drops: Counter[DropReason] = Counter()  # engine drops of gone connections
        self._logged_errors: set[str] = set()
        self.stats: Counter[str] = Counter()
        # The engine class (``Connection(config, *, iss, now, mss)``); tests may swap it.
        self.connection_factory: Callable[..., Connection] | None = None
        # Annotation for a capture (see the ``annotate`` property): the reasons counted while
        # one packet was handled, and per received packet its first drop reason (or None).
        self._journal: list[DropReason] | None = None
        self.rx_drop_reasons: list[DropReason | None] = []
        # Connection histories (enable_history): how many live ones, the recently closed.
        self._history_on = False
        self._history_max = MAX_CONNECTIONS
        self._history_live = 0
        self.closed_history: deque[tuple[FourTuple, Any, ConnHistory]] = deque(
            maxlen=CLOSED_KEPT)

    # ------------------------------------------------------------------ history

    def enable_history(self, max_connections: int = MAX_CONNECTIONS,
                       closed_kept: int = CLOSED_KEPT) -> None:
        """Keep a :class:`~pytcp.stack_history.ConnHistory` for each new connection, for at
        most ``max_connections`` at a time (``stats["history_untracked"]`` counts the rest),
        and those of the last ``closed_kept`` closed ones in ``closed_history`` (key, last
        ``info()``, history)."""
        self._history_on = True
        self._history_max = max_connections
        self.closed_history = deque(self.closed_history, maxlen=closed_kept)

    def _new_history(self, conn: Any) -> ConnHistory | None:
        if self._history_live >= self._history_max:
            self.stats["history_untracked"] += 1
            return None
        self._history_live += 1
        return ConnHistory(self._now, conn)

    # ------------------------------------------------------------------ annotation

    @property
    def annotate(self) -> bool:
        """True while a capture wants to know why: then each received packet's first drop
        reason is appended to ``rx_drop_reasons`` (the owner clears it) and outgoing
        segments the engine tagged (``Segment.reason``) become :class:`NotedPacket`; receive
        coalescing (GRO) is off, so each drop is the packet's own. Off, it costs nothing (one
        test per batch)."""
        return self._journal is not None

    @annotate.setter
    def annotate(self, on: bool) -> None:
        journal: list[DropReason] | None = [] if on else None
        self._journal = journal
        counters: list[Any] = [self._drops, self._frag.drops, self._frag6.drops]
        counters += [getattr(h.conn, "drops", None) for h in self._conns.values()]
        for c in counters:
            if isinstance(c, DropCounter):
                c.journal = journal
        if not on:
            self.rx_drop_reasons.clear()

    # ------------------------------------------------------------------ introspection

    @property
    def drops(self) -> Counter[DropReason]:
        """All drops: the stack's own, the fragment reassembler's and every connection's."""
        total = self._drops + self._frag.drops + self._frag6.drops + self._closed_drops
        for h in self._conns.values():
            d = getattr(h.conn, "drops", None)
            if d:
                total.update(d)
        return total

    def connections(self) -> list[TcpHandle]:
        """Live connections (TIME-WAIT entries are counted by ``time_wait_count``)."""
        return list(self._conns.values())

    @property
    def time_wait_count(self) -> int:
        """4-tuples held in TIME-WAIT (compact entries)."""
        return len(self._timewait)

    def memory(self) -> dict[str, int]:
        """Gauges and counters of the memory bounds (docs/robustness.md): receive bytes held
        stack-wide (``rmem_used``, of which ``rmem_ooo`` out of order) against
        ``rmem_limit``, out-of-order prune passes and bytes, live and TIME-WAIT entries."""
        m = self.rmem
        return {"rmem_used": m.used, "rmem_ooo": m.ooo, "rmem_limit": m.limit,
                "rmem_prunes": m.prunes, "rmem_pruned_bytes": m.pruned_bytes,
                "connections": len(self._conns), "time_wait": len(self._timewait)}

    def listeners(self) -> list[Listener]:
        return list(self._listeners.values())

    def get_connection(self, key: FourTuple) -> TcpHandle | None:
        return self._conns.get(key)

    # ------------------------------------------------------------------ application side

    def listen(self, port: int, backlog: int | None = None, *,
               syn_backlog: int | None = None) -> Listener:
        """Passive open (RFC 9293 3.10.1) on ``port``; raise OSError(EADDRINUSE) if taken.
        ``backlog`` bounds the accept queue, ``syn_backlog`` the SYN queue (defaults from
        ``StackConfig``); past the SYN queue SYN cookies answer (``StackConfig.syncookies``)."""
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port} out of range 1..65535")
        if port in self._listeners:
            raise OSError(errno.EADDRINUSE, f"port {port} already has a listener")
        # As Linux, listen(port, 0) still lets one connection wait to be accepted.
        lst = Listener(self, port, self.config.backlog if backlog is None else max(1, backlog),
                       self.config.syn_backlog if syn_backlog is None else max(1, syn_backlog))
        self._listeners[port] = lst
        return lst

    def connect(self, now: float, remote_addr: str | int, remote_port: int,
                local_port: int | None = None, *, tos: int = 0, fastopen: bool = False,
                data: bytes | bytearray | memoryview = b"", syn_only: bool = True,
                cookie_request: bool = False, md5_key: bytes | None = None) -> TcpHandle:
        """Active open (RFC 9293 3.10.1): pick a local port, send the SYN. ``tos`` is the IP
        TOS byte of the connection's segments from the SYN on (MUST-48; see set_tos).
        ``fastopen=True`` (RFC 7413, Linux MSG_FASTOPEN / TCP_FASTOPEN_CONNECT, needs
        ``TcpConfig.fastopen`` bit 1): the SYN carries the cached cookie and as much of
        ``data`` as fits, or a cookie request when none is cached; ``handle.fastopen_sent``
        is the bytes of ``data`` queued: those in the SYN (``syn_only``; send the rest once
        connected) or all that fit the send buffer. ``cookie_request``: the SYN asks for a
        cookie and carries no data even with one cached (Linux's fallback in
        tcp_send_syn_data when the data cannot be taken, e.g. a bad user buffer).
        ``md5_key`` (RFC 2385, Linux TCP_MD5SIG for the destination): every segment both
        ways is signed with it; Fast Open is then off (as Linux)."""
        if not 0 <= tos <= 0xFF:
            raise ValueError(f"TOS {tos} out of range 0..255")
        self._now = now
        raddr = _to_addr(remote_addr)
        # MUST-46: reject an OPEN to a broadcast, multicast or otherwise invalid address.
        if (raddr >> 120 == 0xFF or raddr <= 1) if raddr > 0xFFFFFFFF else (
                _martian(raddr) or raddr == self._bcast):
            raise ValueError(f"cannot connect to {addr_text(raddr)}: not a unicast address")
        if not 1 <= remote_port <= 65535:
            raise ValueError(f"remote port {remote_port} out of range 1..65535")
        if len(self._conns) >= self.config.max_connections:
            raise OSError(errno.ENOBUFS, "connection table full")
        if local_port is not None:
            if not 1 <= local_port <= 65535:
                raise ValueError(f"local port {local_port} out of range 1..65535")
            key = FourTuple(self._local_for(raddr), local_port, raddr, remote_port)
            if key in self._conns or key in self._timewait:
                raise OSError(errno.EADDRINUSE, "4-tuple already in use")
        else:
            key = self._pick_ephemeral(raddr, remote_port)
        conn = self._new_connection(now, key)
        h = TcpHandle(self, key, conn)
        if tos:
            h.set_tos(tos)
        if md5_key:
            self._md5_attach(h, md5_key)
            fastopen = False
        self._conns[key] = h
        self.stats["active_opens"] += 1
        self._name(conn, key)
        try:
            req = None
            if fastopen:
                req = self.fastopen_cache.request(now, raddr, self.tcp_config.fastopen,
                                                  self._mss_for(key.local_addr))
                if req is not None and cookie_request:
                    req = replace(req, cookie=b"", space=0)
            if req is not None:
                h.fastopen_sent = conn.open_active(now, req, data, syn_only)
                self.stats["fastopen_active"] += 1
            else:
                conn.open_active(now)
        finally:
            self._service(h, now)
        return h

    # ----- RFC 2385 TCP MD5 signatures

    def _md5_attach(self, h: TcpHandle, key: bytes) -> None:
        """``h`` signs with ``key`` from its first segment on (RFC 2385)."""
        if len(key) > MD5_MAX_KEY_LEN:
            raise ValueError(f"an MD5 key is at most {MD5_MAX_KEY_LEN} bytes")
        h.md5_key = bytes(key)
        h._oobj = object()  # (the cached encoding of NO_OPTIONS has no MD5 option)
        if hasattr(h.conn, "md5"):
            h.conn.md5 = True  # its option space and option choices
        self._md5_on = True

    def _md5_inbound(self, key: FourTuple, src: int, dst: int,
                     th: TcpHeader) -> DropReason | None:
        """RFC 2385 2.0 / Linux tcp_inbound_md5_hash against the key of the socket the
        segment is for: the connection, its TIME-WAIT entry or the listener (the peer's
        key there). No socket: an option there cannot be checked, so it is dropped
        (MD5_UNEXPECTED) unanswered (Linux tcp_v4_send_reset sends no RST it cannot sign)."""
        h = self._conns.get(key)
        mk: bytes | None = None
        v6 = dst > 0xFFFFFFFF
        if h is not None:
            mk = h.md5_key
        else:
            tw = self._timewait.get(key) if self._timewait else None
            if tw is not None:
                mk = tw.md5_key
            else:
                lst = self._listeners.get(th.dport)
                if lst is not None and len(lst.md5):
                    mk = lst.md5.lookup(src, v6)
        return md5_inbound_verdict(mk, th, src, dst, v6)

    def _build_signed(self, key: bytes, *args: Any) -> bytearray:
        """``_build_tcp`` for a segment whose options hold an MD5 placeholder: the digest
        filled in (RFC 2385 2.0) and the checksum recomputed over it."""
        pkt = self._build_tcp(*args)
        sign_packet(pkt, key)
        return pkt

    def _fastopen_learn(self, now: float, h: TcpHandle) -> None:
        """After a Fast Open SYN-ACK: the cookie and MSS go to the cache (RFC 7413 4.1.3)."""
        conn = h.conn
        r = getattr(conn, "fo_result", None)
        if r is None:
            return
        conn.fo_result = None
        mss, cookie, exp, syn_lost, try_exp = r
        self.fastopen_cache.update(now, h.key.remote_addr, mss=mss, cookie=cookie, exp=exp,
                                   syn_lost=syn_lost, try_exp=try_exp)

    def set_fastopen_key(self, primary: bytes, backup: bytes | None = None) -> None:
        """Linux TCP_FASTOPEN_KEY: the server's cookie key (16 bytes) and optionally the
        backup; the old primary stays valid as the backup when none is given."""
        self._fastopen_keys().set_keys(primary, backup)

    def _fastopen_keys(self) -> Any:
        """The cookie jar, with TcpConfig.fastopen_key applied when it changed."""
        text = self.tcp_config.fastopen_key
        if text != self._fastopen_key_text:
            from pytcp.tcp.fastopen import parse_keys

            self._fastopen_key_text = text
            if text:
                keys = parse_keys(text)
                self.fastopen_jar.set_keys(keys[0], keys[1] if len(keys) > 1 else None)
        return self.fastopen_jar

    def _fastopen_decide(self, now: float, lst: Listener, th: Any, src: int,
                         dst: int) -> Any:
        """RFC 7413 4.2.2 for a SYN to ``lst`` (Linux tcp_try_fastopen)."""
        from pytcp.tcp.fastopen import server_decide

        mask = self.tcp_config.fastopen
        if not mask & 0x2:
            return None
        opts = th.options
        return server_decide(mask, lst.fastopen_qlen, lst.fastopen_pending(), cookie=opts.fastopen,
                             exp=opts.fastopen_exp, syn_data=bool(th.payload),
                             jar=self._fastopen_keys(), now=now, client=src, server=dst)

    def _new_connection(self, now: float, key: FourTuple, iss: int | None = None) -> Connection:
        factory = self.connection_factory
        if factory is None:
            from pytcp.tcp.connection import Connection

            factory = Connection
        # RFC 6528 ISN from the 4-tuple; we announce MSS = MTU - 40 (RFC 9293 3.7.1, MUST-67).
        if iss is None:
            iss = self._isn.iss(now, *key)
        mss = self._mss_for(key.local_addr)
        if key.local_addr > 0xFFFFFFFF:
            # A path MTU a Packet Too Big lowered (RFC 8201) bounds new connections too, as
            # Linux's route MTU exception does.
            mss = min(mss, self.path_mtu6(key.remote_addr, now) - 60)
        conn = factory(self.tcp_config, iss=iss, now=now, mss=mss)
        if key.local_addr > 0xFFFFFFFF:
            conn.default_mss = 1220  # MUST-15 over IPv6 (RFC 8200 5: 1280 - 40 - 20)
        if self._journal is not None:
            drops = getattr(conn, "drops", None)
            if isinstance(drops, DropCounter):
                drops.journal = self._journal
        use = getattr(conn, "use_memory", None)
        if use is not None:
            use(self.rmem)  # its receive bytes count toward recv_memory_limit
        return conn

    @staticmethod
    def _name(conn: Connection, key: FourTuple) -> None:
        """Name the connection in the engine's transition log by its 4-tuple."""
        if hasattr(conn, "debug_name"):
            la, lp, ra, rp = key
            # (dotted quads from the integers: ipaddress costs ~10 µs per connection)
            conn.debug_name = f"{addr_text(la)}:{lp}-{addr_text(ra)}:{rp}"

    def _local_for(self, raddr: int) -> int:
        """Our address in ``raddr``'s family."""
        if raddr > 0xFFFFFFFF:
            if self.addr6 is None:
                raise OSError(errno.EAFNOSUPPORT, "IPv6 is off")
            return self.addr6
        return self.addr

    def _mss_for(self, local: int) -> int:
        """The MSS we announce: MTU - 40 over IPv4, MTU - 60 over IPv6 (RFC 9293 3.7.1)."""
        return self._mss if local <= 0xFFFFFFFF else self._mss - 20

    def _pick_ephemeral(self, raddr: int, rport: int) -> FourTuple:
        lo, hi = self.config.ephemeral_ports
        n = hi - lo + 1
        start = self.rng.randrange(n)
        conns = self._conns
        tw = self._timewait
        for i in range(n):
            port = lo + (start + i) % n
            if port in self._listeners:
                continue
            key = FourTuple(self._local_for(raddr), port, raddr, rport)
            if key not in conns and key not in tw:
                return key
        raise OSError(errno.EADDRNOTAVAIL, "no free ephemeral port for this destination")

    # ------------------------------------------------------------------ network side

    def pending_packets(self) -> list[bytes | bytearray]:
        """IPv4 datagrams to put on the link, oldest first; the list is cleared. (The
        ``tx_packets``/``tx_bytes`` counters count them here, once per call.)"""
        out = self._packets
        if out:
            self._packets = []
            stats = self.stats
            stats["tx_packets"] += len(out)
            stats["tx_bytes"] += sum(map(len, out))
        return out

    def pending_events(self) -> list[tuple[TcpHandle | Listener, Event | AcceptReady]]:
        out = self._events
        self._events = []
        return out

    def receive_packet(self, now: float, packet: bytes | bytearray | memoryview) -> None:
        """Take one IPv4 datagram from the link. Never raises for anything in the packet."""
        self._receive_all(now, (packet,))

    def _malformed(self, reason: DropReason, packet: bytes | bytearray | memoryview) -> None:
        if reason is DropReason.BAD_IP_VERSION and _is_ipv6(packet):
            # The kernel's own IPv6 chatter (router solicitations, MLD) on the TUN: not a
            # malformed packet, just a protocol pytcp does not speak.
            reason = DropReason.IPV6_IGNORED
        self._drops[reason] += 1

    def _receive_all(self, now: float,
                     packets: Sequence[bytes | bytearray | memoryview]) -> None:
        """``receive_packet`` for each packet, with the counters updated once."""
        self._now = now
        stats = self.stats
        stats["rx_packets"] += len(packets)
        stats["rx_bytes"] += sum(map(len, packets))
        receive = self._receive
        journal = self._journal
        if journal is None:
            for pkt in packets:
                try:
                    receive(now, pkt)
                except MalformedPacket as e:
                    self._malformed(e.reason, pkt)
                except Exception as e:  # noqa: BLE001 - a bug must not kill the event loop
                    self._count_error(e, "while handling a packet")
            return
        # Annotating for a capture: the first drop reason counted for each packet.
        noted = self.rx_drop_reasons
        if len(noted) > 65536:  # an owner that never clears it: bounded anyway
            noted.clear()
        for pkt in packets:
            journal.clear()
            try:
                receive(now, pkt)
            except MalformedPacket as e:
                self._malformed(e.reason, pkt)
            except Exception as e:  # noqa: BLE001 - a bug must not kill the event loop
                self._count_error(e, "while handling a packet")
            noted.append(journal[0] if journal else None)
        journal.clear()

    def receive_batch(self, now: float,
                      packets: list[bytes] | list[bytes | bytearray | memoryview],
                      clock: Callable[[], float] | None = None) -> None:
        """Take a batch of datagrams read from the link at once. Every segment of the batch
        is processed before any connection's output is built, so a burst of data is answered
        by one ACK (RFC 9293 3.8.6.3 / RFC 1122 4.2.3.2: MUST-58 aggregate ACKs, MUST-59
        process all queued segments before ACKing). ``clock`` (the runtime's): read once
        when the segments are processed, the time the batch's output is built; a batch can
        take longer than a probe timeout on a loaded host, and timers armed from its start
        would fire as the output leaves."""
        if self._deferred is not None:  # nested: the outer batch services
            self._receive_all(now, packets)
            return
        self._deferred = {}
        try:
            self._receive_all(now, packets)
        finally:
            if self._gro is not None:
                self._gro_flush(now)
            if clock is not None:
                now = max(now, clock())
                self._now = now
            touched, self._deferred = self._deferred, None
            for h in touched:
                try:
                    self._service(h, now)
                except Exception as e:  # noqa: BLE001 - a bug must not kill the event loop
                    self._count_error(e, "while servicing a connection")

    def _count_error(self, e: Exception, where: str) -> None:
        """Count a bug under STACK_ERROR; log each distinct one once (at most 100)."""
        self._drops[DropReason.STACK_ERROR] += 1
        sig = f"{where}:{type(e).__name__}:{e}"
        if sig not in self._logged_errors and len(self._logged_errors) < 100:
            self._logged_errors.add(sig)
            log.error("pytcp: error %s (counted as stack_error)", where, exc_info=e)

    def _receive(self, now: float, packet: bytes | bytearray | memoryview) -> None:
        # A datagram whose checksums the link's kernel built or verified (virtio-net
        # NEEDS_CSUM / DATA_VALID: an RxPacket) is trusted instead of recomputed.
        rx = type(packet) is RxPacket
        fast = parse_ipv4_tcp(packet, self.config.verify_checksums and not rx)
        if fast is not None:
            # The common case (a whole TCP datagram, no IP options, checksums right) parsed
            # in one step; the checks below for the general path, in the same order.
            src, dst, th = fast
            if (dst == self.addr and src != self.addr and src != self._bcast
                    and not _martian(src)):
                # An inbound GSO packet (the link's virtio-net header: gso_size) reaches the
                # engine whole, with the size of the segments it stands for.
                self._receive_tcp(now, src, dst, th, packet[1] & 3,
                                  packet.gso_size if rx else 0)  # type: ignore[union-attr]
                return
        self._receive_ip(now, packet)

    def _tcp_icmp_error(self, now: float, q: Quoted, typ: int, code: int,
                        mtu: int | None) -> None:
        """An ICMP error quoting one of our TCP segments (RFC 1122 4.2.3.9, RFC 5927)."""
        h = self._conns.get(FourTuple(q.src, q.sport, q.dst, q.dport))
        if h is None:
            self._drops[DropReason.ICMP_IGNORED] += 1
            return
        # RFC 5927 4.1 (as Linux tcp_v4_err): the quoted sequence number must lie in
        # SND.UNA..SND.NXT, or a blind attacker could reset or slow the connection.
        conn = h.conn
        una = getattr(conn, "snd_una", None)
        nxt = getattr(conn, "snd_max", None)
        if una is not None and nxt is not None and not seq_between(una, q.word,
                                                                  seq_add(nxt, 1)):
            self._drops[DropReason.ICMP_IGNORED] += 1
            return
        self.stats["icmp_errors"] += 1
        if h.pmtudisc in (IP_PMTUDISC_INTERFACE, IP_PMTUDISC_OMIT):
            mtu = None  # Linux ip_sk_accept_pmtu: the interface MTU only, no path MTU
        try:
            h.conn.handle_icmp_error(now, typ, code, mtu)
        finally:
            self._service(h, now)

    def _queue_packet(self, pkt: bytes | bytearray) -> None:
        self._packets.append(pkt)  # counted when drained (pending_packets)

    # ----- TCP

    def _receive_tcp(self, now: float, src: int, dst: int, th: TcpHeader,
                     ecn: int = 0, gso_size: int = 0) -> None:
        """``ecn``: the IP header's ECN codepoint (RFC 3168 5), passed on as Segment.ecn.
        ``gso_size``: the datagram is an inbound GSO packet standing for segments of this
        size (Segment.gso_size; the engine's receive-MSS estimate, Linux
        tcp_measure_rcv_mss); it is never merged by GRO here."""
        key = FourTuple(dst, th.dport, src, th.sport)
        if self._md5_on or th.options.md5 is not None:
            bad = self._md5_inbound(key, src, dst, th)
            if bad is not None:
                self._drops[bad] += 1  # RFC 2385 2.0: discarded, no reply
                return
        flags = th.flags
        if gso_size >= len(th.payload):
            gso_size = 0
        g = self._gro
        if g is not None:
            if key == g.key and ecn != 3 and not gso_size and self._gro_add(g, th, flags):
                if not g.open:
                    self._gro_flush(now)
                return
            self._gro_flush(now)
        h = self._conns.get(key)
        if (flags == ACK and h is not None and self._deferred is not None and th.payload
                and not gso_size and self.config.gro and self._journal is None
                and ecn != 3):  # (a CE mark is never merged away)
            limit_of = getattr(h.conn, "gro_limit", None)
            limit = limit_of(th.seq) if limit_of is not None else None
            if limit is not None and seq_le(seq_add(th.seq, len(th.payload)), limit):
                self._gro = _GroGroup(h, key, th, limit)
                return
        if h is not None and self._deferred is not None and h.conn.state is State.CLOSED:
            # Closed earlier in this batch (its Closed event not yet serviced): forget it
            # now so this segment meets the listener or 3.10.7.1, as it would unbatched.
            self._service(h, now)
            h = self._conns.get(key)
        if h is not None:
            seg = Segment(th.seq, th.ack, flags, th.window, th.payload, th.options, th.urg,
                          gso_size, ecn=ecn)
            conn = h.conn
            cnt = h.counters
            cnt.segs_in += 1
            n = len(th.payload)
            cnt.data_in += n
            cnt.wire_in += n + len(th.header) + (20 if src <= 0xFFFFFFFF else 40)
            if (flags & (SYN | ACK | RST) == SYN and conn.state is State.TIME_WAIT
                    and th.dport in self._listeners and conn.accepts_new_syn(seg)):
                # RFC 6191 / RFC 9293 3.10.7.4: a new SYN may reopen a 4-tuple in TIME-WAIT;
                # the old incarnation is forgotten and the SYN goes to the listener.
                self.stats["time_wait_reused"] += 1
                self._forget(h)
                self._events.append((h, Closed()))  # its owner may forget it too
            else:
                try:
                    conn.handle_segment(now, seg)
                    if flags & SYN:
                        self._fastopen_learn(now, h)
                finally:
                    self._service(h, now)
                return
        elif self._timewait:
            tw = self._timewait.get(key)
            if tw is not None:
                seg = Segment(th.seq, th.ack, flags, th.window, th.payload, th.options, th.urg,
                          ecn=ecn)
                if (flags & (SYN | ACK | RST) == SYN and th.dport in self._listeners
                        and tw.accepts_new_syn(seg)):
                    # RFC 6191: a new incarnation; the SYN goes to the listener below.
                    self.stats["time_wait_reused"] += 1
                    del self._timewait[key]
                else:
                    self._time_wait_segment(now, tw, seg)
                    return
        lst = self._listeners.get(th.dport)
        if lst is not None:
            # RFC 9293 3.10.7.2 (LISTEN): first check RST (ignore), second ACK (RST), third SYN.
            if flags & RST:
                self._drops[DropReason.NO_SOCKET] += 1
                return
            if flags & ACK:
                if not flags & SYN and self._cookie_ack_expected(lst, now):
                    if self._accept_cookie(now, lst, key, th):
                        return
                    # A bad or expired cookie: counted, then the LISTEN rule below (RST).
                    self.stats["syncookies_rejected"] += 1
                    self._drops[DropReason.SYNCOOKIE_INVALID] += 1
                else:
                    self._drops[DropReason.NO_SOCKET] += 1
                self._send_rst(src, dst, th.dport, th.sport, th.ack, 0, RST,
                               lst.md5.lookup(src, dst > 0xFFFFFFFF) if len(lst.md5) else None)
                return
            if not flags & SYN:
                self._drops[DropReason.UNEXPECTED_SEGMENT] += 1
                return
            if len(lst._queue) >= lst.backlog or len(self._conns) >= self.config.max_connections:
                # Like Linux: the accept queue is full, drop the SYN silently, the peer retries.
                self._drops[DropReason.LISTEN_OVERFLOW] += 1
                return
            mode = self.config.syncookies
            if mode == 2 or len(lst._embryonic) >= lst.syn_backlog:
                if mode == 0:
                    self._drops[DropReason.SYN_QUEUE_FULL] += 1  # the peer retries
                else:
                    self._send_cookie(now, lst, key, th)
                return
            conn = self._new_connection(now, key)
            h = TcpHandle(self, key, conn, lst)
            if lst.tos:
                h.set_tos(lst.tos)
            mk = lst.md5.lookup(src, dst > 0xFFFFFFFF) if len(lst.md5) else None
            if mk is not None:
                self._md5_attach(h, mk)  # Linux tcp_v4_syn_recv_sock copies the key
            self._conns[key] = h
            lst._embryonic[key] = h
            self._name(conn, key)
            self.stats["passive_opens"] += 1
            conn.open_passive()
            cnt = h.counters
            cnt.segs_in = 1
            cnt.data_in = len(th.payload)
            cnt.wire_in = len(th.payload) + len(th.header) + (20 if src <= 0xFFFFFFFF else 40)
            seg = Segment(th.seq, th.ack, flags, th.window, th.payload, th.options, th.urg,
                          ecn=ecn)
            # (No Fast Open for an MD5 connection, as Linux.)
            fo = self._fastopen_decide(now, lst, th, src, dst) if mk is None else None
            if fo is not None:
                conn.fastopen_server(fo)
            try:
                conn.handle_segment(now, seg)
                if getattr(conn, "fo_child", False) and conn.state is State.SYN_RECEIVED:
                    # RFC 7413 4.2.2: the connection is usable at once: to the accept queue.
                    self.stats["fastopen_passive"] += 1
                    lst._embryonic.pop(key, None)
                    lst._fo_children[key] = h
                    lst._queue.append(h)
                    self._events.append((lst, AcceptReady()))
            finally:
                self._service(h, now)
            return
        # RFC 9293 3.10.7.1 (CLOSED): an incoming RST is discarded; anything else gets a RST.
        self._drops[DropReason.NO_SOCKET] += 1
        if flags & RST:
            return
        if flags & ACK:
            self._send_rst(src, dst, th.dport, th.sport, th.ack, 0, RST)
        else:
            seg_len = len(th.payload) + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
            self._send_rst(src, dst, th.dport, th.sport, 0, seq_add(th.seq, seg_len), RST | ACK)

    # ----- SYN cookies (RFC 4987 3.6, Linux tcp_syncookies)

    def _cookie_ack_expected(self, lst: Listener, now: float) -> bool:
        """Whether an ACK to ``lst`` may carry a cookie: cookies are on and one was sent
        within the validity window (Linux tcp_synq_no_recent_overflow)."""
        mode = self.config.syncookies
        if mode == 2:
            return True
        last = lst.last_cookie_at
        return (mode == 1 and last is not None
                and now - last <= self._cookies.period * self._cookies.max_age)

    def _send_cookie(self, now: float, lst: Listener, key: FourTuple, th: Any) -> None:
        """Answer a SYN with a SYN-ACK whose ISN (and TSval) is a cookie; keep no state."""
        cfg = self.tcp_config
        opts = th.options
        peer_mss = opts.mss if opts.mss else 536  # RFC 9293 3.7.1 default (MUST-15)
        cookie, _ = self._cookies.make(now, *key, th.seq, peer_mss)
        ts = None
        wscale = None
        sack = False
        if cfg.timestamps and opts.timestamp is not None:
            # Window scale and SACK-permitted survive only in the TSval (Linux: without
            # timestamps the SYN-ACK offers neither).
            if cfg.window_scaling and opts.wscale is not None:
                wscale = cfg.wscale
            sack = cfg.sack and opts.sack_permitted
            peer_ws = min(opts.wscale, 14) if wscale is not None and opts.wscale is not None \
                else None
            tsval = encode_tsval((int(now * cfg.ts_hz) + cookie_ts_offset(cookie)) & 0xFFFFFFFF,
                                 peer_ws, sack, False)  # no ECN: pytcp does not negotiate it
            ts = (tsval, opts.timestamp[0])
        mk = lst.md5.lookup(key.remote_addr, key.remote_addr > 0xFFFFFFFF) \
            if len(lst.md5) else None
        if mk is not None and sack and ts is not None:
            # RFC 2385 with the engine's rule (MD5 + SACK: no timestamps); without the
            # timestamp the cookie keeps neither SACK nor window scale. (Linux keeps TS on
            # a cookie SYN-ACK; pytcp's cookie connection would then disagree.)
            ts, sack, wscale = None, False, None
        synack_opts = TcpOptions(mss=self._mss_for(key.local_addr), wscale=wscale,
                                 sack_permitted=sack, timestamp=ts,
                                 md5=MD5_ZERO if mk is not None else None)
        if lst.last_cookie_at is None:
            log.warning("possible SYN flooding on port %d: sending SYN cookies", lst.port)
        lst.last_cookie_at = now
        self.stats["syncookies_sent"] += 1
        self._send_tcp_raw(key, cookie, seq_add(th.seq, 1), SYN | ACK,
                           initial_window(cfg, self._mss_for(key.local_addr) - (12 if ts is not None else 0)),
                           encode_options(synack_opts), lst.tos, mk)

    def _accept_cookie(self, now: float, lst: Listener, key: FourTuple, th: Any) -> bool:
        """Create the connection an ACK's valid cookie stands for and feed it the ACK.
        False: the cookie is invalid (the caller counts it and answers RST)."""
        cfg = self.tcp_config
        peer_isn = seq_add(th.seq, -1)
        cookie = seq_add(th.ack, -1)
        mss = self._cookies.check(now, *key, peer_isn, cookie)
        if mss is None:
            return False
        opts = th.options
        wscale: int | None = None
        sack = False
        tsopt = None
        if opts.timestamp is not None:
            # Linux cookie_timestamp_decode: what the echoed TSval encodes must be on here.
            # (Our TSval already included the offset when its low bits were set.)
            wscale, sack, _ecn = decode_tsecr(opts.timestamp[1])
            if (not cfg.timestamps or (sack and not cfg.sack)
                    or (wscale is not None and not cfg.window_scaling)):
                return False
            tsopt = (opts.timestamp[0], 0)
        if len(lst._queue) >= lst.backlog or len(self._conns) >= self.config.max_connections:
            self._drops[DropReason.LISTEN_OVERFLOW] += 1  # Linux: the ACK is dropped
            return True
        self.stats["syncookies_validated"] += 1
        conn = self._new_connection(now, key, iss=cookie)
        h = TcpHandle(self, key, conn, lst)
        if lst.tos:
            h.set_tos(lst.tos)
        mk = lst.md5.lookup(key.remote_addr, key.remote_addr > 0xFFFFFFFF) \
            if len(lst.md5) else None
        if mk is not None:
            self._md5_attach(h, mk)
        self._conns[key] = h
        lst._embryonic[key] = h  # until its Connected event moves it to the accept queue
        self._name(conn, key)
        self.stats["passive_opens"] += 1
        if hasattr(conn, "ts_offset"):
            conn.ts_offset = cookie_ts_offset(cookie)
        syn = Segment(peer_isn, 0, SYN, th.window,
                      options=TcpOptions(mss=mss, wscale=wscale, sack_permitted=sack,
                                         timestamp=tsopt))
        try:
            conn.open_from_cookie(now, syn)
            conn.handle_segment(now, Segment(th.seq, th.ack, th.flags, th.window, th.payload,
                                             th.options, th.urg))
        finally:
            self._service(h, now)
        return True

    def _send_tcp_raw(self, key: FourTuple, seq: int, ack: int, flags: int, wnd: int,
                      opts: bytes, tos: int = 0, md5_key: bytes | None = None) -> None:
        """A TCP segment for ``key`` that belongs to no connection (a cookie SYN-ACK);
        ``md5_key``: ``opts`` hold an MD5 placeholder, signed with it (RFC 2385)."""
        tmpl, ipsum, psum = tcp_template(key.local_addr, key.remote_addr, key.local_port,
                                         key.remote_port, tos, self.config.ttl)
        pkt = self._build_tcp(
            tmpl, ipsum, psum,
            seq, ack, flags, wnd, opts, native.csum_partial(opts) if opts else 0, b"", 0, 0,
            TxReason.SYN_COOKIE.value if self._journal is not None else None)
        if md5_key is not None:
            sign_packet(pkt, md5_key)
        self._queue_packet(pkt)

    # ----- receive coalescing (GRO)
    #
    # Within one read batch, consecutive in-order data segments of one connection whose
    # headers match are handed to the engine as one segment, as Linux's GRO does
    # (net/ipv4/tcp_offload.c tcp_gro_receive): only ACK (+PSH) segments with data; the same
    # ACK number, window and option bytes (so the same timestamps); contiguous sequence
    # numbers; every segment but the last of the first one's size; PSH or a shorter segment
    # ends the group. The group starts only where the engine's header prediction would take
    # each segment in turn (``Connection.gro_limit``: ESTABLISHED, at RCV.NXT, nothing out of
    # order) and stays inside the advertised window, so the engine ends in the same state,
    # and builds the same one ACK, as for the segments one by one (RFC 9293 3.10.7.4; the
    # receive MSS estimate uses the segment size, Segment.gso_size).

    def _gro_add(self, g: _GroGroup, th: TcpHeader, flags: int) -> bool:
        """Append ``th`` (same 4-tuple) to the group if it may be coalesced."""
        n = len(th.payload)
        if (not g.open or flags & ~PSH != ACK or th.seq != g.end or th.ack != g.ack
                or th.window != g.window or th.options is not g.options
                or th.option_kinds is not g.kinds or not 0 < n <= g.size
                or g.total + n > GRO_MAX_BYTES):
            return False
        end = (g.end + n) & 0xFFFFFFFF
        if not seq_le(end, g.limit):
            return False
        g.parts.append(th.payload)
        g.end = end
        g.total += n
        g.flags |= flags
        if flags & PSH or n < g.size:
            g.open = False
        return True

    def _gro_flush(self, now: float) -> None:
        """Hand the gathered group to its connection as one segment."""
        g = self._gro
        self._gro = None
        if g is None:
            return
        h = g.h
        if self._conns.get(g.key) is not h:
            return
        parts = g.parts
        if len(parts) == 1:
            payload: bytes | memoryview = parts[0]
            size = 0
        else:
            payload = b"".join(parts)
            size = g.size
            stats = self.stats
            stats["gro_segments"] += 1
            stats["gro_merged"] += len(parts)
        seg = Segment(g.seq, g.ack, g.flags, g.window, payload, g.options, 0, size)
        cnt = h.counters
        cnt.segs_in += len(parts)
        cnt.data_in += g.total
        cnt.wire_in += g.total + len(parts) * g.hlen
        try:
            try:
                h.conn.handle_segment(now, seg)
            finally:
                self._service(h, now)
        except Exception as e:  # noqa: BLE001 - a bug must not kill the event loop
            self._count_error(e, "while handling a packet")

    def _send_rst(self, remote: int, local: int, lport: int, rport: int, seq: int, ack: int,
                  flags: int, md5_key: bytes | None = None) -> None:
        """A RST that belongs to no connection; signed with ``md5_key`` when the socket
        that answers has one for the peer (RFC 2385 4.0, Linux tcp_v4_send_reset)."""
        self.stats["rst_sent"] += 1
        tmpl, ipsum, psum = tcp_template(local, remote, lport, rport, 0, self.config.ttl)
        opts = encode_options(TcpOptions(md5=MD5_ZERO)) if md5_key is not None else b""
        pkt = self._build_tcp(tmpl, ipsum, psum,
                              seq, ack, flags, 0, opts, 0, b"", 0, 0,
                              TxReason.RST_NO_CONNECTION.value if self._journal is not None
                              else None)
        if md5_key is not None:
            sign_packet(pkt, md5_key)  # (the checksum is recomputed there)
        self._queue_packet(pkt)

    # ----- output

    def _build_tcp(self, tmpl: bytes, ipsum: int, psum: int, seq: int, ack: int, flags: int,
                   wnd: int, opts: bytes, osum: int, payload: bytes | bytearray | memoryview,
                   urg: int, gso_size: int = 0, note: str | None = None) -> bytearray:
        """One IPv4+TCP packet from a 24-byte template (IPv4 header + ports), checksums filled;
        a :class:`GsoPacket` (partial TCP checksum) when ``gso_size`` is given. ``ipsum`` is the template's IPv4
        header sum (length and ident zero), ``psum`` the pseudo-header sum without length plus
        the ports, ``osum`` the options' partial sum (``native.csum_partial(opts)``).
        ``ipsum`` -1: a 44-byte IPv6 template (``tcp_template``), never a GSO packet."""
        if ipsum < 0:
            return self._build_tcp6(tmpl, psum, seq, ack, flags, wnd, opts, osum, payload,
                                    urg, note)
        olen = len(opts)
        thl = 20 + olen
        n = len(payload)
        tcp_len = thl + n
        total = 20 + tcp_len
        if gso_size:
            # A super-packet for the link's TSO: the checksum field holds only the folded
            # pseudo-header sum (RFC 9293 3.1, without the ports); the kernel finishes each
            # piece's checksum (virtio-net NEEDS_CSUM). No pass over the payload here.
            c = psum - ((tmpl[20] << 8) | tmpl[21]) - ((tmpl[22] << 8) | tmpl[23]) + tcp_len
            c = (c & 0xFFFF) + (c >> 16)
            tcsum = (c & 0xFFFF) + (c >> 16)
        else:
            # RFC 1071: the TCP checksum from the header's integers and the payload's sum
            # (the payload starts at an even offset, so the sums add up); one C call.
            c = (psum + tcp_len + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF)
                 + (thl << 10) + flags + wnd + urg + osum)
            if n:
                tcsum = native.checksum(payload, c)
            else:
                c = (c & 0xFFFF) + (c >> 16)
                c = (c & 0xFFFF) + (c >> 16)
                tcsum = ~c & 0xFFFF
        if gso_size:
            pkt: bytearray = GsoPacket(tmpl)
            pkt.gso_size = gso_size  # type: ignore[attr-defined]
            if note is not None:
                pkt.note = note  # type: ignore[attr-defined]
        elif note is not None:
            pkt = NotedPacket(tmpl)
            pkt.note = note
        else:
            pkt = bytearray(tmpl)
        self._ident = ident = (self._ident + 1) & 0xFFFF
        # RFC 1071: the header sum is the template's plus the two words that vary.
        c = ipsum + total + ident
        c = (c & 0xFFFF) + (c >> 16)
        c = (c & 0xFFFF) + (c >> 16)
        _IP_LEN_ID.pack_into(pkt, 2, total, ident)
        _U16.pack_into(pkt, 10, ~c & 0xFFFF)
        pkt += _TCP_REST.pack(seq, ack, thl << 2, flags, wnd, tcsum, urg)
        if olen:
            pkt += opts
        if n:
            pkt += payload
        return pkt

    def _build_tcp6(self, tmpl: bytes, psum: int, seq: int, ack: int, flags: int, wnd: int,
                    opts: bytes, osum: int, payload: bytes | bytearray | memoryview, urg: int,
                    note: str | None) -> bytearray:
        """``_build_tcp`` over IPv6: the payload length filled, no header checksum."""
        olen = len(opts)
        thl = 20 + olen
        n = len(payload)
        tcp_len = thl + n
        c = (psum + tcp_len + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF)
             + (thl << 10) + flags + wnd + urg + osum)
        if n:
            tcsum = native.checksum(payload, c & 0xFFFFFFFF)
        else:
            while c >> 16:
                c = (c & 0xFFFF) + (c >> 16)
            tcsum = ~c & 0xFFFF
        if note is not None:
            pkt: bytearray = NotedPacket(tmpl)
            pkt.note = note  # type: ignore[attr-defined]
        else:
            pkt = bytearray(tmpl)
        _U16.pack_into(pkt, 4, tcp_len)
        pkt += _TCP_REST.pack(seq, ack, thl << 2, flags, wnd, tcsum, urg)
        if olen:
            pkt += opts
        if n:
            pkt += payload
        return pkt

    def _emit(self, h: TcpHandle, seg: Segment) -> None:
        o = seg.options
        mkey = h.md5_key
        if o is h._oobj:
            opts = h._obytes
            osum = h._osum
        else:
            # RFC 2385 4.0: a keyed connection signs every segment (the digest goes in below).
            opts = encode_options(o if mkey is None else replace(o, md5=MD5_ZERO))
            osum = native.csum_partial(opts) if opts else 0
            h._oobj = o
            h._obytes = opts
            h._osum = osum
        payload = seg.payload
        queue = self._packets.append
        gso = seg.gso_size
        n = len(payload)
        note = None
        reason = seg.reason
        if reason is not None:
            if self._journal is not None:
                note = reason.value
            hist = h.history
            if hist is not None and (n or seg.flags & (SYN | FIN | RST)
                                     or reason is TxReason.ZERO_WINDOW_PROBE
                                     or reason is TxReason.KEEPALIVE):
                # (the graph's marks: retransmissions, probes, RSTs; the capture has the
                # ACKs that say something)
                hist.mark(h.conn._now, seg.seq, n, reason)
        tmpl, ipsum = (h._tmpl_ect, h._ipsum_ect) if seg.ecn else (h._tmpl, h._ipsum)
        build = self._build_tcp if mkey is None else partial(self._build_signed, mkey)
        cnt = h.counters
        cnt.data_out += n
        if gso <= 0 or n <= gso:
            cnt.segs_out += 1
            cnt.wire_out += n + len(tmpl) + len(opts) + 16  # template: IP header + ports
            queue(build(tmpl, ipsum, h._psum, seg.seq, seg.ack, seg.flags,
                        seg.wnd, opts, osum, payload, seg.urg, 0, note))
            return
        pieces = -(-n // gso)
        cnt.segs_out += pieces
        cnt.wire_out += n + pieces * (len(tmpl) + len(opts) + 16)
        if self.config.gso and ipsum >= 0 and mkey is None:
            # The link cuts it (TUN TSO, IPv4 only); never a signed one (each piece needs
            # its own digest: Linux turns GSO off for MD5 sockets).
            queue(self._build_tcp(tmpl, ipsum, h._psum, seg.seq, seg.ack, seg.flags,
                                  seg.wnd, opts, osum, payload, seg.urg, gso, note))
            return
        # Cut the super-segment into gso-sized pieces: each piece's sequence number advances,
        # SYN and CWR stay on the first, PSH and FIN go on the last only.
        self.stats["gso_cut"] += 1
        mv = memoryview(payload)
        flags = seg.flags
        first_flags = flags & ~(PSH | FIN)
        data_seq = seq_add(seg.seq, 1) if flags & SYN else seg.seq
        urg_end = seq_add(seg.seq, seg.urg) if flags & URG else None
        off = 0
        while off < n:
            end = min(off + gso, n)
            last = end == n
            f = flags if last else first_flags
            if off:
                f &= ~(SYN | CWR)  # as Linux tcp_gso_segment: CWR on the first piece only
            pseq = seq_add(data_seq, off) if off else seg.seq
            urg = 0
            if urg_end is not None:
                d = (urg_end - pseq) & 0xFFFFFFFF
                if 0 < d < 0x80000000:
                    urg = min(d, 0xFFFF)
                else:
                    f &= ~URG
            queue(build(tmpl, ipsum, h._psum, pseq, seg.ack, f, seg.wnd,
                        opts, osum, mv[off:end], urg, 0, note))
            off = end

    def _service(self, h: TcpHandle, now: float) -> None:
        """After any interaction with a connection: its output, its events, its timer.
        Inside receive_batch only the network side defers it to the batch's end."""
        conn = h.conn
        if h._tw is not None:  # replaced by its TIME-WAIT entry: nothing more goes out
            conn.pending_output()
            conn.pending_events()
            return
        deferred = self._deferred
        if deferred is not None and conn.state is not State.CLOSED:
            deferred[h] = None
            return
        out = conn.pending_output(now)
        if out:
            emit = self._emit
            for seg in out:
                emit(h, seg)
        hist = h.history
        if hist is not None:
            hist.sample(now, conn)
        evs = conn.pending_events()
        if evs:
            closed = False
            for ev in evs:
                self._events.append((h, ev))
                if isinstance(ev, Connected):
                    lst = h.listener
                    if lst is not None and not h.accepted and not lst.closed:
                        if lst._embryonic.pop(h.key, None) is not None:
                            lst._queue.append(h)
                            self._events.append((lst, AcceptReady()))
                elif isinstance(ev, Closed):
                    closed = True
            if closed:
                self._forget(h)
                return
        if conn.state is State.TIME_WAIT and self._conns.get(h.key) is h and hasattr(
                conn, "to_time_wait"):
            self._enter_time_wait(h, now)
            return
        d = conn.next_deadline(False)  # pending_output() above built what was due
        if d != h._deadline:
            h._deadline = d
            if d is not None:
                self._timer_order += 1
                heapq.heappush(self._timers, (d, self._timer_order, h.key))
                if len(self._timers) > 4 * len(self._conns) + 1024:
                    self._compact_timers()

    def _enter_time_wait(self, h: TcpHandle, now: float) -> None:
        """Replace a connection that reached TIME-WAIT with a compact entry (Linux's timewait
        sockets); its owner gets ``Closed`` and may forget it. Past ``max_time_wait`` entries
        the connection just ends (Linux: "time wait bucket table overflow")."""
        conn = h.conn
        self._forget(h)
        if len(self._timewait) >= self.config.max_time_wait:
            self.stats["time_wait_overflow"] += 1
        else:
            tw = conn.to_time_wait(now)
            for seg in conn.pending_output():  # (normally none: output was drained)
                self._emit(h, seg)
            tw.key = h.key
            tw.tos = h.tos
            tw.md5_key = h.md5_key  # its ACKs and RSTs are signed too (Linux tcptw_md5_key)
            tw.queued = 1
            self._timewait[h.key] = tw
            self._tw_queue.append(tw)
            h._tw = tw
            self.stats["time_wait_entered"] += 1
        conn.pending_events()
        self._events.append((h, Closed()))

    def _time_wait_segment(self, now: float, tw: TimeWait, seg: Segment) -> None:
        """A segment for a 4-tuple in TIME-WAIT: the entry's reply, its drop counted."""
        deadline = tw.deadline
        reply, drop = tw.handle_segment(now, seg)
        if drop is not None:
            self._drops[drop] += 1
        if tw.deadline != deadline:  # restarted (the peer's FIN again): re-queue
            tw.queued += 1
            self._tw_queue.append(tw)
        if reply is not None:
            key = tw.key
            assert isinstance(key, FourTuple)
            tmpl, ipsum, psum = tcp_template(key.local_addr, key.remote_addr, key.local_port,
                                             key.remote_port, tw.tos, self.config.ttl)
            mk = tw.md5_key
            ro = reply.options if mk is None else replace(reply.options, md5=MD5_ZERO)
            opts = b"" if ro == NO_OPTIONS else encode_options(ro)
            pkt = self._build_tcp(
                tmpl, ipsum, psum,
                reply.seq, reply.ack, reply.flags, reply.wnd, opts,
                native.csum_partial(opts) if opts else 0, b"", 0)
            if mk is not None:
                sign_packet(pkt, mk)
            self._queue_packet(pkt)

    def _expire_time_wait(self, now: float | None) -> float | None:
        """Drop the entries whose 2*MSL ended by ``now`` (None: none); return the next
        deadline. The queue is in expiry order; stale copies (restarted or reused entries)
        are skipped."""
        q = self._tw_queue
        table = self._timewait
        while q:
            tw = q[0]
            if tw.queued > 1:  # restarted: a later copy stands for it
                tw.queued -= 1
                q.popleft()
                continue
            if table.get(tw.key) is not tw:  # reused by a new SYN
                tw.queued = 0
                q.popleft()
                continue
            if now is None or tw.deadline > now:
                return tw.deadline
            q.popleft()
            tw.queued = 0
            del table[tw.key]
            self.stats["time_wait_expired"] += 1
        return None

    def _forget(self, h: TcpHandle) -> None:
        key = h.key
        if self._conns.get(key) is h:
            del self._conns[key]
        h._deadline = None
        lst = h.listener
        if lst is not None:
            # A connection already in the accept queue stays there when it ends (an RST, a
            # timeout, an ICMP error): as Linux (inet_csk_accept returns any queued child),
            # accept() hands it over with its unread bytes and its error (Listener.accept).
            lst._embryonic.pop(key, None)
        d = getattr(h.conn, "drops", None)
        if d:
            self._closed_drops.update(d)
        release = getattr(h.conn, "release_memory", None)
        if release is not None:
            release()  # unread bytes of a forgotten connection no longer count
        self.stats["closed"] += 1
        cnt = h.counters
        if cnt.ended is None:
            cnt.ended = getattr(h.conn, "_now", None)
            cnt.end_state = str(getattr(h.conn, "state", ""))
        hist = h.history
        if hist is not None:
            h.history = None
            self._history_live -= 1
            self.closed_history.append((key, h.conn.info(), hist))

    def _compact_timers(self) -> None:
        """Rebuild the heap with exactly one entry per connection that has a deadline."""
        timers: list[tuple[float, int, FourTuple]] = []
        for key, h in self._conns.items():
            if h._deadline is not None:
                self._timer_order += 1
                timers.append((h._deadline, self._timer_order, key))
        heapq.heapify(timers)
        self._timers = timers

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        """The earliest time ``handle_timers`` has work to do, or ``None``."""
        timers = self._timers
        conns = self._conns
        while timers:
            d, _, key = timers[0]
            h = conns.get(key)
            if h is not None and h._deadline == d:
                break
            heapq.heappop(timers)  # stale entry
        best = timers[0][0] if timers else None
        tw = self._expire_time_wait(None) if self._tw_queue else None
        if tw is not None and (best is None or tw < best):
            best = tw
        fd = self._ip_deadline()
        if fd is not None and (best is None or fd < best):
            best = fd
        return best

    def handle_timers(self, now: float) -> None:
        """Run every timer due at ``now``: connection timers and fragment timeouts."""
        self._now = now
        if self._tw_queue:
            self._expire_time_wait(now)
        self._ip_timers(now)
        timers = self._timers
        conns = self._conns
        due: list[TcpHandle] = []
        while timers and timers[0][0] <= now:
            d, _, key = heapq.heappop(timers)
            h = conns.get(key)
            if h is None or h._deadline != d:
                continue  # stale
            h._deadline = None
            due.append(h)
        # Timers re-armed while running these wait for the next call: the loop is bounded.
        for h in due:
            if not h.open:
                continue
            try:
                try:
                    h.conn.handle_timers(now)
                finally:
                    self._service(h, now)
            except Exception as e:  # a bug must not stop the other timers or the loop
                self._count_error(e, "in a connection timer")
