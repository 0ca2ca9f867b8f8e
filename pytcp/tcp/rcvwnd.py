"""The receive window we offer: Linux's initial window, its growth, and buffer autotuning.

Linux does not offer its whole receive buffer at once. Sizes here are window bytes (payload;
Linux converts its buffer's memory with ``tcp_win_from_space``, pytcp counts payload only):

- **Initial window** (tcp_select_initial_window): the SYN / SYN-ACK offers the buffer rounded
  down to whole segments, at most 65535 (RFC 7323 2.2: a SYN's window is never scaled);
  ``rcv_ssthresh`` starts there. With Linux's default buffer (tcp_rmem[1] = 131072, about
  64 KiB of window) that is 64240 (MSS 1460) or 65160 (1448 with timestamps).
- **Growth** (tcp_grow_window): each in-order segment of at least 128 bytes raises
  ``rcv_ssthresh`` by max(2 MSS, 2 * its length), up to the free buffer and ``window_clamp``;
  the window offered is min(free buffer, rcv_ssthresh) (__tcp_select_window).
- **Dynamic right-sizing** (tcp_rcv_space_adjust, "DRS"): once per receiver RTT, when the
  application read more than in the RTT before, the buffer grows to
  ``2 * copied + 16 MSS`` plus twice the rate's increase, up to the cap (tcp_rmem[2];
  pytcp ``TcpConfig.recv_buffer``), and ``window_clamp`` follows. The receiver RTT comes
  from timestamps (tcp_rcv_rtt_measure_ts) or from the time one window takes to arrive
  (tcp_rcv_rtt_measure).

The window never shrinks (RFC 9293 3.8.6.2.2): the engine keeps the right edge it advertised
(``output.py``). With ``TcpConfig.rcv_window_growth`` off (the rfc profile) the buffer is
offered whole from the start, and with ``recv_buffer_min >= recv_buffer`` (or ``SO_RCVBUF``,
Linux's SOCK_RCVBUF_LOCK) the buffer is fixed. Sans I/O: time is an argument.
"""

from __future__ import annotations

from pytcp.tcp.config import TcpConfig

TCP_INIT_CWND = 10  # Linux TCP_INIT_CWND: rcvq_space starts at min(window, 10 MSS)


def initial_window(config: TcpConfig, mss: int) -> int:
    """The window of our SYN or SYN-ACK (Linux tcp_select_initial_window): the initial
    buffer rounded down to whole ``mss`` segments (the MSS we announce, less the timestamp
    option when it is on), at most 65535 (RFC 7323 2.2)."""
    space = initial_rcvbuf(config)
    if config.rcv_window_growth and space > mss > 0:
        space -= space % mss
    return min(0xFFFF, space)


def initial_rcvbuf(config: TcpConfig) -> int:
    """The receive buffer a connection starts with (window bytes)."""
    if config.rcv_window_growth and 0 < config.recv_buffer_min < config.recv_buffer:
        return config.recv_buffer_min
    return config.recv_buffer


