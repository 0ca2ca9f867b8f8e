"""CUBIC as Linux runs it (net/ipv4/tcp_cubic.c), for the linux profile.

RFC 9438 describes CUBIC with real numbers and the smoothed RTT; Linux's implementation, which
the upstream packetdrill scripts record, differs in ways a script sees: it counts in whole
segments and jiffies, computes the cubic target ``bic_target`` with ``t + min_rtt`` (not SRTT),
turns it into "one segment per ``cnt`` segments acknowledged" (at most one per two, and at least
one per 20 while no loss was seen: ``last_max_cwnd == 0``), runs the Reno-friendly estimate with
its integer ``beta_scale``, and shifts the epoch by idle time when sending restarts
(``CA_EVENT_TX_START``). This module follows bictcp_update / cubictcp_cong_avoid /
tcp_cong_avoid_ai / cubictcp_recalc_ssthresh / cubictcp_state / cubictcp_cwnd_event.

Units: ``cwnd`` and ``ssthresh`` are bytes as for every controller here (whole segments); the
Linux state is in segments, jiffies (``tick`` seconds, 1/HZ) and microseconds. Slow start and
HyStart are the shared ones (``CongestionControl.slow_start`` with ``abc_limit`` 0 is Linux's
tcp_slow_start; ``hystart_kind="linux"`` its HyStart).
"""

from __future__ import annotations

from pytcp.tcp.congestion.base import CongestionControl

BICTCP_BETA_SCALE = 1024
BICTCP_HZ = 10                      # time in 1/1024 s
BETA = 717                          # beta = 717/1024
BIC_SCALE = 41
CUBE_RTT_SCALE = BIC_SCALE * 10     # 1024 * c / rtt
BETA_SCALE = 8 * (BICTCP_BETA_SCALE + BETA) // 3 // (BICTCP_BETA_SCALE - BETA)
CUBE_FACTOR = (1 << (10 + 3 * BICTCP_HZ)) // (BIC_SCALE * 10)

# cbrt(x) MSB values for x MSB values in [0..63] (tcp_cubic.c cubic_root's table).
_CBRT = (
    0, 54, 54, 54, 118, 118, 118, 118, 123, 129, 134, 138, 143, 147, 151, 156,
    157, 161, 164, 168, 170, 173, 176, 179, 181, 185, 187, 190, 192, 194, 197, 199,
    200, 202, 204, 206, 209, 211, 213, 215, 217, 219, 221, 222, 224, 225, 227, 229,
    231, 232, 234, 236, 237, 239, 240, 242, 244, 245, 246, 248, 250, 251, 252, 254,
)


def cubic_root(a: int) -> int:
    """Linux's integer cube root: a table lookup and one Newton-Raphson step."""
    b = a.bit_length()
    if b < 7:
        return (_CBRT[a] + 35) >> 6
    b = ((b * 84) >> 8) - 1
    shift = a >> (b * 3)
    x = ((_CBRT[shift] + 10) << b) >> 6
    x = 2 * x + a // (x * (x - 1))
    return (x * 341) >> 10


