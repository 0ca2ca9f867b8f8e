"""When to acknowledge received data: Linux's delayed-ACK model, sans I/O.

One object per connection (``Connection._dack``) holds the receiver's ACK-timing state and
makes every delayed-vs-immediate decision for in-order data; the connection only reports
events to it (data received, data sent, an ACK sent, the application read, the timer fired)
and turns its answers into ``_ack_now`` / ``_delack_at``. The rules mirror Linux 6.x
(``struct inet_connection_sock.icsk_ack`` and the functions named below):

- **quick-ACK mode** (``tcp_incr_quickack``, ``tcp_in_quickack_mode``): the first data a
  connection receives arms ``quick`` = min(RCV.WND / (2 * rcv_mss), ``config.quickack``)
  (at least 2); while it lasts, and the connection is not interactive, every data segment is
  ACKed at once. Each ACK sent while one was due spends one (``tcp_dec_quickack_mode``); a
  gap longer than the RTO refills it, as do duplicate data, ECN CE (2) and the delayed ACK of
  a SYN-ACK (``tcp_enter_quickack_mode``, which also leaves pingpong mode).
- **pingpong (interactive) mode** (``tcp_event_data_sent``, ``inet_csk_inc_pingpong_cnt``,
  ``TCP_PINGPONG_THRESH`` = 1 since Linux 6.0): data sent less than ATO after data was
  received marks a request/response exchange; then ACKs of received data wait for the timer
  so they can ride on the reply (or on our FIN). The peer's FIN in ESTABLISHED enters it too
  (``tcp_fin``). A delayed-ACK timer that fires in pingpong mode leaves it (no reply came).
- **ATO** (``tcp_event_data_recv``): the ACK timeout follows the inter-arrival time of data,
  from ``config.delayed_ack`` (TCP_ATO_MIN, 40 ms) up to the RTO; a timer that fires
  outside pingpong mode doubles it (``tcp_delack_timer_handler``). The timer itself
  (``tcp_send_delayed_ack``) is ATO bounded by the smoothed RTT and by
  ``config.delayed_ack_max`` (TCP_DELACK_MAX, 200 ms), so every delay stays below the
  0.5 s of RFC 9293 MUST-40 (RFC 1122 4.2.3.2).
- **every second full-sized segment** is ACKed at once (RFC 5681 4.2, RFC 1122 SHOULD; Linux
  ``__tcp_ack_snd_check`` "more than one full frame received"), pingpong or not.
- **reading** (``tcp_cleanup_rbuf``): when the application drains the receive queue and the
  data was pushed in small segments, the pending ACK goes at once unless in pingpong mode.

``config.adaptive_delack = False`` (the rfc profile) keeps a plain fixed timer: no ATO
estimate, no pingpong mode, no ACK on read, ``delayed_ack`` after the first unacknowledged
segment.
"""

from __future__ import annotations

from pytcp.tcp.config import TcpConfig

# Linux TCP_PINGPONG_THRESH / net.ipv4.tcp_pingpong_thresh (default 1 since 6.0).
PINGPONG_THRESH = 1
# Linux TCP_MIN_MSS: segments at least this long without PSH/FIN/URG are full-sized ones of a
# peer with a small MSS (tcp_measure_rcv_mss).
TCP_MIN_MSS = 88
# Linux TCP_MSS_DEFAULT.
TCP_MSS_DEFAULT = 536
# RFC 9293 MUST-40 (RFC 1122 4.2.3.2): an ACK is delayed less than 0.5 s; configured delays
# are capped here whatever the configuration says.
MAX_ACK_DELAY = 0.499


