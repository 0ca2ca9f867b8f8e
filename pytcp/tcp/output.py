"""Segment output for :class:`pytcp.tcp.connection.Connection`: what goes on the wire.

Owns building outgoing segments: SYN/SYN-ACK options, the advertised window (RFC 7323
scaling, receiver SWS avoidance), TS and SACK/D-SACK options, the sender's decision of what
to send now (send window, cwnd, Nagle with Minshall's refinement, sender SWS avoidance,
limited transmit, GSO super-segments), retransmissions, RFC 6675 NextSeg() sending during SACK
recovery, and arming the retransmission and persist timers. It changes no connection state
(``Connection._set_state`` alone does); it moves SND.NXT/SND.MAX as segments leave.

A mixin: ``Connection`` inherits it; the attributes below are created by
``Connection.__init__``.
"""

from __future__ import annotations

import collections

from pytcp.tcp.config import TcpConfig
from pytcp.tcp.congestion import CongestionControl
from pytcp.tcp.delack import DelayedAck
from pytcp.tcp.ecn import ECT0, Ecn
from pytcp.tcp.events import Event, SendSpaceAvailable
from pytcp.tcp.fastopen import ClientRequest, ServerDecision
from pytcp.tcp.memory import RecvMemory
from pytcp.tcp.prr import Prr
from pytcp.tcp.rack import Rack
from pytcp.tcp.rcvwnd import RecvWindow
from pytcp.tcp.reasons import TxReason
from pytcp.tcp.reassembly import ReassemblyQueue
from pytcp.tcp.rtt import RttEstimator
from pytcp.tcp.sackboard import Scoreboard
from pytcp.tcp.segment import Segment
from pytcp.tcp.sendbuf import SendBuffer
from pytcp.tcp.seq import MASK, seq_add, seq_gt, seq_le, seq_lt, seq_sub
from pytcp.tcp.state import State
from pytcp.wire.tcp import (
    ACK,
    CWR,
    ECE,
    FIN,
    MAX_OPTIONS_LEN,
    MD5SIG_SPACE,
    NO_OPTIONS,
    PSH,
    RST,
    SYN,
    URG,
    TcpOptions,
)

# The states in which segments from the send buffer (data, FIN) may go out.
OUTPUT_STATES = frozenset({
    State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_1, State.CLOSING, State.LAST_ACK,
})

# Linux x86-64 sizes behind tcp_sndbuf_expand's worst case of one skb per segment: the
# headroom reserved for headers (MAX_TCP_HEADER), SKB_DATA_ALIGN(sizeof(struct
# skb_shared_info)) and SKB_DATA_ALIGN(sizeof(struct sk_buff)).
_MAX_TCP_HEADER = 320
_SHINFO = 320
_SKB_STRUCT = 256
# Linux sk_gso_max_size (GSO_MAX_SIZE less MAX_TCP_HEADER + 1): the largest skb a write
# builds (tcp_xmit_size_goal), before the half-window bound.
GSO_MAX_SIZE = 65536 - _MAX_TCP_HEADER - 1

# Linux's TCP_INFO chronographs (tcp_chrono_start/stop): what limits a sender that has data,
# by priority (a higher one replaces a lower one while it lasts).
CHRONO_NONE, CHRONO_BUSY, CHRONO_RWND, CHRONO_SNDBUF = 0, 1, 2, 3

# TCP_CORK / MSG_MORE: the longest a partial segment is held (Linux tcp(7): 200 ms ceiling).
CORK_CEILING = 0.2


