"""System calls of packetdrill scripts, emulated over the stack's application API.

This module owns the file-descriptor table of a script run and the mapping from BSD socket
calls (``socket``, ``bind``, ``listen``, ``accept``, ``connect``, ``read``/``recv``,
``write``/``send``, ``shutdown``, ``close``, ``fcntl``, ``setsockopt``, ``getsockopt``) to
``pytcp.stack.Stack`` (``listen``, ``connect``) and ``TcpHandle`` / ``Connection`` methods,
including Linux's errno conventions (``EAGAIN`` for a non-blocking call that would block,
``EINPROGRESS`` for a non-blocking connect, a pending ``SO_ERROR`` reported once, then EOF or
``EPIPE``). A call that would block on a blocking descriptor is returned as ``BLOCKED`` and
retried by the runner after every later step. ``send(..., MSG_OOB)`` sends urgent data,
``IP_TOS`` sets the connection's IP TOS byte, and the pytcp options ``PYTCP_URGENT_PENDING`` /
``PYTCP_URGENT_EVENTS`` show received urgent data (RFC 9293 MUST-30..33, MUST-48).
Each socket has an error queue (:mod:`pytcp.api.errqueue`): ``SO_ZEROCOPY`` and
``send/sendmsg(..., MSG_ZEROCOPY)`` completions and ``SO_TIMESTAMPING`` TX timestamps, read
with ``recvmsg(..., MSG_ERRQUEUE)`` whose ``msg_flags`` and ``msg_control`` (IP_RECVERR's
``sock_extended_err`` fields, SCM_TIMESTAMPING's time) are compared; a non-empty queue is
POLLERR/EPOLLERR and queuing a notification wakes edge-triggered epoll.

Data written is :func:`pytcp.script.matcher.stream_bytes` at the write offset; data read is
checked against the same pattern at the read offset, so a script proves that the bytes arrive
intact and in order.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass, field
from typing import Any

from pytcp.api import errqueue as eq
from pytcp.script.matcher import stream_bytes
from pytcp.tcp.errors import TcpUsageError
from pytcp.tcp.events import (
    Closed,
    ConnectionRefused,
    ConnectionReset,
    ConnectionTimedOut,
    EndOfStream,
    TxProgress,
    UrgentData,
)

O_NONBLOCK = 0o4000

# Linux's tcp_states.h numbering, as TCP_INFO reports it.
LINUX_STATE = {
    "ESTABLISHED": 1, "SYN-SENT": 2, "SYN-RECEIVED": 3, "FIN-WAIT-1": 4, "FIN-WAIT-2": 5,
    "TIME-WAIT": 6, "CLOSED": 7, "CLOSE-WAIT": 8, "LAST-ACK": 9, "LISTEN": 10, "CLOSING": 11,
}
O_RDWR = 2

# Linux's socket-buffer numbers (net/core/sock.c, include/net/tcp.h).
SOCK_BUF_MAX = 212992          # net.core.wmem_max / rmem_max defaults
SOCK_MIN_SNDBUF = 4608         # 2 * (2048 + sizeof(struct sk_buff)) on x86-64
SOCK_MIN_RCVBUF = 2304
LINUX_RCVBUF_DEFAULT = 131072  # net.ipv4.tcp_rmem[1]: sk_rcvbuf, the error queue's bound
TCP_MIN_MSS = 88
TCP_MSS_DEFAULT = 536          # mss_cache of a socket with no connection yet
DEFAULT_NOTSENT_LOWAT = 0xFFFFFFFF
SHADOW_FD_BASE = 1 << 20       # where a shadowed socket (see SocketTable._shadow) goes

# Symbolic constants scripts write where a number goes (Linux values).
SYMBOLS: dict[str, int] = {
    "O_RDWR": O_RDWR, "O_NONBLOCK": O_NONBLOCK,
    "POLLIN": 0x1, "POLLPRI": 0x2, "POLLOUT": 0x4, "POLLERR": 0x8, "POLLHUP": 0x10,
    "POLLNVAL": 0x20, "POLLRDNORM": 0x40, "POLLRDBAND": 0x80, "POLLWRNORM": 0x100,
    "POLLWRBAND": 0x200, "POLLRDHUP": 0x2000,
    "EPOLLIN": 0x1, "EPOLLPRI": 0x2, "EPOLLOUT": 0x4, "EPOLLERR": 0x8, "EPOLLHUP": 0x10,
    "EPOLLRDNORM": 0x40, "EPOLLWRNORM": 0x100, "EPOLLRDHUP": 0x2000,
    "EPOLLEXCLUSIVE": 1 << 28, "EPOLLONESHOT": 1 << 30, "EPOLLET": 1 << 31,
    "MSG_OOB": 0x1, "MSG_PEEK": 0x2, "MSG_DONTWAIT": 0x40, "MSG_EOR": 0x80,
    "MSG_WAITALL": 0x100, "MSG_NOSIGNAL": 0x4000, "MSG_MORE": 0x8000,
    "MSG_ZEROCOPY": 0x4000000, "MSG_FASTOPEN": 0x20000000,
    "SHUT_RD": 0, "SHUT_WR": 1, "SHUT_RDWR": 2, "SOCK_STREAM": 1,
    "MSG_TRUNC": eq.MSG_TRUNC, "MSG_ERRQUEUE": eq.MSG_ERRQUEUE,
    "SOL_SOCKET": eq.SOL_SOCKET, "SCM_TIMESTAMPING": eq.SCM_TIMESTAMPING,
    "SOL_IP": eq.SOL_IP, "IP_RECVERR": eq.IP_RECVERR, "SOL_IPV6": eq.SOL_IPV6,
    "IPV6_RECVERR": eq.IPV6_RECVERR,
    "SO_EE_ORIGIN_NONE": eq.SO_EE_ORIGIN_NONE, "SO_EE_ORIGIN_LOCAL": eq.SO_EE_ORIGIN_LOCAL,
    "SO_EE_ORIGIN_ICMP": eq.SO_EE_ORIGIN_ICMP, "SO_EE_ORIGIN_ICMP6": eq.SO_EE_ORIGIN_ICMP6,
    "SO_EE_ORIGIN_TIMESTAMPING": eq.SO_EE_ORIGIN_TIMESTAMPING,
    "SO_EE_ORIGIN_TXSTATUS": eq.SO_EE_ORIGIN_TIMESTAMPING,
    "SO_EE_ORIGIN_ZEROCOPY": eq.SO_EE_ORIGIN_ZEROCOPY,
    "SO_EE_CODE_ZEROCOPY_COPIED": eq.SO_EE_CODE_ZEROCOPY_COPIED,
    "SCM_TSTAMP_SND": eq.SCM_TSTAMP_SND, "SCM_TSTAMP_SCHED": eq.SCM_TSTAMP_SCHED,
    "SCM_TSTAMP_ACK": eq.SCM_TSTAMP_ACK,
}
SYMBOLS.update({k: v for k, v in vars(eq).items() if k.startswith("SOF_TIMESTAMPING_")})
# IP_MTU_DISCOVER values (Linux include/uapi/linux/in.h).
SYMBOLS.update({"IP_PMTUDISC_DONT": 0, "IP_PMTUDISC_WANT": 1, "IP_PMTUDISC_DO": 2,
                "IP_PMTUDISC_PROBE": 3, "IP_PMTUDISC_INTERFACE": 4, "IP_PMTUDISC_OMIT": 5})


MSG_OOB, MSG_PEEK, MSG_DONTWAIT, MSG_EOR = 0x1, 0x2, 0x40, 0x80
MSG_MORE, MSG_ERRQUEUE = 0x8000, 0x2000
POLLIN, POLLOUT, POLLERR, POLLHUP, POLLNVAL = 0x1, 0x4, 0x8, 0x10, 0x20
POLLRDNORM, POLLWRNORM, POLLRDHUP = 0x40, 0x100, 0x2000
EPOLLERR, EPOLLHUP, EPOLLEXCLUSIVE, EPOLLONESHOT, EPOLLET = 0x8, 0x10, 1 << 28, 1 << 30, 1 << 31


def _flags(text: str) -> int:
    """``A|B|0x4`` with the names of :data:`SYMBOLS`."""
    total = 0
    for part in text.replace(" ", "").split("|"):
        if part:
            total |= _int_arg(part)
    return total


def _msg_flag_names(text: str) -> str:
    """A send call's flags as ``MSG_*`` names joined by ``|``, whether the script wrote names
    or a number (``0x20000000`` is MSG_FASTOPEN); unknown bits stay as a hex number."""
    value = _flags(text)
    names = [k for k, v in SYMBOLS.items() if k.startswith("MSG_") and value & v == v]
    rest = value & ~sum(SYMBOLS[k] for k in names)
    return "|".join(names + ([hex(rest)] if rest else []))


class SyscallError(Exception):
    """The script used a call or an argument this emulation does not support."""


class _BadFd(Exception):
    """The call named a descriptor that is not open: the call returns -1 EBADF."""


class SyscallMismatch(Exception):
    """A value the call produced differs from the one the script wrote (e.g. SO_ERROR)."""


class _Blocked:
    def __repr__(self) -> str:
        return "BLOCKED"


BLOCKED = _Blocked()

Outcome = tuple[int, str | None]  # (return value, errno name or None)


@dataclass(slots=True)
class ConnState:
    """Per-connection state the socket layer keeps (stored in ``TcpHandle.user_data``)."""

    so_error: int = 0
    eof: bool = False
    reset: bool = False
    closed: bool = False
    read_offset: int = 0
    write_offset: int = 0
    shut_wr: bool = False
    woken: bool = True  # an event came since a blocking write last waited (its wake-up)
    data_error: str = ""
    urgent_events: int = 0  # UrgentData events seen (MUST-32: the asynchronous notice)
    # (stream offset, bytes) a sendfile() sent in place of the pattern (stream_bytes)
    file_data: list[tuple[int, bytes]] = field(default_factory=list)


@dataclass(slots=True)
class Sock:
    fd: int
    nonblocking: bool = False
    listener: Any = None
    handle: Any = None
    connecting: bool = False
    nodelay: bool | None = None
    keepalive: bool | None = None
    keep_idle: float | None = None
    keep_intvl: float | None = None
    keep_cnt: int | None = None
    linger_zero: bool = False
    syn_cnt: int | None = None
    retries2: int | None = None
    tos: int | None = None  # IP_TOS (MUST-48)
    pmtudisc: int | None = None  # IP_MTU_DISCOVER (DF bit, RFC 1191)
    pending_write: int = 0  # bytes a blocking write still has to hand over
    pending_written: int = 0
    opts: dict[str, int] = field(default_factory=dict)
    sndbuf: int | None = None  # SO_SNDBUF as Linux stores it (twice the value set)
    rcvbuf: int | None = None  # SO_RCVBUF, likewise
    user_mss: int | None = None  # TCP_MAXSEG set before the connection exists
    cork: bool | None = None  # TCP_CORK
    notsent_lowat: int | None = None  # TCP_NOTSENT_LOWAT
    user_timeout: int | None = None  # TCP_USER_TIMEOUT (ms)
    inq: bool = False  # TCP_INQ: recvmsg reports the bytes left to read
    shut_rd: bool = False  # shutdown(SHUT_RD): reads return 0 once the queue is empty
    fastopen_qlen: int = 0  # TCP_FASTOPEN on a listener (RFC 7413)
    fastopen_connect: bool = False  # TCP_FASTOPEN_CONNECT
    # TCP_MD5SIG keys set before listen()/connect() (RFC 2385): (peer address, key, prefix).
    md5: list[tuple[int, bytes, int | None]] = field(default_factory=list)
    deferred_connect: bool = False  # connect() returned 0; the SYN leaves with the first write
    # The socket error queue: MSG_ZEROCOPY completions, SO_TIMESTAMPING TX timestamps
    # (bounded like Linux's by the receive buffer: see pytcp.api.errqueue).
    tx: eq.TxNotifier = field(default_factory=lambda: eq.TxNotifier(
        eq.ErrorQueue(LINUX_RCVBUF_DEFAULT)))
    # A send in progress: (its first stream offset, MSG_ZEROCOPY, bytes before it unsent).
    pending_tx: tuple[int, bool, bool] | None = None
    pending_fault: bool = False  # the blocking write's buffer is NULL: EFAULT once connected


@dataclass(slots=True)
class Epoll:
    """An epoll instance: registered fds with their event masks and, for EPOLLET, whether
    a wake-up arrived since the last report."""

    fd: int
    interest: dict[int, int] = field(default_factory=dict)  # fd -> events mask
    armed: dict[int, bool] = field(default_factory=dict)
    fired: set[int] = field(default_factory=set)  # EPOLLONESHOT reported: disabled until MOD


MAX_WAIT = 3600.0  # a poll()/epoll_wait() timeout longer than this is treated as infinite


def state_of(handle: Any) -> ConnState:
    st = handle.user_data
    if not isinstance(st, ConnState):
        st = ConnState()
        handle.user_data = st
    return st


INFINITE_SSTHRESH = 0x7FFFFFFF  # Linux's TCP_INFINITE_SSTHRESH


def tcp_info_fields(handle: Any, now: float) -> dict[str, int]:
    """Linux's TCP_INFO of one connection as far as the engine knows it (Linux's units:
    microseconds for times, milliseconds for ``last_*``, segments for cwnd, ssthresh and
    packet counts, bytes for windows). Fields the engine has no counterpart for are absent."""
    conn = handle.conn
    info = conn.info()
    mss = max(1, int(getattr(conn, "snd_mss", 1)))
    rtt = getattr(conn, "_rtt", None)
    in_flight = max(0, (int(getattr(conn, "snd_max", 0)) - int(getattr(conn, "snd_una", 0)))
                    & 0xFFFFFFFF)
    opts = 0
    if getattr(conn, "ts_ok", False):
        opts |= 1
    if getattr(conn, "sack_ok", False):
        opts |= 2
    if getattr(conn, "ws_ok", False):
        opts |= 4
    if getattr(conn, "ecn_ok", False):
        opts |= 8   # TCPI_OPT_ECN (RFC 3168 negotiated)
    if getattr(conn, "ecn_seen", False):
        opts |= 16  # TCPI_OPT_ECN_SEEN (a CE or ECT mark arrived)
    if getattr(conn, "syn_data_acked", False):
        opts |= 32  # TCPI_OPT_SYN_DATA (RFC 7413: data in the SYN was acknowledged)
    ca_state = getattr(conn, "ca_state", None)
    if ca_state is None:
        if getattr(conn, "_in_recovery", False):
            ca_state = 3  # TCP_CA_Recovery
        elif getattr(conn, "_cwr_state", False):
            ca_state = 2  # TCP_CA_CWR (RFC 3168 reduction)
        elif rtt is not None and int(getattr(rtt, "backoffs", 0) or 0) and in_flight:
            ca_state = 4  # TCP_CA_Loss
        elif getattr(conn, "_dupacks", 0):
            ca_state = 1  # TCP_CA_Disorder
        else:
            ca_state = 0
    ssthresh = info.ssthresh // mss
    dack = getattr(conn, "_dack", None)  # the delayed-ACK state (tcp/delack.py)
    fields = {
        "tcpi_state": LINUX_STATE.get(str(info.state), -1),
        "tcpi_ca_state": int(ca_state),
        "tcpi_options": opts,
        "tcpi_rto": round(info.rto * 1e6),
        "tcpi_rtt": round((info.srtt or 0.0) * 1e6),
        "tcpi_rttvar": round((getattr(rtt, "rttvar", None) or 0.0) * 1e6),
        "tcpi_backoff": int(getattr(rtt, "backoffs", 0) or 0),
        "tcpi_snd_cwnd": info.cwnd // mss,
        # Linux reports its TCP_INFINITE_SSTHRESH as is (tcp_get_info); pytcp's "infinite" is
        # the same number in bytes (congestion.base.INITIAL_SSTHRESH).
        "tcpi_snd_ssthresh": INFINITE_SSTHRESH if info.ssthresh >= INFINITE_SSTHRESH
        else ssthresh,
        "tcpi_total_retrans": info.retransmits,
        "tcpi_snd_mss": mss,
        "tcpi_rcv_mss": int(getattr(conn, "_rcv_mss", 0) or mss),
        # Linux tcp_get_info: the delayed-ACK timeout (ATO, capped at TCP_DELACK_MAX), in µs.
        "tcpi_ato": round(min(dack.ato, dack.delack_max) * 1e6) if dack is not None else 0,
        "tcpi_advmss": int(getattr(conn, "our_mss", 0) or mss),
        "tcpi_unacked": -(-in_flight // mss),
        "tcpi_reordering": 3,  # (RFC 5681 DupThresh; with RACK, the degree seen below)
        "tcpi_probes": int(getattr(conn, "_probes_out", 0) or 0),
        "tcpi_snd_wnd": info.snd_wnd,
        "tcpi_rcv_wnd": info.rcv_wnd,
        "tcpi_bytes_received": info.bytes_in,
        "tcpi_bytes_sent": info.bytes_out,
        "tcpi_bytes_acked": max(0, info.bytes_out - in_flight),
        "tcpi_delivered": int(getattr(conn, "delivered", 0)),
        # Linux's chronographs (tcp_get_info_chrono_stats), in microseconds.
        **({} if not hasattr(conn, "chrono") else dict(zip(
            ("tcpi_busy_time", "tcpi_rwnd_limited", "tcpi_sndbuf_limited"),
            (round(x * 1e6) for x in conn.chrono(now))))),
    }
    rack = getattr(conn, "_rack", None)
    if rack is not None and getattr(conn, "_rack_on", False):
        # Linux tp->reordering / tp->reord_seen, tp->lost_out and tp->retrans_out (segments).
        fields["tcpi_reordering"] = int(rack.reordering)
        fields["tcpi_reord_seen"] = int(rack.reordering_events)
        fields["tcpi_lost"] = int(rack.lost_out(mss))
        fields["tcpi_retrans"] = int(rack.retrans_segments(mss))
    sb = getattr(conn, "_sb", None)
    if sb is not None and hasattr(sb, "sacked_bytes"):
        fields["tcpi_sacked"] = -(-int(sb.sacked_bytes) // mss)  # segments SACKed, not acked
    last_rx = getattr(conn, "_last_rx", None)
    if isinstance(last_rx, (int, float)):
        fields["tcpi_last_data_recv"] = max(0, round((now - last_rx) * 1000))
    return fields


def _err(name: str) -> Outcome:
    return (-1, name)


def _c_string(tok: str) -> bytes:
    """A C string literal argument (``"\\xf7\\x63..."``) as bytes."""
    t = tok.strip()
    if len(t) >= 2 and t[0] == '"' and t[-1] == '"':
        t = t[1:-1]
    try:
        return t.encode("latin-1").decode("unicode_escape").encode("latin-1")
    except (UnicodeError, ValueError):
        raise SyscallError(f"expected a string, got {tok!r}") from None


def _int_arg(tok: str) -> int:
    """A number as scripts write it: ``5``, ``0x10``, ``[5]``, an errno name (``[ECONNRESET]``)
    or a few symbolic constants."""
    t = tok.strip()
    if t.startswith("[") and t.endswith("]"):
        t = t[1:-1].strip()
    try:
        return int(t, 0)
    except ValueError:
        pass
    if t.startswith("E") and isinstance(getattr(errno, t, None), int):
        return int(getattr(errno, t))
    if t in SYMBOLS:
        return SYMBOLS[t]
    raise SyscallError(f"expected a number, got {tok!r}")


def _split_top(text: str) -> list[str]:
    """``a,{b,c},d`` -> ``["a", "{b,c}", "d"]`` (commas outside braces and brackets)."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def _cmsg_list(text: str) -> list[tuple[str, str, dict[str, str]]]:
    """packetdrill's ``msg_control=[{cmsg_level=L, cmsg_type=T, cmsg_data={k=v, ...}}, ...]``
    (spaces removed) as ``(L, T, {k: v})``."""
    out = []
    for item in _split_top(text):
        if not (item.startswith("{") and item.endswith("}")):
            raise SyscallError(f"cannot read control message {item[:60]!r}")
        kv = {}
        for part in _split_top(item[1:-1]):
            k, _, v = part.partition("=")
            kv[k] = v
        data: dict[str, str] = {}
        raw = kv.get("cmsg_data", "")
        if raw.startswith("{") and raw.endswith("}"):
            for part in _split_top(raw[1:-1]):
                k, _, v = part.partition("=")
                data[k] = v
        out.append((kv.get("cmsg_level", ""), kv.get("cmsg_type", ""), data))
    return out


