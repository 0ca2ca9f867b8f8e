"""CUBIC congestion control (RFC 9438).

Owns the cubic window growth W_cubic(t) = C*(t-K)^3 + W_max (RFC 9438 4.2), its Reno-friendly
region (4.3), multiplicative decrease with beta_cubic = 0.7 (4.6), fast convergence (4.7), the
timeout rule (4.8) and exclusion of idle time from t (5.8). Slow start is the shared RFC 3465
one (L = 2*SMSS); HyStart++ is not implemented.

Units: ``cwnd`` and ``ssthresh`` are bytes, like every congestion controller here. The cubic
state (``w_max``, ``w_est``, ``cwnd_prior``, ``cwnd_epoch``) is in *segments* (floats, bytes /
MSS), and ``k`` and ``t`` in seconds, exactly as in the RFC's formulas. Fractional window growth
is carried between ACKs so small per-ACK increases are not lost to rounding.
"""

from __future__ import annotations

from pytcp.tcp.congestion.base import CongestionControl

C = 0.4           # RFC 9438 4.1: C = 0.4 (segments / second^3)
BETA_CUBIC = 0.7  # RFC 9438 4.1/4.6: multiplicative decrease factor
# Linux tcp_cubic.c: beta = 717 / BICTCP_BETA_SCALE (1024).
LINUX_BETA = 717
LINUX_BETA_SCALE = 1024
# RFC 9438 4.3 Figure 4: alpha_cubic = 3 * (1 - beta) / (1 + beta)
ALPHA_CUBIC = 3.0 * (1.0 - BETA_CUBIC) / (1.0 + BETA_CUBIC)


