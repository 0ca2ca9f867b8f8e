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

Data written is :func:`pytcp.script.matcher.stream_bytes` at the write offset; data read is
checked against the same pattern at the read offset, so a script proves that the bytes arrive
intact and in order.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

from pytcp.script.matcher import stream_bytes
from pytcp.tcp.errors import TcpUsageError
from pytcp.tcp.events import (
    Closed,
    ConnectionRefused,
    ConnectionReset,
    ConnectionTimedOut,
    EndOfStream,
    UrgentData,
)

O_NONBLOCK = 0o4000

# Linux's tcp_states.h numbering, as TCP_INFO reports it.
LINUX_STATE = {
    "ESTABLISHED": 1, "SYN-SENT": 2, "SYN-RECEIVED": 3, "FIN-WAIT-1": 4, "FIN-WAIT-2": 5,
    "TIME-WAIT": 6, "CLOSED": 7, "CLOSE-WAIT": 8, "LAST-ACK": 9, "LISTEN": 10, "CLOSING": 11,
}
O_RDWR = 2

# Symbolic constants scripts write where a number goes (Linux values).
SYMBOLS: dict[str, int] = {
    "O_RDWR": O_RDWR, "O_NONBLOCK": O_NONBLOCK,
    "POLLIN": 0x1, "POLLPRI": 0x2, "POLLOUT": 0x4, "POLLERR": 0x8, "POLLHUP": 0x10,
    "POLLNVAL": 0x20, "POLLRDNORM": 0x40, "POLLRDBAND": 0x80, "POLLWRNORM": 0x100,
    "POLLWRBAND": 0x200, "POLLRDHUP": 0x2000,
    "EPOLLIN": 0x1, "EPOLLPRI": 0x2, "EPOLLOUT": 0x4, "EPOLLERR": 0x8, "EPOLLHUP": 0x10,
    "EPOLLRDNORM": 0x40, "EPOLLWRNORM": 0x100, "EPOLLRDHUP": 0x2000,
    "EPOLLEXCLUSIVE": 1 << 28, "EPOLLONESHOT": 1 << 30, "EPOLLET": 1 << 31,
}

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
    data_error: str = ""
    urgent_events: int = 0  # UrgentData events seen (MUST-32: the asynchronous notice)


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
    pending_write: int = 0  # bytes a blocking write still has to hand over
    pending_written: int = 0
    opts: dict[str, int] = field(default_factory=dict)


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
    ca_state = getattr(conn, "ca_state", None)
    if ca_state is None:
        if getattr(conn, "_in_recovery", False):
            ca_state = 3  # TCP_CA_Recovery
        elif rtt is not None and int(getattr(rtt, "backoffs", 0) or 0) and in_flight:
            ca_state = 4  # TCP_CA_Loss
        elif getattr(conn, "_dupacks", 0):
            ca_state = 1  # TCP_CA_Disorder
        else:
            ca_state = 0
    ssthresh = info.ssthresh // mss
    fields = {
        "tcpi_state": LINUX_STATE.get(str(info.state), -1),
        "tcpi_ca_state": int(ca_state),
        "tcpi_options": opts,
        "tcpi_rto": round(info.rto * 1e6),
        "tcpi_rtt": round((info.srtt or 0.0) * 1e6),
        "tcpi_rttvar": round((getattr(rtt, "rttvar", None) or 0.0) * 1e6),
        "tcpi_backoff": int(getattr(rtt, "backoffs", 0) or 0),
        "tcpi_snd_cwnd": info.cwnd // mss,
        "tcpi_snd_ssthresh": INFINITE_SSTHRESH if ssthresh >= INFINITE_SSTHRESH // 2
        else ssthresh,
        "tcpi_total_retrans": info.retransmits,
        "tcpi_snd_mss": mss,
        "tcpi_rcv_mss": int(getattr(conn, "_rcv_mss", 0) or mss),
        "tcpi_advmss": int(getattr(conn, "our_mss", 0) or mss),
        "tcpi_unacked": -(-in_flight // mss),
        "tcpi_reordering": 3,
        "tcpi_snd_wnd": info.snd_wnd,
        "tcpi_rcv_wnd": info.rcv_wnd,
        "tcpi_bytes_received": info.bytes_in,
        "tcpi_bytes_sent": info.bytes_out,
        "tcpi_bytes_acked": max(0, info.bytes_out - in_flight),
    }
    last_rx = getattr(conn, "_last_rx", None)
    if isinstance(last_rx, (int, float)):
        fields["tcpi_last_data_recv"] = max(0, round((now - last_rx) * 1000))
    return fields


def _err(name: str) -> Outcome:
    return (-1, name)


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


class SocketTable:
    """The fd table of one script run over one stack."""

    def __init__(self, stack: Any, *, local_port: int, remote_addr: str,
                 connect_port: int) -> None:
        self.stack = stack
        self.local_port = local_port      # what listen() listens on
        self.remote_addr = remote_addr    # where connect() goes ...
        self.connect_port = connect_port  # ... and to which port
        self.socks: dict[int, Sock] = {}
        self.script_fds = True  # number descriptors as the script does (False: lowest free)
        self.on_connect: Any = None  # runner callback(handle) when a connection is created

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
        if self.script_fds and want >= 0 and want not in self.socks:
            return want
        fd = 3
        while fd in self.socks:
            fd += 1
        return fd

    def fd_of(self, tok: str) -> int:
        return _int_arg(tok)

    def _apply_opts(self, s: Sock, now: float) -> None:
        if s.handle is None:
            return
        h = s.handle
        # TcpHandle's forwarding setters refresh the stack's timer heap.
        if s.nodelay is not None:
            h.set_nodelay(s.nodelay, now=now)
        if s.keepalive is not None or s.keep_idle or s.keep_intvl or s.keep_cnt:
            h.set_keepalive(bool(s.keepalive), idle=s.keep_idle, interval=s.keep_intvl,
                            count=s.keep_cnt, now=now)
        if s.tos is not None and s.tos != h.tos:
            h.set_tos(s.tos)  # MUST-48
        if s.syn_cnt is not None or s.retries2 is not None:
            h.conn.set_retries(retries2=s.retries2, syn_retries=s.syn_cnt)  # MUST-21

    def drain_events(self) -> None:
        for obj, ev in self.stack.pending_events():
            if not hasattr(obj, "conn"):
                continue  # listener events (AcceptReady): accept() polls instead
            st = state_of(obj)
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
        return (fd, None)

    def sys_bind(self, now: float, args: list[str], want: int) -> Outcome:
        self._sock(args[0])
        return (0, None)

    def sys_listen(self, now: float, args: list[str], want: int) -> Outcome:
        s = self._sock(args[0])
        backlog = _int_arg(args[1]) if len(args) > 1 else 128
        s.listener = self.stack.listen(self.local_port, max(backlog, 1))
        if s.tos:
            s.listener.set_tos(s.tos)  # accepted connections inherit it, as on Linux
        return (0, None)

    def sys_accept(self, now: float, args: list[str], want: int) -> Outcome | _Blocked:
        s = self._sock(args[0])
        if s.listener is None:
            return _err("EINVAL")
        h = s.listener.accept()
        if h is None:
            return _err("EAGAIN") if s.nonblocking else BLOCKED
        fd = self._new_fd(want)
        ns = Sock(fd, handle=h, nodelay=s.nodelay, keepalive=s.keepalive, keep_idle=s.keep_idle,
                  keep_intvl=s.keep_intvl, keep_cnt=s.keep_cnt, linger_zero=s.linger_zero,
                  retries2=s.retries2, tos=s.tos)
        state_of(h)
        self.socks[fd] = ns
        self._apply_opts(ns, now)
        return (fd, None)

    sys_accept4 = sys_accept

    def sys_connect(self, now: float, args: list[str], want: int) -> Outcome | _Blocked:
        s = self._sock(args[0])
        if s.handle is None:
            s.handle = self.stack.connect(now, self.remote_addr, self.connect_port,
                                          tos=s.tos or 0)
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

    def _conn_pending(self, s: Sock) -> bool:
        st = state_of(s.handle)
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

    def sys_setsockopt(self, now: float, args: list[str], want: int) -> Outcome:
        if len(args) < 4:
            raise SyscallError("setsockopt(fd, level, name, value, len)")
        s = self._sock(args[0])
        level, name, val = args[1].strip(), args[2].strip(), args[3].strip()
        if name in ("SO_REUSEADDR", "SO_REUSEPORT"):
            return (0, None)
        if name == "SO_LINGER":
            # {onoff=1, linger=0}: close() sends RST (abort).
            v = val.replace(" ", "")
            s.linger_zero = "onoff=1" in v and "linger=0" in v
            return (0, None)
        n = _int_arg(val)
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
        elif name == "PYTCP_RETRIES2":  # pytcp extension: R2 (data retransmissions) per socket
            if n < 0:
                return _err("EINVAL")
            s.retries2 = n
        else:
            raise SyscallError(f"setsockopt {level} {name} is not supported")
        self._apply_opts(s, now)
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

    def _write(self, now: float, s: Sock, n: int, flags: str) -> Outcome | _Blocked:
        if s.handle is None:
            return _err("EPIPE") if s.listener is None else _err("ENOTCONN")
        urgent = "MSG_OOB" in flags  # RFC 9293 3.8.5: urgent data (MUST-30, MUST-62)
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
            if s.nonblocking:
                return _err("EAGAIN")
            if urgent:
                raise SyscallError("a blocking send(MSG_OOB) before the connection is "
                                   "established is not supported")
            s.pending_write, s.pending_written = n, 0
            return BLOCKED
        data = stream_bytes(st.write_offset, n)
        try:
            k = s.handle.send(now, data, True, urgent)
        except TcpUsageError:
            return _err("EPIPE")
        st.write_offset += k
        if k < n and not s.nonblocking:
            if urgent:
                raise SyscallError("a blocking send(MSG_OOB) that does not fit the send "
                                   "buffer is not supported")
            s.pending_write = n - k
            s.pending_written = k
            return BLOCKED
        if k == 0 and n > 0:
            return _err("EAGAIN")
        return (k, None)

    def continue_write(self, now: float, s: Sock) -> Outcome | _Blocked:
        st = state_of(s.handle)
        if st.reset:
            s.pending_write = 0
            e = self._take_error(st)
            return e if e else _err("EPIPE")
        if self._conn_pending(s):
            return BLOCKED
        data = stream_bytes(st.write_offset, s.pending_write)
        k = s.handle.send(now, data)
        st.write_offset += k
        s.pending_written += k
        s.pending_write -= k
        if s.pending_write:
            return BLOCKED
        return (s.pending_written, None)

    def sys_write(self, now: float, args: list[str], want: int) -> Outcome | _Blocked:
        return self._write(now, self._sock(args[0]), _int_arg(args[2]), "")

    def sys_send(self, now: float, args: list[str], want: int) -> Outcome | _Blocked:
        return self._write(now, self._sock(args[0]), _int_arg(args[2]),
                           args[3] if len(args) > 3 else "")

    def _read(self, now: float, s: Sock, n: int) -> Outcome | _Blocked:
        if s.handle is None:
            return _err("ENOTCONN")
        st = state_of(s.handle)
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
            st.read_offset += len(data)
            return (len(data), None)
        e = self._take_error(st)
        if e:
            return e
        if st.eof or st.reset or getattr(s.handle.conn, "at_eof", False):
            return (0, None)
        return _err("EAGAIN") if s.nonblocking else BLOCKED

    def sys_read(self, now: float, args: list[str], want: int) -> Outcome | _Blocked:
        return self._read(now, self._sock(args[0]), _int_arg(args[2]))

    def sys_recv(self, now: float, args: list[str], want: int) -> Outcome | _Blocked:
        if len(args) > 3 and "MSG_OOB" in args[3]:
            raise SyscallError("recv(..., MSG_OOB) is not supported: urgent data stays inline "
                               "(RFC 6093); read it with read()/recv() and check "
                               "PYTCP_URGENT_PENDING")
        return self._read(now, self._sock(args[0]), _int_arg(args[2]))

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
        if how in ("SHUT_WR", "SHUT_RDWR", "1", "2") and not st.shut_wr:
            try:
                s.handle.shutdown(now)
            except TcpUsageError:
                return _err("ENOTCONN")
            st.shut_wr = True
        return (0, None)

    def sys_close(self, now: float, args: list[str], want: int) -> Outcome:
        s = self._sock(args[0])
        del self.socks[s.fd]
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
