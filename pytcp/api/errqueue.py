"""The socket error queue: MSG_ZEROCOPY completions and SO_TIMESTAMPING TX timestamps.

Sans-I/O (time is passed in). One :class:`TxNotifier` belongs to one socket; the socket layer
(``pytcp.api.sock.Socket``, the script runner's ``pytcp.script.sockets``) feeds it:

* ``on_send(...)`` after each send that the engine accepted bytes of, with the stream offsets
  (data octets counted from the connection's first, no sequence-number wrap) it covered;
* ``on_progress(now, sent, acked)`` with the engine's ``TxProgress`` event (the stream offset
  of the first octet not yet handed to the link, and of the first not yet acknowledged);
* ``on_purge(now)`` when the connection's send queue is dropped (reset) while the socket is
  still open (Linux ``tcp_write_queue_purge``: the buffers are freed, completions follow).

What it reports, read with ``recvmsg(..., MSG_ERRQUEUE)`` (``pop()``), is what Linux reports
(``include/uapi/linux/errqueue.h``, ``Documentation/networking/msg_zerocopy.rst`` and
``timestamping.rst``):

* MSG_ZEROCOPY (``SO_ZEROCOPY`` on): each send of at least one byte takes the next 32-bit
  notification ID; when all its bytes are acknowledged (Linux: its skbs are freed) a
  notification ``ee_origin=SO_EE_ORIGIN_ZEROCOPY, ee_info=lo, ee_data=hi`` is queued. IDs
  coalesce as in Linux: a send whose predecessor's last bytes are still unsent extends that
  send's range (``msg_zerocopy_realloc``: at most 512 KiB and 65534 sends a range), and a
  completion whose ``lo`` follows the error queue's tail zerocopy notification extends it
  (``skb_zerocopy_notify_extend``). pytcp always copies the data, so ``ee_code`` is always
  ``SO_EE_CODE_ZEROCOPY_COPIED`` (what Linux reports whenever it had to copy, e.g. on a TUN
  path). A send that fails (EPIPE, EAGAIN with nothing accepted) takes no ID (Linux
  ``net_zcopy_put_abort``). Notifications stop once the socket is closed (``SOCK_DEAD``).
* SO_TIMESTAMPING with ``SOF_TIMESTAMPING_TX_SCHED`` / ``TX_SOFTWARE`` / ``TX_ACK``: the last
  byte of each send is the key (Linux ``tcp_tx_timestamp``); ``SCM_TSTAMP_SCHED`` and
  ``SCM_TSTAMP_SND`` are queued when that byte is first handed to the link, ``SCM_TSTAMP_ACK``
  when it is acknowledged, each with ``ee_errno=ENOMSG, ee_origin=SO_EE_ORIGIN_TIMESTAMPING,
  ee_info=<SCM_TSTAMP_*>`` and, with ``SOF_TIMESTAMPING_OPT_ID``, ``ee_data`` = the key's
  offset from the first byte not acknowledged when the option was set (Linux: ``snd_una``;
  ``SOF_TIMESTAMPING_OPT_ID_TCP``: the next byte written). The time (an ``SCM_TIMESTAMPING``
  control message, only when ``SOF_TIMESTAMPING_SOFTWARE`` is set) is the ``now`` given.
  Without ``SOF_TIMESTAMPING_OPT_TSONLY`` a notification carries data (Linux: the skb;
  pytcp: the last octets of the send, at most one MSS), so reading it into a smaller buffer
  sets ``MSG_TRUNC``.

Not emulated: hardware stamps (TX_HARDWARE/RAW_HARDWARE are accepted, nothing is reported
for them), the extra control messages of OPT_STATS and OPT_PKTINFO, timestamp requests in a
sendmsg control message, and SCHED/SND stamps of retransmissions (pytcp stamps the key byte's
first transmission only).

Bounds (every resource has one): the queue holds at most ``limit`` bytes, each notification
costing :data:`ENTRY_COST` plus its data (Linux: ``sk_rmem_alloc + truesize < sk_rcvbuf`` in
``sock_queue_err_skb``; the socket layer passes the receive buffer size). A timestamp that
does not fit is dropped and counted (``stats["dropped"]``), as Linux frees it. Zerocopy
notifications outstanding (waiting for their ACK or queued unread) are at most
:data:`ZEROCOPY_MAX_OUTSTANDING`; past it a MSG_ZEROCOPY send fails with ENOBUFS (Linux: the
notification skb is charged to ``optmem_max`` when the send starts, ``sock_omalloc``), counted
in ``stats["zerocopy_enobufs"]``. Pending timestamp keys are at most :data:`TS_MAX_PENDING`
(oldest dropped and counted past it).
"""