class Cubic(CongestionControl):
    name = "cubic"

    __slots__ = (
        "_frac",
        "alpha",
        "cwnd_epoch",
        "cwnd_prior",
        "fast_convergence",
        "k",
        "rtt",
        "ssthresh_from_cwnd",
        "t_epoch",
        "w_est",
        "w_max",
    )

    def __init__(self, mss: int, initial_window_segments: int | None = None,
                 fast_convergence: bool = True, *, hystart: bool = False,
                 hystart_kind: str = "rfc9406") -> None:
        super().__init__(mss, initial_window_segments, hystart=hystart,
                         hystart_kind=hystart_kind)
        self.fast_convergence = fast_convergence
        self.w_max: float | None = None   # None: undefined (no loss yet, or after an RTO)
        self.cwnd_prior: float | None = None
        self.cwnd_epoch = 0.0
        self.w_est = 0.0
        self.k = 0.0
        self.t_epoch: float | None = None  # start of the current congestion avoidance stage
        self.alpha = ALPHA_CUBIC
        self.rtt = 0.0
        self._frac = 0.0  # fractional bytes of cwnd growth carried between ACKs
        # RFC 9438 4.6 allows ssthresh = cwnd * beta_cubic instead of flight_size * beta_cubic
        # when cwnd is kept from growing while the flight is smaller (the connection does, as
        # Linux's tcp_is_cwnd_limited); Linux's bictcp_recalc_ssthresh does so, in segments:
        # max(cwnd * 717 / 1024, 2).
        self.ssthresh_from_cwnd = False

    def w_cubic(self, t: float) -> float:
        """RFC 9438 Figure 1: the window (segments) ``t`` seconds into the epoch."""
        return C * (t - self.k) ** 3 + (self.w_max if self.w_max is not None else 0.0)

    def _start_epoch(self, now: float) -> None:
        # RFC 9438 4.2: t_epoch, cwnd_epoch at the start of congestion avoidance; K per
        # Figure 2. When W_max is undefined or not above cwnd_epoch (first CA after slow start
        # without loss, 4.10; after a timeout, 4.8): K = 0 and W_max = cwnd_epoch.
        self.t_epoch = now
        w = self.cwnd / self.mss
        self.cwnd_epoch = w
        if self.w_max is None or self.w_max <= w:
            self.w_max = w
            self.k = 0.0
        else:
            self.k = ((self.w_max - w) / C) ** (1.0 / 3.0)
        # RFC 9438 4.3: W_est starts at cwnd_epoch.
        self.w_est = w
        if self.cwnd_prior is None:
            self.cwnd_prior = w
        self.alpha = 1.0 if self.w_est >= self.cwnd_prior else ALPHA_CUBIC
        self._frac = 0.0

    def observe_rtt(self, rtt: float | None) -> None:
        """CUBIC smooths the per-ACK samples itself (RFC 9438 2: RTT is the smoothed RTT of
        RFC 6298: SRTT += (R - SRTT) / 8)."""
        if rtt is not None and rtt > 0:
            self.rtt = rtt if self.rtt == 0.0 else self.rtt + (rtt - self.rtt) * 0.125

    def congestion_avoidance(self, now: float, acked_bytes: int) -> None:
        if self.t_epoch is None:
            self._start_epoch(now)
        mss = self.mss
        cwnd = self.cwnd / mss + self._frac / mss
        segs = acked_bytes / mss
        t = now - (self.t_epoch if self.t_epoch is not None else now)
        # RFC 9438 4.3 Figure 4: W_est += alpha_cubic * segments_acked / cwnd; alpha becomes 1
        # once W_est reaches cwnd_prior.
        self.w_est += self.alpha * segs / cwnd
        if self.cwnd_prior is not None and self.w_est >= self.cwnd_prior:
            self.alpha = 1.0
        if self.w_cubic(t) < self.w_est:
            # RFC 9438 4.3: Reno-friendly region: cwnd = W_est.
            new = self.w_est
        else:
            # RFC 9438 4.2 Figure 3 (concave 4.4 and convex 4.5 regions): target is
            # W_cubic(t + RTT) bounded to [cwnd, 1.5*cwnd]; cwnd += (target - cwnd)/cwnd
            # per SMSS acknowledged.
            target = self.w_cubic(t + self.rtt)
            if target < cwnd:
                target = cwnd
            elif target > 1.5 * cwnd:
                target = 1.5 * cwnd
            new = cwnd + (target - cwnd) / cwnd * segs
        new = max(new, cwnd)  # congestion avoidance never shrinks the window
        total = new * mss
        self.cwnd = int(total)
        self._frac = total - self.cwnd

    def _reduced_ssthresh(self, flight_size: int) -> int:
        """RFC 9438 4.6: ssthresh = flight_size * beta_cubic, at least 2 segments; or, with
        ``ssthresh_from_cwnd``, Linux's max(cwnd * 717 / 1024, 2) segments."""
        if self.ssthresh_from_cwnd:
            segs = self.cwnd // self.mss
            return max(segs * LINUX_BETA // LINUX_BETA_SCALE, 2) * self.mss
        return max(int(flight_size * BETA_CUBIC), 2 * self.mss)

    def on_congestion(self, now: float, flight_size: int) -> None:
        self._end_hystart()
        w = self.cwnd / self.mss
        # RFC 9438 4.7 fast convergence: a flow that lost before reaching its previous W_max
        # releases bandwidth: W_max = cwnd * (1 + beta) / 2; otherwise W_max = cwnd.
        if self.fast_convergence and self.w_max is not None and w < self.w_max:
            self.w_max = w * (1.0 + BETA_CUBIC) / 2.0
        else:
            self.w_max = w
        self.cwnd_prior = w
        # RFC 9438 4.6: ssthresh = flight_size * beta_cubic, at least 2 segments; cwnd = ssthresh.
        self.ssthresh = self._reduced_ssthresh(flight_size)
        self.cwnd = self.ssthresh
        self.t_epoch = None
        self._frac = 0.0
        self._ca_acked = 0

    def on_rto(self, now: float, flight_size: int, repeated: bool = False) -> None:
        self._end_hystart()
        # RFC 9438 4.8: reduce cwnd as Reno does (1 SMSS) but set ssthresh with beta_cubic;
        # the next congestion avoidance stage uses K = 0 and W_max = cwnd at its start.
        if not repeated:
            self.ssthresh = self._reduced_ssthresh(flight_size)
            self.cwnd_prior = self.cwnd / self.mss
        self.w_max = None
        self.cwnd = self.mss
        self.t_epoch = None
        self._frac = 0.0
        self._ca_acked = 0

    def on_recovery_exit(self, now: float) -> None:
        super().on_recovery_exit(now)
        self.t_epoch = None
        self._frac = 0.0

    def on_idle_restart(self, now: float) -> None:
        # RFC 5681 4.1 restart window; RFC 9438 5.8: t must not include the idle period, so
        # the next ACK starts a new epoch (K from the same W_max and the current cwnd).
        super().on_idle_restart(now)
        self.t_epoch = None
        self._frac = 0.0