class DelayedAck:
    """The ACK-timing state of one connection (Linux ``icsk_ack``)."""

    __slots__ = ("adaptive", "ato", "ato_min", "delack_max", "fixed_delay", "lrcvtime",
                 "max_quick", "pingpong", "pushed", "pushed2", "quick", "scheduled",
                 "timer_at", "last_seg_size")

    def __init__(self, config: TcpConfig) -> None:
        self.adaptive = config.adaptive_delack
        self.max_quick = config.quickack           # TCP_MAX_QUICKACKS (16)
        # TCP_ATO_MIN == TCP_DELACK_MIN (40 ms), icsk_delack_max (TCP_DELACK_MAX, 200 ms), the
        # non-adaptive timer; all below MAX_ACK_DELAY (MUST-40).
        self.ato_min = min(config.delayed_ack, MAX_ACK_DELAY)
        self.delack_max = min(config.delayed_ack_max, MAX_ACK_DELAY)
        self.fixed_delay = self.ato_min
        self.quick = 0           # icsk_ack.quick: immediate ACKs left
        self.pingpong = 0        # icsk_ack.pingpong: interactive-exchange count
        self.ato = 0.0           # icsk_ack.ato; 0 until the first data arrives
        self.lrcvtime = 0.0      # icsk_ack.lrcvtime: when data (or the handshake) last came
        self.scheduled = False   # ICSK_ACK_SCHED: received data waits for an ACK
        self.pushed = False      # ICSK_ACK_PUSHED: a small (pushed) segment arrived
        self.pushed2 = False     # ICSK_ACK_PUSHED2: a second one
        self.timer_at: float | None = None  # icsk_ack.timeout while ICSK_ACK_TIMER is set
        self.last_seg_size = 0   # icsk_ack.last_seg_size

    @property
    def in_pingpong(self) -> bool:
        """inet_csk_in_pingpong_mode."""
        return self.adaptive and self.pingpong >= PINGPONG_THRESH

    @property
    def in_quickack(self) -> bool:
        """tcp_in_quickack_mode: quick ACKs left and not an interactive exchange."""
        return self.quick > 0 and not self.in_pingpong

    def incr_quickack(self, max_quick: int, rcv_wnd: int, rcv_mss: int) -> None:
        """tcp_incr_quickack: enough quick ACKs to open the peer's window, at most
        ``max_quick`` (and never fewer than already left)."""
        n = rcv_wnd // (2 * max(rcv_mss, 1))
        if n == 0:
            n = 2
        n = min(n, max_quick)
        if n > self.quick:
            self.quick = n

    def enter_quickack(self, max_quick: int, rcv_wnd: int, rcv_mss: int) -> None:
        """tcp_enter_quickack_mode: ACK at once again (duplicate data, ECN CE, a delayed
        SYN-ACK ACK); leaves pingpong mode and resets ATO to its minimum. (Linux does this
        after tcp_event_data_recv for the same segment, so data not seen yet first gets its
        first-data quick ACKs.)"""
        if self.ato == 0.0:
            self.incr_quickack(self.max_quick, rcv_wnd, rcv_mss)
        self.incr_quickack(min(max_quick, self.max_quick), rcv_wnd, rcv_mss)
        self.pingpong = 0
        self.ato = self.ato_min

    def enter_pingpong(self) -> None:
        """inet_csk_enter_pingpong_mode (the peer's FIN in ESTABLISHED, Linux tcp_fin)."""
        if self.adaptive:
            self.pingpong = PINGPONG_THRESH

    def on_connected(self, now: float) -> None:
        """tcp_finish_connect / tcp_create_openreq_child: the handshake counts as the last
        arrival (ATO is still 0: no data yet)."""
        self.lrcvtime = now

    def on_data(self, now: float, n: int, psh_like: bool, rcv_mss: int, rcv_wnd: int,
                rto: float) -> int:
        """tcp_event_data_recv with the ACK part of tcp_measure_rcv_mss: ``n`` in-order octets
        arrived at ``now``; ``psh_like``: the segment had PSH, FIN or URG; ``rcv_mss``: the
        estimate of the peer's segment size (already raised for this segment). Returns the
        estimate to keep: a peer whose unpushed segments are repeatedly just this small has
        that as its MSS (Linux lowers rcv_mss to it)."""
        self.scheduled = True
        lss = self.last_seg_size
        self.last_seg_size = 0
        if n >= rcv_mss:
            if psh_like:
                self.pushed = True  # one full MSS with PSH: likely the end of a write
        else:
            if n >= TCP_MSS_DEFAULT or (n >= TCP_MIN_MSS and not psh_like):
                self.last_seg_size = n
                if n == lss:
                    rcv_mss = n  # the peer's full-sized segments are this small
            if rcv_mss != n:
                if self.pushed:
                    self.pushed2 = True
                self.pushed = True
        if not self.adaptive:
            if self.ato == 0.0:
                self.incr_quickack(self.max_quick, rcv_wnd, rcv_mss)
                self.ato = self.fixed_delay
            self.lrcvtime = now
            return rcv_mss
        if self.ato == 0.0:
            # The first data: start in quick-ACK mode.
            self.incr_quickack(self.max_quick, rcv_wnd, rcv_mss)
            self.ato = self.ato_min
        else:
            m = now - self.lrcvtime
            if m <= self.ato_min / 2:
                self.ato = self.ato / 2 + self.ato_min / 2
            elif m < self.ato:
                self.ato = min(self.ato / 2 + m, rto)
            elif m > rto:
                # A long gap: the sender probably restarted from a small window.
                self.incr_quickack(self.max_quick, rcv_wnd, rcv_mss)
        self.lrcvtime = now
        return rcv_mss

    def on_data_run(self, now: float, seg: int, n: int, psh_like: bool, rcv_mss: int,
                    rcv_wnd: int, rto: float) -> int:
        """:meth:`on_data` for a coalesced (GRO) segment of ``n`` octets made of ``seg``-sized
        pieces arriving together at ``now`` (``psh_like`` on the last): the same state as
        calling it piece by piece. A piece after the first, at least ``rcv_mss`` long and
        not the last, changes nothing but ATO, which moves half way to its minimum (the gap
        is 0): that step runs inline instead of a call per piece (a 64 KB segment is ~45)."""
        left = n
        if left > seg:
            rcv_mss = self.on_data(now, seg, False, rcv_mss, rcv_wnd, rto)
            left -= seg
            if seg >= rcv_mss:
                ato, ato_min = self.ato, self.ato_min
                while left > seg:
                    left -= seg
                    if self.adaptive and ato != ato_min:  # (at ato_min it stays there)
                        ato = ato / 2 + ato_min / 2
                self.ato = ato
            while left > seg:
                rcv_mss = self.on_data(now, seg, False, rcv_mss, rcv_wnd, rto)
                left -= seg
        return self.on_data(now, left, psh_like, rcv_mss, rcv_wnd, rto)

    def on_data_sent(self, now: float) -> None:
        """tcp_event_data_sent: data leaving within ATO of the last arrival is a reply."""
        if self.adaptive and now - self.lrcvtime < self.ato and self.pingpong < 255:
            self.pingpong += 1

    def on_ack_sent(self) -> None:
        """tcp_event_ack_sent / tcp_dec_quickack_mode: an ACK-bearing segment left; if it
        acknowledged data that waited, one quick ACK is spent (the last one resets ATO)."""
        if self.quick:
            if self.scheduled:
                self.quick -= 1
                if self.quick == 0:
                    self.ato = self.ato_min
        self.scheduled = self.pushed = self.pushed2 = False
        self.timer_at = None

    def ack_now(self, now: float, unacked: int, rcv_mss: int, segments: int,
                srtt: float) -> bool:
        """__tcp_ack_snd_check: True when received data must be ACKed now; otherwise the
        delayed-ACK deadline is ``timer_at`` (tcp_send_delayed_ack)."""
        if unacked > (segments - 1) * rcv_mss or self.in_quickack:
            return True  # RFC 5681 4.2 every second full-sized segment / quick-ACK mode
        if not self.adaptive:
            if self.timer_at is None:
                self.timer_at = now + self.fixed_delay
            return False
        ato = self.ato
        if ato > self.ato_min:
            # tcp_send_delayed_ack: a slow inter-arrival time; bound it by the RTT.
            max_ato = self.delack_max if (self.in_pingpong or self.pushed) else 0.5
            if srtt:
                max_ato = min(max_ato, max(srtt, self.ato_min))
            ato = min(ato, max_ato)
        ato = min(ato, self.delack_max)
        timeout = now + ato
        if self.timer_at is not None:
            if self.timer_at <= now + ato / 4:
                return True  # the pending timer is about to fire: ACK now
            if timeout >= self.timer_at:
                timeout = self.timer_at  # never postpone an earlier deadline
        self.timer_at = timeout
        return timeout <= now

    def delay_synack_ack(self, now: float, rcv_wnd: int, rcv_mss: int) -> None:
        """tcp_rcv_synsent_state_process with sk_write_pending: the ACK of the SYN-ACK waits
        (up to TCP_DELACK_MAX) for the data a writer is about to send."""
        self.scheduled = True
        self.enter_quickack(self.max_quick, rcv_wnd, rcv_mss)
        self.timer_at = now + self.delack_max

    def on_timer(self, rto: float) -> bool:
        """tcp_delack_timer_handler: the timer fired; True when an ACK is due. Outside
        pingpong mode ATO doubles (up to the RTO); in it, the exchange ended: leave it."""
        self.timer_at = None
        if not self.scheduled:
            return False
        if self.adaptive:
            if not self.in_pingpong:
                self.ato = min(self.ato * 2, rto)
            else:
                self.pingpong = 0
                self.ato = self.ato_min
        return True

    def ack_on_read(self, copied: int, drained: bool, unacked: int, rcv_mss: int) -> bool:
        """tcp_cleanup_rbuf (first part): after a read of ``copied`` octets, ACK at once if
        more than one full segment waits, or the reader emptied the queue of data pushed in
        small segments and the connection is not interactive."""
        if not self.scheduled or not self.adaptive:
            return False  # (the fixed model of the rfc profile leaves it to the timer)
        return unacked > rcv_mss or (
            copied > 0 and drained and (self.pushed2 or (self.pushed and not self.in_pingpong)))