from __future__ import annotations

import errno
import struct
from collections import deque
from dataclasses import dataclass, field

# include/uapi/linux/errqueue.h
SO_EE_ORIGIN_NONE = 0
SO_EE_ORIGIN_LOCAL = 1
SO_EE_ORIGIN_ICMP = 2
SO_EE_ORIGIN_ICMP6 = 3
SO_EE_ORIGIN_TIMESTAMPING = 4  # = SO_EE_ORIGIN_TXSTATUS
SO_EE_ORIGIN_ZEROCOPY = 5
SO_EE_CODE_ZEROCOPY_COPIED = 1
SCM_TSTAMP_SND = 0
SCM_TSTAMP_SCHED = 1
SCM_TSTAMP_ACK = 2

# include/uapi/linux/net_tstamp.h
SOF_TIMESTAMPING_TX_HARDWARE = 1 << 0
SOF_TIMESTAMPING_TX_SOFTWARE = 1 << 1
SOF_TIMESTAMPING_RX_HARDWARE = 1 << 2
SOF_TIMESTAMPING_RX_SOFTWARE = 1 << 3
SOF_TIMESTAMPING_SOFTWARE = 1 << 4
SOF_TIMESTAMPING_SYS_HARDWARE = 1 << 5
SOF_TIMESTAMPING_RAW_HARDWARE = 1 << 6
SOF_TIMESTAMPING_OPT_ID = 1 << 7
SOF_TIMESTAMPING_TX_SCHED = 1 << 8
SOF_TIMESTAMPING_TX_ACK = 1 << 9
SOF_TIMESTAMPING_OPT_CMSG = 1 << 10
SOF_TIMESTAMPING_OPT_TSONLY = 1 << 11
SOF_TIMESTAMPING_OPT_STATS = 1 << 12
SOF_TIMESTAMPING_OPT_PKTINFO = 1 << 13
SOF_TIMESTAMPING_OPT_TX_SWHW = 1 << 14
SOF_TIMESTAMPING_BIND_PHC = 1 << 15
SOF_TIMESTAMPING_OPT_ID_TCP = 1 << 16
SOF_TIMESTAMPING_OPT_RX_FILTER = 1 << 17
SOF_TIMESTAMPING_TX_COMPLETION = 1 << 18  # (hardware completion reports: never generated)
SOF_TIMESTAMPING_MASK = (SOF_TIMESTAMPING_TX_COMPLETION << 1) - 1
SOF_TIMESTAMPING_TX_RECORD_MASK = (SOF_TIMESTAMPING_TX_HARDWARE | SOF_TIMESTAMPING_TX_SOFTWARE
                                   | SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_ACK)

# Socket-level numbers (asm-generic/socket.h, linux/socket.h, linux/in.h, linux/in6.h).
SOL_SOCKET = 1
SOL_IP = 0
SOL_IPV6 = 41
IP_RECVERR = 11
IPV6_RECVERR = 25
SO_TIMESTAMPING = 37  # also SCM_TIMESTAMPING
SCM_TIMESTAMPING = SO_TIMESTAMPING
SO_ZEROCOPY = 60
MSG_TRUNC = 0x20
MSG_ERRQUEUE = 0x2000
MSG_ZEROCOPY = 0x4000000

ENTRY_COST = 576            # Linux SKB_TRUESIZE(0) on x86-64: what one notification costs
ZEROCOPY_MAX_OUTSTANDING = 128  # ~ optmem_max (128 KiB) / (truesize of a notification skb)
ZEROCOPY_RANGE_BYTES = 1 << 19  # msg_zerocopy_realloc byte_limit ("a few TSO")
ZEROCOPY_RANGE_SENDS = 0xFFFF - 1  # USHRT_MAX - 1
TS_MAX_PENDING = 4096        # timestamp keys waiting for transmission/ACK