class LinuxCubic(CongestionControl):
    """CUBIC with Linux's arithmetic (see the module docstring)."""

    name = "cubic"

    __slots__ = ("ack_cnt", "bic_k", "bic_origin_point", "cnt", "cwnd_cnt", "delay_min",
                 "epoch_start", "fast_convergence", "hz", "last_cwnd", "last_max_cwnd",
                 "last_time", "ssthresh_from_cwnd", "tcp_cwnd", "tick")

    def __init__(self, mss: int, initial_window_segments: int | None = None,
                 fast_convergence: bool = True, *, hystart: bool = False,
                 hystart_kind: str = "linux", tick: float = 0.004) -> None:
        super().__init__(mss, initial_window_segments, hystart=hystart,
                         hystart_kind=hystart_kind)
        self.fast_convergence = fast_convergence
        self.tick = tick if tick > 0 else 0.001   # one jiffy
        self.hz = round(1 / self.tick)
        self.ssthresh_from_cwnd = True            # (always, as Linux)
        self.abc_limit = 0
        self.cwnd_cnt = 0                          # tp->snd_cwnd_cnt
        self.delay_min = 0                         # microseconds (0: none yet)
        self._reset()

    def _reset(self) -> None:
        # bictcp_reset
        self.cnt = 0
        self.last_max_cwnd = 0
        self.last_cwnd = 0
        self.last_time = 0
        self.bic_origin_point = 0
        self.bic_k = 0
        self.epoch_start: int | None = None
        self.ack_cnt = 0
        self.tcp_cwnd = 0

    def _jiffies(self, now: float) -> int:
        return int(round(now / self.tick, 6))

    def observe_rtt(self, rtt: float | None) -> None:
        """cubictcp_acked: the minimum RTT (``delay_min``); HyStart gets the sample from
        slow start. (Linux ignores samples within a second of an epoch's start after a
        reduction; pytcp's epochs start at the first congestion-avoidance ACK.)"""
        if rtt is None:
            return
        delay = max(1, round(rtt * 1e6))
        if self.delay_min == 0 or self.delay_min > delay:
            self.delay_min = delay

    def _update(self, now: float, cwnd: int, acked: int) -> None:
        """bictcp_update: ``cnt``, the segments to acknowledge per cwnd increase."""
        jiffies = self._jiffies(now)
        self.ack_cnt += acked
        if self.last_cwnd == cwnd and jiffies - self.last_time <= self.hz // 32:
            return
        if not (self.epoch_start is not None and jiffies == self.last_time):
            self.last_cwnd = cwnd
            self.last_time = jiffies
            if self.epoch_start is None:
                self.epoch_start = jiffies
                self.ack_cnt = acked
                self.tcp_cwnd = cwnd
                if self.last_max_cwnd <= cwnd:
                    self.bic_k = 0
                    self.bic_origin_point = cwnd
                else:
                    self.bic_k = cubic_root(CUBE_FACTOR * (self.last_max_cwnd - cwnd))
                    self.bic_origin_point = self.last_max_cwnd
            # t = (jiffies - epoch_start + usecs_to_jiffies(delay_min)) in 1/1024 s
            t = jiffies - self.epoch_start + -(-self.delay_min * self.hz // 1_000_000)
            t = (t << BICTCP_HZ) // self.hz
            offs = self.bic_k - t if t < self.bic_k else t - self.bic_k
            delta = (CUBE_RTT_SCALE * offs * offs * offs) >> (10 + 3 * BICTCP_HZ)
            if t < self.bic_k:
                bic_target = self.bic_origin_point - delta
            else:
                bic_target = self.bic_origin_point + delta
            if bic_target > cwnd:
                self.cnt = cwnd // (bic_target - cwnd)
            else:
                self.cnt = 100 * cwnd  # very small increment
            # The initial growth may be too conservative while the bandwidth is unknown.
            if self.last_max_cwnd == 0 and self.cnt > 20:
                self.cnt = 20
        # TCP friendliness (Reno-friendly region).
        delta = (cwnd * BETA_SCALE) >> 3
        while self.ack_cnt > delta:
            self.ack_cnt -= delta
            self.tcp_cwnd += 1
        if self.tcp_cwnd > cwnd:
            max_cnt = cwnd // (self.tcp_cwnd - cwnd)
            if self.cnt > max_cnt:
                self.cnt = max_cnt
        # At most one segment per two acknowledged: 1.5x per RTT.
        self.cnt = max(self.cnt, 2)

    def congestion_avoidance(self, now: float, acked_bytes: int) -> None:
        mss = self.mss
        acked = -(-acked_bytes // mss)
        cwnd = self.cwnd // mss
        self._update(now, cwnd, acked)
        # tcp_cong_avoid_ai(tp, cnt, acked)
        w = self.cnt
        if self.cwnd_cnt >= w:
            self.cwnd_cnt = 0
            cwnd += 1
        self.cwnd_cnt += acked
        if self.cwnd_cnt >= w:
            d = self.cwnd_cnt // w
            self.cwnd_cnt -= d * w
            cwnd += d
        self.cwnd = cwnd * mss

    def _recalc_ssthresh(self) -> int:
        """cubictcp_recalc_ssthresh: end the epoch, W_max with fast convergence, and
        ssthresh = max(cwnd * beta, 2) segments."""
        cwnd = self.cwnd // self.mss
        self.epoch_start = None
        if cwnd < self.last_max_cwnd and self.fast_convergence:
            self.last_max_cwnd = cwnd * (BICTCP_BETA_SCALE + BETA) // (2 * BICTCP_BETA_SCALE)
        else:
            self.last_max_cwnd = cwnd
        return max(cwnd * BETA // BICTCP_BETA_SCALE, 2) * self.mss

    def on_congestion(self, now: float, flight_size: int) -> None:
        self._end_hystart()
        self.ssthresh = self._recalc_ssthresh()
        self.cwnd = self.ssthresh
        self.cwnd_cnt = 0

    def on_rto(self, now: float, flight_size: int, repeated: bool = False) -> None:
        # tcp_enter_loss: ssthresh from the controller unless already in Loss; then
        # cubictcp_state(TCP_CA_Loss): bictcp_reset and HyStart reset; cwnd = 1.
        if not repeated:
            self.ssthresh = self._recalc_ssthresh()
        self._reset()
        self.cwnd = self.mss
        self.cwnd_cnt = 0

    def on_idle_restart(self, now: float) -> None:
        # tcp_cwnd_restart (CA_EVENT_CWND_RESTART is not handled by CUBIC).
        super().on_idle_restart(now)

    def on_tx_start(self, now: float, idle: float) -> None:
        """cubictcp_cwnd_event(CA_EVENT_TX_START): sending starts with nothing in flight
        after ``idle`` seconds without sending: shift the epoch so cwnd keeps to the cubic
        curve (not past now)."""
        if self.epoch_start is None:
            return
        delta = self._jiffies(now) - self._jiffies(now - idle)
        if delta > 0:
            self.epoch_start = min(self.epoch_start + delta, self._jiffies(now))