def _describe(entry: eq.ErrEntry) -> str:
    ee = entry.ee
    t = "" if entry.tstamp is None else f" t={entry.tstamp:.6f}"
    return (f"got ee_errno={ee.ee_errno} ee_origin={ee.ee_origin} ee_code={ee.ee_code} "
            f"ee_info={ee.ee_info} ee_data={ee.ee_data}{t}")


class SocketTable:
    """The fd table of one script run over one stack."""

    def __init__(self, stack: Any, *, local_port: int, remote_addr: str,
                 connect_port: int) -> None:
        self.stack = stack
        self.local_port = local_port      # what listen() listens on
        self.remote_addr = remote_addr    # where connect() goes ...
        self.connect_port = connect_port  # ... and to which port
        self.socks: dict[int, Sock] = {}
        self.epolls: dict[int, Epoll] = {}
        # Virtual files (the runner's reading of ``dd if=/dev/zero of=PATH``): open() gives a
        # descriptor, sendfile() sends their bytes. Nothing on the host is opened.
        self.files: dict[str, bytes] = {}
        self.file_fds: dict[int, list[Any]] = {}  # fd -> [content, position]
        self.script_fds = True  # number descriptors as the script does (False: lowest free)
        # Options of the socket whose connection the stack creates next (a connect()ing
        # socket, else the last listening one): applied by the connection factory so the
        # SYN or SYN-ACK already carries them (TCP_MAXSEG, SO_SNDBUF, SO_RCVBUF).
        self._next_conn_opts: Sock | None = None
        self._listen_opts: Sock | None = None
        self._base_factory = stack.connection_factory
        stack.connection_factory = self._make_connection
        # Blocked poll()/epoll_wait() calls that time out: the runner wakes at these times.
        self.wakeups: list[float] = []
        self._timeouts: dict[int, float] = {}  # blocked call (id of its args) -> deadline
        self._current_call = 0
        self.notsent_lowat = DEFAULT_NOTSENT_LOWAT  # net.ipv4.tcp_notsent_lowat
        # packetdrill's "socket under test": the last socket(); while it is listening, the
        # next inbound packet starts a new connection from a new script-side port.
        self.under_test = -1
        self.listening_under_test = False
        self.on_connect: Any = None  # runner callback(handle) when a connection is created
        self._now = 0.0  # the time of the last call or event drain
        self.v6 = False  # the runner's address family (IP_RECVERR or IPV6_RECVERR)
        self.md5_secret: bytes | None = None  # --tcp_md5_secret (TCP_MD5SIG [1])
        self.tolerance = 0.004  # the runner's timing tolerance (SCM_TIMESTAMPING checks)

    # --- helpers ---
    def _sock(self, tok: str) -> Sock:
        fd = _int_arg(tok)
        s = self.socks.get(fd)
        if s is None:
            raise _BadFd()
        return s

    def _new_fd(self, want: int) -> int:
        """The script's own numbering: the descriptor the line says the call returns, when
        it is free (packetdrill maps script fds to live ones the same way)."""
        if self.script_fds and want >= 0 and want in self.socks and want not in self.epolls:
            # packetdrill maps script fds to live ones: a script may give a new socket the
            # number of one it never closed (the new one shadows it). The old socket stays
            # open under a number the script cannot name.
            self._shadow(want)
        if (self.script_fds and want >= 0 and want not in self.socks and want not in self.epolls
                and want not in self.file_fds):
            return want
        fd = 3
        while fd in self.socks or fd in self.epolls or fd in self.file_fds:
            fd += 1
        return fd

    def _shadow(self, fd: int) -> None:
        """Renumber the open socket ``fd`` past any number a script writes."""
        nfd = SHADOW_FD_BASE + fd
        while nfd in self.socks or nfd in self.epolls:
            nfd += 1
        s = self.socks.pop(fd)
        s.fd = nfd
        self.socks[nfd] = s
        for ep in self.epolls.values():
            if fd in ep.interest:
                ep.interest[nfd] = ep.interest.pop(fd)
            if fd in ep.armed:
                ep.armed[nfd] = ep.armed.pop(fd)
        if self.under_test == fd:
            self.under_test = nfd

    def fd_of(self, tok: str) -> int:
        return _int_arg(tok)

    def next_wakeup(self, after: float) -> float | None:
        self.wakeups = [t for t in self.wakeups if t > after]
        return min(self.wakeups) if self.wakeups else None

    def _make_connection(self, config: Any, *, iss: int, now: float, mss: int) -> Any:
        factory = self._base_factory
        if factory is None:
            from pytcp.tcp.connection import Connection

            factory = Connection
        o = self._next_conn_opts or self._listen_opts
        if o is not None:
            changes: dict[str, object] = {}
            if o.sndbuf is not None:
                changes["send_buffer"] = changes["send_buffer_min"] = o.sndbuf
            if o.rcvbuf is not None:
                # SO_RCVBUF fixes the buffer (Linux SOCK_RCVBUF_LOCK: no autotuning).
                changes["recv_buffer"] = changes["recv_buffer_min"] = o.rcvbuf
            if changes:
                config = config.replace(**changes)
            if o.user_mss is not None:
                mss = min(mss, o.user_mss)  # Linux: TCP_MAXSEG clamps what we announce
        return factory(config, iss=iss, now=now, mss=mss)

    def _apply_opts(self, s: Sock, now: float) -> None:
        if s.handle is None:
            return
        h = s.handle
        # TcpHandle's forwarding setters refresh the stack's timer heap.
        if s.nodelay is not None and bool(getattr(h.conn, "nodelay", False)) != s.nodelay:
            h.set_nodelay(s.nodelay, now=now)
        if s.keepalive is not None or s.keep_idle or s.keep_intvl or s.keep_cnt:
            h.set_keepalive(bool(s.keepalive), idle=s.keep_idle, interval=s.keep_intvl,
                            count=s.keep_cnt, now=now)
        if s.tos is not None and s.tos != h.tos:
            h.set_tos(s.tos)  # MUST-48
        if s.pmtudisc is not None and s.pmtudisc != h.pmtudisc:
            h.set_pmtudisc(s.pmtudisc)
        if s.syn_cnt is not None or s.retries2 is not None:
            h.conn.set_retries(retries2=s.retries2, syn_retries=s.syn_cnt)  # MUST-21
        if s.cork is not None and bool(getattr(h.conn, "cork", False)) != s.cork:
            h.set_cork(s.cork, now=now)
        conn = h.conn
        if s.sndbuf is not None and getattr(conn, "sndbuf", None) != s.sndbuf:
            # SO_SNDBUF fixes the limit (Linux SOCK_SNDBUF_LOCK: no more autotuning).
            if hasattr(conn, "set_sndbuf"):
                conn.set_sndbuf(s.sndbuf)
            else:
                conn.config = conn.config.replace(send_buffer=s.sndbuf,
                                                  send_buffer_min=s.sndbuf)
        # TCP_NOTSENT_LOWAT: the socket's value, 0 meaning net.ipv4.tcp_notsent_lowat.
        lowat = s.notsent_lowat or self.notsent_lowat
        if hasattr(conn, "set_notsent_lowat") and conn.notsent_lowat != lowat:
            conn.set_notsent_lowat(lowat)
        if s.user_timeout is not None and hasattr(conn, "set_user_timeout"):
            conn.set_user_timeout(s.user_timeout / 1000.0)
        if s.rcvbuf is not None and conn.config.recv_buffer != s.rcvbuf:
            if hasattr(conn, "set_rcvbuf"):
                conn.set_rcvbuf(s.rcvbuf)
            else:
                conn.config = conn.config.replace(recv_buffer=s.rcvbuf)
        if s.tx.tracking and getattr(conn, "_tx_track", None) is None and hasattr(
                conn, "track_tx"):
            conn.track_tx(True)  # TxProgress events for the error queue

    def _arm(self, obj: Any) -> None:
        """A wake-up for ``obj`` (a handle or a listener): edge-triggered epoll reports it."""
        for fd, s in self.socks.items():
            if s.handle is obj or s.listener is obj:
                for ep in self.epolls.values():
                    if fd in ep.armed:
                        ep.armed[fd] = True

    def _sock_of(self, handle: Any) -> Sock | None:
        for s in self.socks.values():
            if s.handle is handle:
                return s
        return None

    def drain_events(self, now: float | None = None) -> None:
        if now is None:
            now = self._now
        self._now = now
        for obj, ev in self.stack.pending_events():
            if isinstance(ev, TxProgress):
                # The error queue (MSG_ZEROCOPY, SO_TIMESTAMPING): a queued notification
                # wakes epoll (Linux sk_error_report); progress alone does not.
                s = self._sock_of(obj)
                if s is not None and s.tx.on_progress(now, ev.sent, ev.acked):
                    self._arm(obj)
                continue
            self._arm(obj)
            if not hasattr(obj, "conn"):
                continue  # listener events (AcceptReady): accept() polls instead
            st = state_of(obj)
            st.woken = True  # (a writer sleeping in sk_stream_wait_memory wakes to look)
            if isinstance(ev, (ConnectionReset, ConnectionTimedOut)):
                # Linux tcp_done -> tcp_write_queue_purge: the unacknowledged buffers are
                # freed, so their zerocopy completions are queued.
                s = self._sock_of(obj)
                if s is not None:
                    s.tx.on_purge(now)
            if isinstance(ev, ConnectionReset):
                st.so_error, st.reset = errno.ECONNRESET, True
            elif isinstance(ev, ConnectionRefused):
                st.so_error, st.reset = errno.ECONNREFUSED, True
            elif isinstance(ev, ConnectionTimedOut):
                st.so_error, st.reset = errno.ETIMEDOUT, True
            elif isinstance(ev, EndOfStream):
                st.eof = True
            elif isinstance(ev, Closed):
                st.closed = True
            elif isinstance(ev, UrgentData):
                st.urgent_events += 1

    def _take_error(self, st: ConnState) -> Outcome | None:
        if st.so_error:
            e = st.so_error
            st.so_error = 0
            return _err(errno.errorcode[e])
        return None

    # --- the calls; each returns an Outcome or BLOCKED ---
    def call(self, now: float, name: str, args: list[str], want_ret: int) -> Outcome | _Blocked:
        fn = getattr(self, "sys_" + name, None)
        if fn is None:
            raise SyscallError(f"system call {name}() is not supported")
        if not args and name != "socket":
            raise SyscallError(f"{name}() needs arguments")
        self._current_call = id(args)
        self._now = now
        try:
            out: Outcome | _Blocked = fn(now, args, want_ret)
        except _BadFd:
            return _err("EBADF")
        return out

    def sys_socket(self, now: float, args: list[str], want: int) -> Outcome:
        if len(args) != 3 or "SOCK_STREAM" not in args[1]:
            raise SyscallError("only socket(..., SOCK_STREAM, IPPROTO_TCP) is supported")
        fd = self._new_fd(want)
        self.socks[fd] = Sock(fd)
        self.under_test = fd  # packetdrill: later script packets belong to this socket
        return (fd, None)

    def sys_bind(self, now: float, args: list[str], want: int) -> Outcome:
        self._sock(args[0])
        return (0, None)

    def sys_listen(self, now: float, args: list[str], want: int) -> Outcome:
        s = self._sock(args[0])
        backlog = _int_arg(args[1]) if len(args) > 1 else 128
        s.listener = self.stack.listen(self.local_port, max(backlog, 1))
        for addr, key, prefix in s.md5:
            s.listener.set_md5_key(addr, key, prefix)  # RFC 2385 (TCP_MD5SIG before listen)
        if s.fastopen_qlen:
            s.listener.set_fastopen(s.fastopen_qlen)  # RFC 7413 (TCP_FASTOPEN before listen)
        self._listen_opts = s
        if self.under_test == s.fd:
            self.listening_under_test = True
        if s.tos:
            s.listener.set_tos(s.tos)  # accepted connections inherit it, as on Linux
        return (0, None)

    def sys_accept(self, now: float, args: list[str], want: int) -> Outcome | _Blocked:
        s = self._sock(args[0])
        if s.listener is None:
            return _err("EINVAL")
        h = s.listener.accept(closed=True)  # Linux: a child that died queued is returned
        if h is None:
            return _err("EAGAIN") if s.nonblocking else BLOCKED
        fd = self._new_fd(want)
        ns = Sock(fd, handle=h, nodelay=s.nodelay, keepalive=s.keepalive, keep_idle=s.keep_idle,
                  keep_intvl=s.keep_intvl, keep_cnt=s.keep_cnt, linger_zero=s.linger_zero,
                  retries2=s.retries2, tos=s.tos, sndbuf=s.sndbuf, rcvbuf=s.rcvbuf,
                  user_mss=s.user_mss, cork=s.cork, notsent_lowat=s.notsent_lowat,
                  user_timeout=s.user_timeout)
        # Linux sk_clone_lock: the child inherits SO_ZEROCOPY and SO_TIMESTAMPING, not the
        # notification counter nor the queue.
        ns.tx.zerocopy, ns.tx.tsflags = s.tx.zerocopy, s.tx.tsflags
        ns.tx.queue.limit = s.tx.queue.limit
        state_of(h)
        self.socks[fd] = ns
        self._apply_opts(ns, now)
        return (fd, None)

    sys_accept4 = sys_accept

    def sys_connect(self, now: float, args: list[str], want: int) -> Outcome | _Blocked:
        s = self._sock(args[0])
        if s.handle is None and s.deferred_connect:
            return _err("EISCONN")
        if s.handle is None and s.fastopen_connect:
            # Linux TCP_FASTOPEN_CONNECT: with a cookie cached, connect() returns 0 at once and
            # the SYN leaves with the first write's data (RFC 7413); without one, a normal
            # connect whose SYN requests a cookie.
            from pytcp.stack import _to_addr

            raddr = _to_addr(self.remote_addr)
            req = self.stack.fastopen_cache.request(
                now, raddr, self.stack.tcp_config.fastopen,
                self.stack._mss_for(self.stack._local_for(raddr)))
            if req is not None and req.space > 0:
                s.deferred_connect = True
                return (0, None)
            return self._fastopen_open(now, s, 0, s.nonblocking, connect_call=True)
        if s.handle is None:
            self._next_conn_opts = s
            try:
                s.handle = self.stack.connect(now, self.remote_addr, self.connect_port,
                                              tos=s.tos or 0, md5_key=self._md5_key_for(s))
            finally:
                self._next_conn_opts = None
            state_of(s.handle)
            s.connecting = True
            self._apply_opts(s, now)
            if self.on_connect is not None:
                self.on_connect(s.handle)
            return _err("EINPROGRESS") if s.nonblocking else self._connect_done(s)
        if s.connecting:
            return self._connect_done(s) if not s.nonblocking else (
                _err("EALREADY") if self._conn_pending(s) else self._connect_done(s))
        return _err("EISCONN")

    def _fastopen_open(self, now: float, s: Sock, n: int, nonblocking: bool,
                       connect_call: bool = False, zerocopy: bool = False,
                       fault: bool = False) -> Outcome | _Blocked:
        """Active open with Fast Open (RFC 7413; Linux sendto(MSG_FASTOPEN), or connect/write
        under TCP_FASTOPEN_CONNECT): the SYN carries the cached cookie and as much of the
        ``n`` bytes as fits, or a cookie request. Non-blocking: the bytes in the SYN, or
        EINPROGRESS when none went; blocking: waits for the handshake, then sends the rest.
        ``fault``: the buffer cannot be read (NULL): Linux's tcp_send_syn_data falls back to
        a SYN with a cookie request and no data; blocking, the call fails with EFAULT once
        connected (tcp_sendmsg cannot copy the data)."""
        s.deferred_connect = False
        self._next_conn_opts = s
        try:
            s.handle = self.stack.connect(now, self.remote_addr, self.connect_port,
                                          md5_key=self._md5_key_for(s),
                                          tos=s.tos or 0, fastopen=True,
                                          data=stream_bytes(0, n) if n and not fault else b"",
                                          syn_only=nonblocking, cookie_request=fault)
        finally:
            self._next_conn_opts = None
        st = state_of(s.handle)
        s.connecting = True
        self._apply_opts(s, now)
        if self.on_connect is not None:
            self.on_connect(s.handle)
        k = int(getattr(s.handle, "fastopen_sent", 0))
        st.write_offset = k
        if connect_call:
            return _err("EINPROGRESS") if nonblocking else self._connect_done(s)
        if nonblocking:
            if k > 0:
                self._tx_sent(s, 0, k, zerocopy, False)
                return (k, None)
            return _err("EINPROGRESS")  # (no bytes: no zerocopy ID, Linux)
        # Blocking: everything is queued; the call returns once the handshake is done.
        s.pending_write, s.pending_written = n - k, k
        s.pending_tx = (0, zerocopy, False)
        s.pending_fault = fault
        return BLOCKED

    def _conn_pending(self, s: Sock) -> bool:
        st = state_of(s.handle)
        if getattr(s.handle.conn, "fo_child", False):
            return False  # RFC 7413 4.2.2: a Fast Open child is usable in SYN-RECEIVED
        return not st.reset and str(s.handle.conn.state) in ("SYN-SENT", "SYN-RECEIVED")

    def _connect_done(self, s: Sock) -> Outcome | _Blocked:
        st = state_of(s.handle)
        if self._conn_pending(s):
            return BLOCKED
        s.connecting = False
        e = self._take_error(st)
        return e if e else (0, None)

    def sys_fcntl(self, now: float, args: list[str], want: int) -> Outcome:
        s = self._sock(args[0])
        cmd = args[1].strip() if len(args) > 1 else ""
        if cmd == "F_SETFL":
            s.nonblocking = "O_NONBLOCK" in args[2]
            return (0, None)
        if cmd == "F_GETFL":
            return (O_RDWR | (O_NONBLOCK if s.nonblocking else 0), None)
        raise SyscallError(f"fcntl {cmd} is not supported")

    def _md5_key_for(self, s: Sock) -> bytes | None:
        """The TCP_MD5SIG key of ``s`` for the script side's address (Linux
        tcp_md5_do_lookup at connect), or None."""
        if not s.md5:
            return None
        from pytcp.stack import _to_addr
        from pytcp.tcp.md5 import Md5Keys

        raddr = _to_addr(self.remote_addr)
        keys = Md5Keys()
        for addr, key, prefix in s.md5:
            keys.set(addr, key, v6=addr > 0xFFFFFFFF, prefix=prefix)
        return keys.lookup(raddr, raddr > 0xFFFFFFFF)

    def _set_md5(self, s: Sock, val: str) -> Outcome:
        """RFC 2385 keys (Linux TCP_MD5SIG / TCP_MD5SIG_EXT). Two spellings:

        - ``[1]`` / ``[0]`` (FreeBSD's boolean, its key in the SA database): the key is
          ``--tcp_md5_secret`` for the script side's address; 0 removes it;
        - ``{tcpm_addr="192.0.2.1", tcpm_prefixlen=24, tcpm_keylen=6, tcpm_key="secret"}``
          (Linux's struct tcp_md5sig; pytcp's spelling, the address defaulting to the
          script side's, ``tcpm_keylen`` 0 deleting the key).
        A socket with a connection already cannot take a key here (EINVAL)."""
        from pytcp.stack import _to_addr

        if s.handle is not None:
            return _err("EINVAL")
        v = val.strip()
        addr = _to_addr(self.remote_addr)
        prefix: int | None = None
        if v.startswith("{"):
            fields = dict(re.findall(r'(\w+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,}\s]+)', v))
            key = _c_string(fields.get("tcpm_key", '""'))
            if "tcpm_keylen" in fields:
                n = _int_arg(fields["tcpm_keylen"])
                if not 0 <= n <= 80 or n > len(key):
                    return _err("EINVAL")
                key = key[:n]
            if "tcpm_addr" in fields:
                try:
                    addr = _to_addr(fields["tcpm_addr"].strip('"'))
                except ValueError:
                    return _err("EINVAL")
            if "tcpm_prefixlen" in fields:
                prefix = _int_arg(fields["tcpm_prefixlen"])
        else:
            on = _int_arg(v)
            if on and self.md5_secret is None:
                raise SyscallError("TCP_MD5SIG [1] needs --tcp_md5_secret (the key)")
            key = self.md5_secret if on and self.md5_secret is not None else b""
        from pytcp.tcp.md5 import Md5Keys

        check = Md5Keys()
        try:
            check.set(addr, key or b"x", v6=addr > 0xFFFFFFFF, prefix=prefix)
        except ValueError:
            return _err("EINVAL")
        s.md5 = [e for e in s.md5 if (e[0], e[2]) != (addr, prefix)]
        if key:
            s.md5.append((addr, key, prefix))
        if s.listener is not None:
            try:
                s.listener.set_md5_key(addr, key, prefix)
            except KeyError:
                return _err("ENOENT")
        return (0, None)

    def sys_setsockopt(self, now: float, args: list[str], want: int) -> Outcome:
        if len(args) < 4:
            raise SyscallError("setsockopt(fd, level, name, value, len)")
        s = self._sock(args[0])
        level, name, val = args[1].strip(), args[2].strip(), args[3].strip()
        if name in ("SO_REUSEADDR", "SO_REUSEPORT"):
            return (0, None)
        if name == "SO_MARK":
            # The packets' fwmark (Linux: policy routing, netfilter); pytcp has neither, so it
            # is kept for getsockopt only.
            s.opts[name] = _int_arg(val) & 0xFFFFFFFF
            return (0, None)
        if name == "SO_LINGER":
            # {onoff=1, linger=0}: close() sends RST (abort).
            v = val.replace(" ", "")
            s.linger_zero = "onoff=1" in v and "linger=0" in v
            return (0, None)
        if name == "TCP_MD5SIG" or name == "TCP_MD5SIG_EXT":
            return self._set_md5(s, val)
        if name == "TCP_FASTOPEN_KEY":
            # Linux: 16 bytes (the primary key) or 32 (primary and backup), as a C string.
            raw = _c_string(val)
            if len(raw) not in (16, 32):
                return _err("EINVAL")
            self.stack.set_fastopen_key(raw[:16], raw[16:] or None)
            return (0, None)
        if name == "SO_TIMESTAMPING":
            # Linux sock_set_timestamping; the value is a flag expression ([A | B | ...]).
            flags = _flags(val.strip().strip("[]"))
            conn = s.handle.conn if s.handle is not None else None
            state = str(conn.state) if conn is not None else "CLOSED"
            acked = written = 0
            if conn is not None:
                acked = int(conn.tx_progress()[1])
                written = state_of(s.handle).write_offset
            err = s.tx.set_timestamping(flags, acked=acked, written=written,
                                        can_key=state not in ("CLOSED", "LISTEN")
                                        and s.listener is None)
            if err:
                return _err(errno.errorcode[err])
            self._apply_opts(s, now)
            return (0, None)
        n = _int_arg(val)
        if name == "SO_ZEROCOPY":
            # Linux sock_setsockopt: a boolean, TCP and UDP sockets only.
            if not 0 <= n <= 1:
                return _err("EINVAL")
            s.tx.zerocopy = bool(n)
            self._apply_opts(s, now)
            return (0, None)
        if name == "TCP_FASTOPEN":  # RFC 7413 server: the listener's Fast Open queue
            if n < 0:
                return _err("EINVAL")
            s.fastopen_qlen = n
            if s.listener is not None:
                s.listener.set_fastopen(n)
            return (0, None)
        if name == "TCP_FASTOPEN_CONNECT":
            if not 0 <= n <= 1:
                return _err("EINVAL")
            if not self.stack.tcp_config.fastopen & 1:
                return _err("EOPNOTSUPP")  # Linux: the client side is off (tcp_fastopen)
            if s.handle is not None:
                return _err("EINVAL")
            s.fastopen_connect = bool(n)
            return (0, None)
        if name == "TCP_QUICKACK":  # Linux: pingpong mode off (1) / on (0), not sticky
            if s.handle is None:
                raise SyscallError("setsockopt TCP_QUICKACK before connect() is not supported")
            s.handle.set_quickack(bool(n), now=now)
            return (0, None)
        if name == "TCP_NODELAY":
            s.nodelay = bool(n)
        elif name == "SO_KEEPALIVE":
            s.keepalive = bool(n)
        elif name == "TCP_KEEPIDLE":
            s.keep_idle = float(n)
        elif name == "TCP_KEEPINTVL":
            s.keep_intvl = float(n)
        elif name == "TCP_KEEPCNT":
            s.keep_cnt = n
        elif name == "TCP_SYNCNT":  # Linux: SYN retransmissions for this socket
            if not 1 <= n <= 127:
                return _err("EINVAL")
            s.syn_cnt = n
        elif name == "IP_TOS":  # MUST-48: the IP TOS / Diffserv byte of our segments
            if not 0 <= n <= 0xFF:
                return _err("EINVAL")
            s.tos = n
            if s.listener is not None:
                s.listener.set_tos(n)
        elif name == "IP_MTU_DISCOVER":  # Linux do_ip_setsockopt: DONT..OMIT, else EINVAL
            if not 0 <= n <= 5:
                return _err("EINVAL")
            s.pmtudisc = n
        elif name == "PYTCP_RETRIES2":  # pytcp extension: R2 (data retransmissions) per socket
            if n < 0:
                return _err("EINVAL")
            s.retries2 = n
        elif name in ("SO_SNDBUF", "SO_RCVBUF"):
            # Linux (sock_setsockopt): capped at net.core.[wr]mem_max, then doubled for the
            # bookkeeping overhead, with a floor; getsockopt returns the doubled value.
            size = max(min(n, SOCK_BUF_MAX) * 2, SOCK_MIN_SNDBUF if name == "SO_SNDBUF"
                       else SOCK_MIN_RCVBUF)
            if name == "SO_SNDBUF":
                s.sndbuf = size
            else:
                s.rcvbuf = size
                s.tx.queue.limit = size  # sk_rcvbuf also bounds the error queue
        elif name == "TCP_MAXSEG":
            # Linux do_tcp_setsockopt: 0 or TCP_MIN_MSS (88) .. MAX_TCP_WINDOW, before the
            # connection exists (it clamps the MSS we announce and send with).
            if n and not TCP_MIN_MSS <= n <= 32767:
                return _err("EINVAL")
            s.user_mss = n or None
        elif name == "TCP_CORK":
            s.cork = bool(n)
        elif name == "TCP_NOTSENT_LOWAT":
            s.notsent_lowat = n & 0xFFFFFFFF
        elif name == "TCP_USER_TIMEOUT":
            if n < 0:
                return _err("EINVAL")
            s.user_timeout = n  # milliseconds (RFC 5482 USER TIMEOUT; engine: seconds)
        elif name == "TCP_INQ":
            s.inq = bool(n)
        else:
            raise SyscallError(f"setsockopt {level} {name} is not supported")
        self._apply_opts(s, now)
        if name == "TCP_NODELAY" and n and s.handle is not None:
            # Every TCP_NODELAY=1 pushes what is pending once, already on or not (Linux
            # TCP_NAGLE_PUSH; Connection.set_nodelay).
            s.handle.set_nodelay(True, now=now)
        return (0, None)

    def sys_getsockopt(self, now: float, args: list[str], want: int) -> Outcome:
        if len(args) < 4:
            raise SyscallError("getsockopt(fd, level, name, [value], [len])")
        s = self._sock(args[0])
        name, val = args[2].strip(), args[3].strip()
        if name == "SO_ERROR":
            got = 0
            if s.handle is not None:
                st = state_of(s.handle)
                got, st.so_error = st.so_error, 0
        elif name == "TCP_INFO":
            return self._tcp_info(s, val, now)
        elif name == "TCP_NODELAY":
            got = int(bool(s.nodelay))
        elif name == "TCP_QUICKACK":
            got = int(s.handle.conn.quickack) if s.handle is not None else 1
        elif name == "SO_ZEROCOPY":
            got = int(s.tx.zerocopy)
        elif name == "SO_MARK":
            got = s.opts.get(name, 0)
        elif name == "SO_TIMESTAMPING":
            got = s.tx.tsflags
            if val.strip() not in ("...",) and _flags(val.strip().strip("[]")) != got:
                raise SyscallMismatch(f"{name} is {got:#x}, the script expects {val}")
            return (0, None)
        elif name == "SO_KEEPALIVE":
            got = int(bool(s.keepalive))
        elif name in ("PYTCP_URGENT_PENDING", "PYTCP_URGENT_EVENTS"):
            if s.handle is None:
                return _err("ENOTCONN")
            if name == "PYTCP_URGENT_PENDING":  # MUST-33: urgent octets not yet read
                got = int(s.handle.conn.urgent_pending)
            else:  # MUST-32: UrgentData events delivered to the application so far
                self.drain_events()
                got = state_of(s.handle).urgent_events
        elif name == "IP_TOS":
            got = s.handle.tos if s.handle is not None else (s.tos or 0)
        elif name == "IP_MTU_DISCOVER":
            got = (s.handle.pmtudisc if s.handle is not None
                   else s.pmtudisc if s.pmtudisc is not None else 1)  # default: WANT
        elif name == "SO_SNDBUF":
            # Linux returns sk_sndbuf: what was set (doubled), else the autotuned value.
            got = (s.sndbuf if s.sndbuf is not None else
                   int(getattr(s.handle.conn, "sndbuf", s.handle.conn.config.send_buffer))
                   if s.handle is not None else self.stack.tcp_config.send_buffer_min)
        elif name == "SO_RCVBUF":
            got = (s.rcvbuf if s.rcvbuf is not None else
                   s.handle.conn.config.recv_buffer if s.handle is not None
                   else self.stack.tcp_config.recv_buffer)
        elif name == "TCP_MAXSEG":
            # Linux: the send MSS once connected; before, the value set or 536.
            if s.handle is not None and str(s.handle.state) not in ("SYN-SENT", "CLOSED"):
                got = int(s.handle.conn.snd_mss)
            else:
                got = s.user_mss or TCP_MSS_DEFAULT
        elif name == "TCP_CORK":
            got = int(bool(s.cork))
        elif name == "TCP_NOTSENT_LOWAT":
            # Linux: the socket's own value; 0 means "the sysctl applies".
            got = s.notsent_lowat or 0
            if _int_arg(val) < 0:
                got = got - (1 << 32) if got >= 1 << 31 else got  # an int in C
        elif name == "TCP_USER_TIMEOUT":
            got = s.user_timeout or 0
        elif name == "TCP_INQ":
            got = int(s.inq)
        elif name == "SO_TYPE":
            got = 1  # SOCK_STREAM
        else:
            raise SyscallError(f"getsockopt {name} is not supported")
        if val.strip() not in ("...",) and _int_arg(val) != got:
            raise SyscallMismatch(f"{name} is {got}, the script expects {val}")
        return (0, None)

    def _tcp_info(self, s: Sock, val: str, now: float) -> Outcome:
        """``{tcpi_FIELD=VALUE, ...}``: each named field must have that value (Linux's units:
        microseconds for times, segments for cwnd and ssthresh, bytes for windows)."""
        if s.handle is None:
            return _err("ENOTCONN")
        body = val.strip()
        if not (body.startswith("{") and body.endswith("}")):
            raise SyscallError("TCP_INFO expects {tcpi_field=value, ...}")
        fields = tcp_info_fields(s.handle, now)
        for item in body[1:-1].split(","):
            if not item.strip():
                continue
            if "=" not in item:
                raise SyscallError(f"TCP_INFO: {item.strip()!r} is not field=value")
            k, v = (x.strip() for x in item.split("=", 1))
            if k not in fields:
                raise SyscallError(f"TCP_INFO: unknown field {k!r}; known: {', '.join(fields)}")
            if fields[k] != _int_arg(v):
                raise SyscallMismatch(f"TCP_INFO {k} is {fields[k]}, the script expects {v}")
        return (0, None)

    def _write(self, now: float, s: Sock, n: int, flags: str,
               null_buf: bool = False, af_unspec: bool = False,
               payload: bytes | None = None) -> Outcome | _Blocked:
        """``payload``: the bytes to send (sendfile: a file's) instead of the pattern."""
        flags = _msg_flag_names(flags)
        # MSG_ZEROCOPY counts only with SO_ZEROCOPY on and bytes to send (Linux
        # tcp_sendmsg_locked); its notification is reserved first (ENOBUFS past the bound).
        zc = "MSG_ZEROCOPY" in flags and s.tx.zerocopy and n > 0
        if zc and not s.tx.zerocopy_admit():
            return _err("ENOBUFS")
        if s.handle is None and (s.deferred_connect or (
                "MSG_FASTOPEN" in flags and s.listener is None)):
            if not s.deferred_connect and (not self.stack.tcp_config.fastopen & 1
                                           or af_unspec):
                return _err("EOPNOTSUPP")  # Linux tcp_sendmsg_fastopen
            return self._fastopen_open(now, s, n, s.nonblocking or "MSG_DONTWAIT" in flags,
                                       zerocopy=zc, fault=null_buf and n > 0)
        if ("MSG_FASTOPEN" in flags and s.handle is not None and self._conn_pending(s)
                and str(s.handle.conn.state) == "SYN-SENT"):
            return _err("EALREADY")  # Linux: a connect (Fast Open or not) is in progress
        if s.handle is None:
            # (a failed send takes no zerocopy ID: Linux net_zcopy_put_abort)
            return _err("EPIPE") if s.listener is None else _err("ENOTCONN")
        if null_buf and n > 0 and not self._conn_pending(s):
            return _err("EFAULT")  # Linux: nothing could be copied from a NULL buffer
        urgent = "MSG_OOB" in flags  # RFC 9293 3.8.5: urgent data (MUST-30, MUST-62)
        nonblocking = s.nonblocking or "MSG_DONTWAIT" in flags
        st = state_of(s.handle)
        e = self._take_error(st)
        if e:
            return e
        if st.shut_wr or st.reset:
            return _err("EPIPE")
        if self._conn_pending(s):
            # Linux (sk_stream_wait_connect): a write waits until the connection is
            # established, EAGAIN when non-blocking; the engine itself could queue it (RFC
            # 9293 3.10.2), but scripts follow the socket API.
            if nonblocking:
                return _err("EAGAIN")
            if urgent or payload is not None:
                raise SyscallError("a blocking send(MSG_OOB) or sendfile() before the "
                                   "connection is established is not supported")
            s.pending_write, s.pending_written = n, 0
            return BLOCKED
        data = stream_bytes(st.write_offset, n) if payload is None else payload[:n]
        start = st.write_offset
        tail_unsent = s.tx.tracking and int(s.handle.conn.tx_progress()[0]) < start
        try:
            k = s.handle.send(now, data, True, urgent, "MSG_MORE" in flags,
                              "MSG_EOR" in flags)
        except TcpUsageError:
            return _err("EPIPE")
        if payload is not None and k:
            st.file_data.append((st.write_offset, bytes(data[:k])))
        st.write_offset += k
        if k < n and not nonblocking:
            if urgent or payload is not None:
                raise SyscallError("a blocking send(MSG_OOB) or sendfile() that does not fit "
                                   "the send buffer is not supported")
            s.pending_write = n - k
            s.pending_written = k
            s.pending_tx = (start, zc, tail_unsent)
            st.woken = False  # it sleeps until a wake-up (Linux sk_stream_wait_memory)
            return BLOCKED
        if k == 0 and n > 0:
            return _err("EAGAIN")
        self._tx_sent(s, start, k, zc, tail_unsent)
        return (k, None)

    def _tx_sent(self, s: Sock, start: int, k: int, zc: bool, tail_unsent: bool) -> None:
        """A send call that accepted ``k`` bytes at stream offset ``start`` returns: its
        zerocopy ID and timestamp key (Linux: the uarg and tcp_tx_timestamp at the end of
        tcp_sendmsg_locked)."""
        if k <= 0 or not (zc or s.tx.tsflags):
            return
        mss = int(getattr(s.handle.conn, "snd_mss", 1460) or 1460) if s.handle else 1460
        take = min(k, mss)
        s.tx.on_send(start, k, zerocopy=zc, tail_unsent=tail_unsent,
                     data=stream_bytes(start + k - take, take), mss=mss)
        if s.handle is not None:
            self._apply_opts(s, self._now)

    def continue_write(self, now: float, s: Sock) -> Outcome | _Blocked:
        st = state_of(s.handle)
        if st.reset:
            s.pending_write = 0
            e = self._take_error(st)
            return e if e else _err("EPIPE")
        if self._conn_pending(s):
            return BLOCKED
        if s.pending_fault:
            s.pending_fault = False
            s.pending_write = 0
            return _err("EFAULT")  # (Fast Open with a NULL buffer: nothing to copy)
        if not st.woken and s.pending_written:
            return BLOCKED  # no wake-up yet: the writer still sleeps
        data = stream_bytes(st.write_offset, s.pending_write)
        k = s.handle.send(now, data)
        st.write_offset += k
        s.pending_written += k
        s.pending_write -= k
        if s.pending_write:
            st.woken = False
            return BLOCKED
        if s.pending_tx is not None:
            start, zc, tail_unsent = s.pending_tx
            s.pending_tx = None
            self._tx_sent(s, start, s.pending_written, zc, tail_unsent)
        return (s.pending_written, None)

    def sys_open(self, now: float, args: list[str], want: int) -> Outcome:
        """open(PATH, O_RDONLY) of a virtual file (``dd if=/dev/zero of=PATH`` in a shell
        line); ENOENT for any other path. The host's files are never opened."""
        path = _c_string(args[0]).decode("latin-1")
        flags = args[1].strip() if len(args) > 1 else "O_RDONLY"
        if flags != "O_RDONLY":
            raise SyscallError(f"open() with {flags} is not supported (read-only virtual files)")
        content = self.files.get(path)
        if content is None:
            return _err("ENOENT")
        fd = self._new_fd(want)
        self.file_fds[fd] = [content, 0]
        return (fd, None)

    def sys_sendfile(self, now: float, args: list[str], want: int) -> Outcome | _Blocked:
        """sendfile(out_fd, in_fd, [offset] | NULL, count): the file's bytes from ``offset``
        (the file position untouched) or from its position (advanced), as a write of them
        (Linux: a non-blocking socket takes what fits)."""
        if len(args) < 4:
            raise SyscallError("sendfile(out_fd, in_fd, offset, count)")
        s = self._sock(args[0])
        f = self.file_fds.get(_int_arg(args[1]))
        if f is None:
            return _err("EBADF")
        use_pos = args[2].strip() == "NULL"
        off = f[1] if use_pos else _int_arg(args[2])
        count = _int_arg(args[3])
        if off < 0 or count < 0:
            return _err("EINVAL")
        data = f[0][off:off + count]
        if not data:
            return (0, None)
        out = self._write(now, s, len(data), "", payload=data)
        if use_pos and not isinstance(out, _Blocked) and out[0] > 0:
            f[1] = off + out[0]
        return out

    def payload_of(self, local_port: int, remote_port: int) -> Any:
        """For the runner's payload check: a function (stream offset, n) -> the bytes the
        application sent there on that connection, when it sent a file's bytes (sendfile);
        None (the pattern everywhere) otherwise."""
        pieces: list[tuple[int, bytes]] = []
        for s in self.socks.values():
            h = s.handle
            if h is not None and h.key.local_port == local_port \
                    and h.key.remote_port == remote_port:
                pieces = state_of(h).file_data
                break
        if not pieces:
            return None

        def of(offset: int, n: int) -> bytes:
            want = bytearray(stream_bytes(offset, n))
            for start, data in pieces:
                lo, hi = max(start, offset), min(start + len(data), offset + n)
                if lo < hi:
                    want[lo - offset:hi - offset] = data[lo - start:hi - start]
            return bytes(want)
        return of

    def sys_write(self, now: float, args: list[str], want: int) -> Outcome | _Blocked:
        return self._write(now, self._sock(args[0]), _int_arg(args[2]), "",
                           args[1].strip() == "NULL")

    def sys_send(self, now: float, args: list[str], want: int) -> Outcome | _Blocked:
        return self._write(now, self._sock(args[0]), _int_arg(args[2]),
                           args[3] if len(args) > 3 else "", args[1].strip() == "NULL")

    def _read(self, now: float, s: Sock, n: int, flags: int = 0,
              null_buf: bool = False) -> Outcome | _Blocked:
        if s.handle is None and s.deferred_connect:
            # Linux tcp_recvmsg: a deferred TCP_FASTOPEN_CONNECT socket is in SYN-SENT, not
            # CLOSE: nothing to read yet (EAGAIN, or wait when blocking).
            return _err("EAGAIN") if s.nonblocking or flags & MSG_DONTWAIT else BLOCKED
        if s.handle is None:
            return _err("ENOTCONN")
        st = state_of(s.handle)
        if null_buf and n > 0 and int(s.handle.conn.bytes_readable):
            return _err("EFAULT")  # Linux: the data cannot be copied to a NULL buffer
        peek = bool(flags & MSG_PEEK)
        nonblocking = s.nonblocking or bool(flags & MSG_DONTWAIT)
        if peek:
            # MSG_PEEK: the bytes stay queued (Linux tcp_recvmsg with MSG_PEEK).
            q = getattr(s.handle.conn, "_rcvq", None)
            if q is None:
                raise SyscallError("MSG_PEEK: the engine has no receive queue to peek at")
            data = bytes(q[:n])
        else:
            try:
                data = s.handle.receive(now, n)
            except TcpUsageError:
                data = b""
        if data:
            want = stream_bytes(st.read_offset, len(data))
            if bytes(data) != want and not st.data_error:
                k = next(i for i in range(len(data)) if data[i] != want[i])
                st.data_error = (f"read() returned wrong bytes at stream offset "
                                 f"{st.read_offset + k}")
            if not peek:
                st.read_offset += len(data)
            return (len(data), None)
        e = self._take_error(st)
        if e:
            return e
        if st.eof or st.reset or getattr(s.handle.conn, "at_eof", False) or s.shut_rd:
            return (0, None)  # after SHUT_RD an empty queue reads as end of file (Linux)
        return _err("EAGAIN") if nonblocking else BLOCKED

    def sys_read(self, now: float, args: list[str], want: int) -> Outcome | _Blocked:
        return self._read(now, self._sock(args[0]), _int_arg(args[2]), 0,
                          args[1].strip() == "NULL")

    def sys_recv(self, now: float, args: list[str], want: int) -> Outcome | _Blocked:
        flags = _flags(args[3]) if len(args) > 3 else 0
        if flags & MSG_OOB:
            raise SyscallError("recv(..., MSG_OOB) is not supported: urgent data stays inline "
                               "(RFC 6093); read it with read()/recv() and check "
                               "PYTCP_URGENT_PENDING")
        return self._read(now, self._sock(args[0]), _int_arg(args[2]), flags,
                          args[1].strip() == "NULL")

    def sys_recvfrom(self, now: float, args: list[str], want: int) -> Outcome | _Blocked:
        return self.sys_recv(now, args[:4], want)

    def sys_sendto(self, now: float, args: list[str], want: int) -> Outcome | _Blocked:
        flags = args[3] if len(args) > 3 else ""
        # MSG_FASTOPEN on an unconnected socket: Fast Open (RFC 7413); on a connected one it
        # is ignored (Linux).
        return self._write(now, self._sock(args[0]), _int_arg(args[2]), flags,
                           args[1].strip() == "NULL",
                           len(args) > 4 and "AF_UNSPEC" in args[4])

    @staticmethod
    def _iov_total(msg: str) -> int:
        m = re.search(r"msg_iov\(\s*\d+\s*\)\s*=\s*\[(.*?)\]\s*(?:,|\})", msg)
        if not m:
            raise SyscallError(f"cannot read msg_iov in {msg[:60]!r}")
        return sum(int(x) for x in re.findall(r"\{\s*\.\.\.\s*,\s*(\d+)\s*\}",
                                              m.group(1)))

    def sys_sendmsg(self, now: float, args: list[str], want: int) -> Outcome | _Blocked:
        if len(args) < 3:
            raise SyscallError("sendmsg(fd, {msg...}, flags)")
        s = self._sock(args[0])
        if "msg_control=[{" in args[1].replace(" ", ""):
            raise SyscallError("sendmsg with control messages is not supported")
        flags = args[2]
        n = self._iov_total(args[1])
        if n == 0:
            return (0, None)
        return self._write(now, s, n, flags)

    def sys_recvmsg(self, now: float, args: list[str], want: int) -> Outcome | _Blocked:
        if len(args) < 3:
            raise SyscallError("recvmsg(fd, {msg...}, flags)")
        s = self._sock(args[0])
        msg = args[1].replace(" ", "")
        flags = _flags(args[2])
        n = self._iov_total(args[1])
        if flags & MSG_ERRQUEUE:
            return self._recv_errqueue(s, msg, n)
        out = self._read(now, s, n, flags)
        if not isinstance(out, tuple) or out[0] < 0:
            return out
        m = re.search(r"msg_control=\[(.*)\]", msg)
        if m and m.group(1):
            inq = re.search(r"cmsg_type=TCP_CM_INQ,cmsg_data=(\d+)", m.group(1))
            if not inq or not s.inq:
                raise SyscallError("recvmsg control messages other than TCP_CM_INQ")
            left = int(s.handle.conn.bytes_readable)
            st = state_of(s.handle)
            if not left and (st.eof or getattr(s.handle.conn, "at_eof", False)):
                left = 1  # Linux tcp_inq: a "fake byte" for the FIN once the queue is empty
            if left != int(inq.group(1)):
                raise SyscallMismatch(f"TCP_CM_INQ is {left}, the script expects "
                                      f"{inq.group(1)}")
        return out

    def _recv_errqueue(self, s: Sock, msg: str, n: int) -> Outcome:
        """``recvmsg(fd, {...}, MSG_ERRQUEUE)`` (Linux ip_recv_error): the oldest notification
        of the socket's error queue, EAGAIN when it is empty (blocking or not). The script's
        ``msg_flags`` and ``msg_control`` are compared with what the notification gives:
        SCM_TIMESTAMPING times within the script's tolerance, every ``sock_extended_err``
        field named."""
        entry = s.tx.queue.pop()
        if entry is None:
            return _err("EAGAIN")
        copied = min(len(entry.payload), n)
        got_flags = eq.MSG_ERRQUEUE | (eq.MSG_TRUNC if len(entry.payload) > n else 0)
        m = re.search(r"msg_flags=([^,}]+)", msg)
        if m and _flags(m.group(1)) != got_flags:
            raise SyscallMismatch(f"recvmsg(MSG_ERRQUEUE): msg_flags {got_flags:#x}, the "
                                  f"script expects {m.group(1)}")
        cm = re.search(r"msg_control=\[(.*)\]", msg)
        if cm is not None:
            want = _cmsg_list(cm.group(1))
            got = entry.cmsgs(self.v6)
            if len(want) != len(got):
                raise SyscallMismatch(f"recvmsg(MSG_ERRQUEUE): {len(got)} control messages, "
                                      f"the script expects {len(want)} ({_describe(entry)})")
            for (wl, wt, wdata), (level, typ, _raw) in zip(want, got, strict=True):
                if self._cmsg_num(wl) != level or self._cmsg_num(wt) != typ:
                    raise SyscallMismatch(f"recvmsg(MSG_ERRQUEUE): control message "
                                          f"{level}/{typ}, the script expects {wl}/{wt} "
                                          f"({_describe(entry)})")
                self._check_cmsg_data(typ, wdata, entry)
        return (copied, None)

    def _cmsg_num(self, tok: str) -> int:
        if tok == "CMSG_LEVEL_IP":  # packetdrill: the level of the script's address family
            return eq.SOL_IPV6 if self.v6 else eq.SOL_IP
        if tok == "CMSG_TYPE_RECVERR":
            return eq.IPV6_RECVERR if self.v6 else eq.IP_RECVERR
        return _int_arg(tok)

    def _check_cmsg_data(self, typ: int, data: dict[str, str], entry: eq.ErrEntry) -> None:
        if typ == eq.SCM_TIMESTAMPING:
            t = entry.tstamp if entry.tstamp is not None else 0.0
            want_t = _int_arg(data.get("scm_sec", "0")) + _int_arg(data.get("scm_nsec",
                                                                            "0")) / 1e9
            if abs(t - want_t) > self.tolerance + 1e-9:
                raise SyscallMismatch(f"SCM_TIMESTAMPING is {t:.6f} s, the script expects "
                                      f"{want_t:.6f} s ({_describe(entry)})")
            return
        fields = {"ee_errno": entry.ee.ee_errno, "ee_origin": entry.ee.ee_origin,
                  "ee_type": entry.ee.ee_type, "ee_code": entry.ee.ee_code,
                  "ee_info": entry.ee.ee_info, "ee_data": entry.ee.ee_data}
        for k, v in data.items():
            if k not in fields:
                raise SyscallError(f"sock_extended_err has no field {k!r}")
            if fields[k] != _int_arg(v):
                raise SyscallMismatch(f"sock_extended_err {k} is {fields[k]}, the script "
                                      f"expects {v} ({_describe(entry)})")

    # --- readiness: poll and epoll ---
    def _ready(self, s: Sock, probe: bool = True) -> int:
        """Linux's tcp_poll() mask for one socket (POLL* values). ``probe``: tcp_poll really
        runs (not an edge-triggered epoll entry with no wake-up), so a socket found not
        writeable is marked as waiting for room (SOCK_NOSPACE)."""
        # tcp_poll: a non-empty error queue is EPOLLERR (MSG_ZEROCOPY, TX timestamps).
        err = POLLERR if s.tx.queue else 0
        if s.listener is not None:
            return (POLLIN if s.listener.accept_queue else 0) | err
        h = s.handle
        if h is None and s.deferred_connect:
            # Linux tcp_poll: a TCP_FASTOPEN_CONNECT socket whose connect() returned 0 is in
            # SYN-SENT with defer_connect: writable (the write sends SYN and data), not hung up.
            return POLLOUT | POLLWRNORM
        if h is None:
            # a fresh socket: Linux reports it writable and hung up
            return POLLOUT | POLLHUP | err
        st = state_of(h)
        conn = h.conn
        state = str(conn.state)
        mask = err
        if st.reset or state == "CLOSED":
            mask |= POLLHUP | POLLIN | POLLRDHUP
            if st.so_error:
                mask |= POLLERR
            if st.reset:
                mask |= POLLOUT  # Linux: after a reset the socket reports writable
            return mask
        if state in ("SYN-SENT", "SYN-RECEIVED"):
            return err
        if int(conn.bytes_readable) or st.eof or s.shut_rd or getattr(conn, "at_eof", False):
            mask |= POLLIN | POLLRDNORM
        if st.eof or getattr(conn, "at_eof", False):
            mask |= POLLRDHUP
        if st.shut_wr and (st.eof or s.shut_rd):
            mask |= POLLHUP
        if not st.shut_wr:
            # sk_stream_is_writeable: the queue at most two thirds of SO_SNDBUF and the
            # unsent bytes under half TCP_NOTSENT_LOWAT (the engine's accounting).
            if hasattr(conn, "poll_writeable"):
                w = conn.poll_writeable() if probe else conn.writeable
            else:
                w = int(conn.send_space) > 0
            if w:
                mask |= POLLOUT | POLLWRNORM
        else:
            mask |= POLLOUT | POLLWRNORM
        return mask

    def sys_poll(self, now: float, args: list[str], want: int) -> Outcome | _Blocked:
        if len(args) != 3:
            raise SyscallError("poll([{fd=N, events=E, revents=R}, ...], nfds, timeout)")
        entries = re.findall(r"\{\s*fd\s*=\s*([^,}]+),\s*events\s*=\s*([^,}]+)"
                             r"(?:,\s*revents\s*=\s*([^}]+))?\}", args[0])
        timeout = _int_arg(args[2])
        results = []
        for fd_t, ev_t, rev_t in entries:
            fd = _int_arg(fd_t)
            events = _flags(ev_t) | POLLERR | POLLHUP | POLLNVAL
            s = self.socks.get(fd)
            got = POLLNVAL if s is None else self._ready(s) & events
            results.append((fd, got, _flags(rev_t) if rev_t else 0))
        count = sum(1 for _, got, _w in results if got)
        if count == 0 and timeout != 0:
            return self._block_until(now, timeout / 1000.0)
        self._timeouts.pop(id(args), None)
        for fd, got, wanted in results:
            if got != wanted:
                raise SyscallMismatch(f"poll: revents of fd {fd} are {got:#x}, the script "
                                      f"expects {wanted:#x}")
        return (count, None)

    def _block_until(self, now: float, wait: float) -> Outcome | _Blocked:
        """A poll/epoll_wait with nothing ready: block until ready or ``wait`` s (infinite
        when negative) pass; the runner retries the call after every step."""
        if wait < 0 or wait > MAX_WAIT:
            return BLOCKED
        key = self._current_call
        deadline = self._timeouts.setdefault(key, now + wait)
        if now + 1e-9 >= deadline:
            self._timeouts.pop(key, None)
            return (0, None)
        self.wakeups.append(deadline)
        return BLOCKED

    def sys_epoll_create(self, now: float, args: list[str], want: int) -> Outcome:
        fd = self._new_fd(want)
        self.epolls[fd] = Epoll(fd)
        return (fd, None)

    sys_epoll_create1 = sys_epoll_create

    def sys_epoll_ctl(self, now: float, args: list[str], want: int) -> Outcome:
        if len(args) != 4:
            raise SyscallError("epoll_ctl(epfd, op, fd, {events=E, fd=N})")
        ep = self.epolls.get(_int_arg(args[0]))
        if ep is None:
            return _err("EBADF")
        op, fd = args[1].strip(), _int_arg(args[2])
        if fd not in self.socks:
            return _err("EBADF")
        m = re.search(r"events\s*=\s*([^,}]+)", args[3])
        events = _flags(m.group(1)) if m else 0
        if events & EPOLLEXCLUSIVE:
            # Linux ep_ctl: EPOLLEXCLUSIVE only when adding, with EPOLLIN/OUT/ERR/HUP/
            # WAKEUP/ET. It only limits which of several epoll sets a wake-up reaches;
            # with one set (a script's) readiness is the same.
            if op != "EPOLL_CTL_ADD":
                return _err("EINVAL")
            if events & ~(0x1 | 0x4 | EPOLLERR | EPOLLHUP | (1 << 29) | EPOLLET
                          | EPOLLEXCLUSIVE):
                return _err("EINVAL")
        elif op == "EPOLL_CTL_MOD" and ep.interest.get(fd, 0) & EPOLLEXCLUSIVE:
            return _err("EINVAL")
        ep.fired.discard(fd)
        if op == "EPOLL_CTL_ADD":
            if fd in ep.interest:
                return _err("EEXIST")
            ep.interest[fd] = events
            ep.armed[fd] = True  # Linux checks readiness when an fd is added
        elif op == "EPOLL_CTL_MOD":
            if fd not in ep.interest:
                return _err("ENOENT")
            ep.interest[fd] = events
            ep.armed[fd] = True
        elif op == "EPOLL_CTL_DEL":
            if ep.interest.pop(fd, None) is None:
                return _err("ENOENT")
            ep.armed.pop(fd, None)
        else:
            raise SyscallError(f"epoll_ctl op {op}")
        return (0, None)

    def sys_epoll_wait(self, now: float, args: list[str], want: int) -> Outcome | _Blocked:
        if len(args) != 4:
            raise SyscallError("epoll_wait(epfd, {events=E, fd=N}, maxevents, timeout)")
        ep = self.epolls.get(_int_arg(args[0]))
        if ep is None:
            return _err("EBADF")
        maxevents = _int_arg(args[2])
        timeout = _int_arg(args[3])
        ready: list[tuple[int, int]] = []
        for fd, events in list(ep.interest.items()):
            s = self.socks.get(fd)
            if s is None or fd in ep.fired:
                continue  # (Linux: a fired EPOLLONESHOT item reports nothing, not even ERR)
            polled = not events & EPOLLET or bool(ep.armed.get(fd))
            got = self._ready(s, polled) & (events | EPOLLERR | EPOLLHUP) & 0xFFFF
            if not got:
                continue
            if not polled:
                continue
            ready.append((fd, got))
        ready = ready[:max(1, maxevents)]
        if not ready and timeout != 0:
            return self._block_until(now, timeout / 1000.0)
        for fd, _got in ready:
            if ep.interest[fd] & EPOLLET:
                ep.armed[fd] = False
            if ep.interest[fd] & EPOLLONESHOT:
                ep.interest[fd] = 0
                ep.fired.add(fd)
        m = re.search(r"events\s*=\s*([^,}]+)", args[1])
        if ready and m:
            wanted = _flags(m.group(1))
            fdm = re.search(r"\bfd\s*=\s*(\d+)", args[1])
            fd, got = ready[0]
            if got != wanted or (fdm and int(fdm.group(1)) != fd):
                raise SyscallMismatch(f"epoll_wait: fd {fd} events {got:#x}, the script "
                                      f"expects {args[1]}")
        return (len(ready), None)

    def sys_ioctl(self, now: float, args: list[str], want: int) -> Outcome:
        """``ioctl(fd, FIONREAD|SIOCINQ, [N])``: N bytes are readable now."""
        s = self._sock(args[0])
        if len(args) < 3 or args[1].strip() not in ("FIONREAD", "SIOCINQ"):
            raise SyscallError("only ioctl(fd, FIONREAD|SIOCINQ, [N]) is supported")
        if s.handle is None:
            return _err("EINVAL")
        got = int(s.handle.conn.bytes_readable)
        if got != _int_arg(args[2]):
            raise SyscallMismatch(f"{args[1].strip()} is {got}, the script expects {args[2]}")
        return (0, None)

    def sys_shutdown(self, now: float, args: list[str], want: int) -> Outcome:
        s = self._sock(args[0])
        how = args[1].strip()
        if s.handle is None:
            return _err("ENOTCONN")
        st = state_of(s.handle)
        if how not in ("SHUT_RD", "SHUT_WR", "SHUT_RDWR", "0", "1", "2"):
            return _err("EINVAL")
        if how in ("SHUT_RD", "SHUT_RDWR", "0", "2"):
            s.shut_rd = True  # reads now return 0 once the queue is empty (Linux)
        if how in ("SHUT_WR", "SHUT_RDWR", "1", "2") and not st.shut_wr:
            try:
                s.handle.shutdown(now)
            except TcpUsageError:
                return _err("ENOTCONN")
            st.shut_wr = True
        return (0, None)

    def sys_close(self, now: float, args: list[str], want: int) -> Outcome:
        fd = _int_arg(args[0])
        if fd in self.epolls:
            del self.epolls[fd]
            return (0, None)
        if fd in self.file_fds:
            del self.file_fds[fd]
            return (0, None)
        s = self._sock(args[0])
        for ep in self.epolls.values():  # closing a descriptor leaves every epoll set
            ep.interest.pop(s.fd, None)
            ep.armed.pop(s.fd, None)
            ep.fired.discard(s.fd)
        del self.socks[s.fd]
        s.tx.close()  # Linux SOCK_DEAD: no more notifications
        if s.listener is not None:
            s.listener.close()
        if s.handle is not None:
            try:
                if s.linger_zero:
                    s.handle.abort(now)
                else:
                    s.handle.close(now)
            except TcpUsageError:
                pass
        return (0, None)