@dataclass(slots=True)
class ExtendedErr:
    """``struct sock_extended_err``."""

    ee_errno: int
    ee_origin: int
    ee_type: int = 0
    ee_code: int = 0
    ee_info: int = 0
    ee_data: int = 0

    def pack(self) -> bytes:
        """The struct (16 bytes) followed by an empty ``sockaddr_in`` offender (16 bytes), as
        ``ip_recv_error`` copies it for origins without an address."""
        return struct.pack("=IBBBBII", self.ee_errno, self.ee_origin, self.ee_type,
                           self.ee_code, 0, self.ee_info & 0xFFFFFFFF,
                           self.ee_data & 0xFFFFFFFF) + bytes(16)


@dataclass(slots=True)
class ErrEntry:
    """One queued notification: the extended error, its time (None: no SCM_TIMESTAMPING)
    and the data it carries (zerocopy: none)."""

    ee: ExtendedErr
    tstamp: float | None = None
    payload: bytes = b""

    @property
    def cost(self) -> int:
        return ENTRY_COST + len(self.payload)

    def cmsgs(self, v6: bool = False) -> list[tuple[int, int, bytes]]:
        """The control messages ``recvmsg`` returns, in Linux's order (``ip_recv_error``:
        the timestamp first, then IP_RECVERR / IPV6_RECVERR)."""
        out: list[tuple[int, int, bytes]] = []
        if self.tstamp is not None:
            sec = int(self.tstamp)
            nsec = int(round((self.tstamp - sec) * 1e9))
            if nsec >= 1_000_000_000:
                sec, nsec = sec + 1, nsec - 1_000_000_000
            out.append((SOL_SOCKET, SCM_TIMESTAMPING,
                        struct.pack("=qq", sec, nsec) + bytes(32)))
        out.append((SOL_IPV6, IPV6_RECVERR, self.ee.pack()) if v6
                   else (SOL_IP, IP_RECVERR, self.ee.pack()))
        return out


class ErrorQueue:
    """``sk_error_queue``: notifications in order, bounded by ``limit`` bytes."""

    __slots__ = ("_q", "limit", "used", "stats")

    def __init__(self, limit: int) -> None:
        self._q: deque[ErrEntry] = deque()
        self.limit = limit
        self.used = 0
        self.stats: dict[str, int] = {"queued": 0, "dropped": 0, "merged": 0}

    def __len__(self) -> int:
        return len(self._q)

    def __bool__(self) -> bool:
        return bool(self._q)

    def push(self, entry: ErrEntry, force: bool = False) -> bool:
        """Queue ``entry``; False (counted in ``stats["dropped"]``) when it does not fit
        (``force``: a zerocopy notification, already accounted when its send started)."""
        if not force and self.used + entry.cost >= self.limit:
            self.stats["dropped"] += 1
            return False
        self._q.append(entry)
        self.used += entry.cost
        self.stats["queued"] += 1
        return True

    def tail(self) -> ErrEntry | None:
        return self._q[-1] if self._q else None

    def pop(self) -> ErrEntry | None:
        """The oldest notification, removed (``recvmsg(MSG_ERRQUEUE)``); None: EAGAIN."""
        if not self._q:
            return None
        e = self._q.popleft()
        self.used -= e.cost
        return e

    def clear(self) -> None:
        self._q.clear()
        self.used = 0


@dataclass(slots=True)
class _ZcRange:
    """A MSG_ZEROCOPY notification in flight (Linux ``ubuf_info_msgzc``): IDs ``id ..
    id+len-1``, complete when the stream offset ``end`` is acknowledged."""

    id: int
    len: int
    end: int
    bytelen: int


@dataclass(slots=True)
class _TsKey:
    """A send's last byte (stream offset ``offset``) waiting for its TX timestamps."""

    offset: int
    flags: int           # SOF_TIMESTAMPING_TX_* still to report
    payload: bytes
    sent: bool = False