class RecvWindow:
    """One connection's receive-window state (see the module docstring)."""

    __slots__ = ("active", "cap", "growth", "grows", "last_tsecr", "rcv_ssthresh", "rcvbuf", "rtt",
                 "rtt_seq", "rtt_time", "space", "space_seq", "space_time", "started",
                 "tunes", "window_clamp")

    def __init__(self, config: TcpConfig) -> None:
        self.cap = config.recv_buffer      # the bound: tcp_rmem[2] / SO_RCVBUF
        self.rcvbuf = initial_rcvbuf(config)  # the buffer now (Linux sk_rcvbuf, as window)
        self.growth = config.rcv_window_growth
        # Anything left to grow: off once the buffer is at its cap and rcv_ssthresh reached
        # it (neither ever decreases), so the per-segment bookkeeping stops (Connection).
        self.active = self.growth
        # Without growth the whole buffer is offered at once (the rfc profile).
        self.rcv_ssthresh = self.rcvbuf if self.growth else 1 << 62
        self.window_clamp = self.rcvbuf    # largest window (Linux tp->window_clamp)
        self.space = 0                     # bytes read in the last measured RTT (rcvq_space)
        self.space_seq = 0                 # copied_seq at the start of that RTT
        self.space_time = 0.0
        self.started = False               # tcp_init_buffer_space has run
        self.rtt = 0.0                     # receiver RTT estimate, seconds (0: none yet)
        self.rtt_seq = 0                   # tcp_rcv_rtt_measure: the window's right edge
        self.rtt_time: float | None = None
        self.last_tsecr = 0
        self.grows = 0                     # rcv_ssthresh increases (tcp_grow_window)
        self.tunes = 0                     # buffer increases (DRS)

    def set_buffer(self, size: int) -> None:
        """SO_RCVBUF: a fixed buffer (Linux SOCK_RCVBUF_LOCK stops autotuning)."""
        self.cap = self.rcvbuf = self.window_clamp = max(size, 1)
        self.active = self.growth and self.rcv_ssthresh < self.cap
        if self.growth:
            self.rcv_ssthresh = min(self.rcv_ssthresh, self.window_clamp)
        else:
            self.rcv_ssthresh = 1 << 62

    def syn_window(self, mss: int) -> int:
        """Our SYN's or SYN-ACK's window; rcv_ssthresh starts there (tcp_select_initial_window
        and tcp_openreq_init_rwin: rcv_ssthresh = rcv_wnd)."""
        space = self.rcvbuf
        if self.growth:
            if space > mss > 0:
                space -= space % mss
            self.rcv_ssthresh = min(0xFFFF, space)
        return min(0xFFFF, space)  # (== initial_window(config, mss) for a new connection)

    def established(self, now: float, advmss: int, copied_seq: int, rcv_wnd: int) -> None:
        """Linux tcp_init_buffer_space, when the connection is established."""
        if self.started:
            return
        self.started = True
        self.window_clamp = min(self.window_clamp, self.rcvbuf)
        if self.growth:
            self.rcv_ssthresh = min(self.rcv_ssthresh, self.window_clamp)
        self.space = min(self.rcv_ssthresh, max(rcv_wnd, 1), TCP_INIT_CWND * advmss)
        self.space_seq = copied_seq
        self.space_time = now

    def offer(self, free: int) -> int:
        """The window to offer from ``free`` buffer bytes (__tcp_select_window: at most
        rcv_ssthresh)."""
        return min(free, self.rcv_ssthresh)

    def grow(self, seg_len: int, free: int, advmss: int) -> None:
        """Linux tcp_grow_window for an in-order segment of ``seg_len`` bytes (called for
        segments of at least 128 bytes). pytcp counts payload only, so the "overhead fits"
        branch always applies: the increment is max(2 advmss, 2 seg_len)."""
        if not self.growth:
            return
        room = min(self.window_clamp, free) - self.rcv_ssthresh
        if room <= 0:
            return
        self.rcv_ssthresh += min(room, max(2 * advmss, 2 * seg_len))
        self.grows += 1
        if self.rcvbuf >= self.cap and self.rcv_ssthresh >= self.cap:
            self.active = False  # fully grown

    # --- receiver RTT (Linux tcp_rcv_rtt_*) ---

    def _rtt_update(self, sample: float, win_dep: bool) -> None:
        if self.rtt == 0.0:
            self.rtt = sample
        elif win_dep:
            self.rtt = min(self.rtt, sample)   # one window per RTT at most: keep the smallest
        else:
            self.rtt += (sample - self.rtt) / 8  # EWMA, gain 1/8 (tcp_rcv_rtt_update)

    def measure_ts(self, tsecr: int, ts_now: int, ts_hz: int, seg_len: int, rcv_mss: int) -> None:
        """tcp_rcv_rtt_measure_ts: a full-sized segment echoing a new TSval."""
        if not tsecr or tsecr == self.last_tsecr:
            return
        self.last_tsecr = tsecr
        if seg_len >= rcv_mss:
            delta = (ts_now - tsecr) & 0xFFFFFFFF
            if delta < 0x80000000:
                self._rtt_update(max(delta, 1) / ts_hz, False)

    def measure(self, now: float, rcv_nxt_minus_seq: int, rcv_nxt: int, rcv_wnd: int) -> None:
        """tcp_rcv_rtt_measure: the time for a window's worth of data to arrive.
        ``rcv_nxt_minus_seq`` is seq_sub(rcv_nxt, rtt_seq) (>= 0: the window arrived)."""
        if self.rtt_time is not None:
            if rcv_nxt_minus_seq < 0:
                return
            self._rtt_update(max(now - self.rtt_time, 1e-6), True)
        self.rtt_seq = (rcv_nxt + rcv_wnd) & 0xFFFFFFFF
        self.rtt_time = now

    # --- dynamic right-sizing ---

    def space_adjust(self, now: float, copied: int, inq: int, copied_seq: int,
                     advmss: int) -> bool:
        """Linux tcp_rcv_space_adjust, after the application read: ``copied`` bytes read since
        the measurement began (copied_seq - space_seq), ``inq`` still unread. Returns True
        when the buffer grew."""
        if not self.started or self.rtt == 0.0 or now - self.space_time < self.rtt:
            return False
        copied -= inq  # (Linux 6.16: receive-queue awareness)
        grew = False
        if copied > self.space:
            if self.rcvbuf < self.cap:  # (a fixed buffer: cap == rcvbuf)
                # Minimal window for losses in steady state, plus a cushion; and room for
                # the sender's rate increase (slow start).
                rcvwin = 2 * copied + 16 * advmss
                rcvwin += 2 * (rcvwin * (copied - self.space) // max(self.space, 1))
                new = min(rcvwin, self.cap)
                if new > self.rcvbuf:
                    self.rcvbuf = new
                    self.window_clamp = new  # "make the window clamp follow along"
                    self.tunes += 1
                    grew = True
            self.space = copied
        self.space_seq = copied_seq
        self.space_time = now
        return grew