class ConnectionOutput:
    """The sending half of a connection (mixin of ``Connection``)."""

    # (the attributes this module assigns; Connection lists the rest)
    __slots__ = ("_ack_now", "_ack_reason", "_burst_key", "_burst_val", "_cork_at",
                 "_cork_expired", "_cwnd_usage_seq", "_delack_at", "_dsack", "_fin_seq",
                 "_high_rxt", "_is_cwnd_limited", "_last_send", "_max_packets_out",
                 "_persist_at", "_rcv_unacked", "_rexmit_out", "_rto_at", "_rtt_seq",
                 "_rtt_time", "_rtx_end", "_rtx_ts", "_sendbuf", "_snd_sml", "_syn_tsval",
                 "_ut_start", "_chrono_at", "_chrono_stat", "_chrono_type", "_midwrite",
                 "_nospace", "_sndbuf_locked", "_space_check", "_syn_wnd",
                 "last_ack_sent", "notsent_lowat", "rcv_adv", "retransmits", "snd_max", "snd_nxt",
                 "sndbuf")

    config: TcpConfig
    state: State
    iss: int
    our_mss: int
    nodelay: bool
    cork: bool
    _more: bool
    _nagle_push: bool
    _tail_unpushed: bool
    user_timeout: float
    _ut_start: float | None
    _eor_marks: collections.deque[int]
    _cork_at: float | None
    _cork_expired: bool
    snd_una: int
    snd_nxt: int
    snd_max: int
    snd_wnd: int
    max_snd_wnd: int
    snd_mss: int
    rcv_nxt: int
    rcv_adv: int
    rcv_wscale: int
    last_ack_sent: int
    ws_ok: bool
    ts_ok: bool
    sack_ok: bool
    md5: bool
    ts_recent: int
    ts_offset: int
    retransmits: int
    _out: list[Segment]
    _sendbuf: SendBuffer
    _events: list[Event]
    peer_mss: int
    sndbuf: int                 # Linux sk_sndbuf: the limit of SendBuffer.queued
    _rw: RecvWindow             # the receive window's growth and autotuning (rcvwnd.py)
    _sndbuf_locked: bool
    notsent_lowat: int | None
    _midwrite: bool
    _nospace: bool
    _space_check: bool
    _chrono_type: int
    _chrono_at: float
    _chrono_stat: list[float]
    _now: float
    _buf_seq: int
    _fin_queued: bool
    _fin_seq: int | None
    _snd_sml: int
    _rcvq: bytearray
    _reasm: ReassemblyQueue
    _mem: RecvMemory | None
    _dsack: tuple[int, int] | None
    _ack_now: bool
    _delack_at: float | None
    _rto_at: float | None
    _persist_at: float | None
    _persist_backoff: int
    _rcv_unacked: int
    _dack: DelayedAck
    _rtt: RttEstimator
    _rtt_seq: int | None
    _rtt_time: float
    _retries: int
    _syn_lost: bool
    _syn_tsval: int | None
    _cc: CongestionControl
    _sb: Scoreboard
    _in_recovery: bool
    _dupacks: int
    _high_rxt: int
    _rexmit_out: int
    _last_send: float
    _burst_key: tuple[float, int, int, int] | None
    _rtx_ts: int                   # TSval of the latest retransmission
    _snd_up: int | None
    _rtx_end: int | None           # end of the highest retransmitted range, until acked
    _rack: Rack
    _rack_on: bool
    _fo_client: ClientRequest | None
    _fo_server: ServerDecision | None
    _syn_data: int
    _ecn: Ecn
    _synack_flags: int
    fo_child: bool
    _prr: Prr
    _tlp_at: float | None
    _reo_at: float | None
    _burst_val: tuple[int, TcpOptions]
    # Why the next pure ACK goes out (a challenge ACK, a window update...), if it says more
    # than "data received"; cleared by any ACK-bearing segment.
    _ack_reason: TxReason | None
    # Why segments below SND.MAX are sent again after SND.NXT was pulled back (RTO go-back,
    # path MTU, a window that shrank to zero).
    _goback_reason: TxReason
    # Linux tcp_cwnd_validate's record (see _cwnd_validate): the window limited sending in
    # the current window of data; the most segments out in it; SND.NXT when it was taken.
    _is_cwnd_limited: bool
    _max_packets_out: int
    _cwnd_usage_seq: int

    def _schedule_tlp(self, now: float, advancing: bool) -> None:
        raise NotImplementedError  # ConnectionRecovery

    def _sndbuf_expand(self) -> None:
        """Send-buffer autotuning (Linux tcp_sndbuf_expand): room for two congestion windows
        (at least the initial window of 10, and reordering + 1 segments) of worst-case skbs,
        one per segment, each a power-of-two head holding MSS + MAX_TCP_HEADER + the shared
        info, plus the skb itself; at most ``config.send_buffer`` (tcp_wmem[2]). It never
        shrinks, and SO_SNDBUF (``set_sndbuf``) stops it (SOCK_SNDBUF_LOCK)."""
        if self._sndbuf_locked:
            return
        mss = max(self.peer_mss, self.snd_mss, 1)
        per_mss = 1 << (mss + _MAX_TCP_HEADER + _SHINFO - 1).bit_length()
        per_mss += _SKB_STRUCT
        nr_segs = max(10, self._cc.cwnd // max(1, self.snd_mss), 4)  # (TCP_INIT_CWND, reo+1)
        want = min(2 * nr_segs * per_mss, self.config.send_buffer)
        if want > self.sndbuf:
            self.sndbuf = want
            self._sendbuf.limit = max(self._sendbuf.limit, want)

    def _notsent(self) -> int:
        """Bytes written but never sent (Linux write_seq - snd_nxt)."""
        return max(0, seq_sub(seq_add(self._buf_seq, len(self._sendbuf)), self.snd_max))

    def _memory_free(self, wake: int) -> bool:
        """Linux __sk_stream_memory_free: the queue (skb truesize, ``SendBuffer.queued``) is
        under SO_SNDBUF and the unsent bytes (doubled when ``wake``: tcp_poll and wake-ups)
        under TCP_NOTSENT_LOWAT (tcp_stream_memory_free)."""
        if self._sendbuf.queued >= self.sndbuf:
            return False
        lowat = self.notsent_lowat
        return lowat is None or (self._notsent() << wake) < lowat

    @property
    def writeable(self) -> bool:
        """Linux __sk_stream_is_writeable(sk, 1), what poll() reports as POLLOUT and what a
        wake-up needs: free space at least half the queue (sk_stream_wspace >=
        sk_stream_min_wspace, i.e. the queue at most two thirds of SO_SNDBUF) and
        ``_memory_free(1)``."""
        queued = self._sendbuf.queued
        return self.sndbuf - queued >= queued >> 1 and self._memory_free(1)

    def _chrono_set(self, now: float, new: int) -> None:
        old = self._chrono_type
        if old:
            self._chrono_stat[old - 1] += now - self._chrono_at
        self._chrono_at = now
        self._chrono_type = new

    def _chrono_start(self, now: float, kind: int) -> None:
        """Linux tcp_chrono_start: ``kind`` now limits the sender, unless a higher one does."""
        if kind > self._chrono_type:
            self._chrono_set(now, kind)

    def _chrono_stop(self, now: float, kind: int) -> None:
        """Linux tcp_chrono_stop: nothing queued -> no chronograph; else ``kind`` (if it was
        the one running) gives way to plain busy time."""
        if not len(self._sendbuf) and not self._fin_queued:
            self._chrono_set(now, CHRONO_NONE)
        elif kind == self._chrono_type:
            self._chrono_set(now, CHRONO_BUSY)

    def chrono(self, now: float) -> tuple[float, float, float]:
        """Linux TCP_INFO's tcpi_busy_time, tcpi_rwnd_limited and tcpi_sndbuf_limited, in
        seconds: how long the connection had data to send (in all), and how long of it the
        peer's window, and then the send buffer (``sndbuf`` with a writer waiting and nothing
        left unsent), held it back."""
        stat = list(self._chrono_stat)
        if self._chrono_type:
            stat[self._chrono_type - 1] += now - self._chrono_at
        return stat[0] + stat[1] + stat[2], stat[1], stat[2]

    def _new_space(self) -> None:
        """An arriving segment found a writer waiting for room (Linux tcp_check_space with
        SOCK_NOSPACE, after the output it allowed): grow SO_SNDBUF unless the congestion
        window is full (tcp_should_expand_sndbuf), then wake the writer once the socket is
        writeable (sk_stream_write_space clears SOCK_NOSPACE)."""
        if self.state not in (State.ESTABLISHED, State.CLOSE_WAIT) or self._fin_queued:
            return
        mss = max(1, self.snd_mss)
        if -(-self._pipe() // mss) < max(1, self._cc.cwnd // mss):
            self._sndbuf_expand()
        if self.writeable:
            self._nospace = False
            self._chrono_stop(self._now, CHRONO_SNDBUF)  # (tcp_check_space)
            self._events.append(SendSpaceAvailable())

    def _arm_rto(self, now: float) -> None:
        if self._ut_start is None:
            self._ut_start = now  # the oldest unacknowledged data leaves now (user timeout)
        self._rto_at = now + self._rtt.rto
        if self.user_timeout:
            # Linux tcp_clamp_rto_to_user_timeout: the timer fires when the user timeout ends.
            self._rto_at = max(now, min(self._rto_at, self._ut_start + self.user_timeout))

    def _arm_persist(self, now: float) -> None:
        base = max(self._rtt.rto, self.config.persist_min)
        t = min(base * (1 << min(self._persist_backoff, 30)), self.config.persist_max)
        self._persist_at = now + t

    def _ts_val(self, now: float) -> int:
        return (int(now * self.config.ts_hz) + self.ts_offset) & MASK

    def _options(self, now: float, payload_len: int) -> TcpOptions:
        """Options of a non-SYN segment: TS (RFC 7323) and SACK blocks (RFC 2018, D-SACK
        first per RFC 2883) on ACKs."""
        ts = (self._ts_val(now), self.ts_recent) if self.ts_ok else None
        blocks: tuple[tuple[int, int], ...] = ()
        if self.sack_ok and (self._reasm or self._dsack is not None):
            # At most 3 blocks next to TS (40 octets of options), and only as many as fit
            # beside the payload within the MSS (RFC 6691: options come out of the MSS).
            # (An MD5 signature takes 20 more: RFC 2385, none beside TS, 2 without.)
            room = min((MAX_OPTIONS_LEN - 4 - (12 if self.ts_ok else 0)
                        - (MD5SIG_SPACE if self.md5 else 0)) // 8,
                       (self.snd_mss - payload_len - 4) // 8)
            lst: list[tuple[int, int]] = []
            if self._dsack is not None:
                lst.append(self._dsack)
            for b in self._reasm.blocks():
                if len(lst) >= room:
                    break
                lst.append(b)
            blocks = tuple(lst[:max(room, 0)])
        if ts is None and not blocks:
            return NO_OPTIONS
        return TcpOptions(timestamp=ts, sack_blocks=blocks)

    def _sws_threshold(self) -> int:
        return min(self._rw.rcvbuf // 2, self.snd_mss)

    def _window_to_advertise(self) -> int:
        """RCV.WND to offer: the free receive buffer, at most rcv_ssthresh as Linux grows it
        (tcp/rcvwnd.py, __tcp_select_window), moving the right edge only in steps of
        min(RCV.BUFF/2, MSS) (receiver SWS avoidance, RFC 9293 3.8.6.2.2, MUST-39) and never
        shrinking it (RFC 9293 3.8.6.2.2, 'SHOULD NOT shrink')."""
        free = max(0, self._rw.rcvbuf - len(self._rcvq))
        mem = self._mem
        if mem is not None and mem.free < free:
            free = mem.free  # the stack-wide cap is near: open no further (never shrink)
        rw_ssthresh = self._rw.rcv_ssthresh
        if free > rw_ssthresh:
            free = rw_ssthresh  # (RecvWindow.offer, inline: every segment sent asks)
        cur = max(0, seq_sub(self.rcv_adv, self.rcv_nxt))
        if free - cur < self._sws_threshold():
            return cur
        return free

    def _wnd_field(self) -> int:
        """The 16-bit window field for a non-SYN segment; updates RCV.ADV."""
        if self.state in (State.SYN_SENT, State.LISTEN, State.CLOSED):
            return 0
        win = self._window_to_advertise()
        ws = self.rcv_wscale
        cur = max(0, seq_sub(self.rcv_adv, self.rcv_nxt))
        field = win >> ws
        if (field << ws) < win:
            # Round up to the scale's unit (Linux __tcp_select_window), which also keeps an
            # old right edge (RFC 9293 3.8.6.2.2: no shrinking), unless that would offer
            # more than the buffer holds: then the edge retreats by < 2**ws octets, which
            # RFC 7323 Appendix F expects of scaled windows (Linux instead over-offers by as
            # much, each ACK anew; pytcp keeps the buffer a hard bound).
            up = field + 1
            if (up << ws) <= self._rw.rcvbuf - len(self._rcvq):
                field = up
        field = min(field, 0xFFFF)
        edge = seq_add(self.rcv_nxt, field << ws)
        if seq_gt(edge, self.rcv_adv):
            self.rcv_adv = edge
        return field

    def _syn_options(self, now: float) -> TcpOptions:
        cfg = self.config
        if self.state is State.SYN_SENT:  # what we offer (RFC 7323 2.2, RFC 2018 2)
            fo = self._fo_client
            # RFC 7413 4.1.3: the cookie (or a request) rides in the first SYN only; a
            # retransmitted SYN is a plain one (Linux).
            first = fo is not None and not self._syn_lost
            return TcpOptions(
                mss=self.our_mss,
                wscale=self.rcv_wscale if cfg.window_scaling else None,
                sack_permitted=cfg.sack,
                # Linux tcp_syn_options: an MD5 SYN leaves timestamps off (option space).
                timestamp=(self._ts_val(now), 0) if cfg.timestamps and not self.md5 else None,
                fastopen=fo.cookie if first and fo is not None else None,
                fastopen_exp=fo.exp if first and fo is not None else False)
        srv = self._fo_server
        return TcpOptions(  # SYN-ACK: only what the peer offered too
            mss=self.our_mss,
            wscale=self.rcv_wscale if self.ws_ok else None,
            sack_permitted=self.sack_ok,
            timestamp=(self._ts_val(now), self.ts_recent) if self.ts_ok else None,
            fastopen=srv.reply_cookie if srv is not None else None,
            fastopen_exp=srv.exp if srv is not None else False)

    def _send_syn(self, now: float, reason: TxReason | None = None) -> None:
        # RFC 7323 2.2: unscaled in a SYN; Linux tcp_connect_init: whole segments of the MSS
        # we announce (tcp/rcvwnd.py).
        wnd = self._syn_wnd = self._rw.syn_window(self.our_mss)
        after_syn = seq_add(self.iss, 1)
        payload = b""
        if self._syn_data and not self._syn_lost:
            # RFC 7413 4.2.1: data in the first SYN (the retransmitted SYN carries none; the
            # data is sent again once the handshake is done).
            payload = self._sendbuf.read(0, self._syn_data)
        # RFC 3168 6.1.1: an ECN-setup SYN carries ECE and CWR; a retransmitted SYN does not
        # (Linux tcp_ecn_clear_syn: a middlebox may drop ECN-setup SYNs).
        ecn_flags = self._ecn.syn_flags() if not self._syn_lost else 0
        opts = self._syn_options(now)
        if self._syn_tsval is None and opts.timestamp is not None:
            self._syn_tsval = opts.timestamp[0]  # (RFC 7323: a SYN-ACK must echo from here)
        self._out.append(Segment(self.iss, 0, SYN | ecn_flags, wnd, payload,
                                 options=opts, reason=reason))
        self.snd_nxt = seq_add(after_syn, len(payload))
        if seq_lt(self.snd_max, self.snd_nxt):
            self.snd_max = self.snd_nxt
        if self._retries == 0 and self._rtt_seq is None and not self._syn_lost:
            self._rtt_seq = after_syn
            self._rtt_time = now
        self._arm_rto(now)

    def _send_synack(self, now: float, reason: TxReason | None = None) -> None:
        # Linux tcp_openreq_init_rwin: whole segments of the MSS less the TS option.
        wnd = self._syn_wnd = self._rw.syn_window(self.our_mss - (12 if self.ts_ok else 0))
        self.rcv_adv = seq_add(self.rcv_nxt, wnd)
        # RFC 3168 6.1.1: ECE (alone) answers an ECN-setup SYN.
        self._emit(Segment(self.iss, self.rcv_nxt, SYN | ACK | self._synack_flags, wnd,
                           options=self._syn_options(now), reason=reason))
        after_syn = seq_add(self.iss, 1)
        if seq_lt(self.snd_max, after_syn):  # (a FIN may already follow the SYN)
            self.snd_nxt = self.snd_max = after_syn
        if self._retries == 0 and not self._syn_lost:
            self._rtt_seq = self.snd_nxt
            self._rtt_time = now
        if self._rto_at is None:
            self._arm_rto(now)

    def _emit(self, seg: Segment) -> None:
        """Queue a segment; an ACK-bearing one acknowledges everything received so far."""
        if seg.flags & ACK and not seg.flags & RST:
            if self._ecn.ece_pending and not seg.flags & SYN:
                seg.flags |= ECE  # RFC 3168 6.1.3: echo CE until the sender's CWR
            self.last_ack_sent = seg.ack
            self._ack_now = False
            self._ack_reason = None
            self._delack_at = None
            self._rcv_unacked = 0
            if self._dsack is not None and seg.options.sack_blocks[:1] == (self._dsack,):
                self._dsack = None  # reported (once, RFC 2883)
                if seg.reason is None or seg.reason is TxReason.OUT_OF_WINDOW_ACK:
                    seg.reason = TxReason.DSACK  # (the more telling name for that ACK)
            self._dack.on_ack_sent()  # Linux tcp_event_ack_sent
        self._out.append(seg)

    def _flush(self, now: float) -> None:
        """Build what is due: data the windows allow (carrying the ACK), else a pure ACK."""
        if self.state in OUTPUT_STATES or (self.fo_child and self.state is State.SYN_RECEIVED):
            # (RFC 7413 4.2.2: a Fast Open server may send before the handshake completes)
            before = self.snd_max
            self._send_data(now)
            if self._rack_on and self.snd_max != before and not self._in_recovery:
                self._schedule_tlp(now, advancing=False)  # RFC 8985 7.2
            if self._space_check:
                # Linux tcp_data_snd_check: the output first, then tcp_check_space.
                self._space_check = False
                if self._nospace:
                    self._new_space()
            if self._rto_at is None and self._persist_at is None:
                # Never leave data without a timer: in flight -> RTO, else -> persist.
                if self.snd_una != self.snd_nxt:
                    self._arm_rto(now)
                elif ((self.snd_una != self.snd_max or self._has_unsent())
                      and self._cork_at is None):  # (a cork hold has its own deadline)
                    self._arm_persist(now)
        if self._ack_now and self.state not in (State.CLOSED, State.LISTEN, State.SYN_SENT):
            self._send_ack(now)  # (in SYN-RECEIVED too: e.g. a challenge ACK, RFC 9293)

    def _want_ack(self, reason: TxReason) -> None:
        """An ACK is due now, and why (the first reason given wins until it is sent)."""
        self._ack_now = True
        if self._ack_reason is None:
            self._ack_reason = reason

    def _send_ack(self, now: float, reason: TxReason | None = None) -> None:
        """A pure ACK: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> with the current options. While
        an RTO go-back has pulled SND.NXT below SND.MAX, the ACK carries SND.MAX (as BSD
        does): the peer has seen sequence numbers up to there and would find an older one
        unacceptable (RFC 9293 3.10.7.4) and ignore the ACK."""
        self._emit(Segment(self.snd_max, self.rcv_nxt, ACK, self._wnd_field(),
                           options=self._options(now, 0),
                           reason=reason if reason is not None else self._ack_reason))

    def _has_unsent(self) -> bool:
        data_end = seq_add(self._buf_seq, len(self._sendbuf))
        if seq_lt(self.snd_nxt, data_end):
            return True
        return self._fin_queued and (self._fin_seq is None or seq_le(self.snd_nxt, self._fin_seq))

    def _syn_unacked_fo(self) -> int:
        """1 while a Fast Open server's SYN-ACK is unacknowledged, else 0."""
        return 1 if self.fo_child and self.snd_una == self.iss else 0

    def _snd_wnd_edge(self) -> int:
        """The right edge of the send window: SND.UNA + SND.WND. A Fast Open server sends
        before its SYN-ACK is acknowledged; the window the client's SYN offered starts after
        the SYN-ACK's sequence number (RFC 7413 4.2.2; Linux starts the child with SND.UNA =
        ISS + 1, tcp_create_openreq_child)."""
        return seq_add(self.snd_una, self.snd_wnd + self._syn_unacked_fo())

    def _pipe(self) -> int:
        """Octets thought to be in the network: RFC 6675 SetPipe() from the scoreboard with
        SACK; without it, duplicate ACKs count as segments that left the network (as Linux's
        Reno emulation does)."""
        if not self._in_recovery:
            # RFC 7413 server: the SYN-ACK is not data in flight (Linux sends and retransmits
            # it from the request, it never enters packets_out), so the first flight of a
            # Fast Open connection is the whole initial window.
            out = seq_sub(self.snd_nxt, self.snd_una)
            return out - self._syn_unacked_fo() if out > 0 else out
        if self._rack_on:
            return self._rack.pipe(self.snd_una, self.snd_nxt)
        if self.sack_ok:
            return self._sb.pipe(self.snd_una, self.snd_nxt, self._high_rxt, self.snd_mss)
        out = seq_sub(self.snd_nxt, self.snd_una)
        if self._prr.active:
            # PRR without SACK, as Linux's Reno emulation counts packets in flight
            # (tcp_packets_in_flight = packets_out - sacked_out - lost_out + retrans_out):
            # each duplicate ACK is one segment that left the network (at most all but the
            # head, tcp_limit_reno_sacked), and the head is lost in recovery (marked at the
            # fast retransmit and again at every partial ACK, tcp_newreno_mark_lost) until
            # it is retransmitted.
            lost = min(self.snd_mss, max(out, 0))
            sacked = min(self._dupacks * self.snd_mss, max(out - lost, 0))
            return max(out - sacked - lost, 0) + self._rexmit_out
        return max(out - self._dupacks * self.snd_mss, 0) + self._rexmit_out

    def _sack_recovery_send(self, now: float) -> None:
        """RFC 6675 5 step (C): while cwnd - pipe >= 1 SMSS, send NextSeg()."""
        mss = self.snd_mss
        for _ in range(1000):
            if self._cc.cwnd - self._pipe() < mss:
                return
            wnd_room = seq_sub(self._snd_wnd_edge(), self.snd_nxt)
            can_new = wnd_room > 0 and self.snd_nxt == self.snd_max and self._has_unsent()
            if self._rack_on:
                # RACK (RFC 8985): retransmit what it marked lost, lowest first, then new
                # data (Linux tcp_xmit_retransmit_queue; no RFC 6675 rule 3).
                # With GSO a lost range goes out as one super-segment, as far as cwnd allows
                # (Linux retransmits a lost skb of several segments at once).
                maxp = self.config.max_segment_payload
                cap = mss
                if maxp > mss:
                    cap = max(mss, min(maxp - maxp % mss,
                                       (self._cc.cwnd - self._pipe()) // mss * mss))
                lost = self._rack.next_lost(cap)
                nxt = (lost[0], lost[1], True) if lost is not None else (
                    (self.snd_nxt, mss, False) if can_new else None)
            else:
                nxt = self._sb.next_seg(self.snd_una, self.snd_nxt, self._high_rxt, mss,
                                        can_new)
            if nxt is None:
                return
            seq, length, is_rtx = nxt
            if is_rtx:
                n = self._retransmit_at(now, seq, length, TxReason.RACK if self._rack_on
                                        else TxReason.SACK_RETRANSMIT)
                if n <= 0:
                    return
                self._high_rxt = seq_add(seq, n)
            else:
                before = self.snd_nxt
                limit = min(mss, wnd_room)
                if self.config.psh_per_skb and self.config.max_segment_payload > mss:
                    # Linux tcp_write_xmit in recovery: new data as one GSO packet of what
                    # the congestion window allows (tcp_cwnd_test's half-cwnd quota, TSO
                    # autosizing), e.g. PRR's slow-start sends of two segments.
                    quota = min(self._cc.cwnd - self._pipe(), max(self._cc.cwnd // 2, mss))
                    limit = max(limit, min(self._tso_size(mss), quota // mss * mss, wnd_room))
                self._send_data(now, force=True, limit=limit)
                if self.snd_nxt == before:
                    return

    def _eor_room(self, seq: int | None = None) -> int | None:
        """Bytes from ``seq`` (SND.NXT) to the next MSG_EOR boundary (None: no boundary
        ahead); boundaries already acknowledged are forgotten."""
        marks = self._eor_marks
        while marks and seq_le(marks[0], self.snd_una):
            marks.popleft()
        start = self.snd_nxt if seq is None else seq
        for m in marks:
            if seq_gt(m, start):
                return seq_sub(m, start)
        return None

    def _tso_size(self, mss: int) -> int:
        """The largest super-segment to build now. With ``TcpConfig.tso_autosize`` (linux
        profile) as Linux sizes TSO packets: about 1 ms at the pacing rate (200 % of
        cwnd/SRTT in slow start, 120 % after; tcp_tso_autosize with sk_pacing_shift 10), at
        least ``min_tso_segs``, and at most half of cwnd so two packets are in flight
        (tcp_cwnd_test)."""
        maxp = self.config.max_segment_payload
        if maxp <= mss or not self.config.tso_autosize:
            return maxp
        cwnd = self._cc.cwnd
        srtt = self._rtt.srtt
        nbytes = 0
        if srtt:
            ratio = 2.0 if cwnd < self._cc.ssthresh // 2 else 1.2
            nbytes = int(ratio * cwnd / srtt) // 1024
        else:
            # No RTT sample yet (a Fast Open server before the handshake's ACK): Linux's
            # pacing rate is still unset (~0, or cwnd/0 in tcp_update_pacing_rate), so only
            # the half-cwnd bound below sizes the packet.
            nbytes = cwnd
        min_rtt = self._rtt.min_rtt
        if min_rtt is not None:
            # Linux 5.18+ tcp_tso_autosize: plus the largest GSO size halved for every
            # 512 us of min RTT (net.ipv4.tcp_tso_rtt_log = 9), at most that size.
            r = max(1, int(min_rtt * 1e6)) >> 9
            if r < 32:
                nbytes = min(nbytes + (GSO_MAX_SIZE >> r), GSO_MAX_SIZE)
        segs = max(nbytes // mss, self.config.min_tso_segs)
        segs = min(segs, max(cwnd // mss // 2, 1))
        return min(maxp, segs * mss)

    def _send_data(self, now: float, force: bool = False, limit: int = 0,
                   reason: TxReason | None = None) -> None:
        """Send new data (and the FIN) as the send window, cwnd, Nagle (RFC 896, MUST-17) and
        sender SWS avoidance (RFC 9293 3.8.6.2.1, MUST-38) allow. ``force``: one segment
        regardless of Nagle/SWS/cwnd (persist, recovery); ``limit``: its maximum size."""
        mss = self.snd_mss
        if self._in_recovery and self.sack_ok and not force:
            self._sack_recovery_send(now)
            return
        if (self._in_recovery and not self.sack_ok and self._prr.active and not force
                and self._rexmit_out == 0 and self.snd_una != self.snd_max):
            # Recovery without SACK under PRR (RFC 9937, as Linux's tcp_xmit_retransmit_queue
            # runs it): the head a partial ACK left lost (RFC 6582 3.2 step 5) goes out first,
            # when PRR's cwnd has room for it; new data only after it.
            if self._cc.cwnd - self._pipe() < mss:
                return
            self._retransmit_at(now, self.snd_una, reason=TxReason.PARTIAL_ACK)
        had_unsent = self._has_unsent()
        maxp = limit if limit > 0 else self._tso_size(mss)  # (after a restart: new cwnd)
        if maxp < mss and limit <= 0:
            maxp = mss
        sent_any = False
        if (not force and not self._in_recovery and self.snd_nxt == self.snd_max
                and self._snd_up is None):
            sent_any = self._send_burst(now, mss, maxp)
        while True:
            buffered = len(self._sendbuf)
            off = seq_sub(self.snd_nxt, self._buf_seq)
            off = max(off, 0)
            avail = buffered - off
            fin_due = self._fin_queued and (
                self._fin_seq is None or seq_le(self.snd_nxt, self._fin_seq))
            if avail <= 0 and not fin_due:
                break
            eor_room = self._eor_room()
            eor_cut = eor_room is not None and eor_room < avail
            skb_room = 0
            if not seq_lt(self.snd_nxt, self.snd_max):
                # New data: no packet spans two skbs (Linux sends skb by skb); one that is
                # not the queue's tail is pushed whole (no Nagle hold, like a record end).
                skb_room = self._sendbuf.to_skb_end(off)
                if not (0 < skb_room < avail and (eor_room is None or skb_room < eor_room)):
                    skb_room = 0
            if skb_room:
                avail = skb_room
                eor_room = None
                eor_cut = True
            elif eor_cut:
                # Linux MSG_EOR: no segment crosses a record boundary; a record with more
                # data queued behind it is not the queue's tail, so Nagle does not hold it
                # (tcp_write_xmit applies Nagle to the last skb only).
                avail = eor_room or 0
            wnd_room = seq_sub(self._snd_wnd_edge(), self.snd_nxt)
            cc_room = self._cc.cwnd - self._pipe()
            if force:
                cc_room = max(cc_room, mss)
            elif not self._in_recovery and 0 < self._dupacks < 3:
                cc_room += self._dupacks * mss  # RFC 3042 limited transmit
            retrans = seq_lt(self.snd_nxt, self.snd_max)
            n = min(avail, wnd_room, cc_room, maxp)
            if retrans and self.sack_ok and self._sb:
                # Going back after an RTO: skip what the peer SACKed (RFC 6675 5.1).
                sacked_end = self._sb.sacked_end(self.snd_nxt)
                if sacked_end is not None:
                    self.snd_nxt = sacked_end if seq_lt(sacked_end, self.snd_max) \
                        else self.snd_max
                    continue
                hole = self._sb.first_hole(self.snd_nxt, self.snd_nxt)
                if hole is not None and hole[0] == self.snd_nxt:
                    n = min(n, seq_sub(hole[1], hole[0]))
            if avail <= 0:
                # A bare FIN: it takes no window room (receivers accept it at RCV.NXT), and,
                # as in Linux (tcp_cwnd_test: "don't be strict about the congestion window
                # for the final FIN"), no congestion-window room either: it carries no data
                # and must not wait for the whole flight to be acknowledged.
                n = 0
            elif n <= 0:
                break
            elif n < avail and n < mss and not force and not retrans:
                # Window- or cwnd-limited small segment: sender SWS avoidance.
                if cc_room < mss or n < self.max_snd_wnd // 2:
                    break
            elif n == avail and n < mss and not force and not retrans and not eor_cut:
                # The tail of the queue: TCP_CORK/MSG_MORE hold it (Linux); then Nagle
                # (RFC 896, RFC 9293 3.7.4) with Minshall's refinement as in Linux: hold it
                # while a small segment is unacknowledged.
                # Linux TCP_NAGLE_PUSH (tcp_nagle_test): neither cork nor Nagle holds it.
                if not self._nagle_push and (
                        self._cork_holds(now)
                        or (not self.nodelay and not self._fin_queued
                            and seq_gt(self._snd_sml, self.snd_una)
                            and seq_le(self._snd_sml, self.snd_nxt))):
                    break
            if n > mss and (n < avail or (n % mss and not force and not retrans
                                          and not self._nagle_push
                                          and self._cork_holds(now))):
                n -= n % mss  # whole segments in a GSO super-segment (corked: hold the rest)
            seq = self.snd_nxt
            payload = self._sendbuf.read(off, n) if n > 0 else b""
            flags = ACK
            if n > mss and not retrans and self.config.psh_each_gso and (
                    not self._in_recovery or self.config.psh_per_skb):
                # Linux's observable behaviour (google/packetdrill's tests): every
                # multi-segment TSO packet of new data sent outside loss recovery carries PSH.
                flags |= PSH
            if n > 0 and self.config.psh_per_skb:
                if retrans:
                    flags |= self._rexmit_psh(off, n)
                elif self._sendbuf.pushed(off + n):
                    flags |= PSH  # the end of an skb marked by tcp_mark_push (Linux)
            if n > 0 and eor_room is not None and n == eor_room:
                flags |= PSH  # the end of a MSG_EOR record (Linux pushes it)
            if off + n == buffered and not self._midwrite:
                if n > 0 and (force or not self._tail_unpushed):
                    # MUST-61: PSH on the last buffered segment, unless the write that put
                    # it there said more follows (MSG_MORE: a send call without PUSH, as
                    # Linux's tcp_push marks it); a probe's send marks it (tcp_write_wakeup).
                    flags |= PSH
                if self._fin_queued:
                    flags |= FIN
                    self._fin_seq = seq_add(seq, n)
            self._emit_data(now, seq, flags, payload, retrans,
                            self._goback_reason if retrans and reason is None else reason)
            if 0 < n < mss:
                if not retrans:
                    # Minshall: a small segment of new data (a retransmission is none, as
                    # Linux's tcp_minshall_update sees only new data).
                    self._snd_sml = self.snd_nxt
                self._cork_at = None  # the held partial segment left: a new hold starts anew
                self._cork_expired = False
            sent_any = True
            if force:
                break
        if had_unsent:
            self._cwnd_validate(sent_any)
        if (not sent_any and self._persist_at is None and self._rto_at is None
                and self.snd_una == self.snd_nxt and self._has_unsent()
                and self.state in OUTPUT_STATES and self._cork_at is None):
            self._arm_persist(now)
        # Linux tcp_write_xmit's chronographs: the send window stopped the next segment that
        # the congestion window allowed (tcp_snd_wnd_test); else, having sent while not
        # cwnd-limited, nothing is left unsent and a writer waits for room
        # (tcp_cwnd_validate): send-buffer limited.
        unsent = seq_sub(seq_add(self._buf_seq, len(self._sendbuf)), self.snd_nxt)
        need = min(unsent, mss)
        if (unsent > 0 and self._cc.cwnd - self._pipe() >= need  # (cwnd is tested first)
                and seq_sub(seq_add(self.snd_una, self.snd_wnd), self.snd_nxt) < need):
            self._chrono_start(now, CHRONO_RWND)
        else:
            self._chrono_stop(now, CHRONO_RWND)
            if (sent_any and unsent <= 0 and self._nospace and self._pipe() < self._cc.cwnd
                    and self.state in (State.ESTABLISHED, State.CLOSE_WAIT)):
                self._chrono_start(now, CHRONO_SNDBUF)

    def _idle_restart_check(self, now: float) -> None:
        """RFC 5681 4.1: after an idle period longer than the RTO (nothing in flight, nothing
        sent for an RTO) restart from at most the initial window. Checked where Linux's
        tcp_slow_start_after_idle_check runs: when the application queues data
        (tcp_skb_entail) and when the peer's window changes with data queued
        (tcp_ack_update_window); not when a timer sends (a zero-window probe keeps cwnd)."""
        if (self.config.slow_start_after_idle and self.snd_una == self.snd_max
                and now - self._last_send > self._rtt.rto):
            self._cc.on_idle_restart(now)

    def _sack_whole_segments(self, blocks: tuple[tuple[int, int], ...]
                             ) -> tuple[tuple[int, int], ...]:
        """Linux's SACK granularity (tcp_sacktag_walk -> tcp_match_skb_to_sack): a block is
        applied to the packets (skbs) sent in whole MSS units counted from each packet's
        start: a block starting inside a packet starts at its next MSS boundary (at least
        one MSS in), and one ending inside a packet ends at its last whole MSS before that
        (none if less than one MSS). A block that covers no whole unit is ignored."""
        mss = self.snd_mss
        buf = self._sendbuf
        out: list[tuple[int, int]] = []
        for s, e in blocks:
            if not seq_lt(s, e) or not seq_gt(s, self.snd_una):
                out.append((s, e))  # (D-SACK or below SND.UNA: the scoreboard judges it)
                continue
            b = buf.skb_bounds(seq_sub(s, self._buf_seq))
            if b is not None and seq_sub(s, self._buf_seq) != b[0]:
                pkt = seq_sub(s, self._buf_seq) - b[0]
                pkt = mss if pkt < mss else -(-pkt // mss) * mss
                s = seq_add(self._buf_seq, min(b[0] + pkt, b[1]))
            b = buf.skb_bounds(seq_sub(e, self._buf_seq) - 1)
            if b is not None and seq_sub(e, self._buf_seq) != b[1]:
                pkt = seq_sub(e, self._buf_seq) - b[0]
                e = seq_add(self._buf_seq, b[0] + (pkt // mss * mss if pkt >= mss else 0))
            if seq_lt(s, e):
                out.append((s, e))
        return tuple(out)

    def _cwnd_validate(self, sent: bool) -> None:
        """After a round of sending new data (Linux tcp_write_xmit -> tcp_cwnd_validate): was
        the congestion window what stopped it (Linux: packets in flight >= cwnd)? Remember
        that for the current window of data, or else the most segments that were out in it
        (max_packets_out), until SND.UNA passes SND.NXT of then (cwnd_usage_seq). cwnd grows
        on an ACK only while ``cwnd_is_limited`` (RFC 7661 2 / RFC 9438 5.8: not while
        application-limited)."""
        mss = self.snd_mss
        cwnd_segs = self._cc.cwnd // mss
        limited = -(-self._pipe() // mss) >= cwnd_segs
        if not sent and not limited:
            return
        packets_out = -(-seq_sub(self.snd_nxt, self.snd_una) // mss)
        if (not seq_lt(self.snd_una, self._cwnd_usage_seq) or limited
                or (not self._is_cwnd_limited and packets_out > self._max_packets_out)):
            self._is_cwnd_limited = limited
            self._max_packets_out = packets_out
            self._cwnd_usage_seq = self.snd_nxt

    def cwnd_is_limited(self) -> bool:
        """Linux tcp_is_cwnd_limited: the window limited sending in the current window of
        data; in slow start also while cwnd < 2 * max_packets_out (so cwnd grows to twice
        what was in flight, RFC 5681 3.1's doubling per round trip)."""
        if self._is_cwnd_limited:
            return True
        if self._cc.cwnd < self._cc.ssthresh:
            return self._cc.cwnd // self.snd_mss < 2 * self._max_packets_out
        return False

    def _cork_holds(self, now: float) -> bool:
        """Whether TCP_CORK or MSG_MORE holds a partial last segment now (Linux semantics:
        until uncorked, filled, the FIN, or CORK_CEILING after the hold began)."""
        if not (self.cork or self._more) or self._fin_queued or self._cork_expired:
            return False
        at = self._cork_at
        if at is None:
            self._cork_at = now + CORK_CEILING
            return True
        if now >= at:
            self._cork_at = None
            self._cork_expired = True
            return False
        return True

    def _send_burst(self, now: float, mss: int, maxp: int) -> bool:
        """The bulk-transfer fast path of ``_send_data``: new, full-sized segments (whole
        MSS multiples for GSO) that end before the last buffered byte, as many as the send
        window and cwnd allow, sharing one window field and one options value. The tail of
        the buffer (PSH, FIN, Nagle, SWS) is left to the general loop. True if it sent."""
        if self._eor_marks and self._eor_room() is not None:
            return False  # MSG_EOR boundaries ahead: the general loop stops at each
        buffered = len(self._sendbuf)
        off = seq_sub(self.snd_nxt, self._buf_seq)
        rem = buffered - off
        if off < 0 or rem <= mss:
            return False
        wnd_room = seq_sub(self._snd_wnd_edge(), self.snd_nxt)
        cc_room = (self._cc.cwnd - self._pipe()  # (not in recovery: SND.NXT - SND.UNA)
                   + (self._dupacks * mss if 0 < self._dupacks < 3 else 0))
        allowed = min(rem - 1, wnd_room, cc_room)
        size = maxp - maxp % mss if maxp > mss else mss
        tail = False
        if (size > mss and not self._fin_queued and rem <= wnd_room and rem <= cc_room
                and not (self.cork or self._more or self._tail_unpushed)
                and (rem % mss == 0 or self.nodelay
                     or not (seq_gt(self._snd_sml, self.snd_una)
                             and seq_le(self._snd_sml, self.snd_nxt)))):
            # A GSO super-segment may end with the tail of the write (Nagle allowing): one
            # packet carrying PSH on its last byte, as Linux sends a write that fits cwnd.
            allowed = rem
            tail = True
        if allowed < mss:
            return False
        self._send_data_segment_prelude(now)
        if self.snd_nxt == self.snd_una:
            self._cc.on_tx_start(now, now - self._last_send)  # (Linux tcp_event_data_sent)
        wnd, opts = self._burst_val
        gso = mss if size > mss else 0
        rcv_nxt = self.rcv_nxt
        read = self._sendbuf.read
        out = self._out
        seq = self.snd_nxt
        start = seq
        sent = 0
        # See _send_data: PSH on each multi-segment super-segment (Linux's TSO packets).
        gso_flags = ACK | PSH if self.config.psh_each_gso and not self._in_recovery else ACK
        # RFC 3168: ECT(0) on new data, CWR once after a reduction, ECE while echoing CE.
        ect = ECT0 if self._ecn.ok else 0
        ecn_flags = (self._ecn.data_flags() if ect else 0) | self._ecn.ack_flags()
        to_end = self._sendbuf.to_skb_end
        pushed = self._sendbuf.pushed if (self.config.psh_per_skb
                                          and self._sendbuf.push_marks) else None
        # (a push during send() ends at a filled skb, not the write's end: no PSH there)
        tail_psh = ACK if self._midwrite else ACK | PSH
        skb_room = to_end(off)  # (bytes left in the skb the next packet starts in)
        cuts: list[int] = []
        while allowed - sent >= mss:
            n = size if allowed - sent >= size else (allowed - sent) // mss * mss
            flags = gso_flags if n > mss else ACK
            if tail and allowed - sent - n < mss and allowed - sent <= size:
                n = allowed - sent  # the last piece takes the tail, with PSH (MUST-61)
                flags = tail_psh if not self._midwrite else gso_flags if n > mss else ACK
            if 0 < skb_room < n:
                n = skb_room  # (no packet spans two skbs)
                flags = gso_flags if n > mss else ACK
            if pushed is not None and skb_room <= n and pushed(off + sent + n):
                flags |= PSH  # the end of an skb marked by tcp_mark_push (Linux)
            out.append(Segment(seq, rcv_nxt, flags | ecn_flags, wnd, read(off + sent, n),
                               opts, 0, gso if n > mss else 0, None, ect))
            ecn_flags &= ~CWR
            sent += n
            seq = (seq + n) & MASK
            skb_room -= n
            if skb_room > 0:
                cuts.append(off + sent)  # each packet is one skb (Linux tso_fragment)
            else:
                skb_room = to_end(off + sent)  # (at a boundary: the next skb)
        if tail and sent < allowed:
            n = allowed - sent
            out.append(Segment(seq, rcv_nxt, tail_psh | ecn_flags, wnd, read(off + sent, n),
                               opts, 0, 0, None, ect))
            sent += n
            cuts.append(off + sent)
            seq = (seq + n) & MASK
        if cuts:
            self._sendbuf.split_run(cuts)
        if tail and allowed % mss:
            self._snd_sml = seq  # (Minshall: a small segment went out)
        self.snd_nxt = self.snd_max = seq
        if self._rack_on:
            self._rack.on_send(start, seq, now, False)
        if self._rtt_seq is None and not self.ts_ok:
            self._rtt_seq = seq_add(start, min(size, sent))
            self._rtt_time = now
        if self._rto_at is None:
            self._arm_rto(now)
        self._persist_at = None
        self._last_send = now
        return True

    def _send_data_segment_prelude(self, now: float) -> None:
        """Window field and options for a burst (into ``_burst_val``), and the bookkeeping
        of sending an ACK-bearing segment (``_emit``) done once for the burst."""
        key = (now, self.rcv_nxt, len(self._rcvq), self.ts_recent)
        if key != self._burst_key or self._reasm or self._dsack is not None:
            self._burst_key = key
            self._burst_val = (self._wnd_field(), self._options(now, self.snd_mss))
        opts = self._burst_val[1]
        self.last_ack_sent = self.rcv_nxt
        self._ack_now = False
        self._ack_reason = None
        self._delack_at = None
        self._rcv_unacked = 0
        if self._dsack is not None and opts.sack_blocks[:1] == (self._dsack,):
            self._dsack = None
        self._dack.on_ack_sent()     # Linux tcp_event_ack_sent
        self._dack.on_data_sent(now)  # Linux tcp_event_data_sent

    def _emit_data(self, now: float, seq: int, flags: int, payload: bytes,
                   retrans: bool, reason: TxReason | None = None) -> None:
        n = len(payload)
        gso = self.snd_mss if n > self.snd_mss else 0
        # A burst shares its window field and options (same time, nothing received between):
        # compute them once. Not when SACK blocks are due (they change per segment).
        key = (now, self.rcv_nxt, len(self._rcvq), self.ts_recent)
        if key == self._burst_key and not self._reasm and self._dsack is None:
            wnd, opts = self._burst_val
        else:
            wnd = self._wnd_field()
            opts = self._options(now, n)
            self._burst_key = key
            self._burst_val = (wnd, opts)
        urg = 0
        up = self._snd_up
        if up is not None and seq_lt(seq, up):
            flags |= URG  # RFC 9293 3.8.5: the pointer is to the first non-urgent octet
            urg = min(seq_sub(up, seq), 0xFFFF)
        ecn = 0
        if self._ecn.ok and n and not retrans and reason is not TxReason.WINDOW_PROBE:
            # RFC 3168 6.1.2: ECT(0) on new data (6.1.5: never on retransmissions; 6.1.6:
            # neither ECT nor CWR on window probes, even one carrying new data), and CWR on
            # the first new data after a reduction.
            ecn = ECT0
            flags |= self._ecn.data_flags()
        if n and self.snd_nxt == self.snd_una:
            # Linux tcp_event_data_sent: data leaves with nothing in flight (CA_EVENT_TX_START).
            self._cc.on_tx_start(now, now - self._last_send)
        self._emit(Segment(seq, self.rcv_nxt, flags, wnd, payload, opts, urg, gso, reason,
                           ecn))
        if n:
            self._dack.on_data_sent(now)  # Linux tcp_event_data_sent (pingpong detection)
        end = seq_add(seq, n + (1 if flags & FIN else 0))
        if n and not retrans:
            self._sendbuf.split(seq_sub(seq, self._buf_seq) + n)  # one skb per packet
        self.snd_nxt = end
        if self._rack_on:
            self._rack.on_send(seq, end, now, retrans)
        if self._in_recovery:
            self._prr.on_sent(seq_sub(end, seq))
        if seq_gt(end, self.snd_max):
            if retrans:
                self.retransmits += 1
                self._rtt_seq = None
            self.snd_max = end
            if self._rtt_seq is None and not retrans and not self.ts_ok:
                self._rtt_seq = end
                self._rtt_time = now
        elif retrans:
            self.retransmits += 1
            self._rtt_seq = None  # Karn: a retransmitted segment gives no sample
        if retrans:
            # Remember the retransmission for RTTM (see Connection._rtt_sample).
            self._rtx_ts = self._ts_val(now)
            if self._rtx_end is None or seq_gt(end, self._rtx_end):
                self._rtx_end = end
        if self._rto_at is None:
            self._arm_rto(now)
        self._persist_at = None
        self._last_send = now

    def _rexmit_psh(self, off: int, n: int) -> int:
        """PSH (or 0) for a retransmission of ``n`` bytes from ``off``, as Linux sets it
        per skb: Linux retransmits skb by skb (tcp_retransmit_skb; tcp_fragment cuts one to
        what cwnd allows, leaving PSH on the second part only; tcp_collapse_retrans ORs the
        flags of the small skbs it merges), and a packet carries its skb's own PSH (set by
        tcp_mark_push when it was written) or, when it is several segments, the PSH that
        __tcp_transmit_skb forces on every GSO packet. Of a retransmission spanning skbs,
        the receiver sees the flags of the last skb's part (the GSO segmentation puts PSH on
        the last segment only), so that part decides here."""
        buf = self._sendbuf
        end = off + n
        if buf.pushed(end):
            return PSH
        if self.config.psh_each_gso and n > self.snd_mss:
            bounds = buf.skb_bounds(end - 1)
            first = bounds[0] if bounds is not None and bounds[0] > off else off
            if end - first > self.snd_mss:
                return PSH
        if n <= self.snd_mss:
            # tcp_collapse_retrans: small skbs merged into one segment OR their flags.
            pos = off
            while pos < end:
                step = buf.to_skb_end(pos)
                if step <= 0:
                    break
                pos += step
                if pos < end and buf.pushed(pos):
                    return PSH
        return 0

    def _retransmit_at(self, now: float, seq: int, length: int = 0,
                       reason: TxReason | None = None) -> int:
        """Retransmit one segment starting at ``seq`` of at most ``length`` (default one MSS)
        octets (fast retransmit, partial ACK, NextSeg, RTO). Returns the sequence space sent."""
        off = seq_sub(seq, self._buf_seq)
        buffered = len(self._sendbuf)
        if off < 0 or off > buffered:
            return 0
        most = max(self.snd_mss, self.config.max_segment_payload)
        n = min(buffered - off, length if length > 0 else self.snd_mss, most)
        eor = self._eor_room(seq) if self._eor_marks else None
        if eor is not None and eor < n:
            n = eor  # a retransmission does not join MSG_EOR records either (Linux)
        payload = self._sendbuf.read(off, n)
        flags = ACK
        if n and self.config.psh_per_skb:
            flags |= self._rexmit_psh(off, n)
        if eor is not None and n == eor and n:
            flags |= PSH
        if off + n == buffered:
            if n and not self._tail_unpushed:
                flags |= PSH
            if self._fin_seq is not None:
                flags |= FIN
        if n == 0 and not flags & FIN:
            return 0
        save = self.snd_nxt
        self._emit_data(now, seq, flags, payload, True, reason)
        end = self.snd_nxt
        # A retransmission does not move SND.NXT back (unless the RTO already did).
        self.snd_nxt = end if seq_gt(end, save) else save
        if self._in_recovery:
            self._rexmit_out += n
        return n + (1 if flags & FIN else 0)