@dataclass(slots=True)
class TxNotifier:
    """The per-socket MSG_ZEROCOPY and SO_TIMESTAMPING state (see the module docstring)."""

    queue: ErrorQueue
    zerocopy: bool = False          # SO_ZEROCOPY
    tsflags: int = 0                # SO_TIMESTAMPING
    tskey_base: int = 0             # stream offset key 0 stands for (OPT_ID)
    zckey: int = 0                  # sk_zckey: the next notification ID
    dead: bool = False              # the socket was closed (SOCK_DEAD)
    sent: int = 0
    acked: int = 0
    _zc: deque[_ZcRange] = field(default_factory=deque)
    _ts: deque[_TsKey] = field(default_factory=deque)
    stats: dict[str, int] = field(default_factory=lambda: {
        "zerocopy_sends": 0, "zerocopy_enobufs": 0, "zerocopy_notified": 0,
        "ts_keys": 0, "ts_keys_dropped": 0, "ts_notified": 0})

    @property
    def tracking(self) -> bool:
        """The engine's ``TxProgress`` events are needed."""
        return self.zerocopy or bool(self.tsflags & SOF_TIMESTAMPING_TX_RECORD_MASK) or bool(
            self._zc or self._ts)

    def set_timestamping(self, flags: int, *, acked: int, written: int,
                         can_key: bool) -> int:
        """SO_TIMESTAMPING (Linux ``sock_set_timestamping``): 0 or an errno. ``acked`` /
        ``written``: stream offsets of SND.UNA and of the next byte written; ``can_key``:
        False in CLOSED and LISTEN, where OPT_ID is refused for TCP."""
        if flags & ~SOF_TIMESTAMPING_MASK:
            return errno.EINVAL
        if flags & SOF_TIMESTAMPING_OPT_ID_TCP and not flags & SOF_TIMESTAMPING_OPT_ID:
            return errno.EINVAL
        if flags & SOF_TIMESTAMPING_OPT_ID and not self.tsflags & SOF_TIMESTAMPING_OPT_ID:
            if not can_key:
                return errno.EINVAL
            self.tskey_base = written if flags & SOF_TIMESTAMPING_OPT_ID_TCP else acked
        self.tsflags = flags
        return 0

    def zerocopy_admit(self) -> bool:
        """Room for one more zerocopy notification (else the send fails with ENOBUFS)."""
        outstanding = len(self._zc) + sum(
            1 for e in self.queue._q if e.ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY)
        if outstanding >= ZEROCOPY_MAX_OUTSTANDING:
            self.stats["zerocopy_enobufs"] += 1
            return False
        return True

    def on_send(self, start: int, n: int, *, zerocopy: bool, tail_unsent: bool,
                data: bytes | bytearray | memoryview = b"", mss: int = 1460) -> None:
        """A send accepted ``n`` > 0 bytes at stream offset ``start``. ``zerocopy``: it had
        MSG_ZEROCOPY; ``tail_unsent``: bytes before ``start`` were still unsent when it was
        made (Linux: the write queue's tail skb exists, so its ``uarg`` may be extended);
        ``data``: the bytes (for the timestamp's payload)."""
        if n <= 0:
            return
        end = start + n
        if zerocopy and self.zerocopy:
            self.stats["zerocopy_sends"] += 1
            last = self._zc[-1] if self._zc else None
            if (last is not None and tail_unsent and last.end == start
                    and last.id + last.len == self.zckey
                    and last.len < ZEROCOPY_RANGE_SENDS
                    and last.bytelen + n <= ZEROCOPY_RANGE_BYTES):
                last.len += 1                       # msg_zerocopy_realloc: same uarg
                last.bytelen += n
                last.end = end
            else:
                self._zc.append(_ZcRange(self.zckey, 1, end, n))
            self.zckey = (self.zckey + 1) & 0xFFFFFFFF
        want = self.tsflags & (SOF_TIMESTAMPING_TX_SCHED | SOF_TIMESTAMPING_TX_SOFTWARE
                               | SOF_TIMESTAMPING_TX_ACK)
        if want:
            payload = b""
            if not self.tsflags & SOF_TIMESTAMPING_OPT_TSONLY:
                take = min(n, max(1, mss), len(data))
                payload = bytes(data[len(data) - take:]) if take else b""
            if len(self._ts) >= TS_MAX_PENDING:
                self._ts.popleft()
                self.stats["ts_keys_dropped"] += 1
            self._ts.append(_TsKey(end - 1, want, payload))
            self.stats["ts_keys"] += 1

    def on_progress(self, now: float, sent: int, acked: int) -> bool:
        """The engine's ``TxProgress``: returns True when a notification was queued (Linux
        ``sk_error_report``: wakes poll/epoll with EPOLLERR)."""
        sent = max(sent, self.sent)
        acked = max(acked, self.acked)
        self.sent, self.acked = sent, acked
        woke = False
        for k in self._ts:
            if k.offset >= sent:
                break
            if k.sent:
                continue
            k.sent = True
            # SCHED when the packet is queued for the device, SND when the driver takes it
            # (Linux __dev_queue_xmit / skb_tx_timestamp): both as it is handed to the link.
            for flag, kind in ((SOF_TIMESTAMPING_TX_SCHED, SCM_TSTAMP_SCHED),
                               (SOF_TIMESTAMPING_TX_SOFTWARE, SCM_TSTAMP_SND)):
                if k.flags & flag:
                    woke |= self._stamp(now, k, kind)
        while self._ts and self._ts[0].offset < acked:
            k = self._ts.popleft()
            if k.flags & SOF_TIMESTAMPING_TX_ACK:
                woke |= self._stamp(now, k, SCM_TSTAMP_ACK)  # tcp_ack_tstamp
        while self._zc and self._zc[0].end <= acked:
            woke |= self._complete(self._zc.popleft())
        return woke

    def on_purge(self, now: float) -> bool:
        """The connection dropped its send queue (reset): every zerocopy send completes
        (its buffers are freed); pending timestamps are dropped."""
        woke = False
        while self._zc:
            woke |= self._complete(self._zc.popleft())
        self._ts.clear()
        return woke

    def close(self) -> None:
        """The socket was closed: no more notifications (Linux SOCK_DEAD)."""
        self.dead = True
        self._zc.clear()
        self._ts.clear()
        self.queue.clear()

    def _stamp(self, now: float, k: _TsKey, kind: int) -> bool:
        if self.dead:
            return False
        data = (k.offset - self.tskey_base) & 0xFFFFFFFF if (
            self.tsflags & SOF_TIMESTAMPING_OPT_ID) else 0
        tstamp = now if self.tsflags & SOF_TIMESTAMPING_SOFTWARE else None
        entry = ErrEntry(ExtendedErr(errno.ENOMSG, SO_EE_ORIGIN_TIMESTAMPING, 0, 0, kind, data),
                         tstamp, b"" if self.tsflags & SOF_TIMESTAMPING_OPT_TSONLY
                         else k.payload)
        if self.queue.push(entry):
            self.stats["ts_notified"] += 1
            return True
        return False

    def _complete(self, r: _ZcRange) -> bool:
        """Linux ``__msg_zerocopy_callback``: extend the queue's tail notification when the
        IDs follow on, else queue a new one."""
        if self.dead:
            return False
        self.stats["zerocopy_notified"] += 1
        lo, hi = r.id, (r.id + r.len - 1) & 0xFFFFFFFF
        tail = self.queue.tail()
        if (tail is not None and tail.ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY
                and lo == (tail.ee.ee_data + 1) & 0xFFFFFFFF
                and ((tail.ee.ee_data - tail.ee.ee_info) & 0xFFFFFFFF) + 1 + r.len < 1 << 32):
            tail.ee.ee_data = (tail.ee.ee_data + r.len) & 0xFFFFFFFF
            self.queue.stats["merged"] += 1
            return True  # (Linux still calls sk_error_report)
        self.queue.push(ErrEntry(ExtendedErr(0, SO_EE_ORIGIN_ZEROCOPY, 0,
                                             SO_EE_CODE_ZEROCOPY_COPIED, lo, hi)), force=True)
        return True
