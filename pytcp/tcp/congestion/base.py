"""The congestion-control interface shared by NewReno and CUBIC (RFC 5681 terms).

Owns ``cwnd`` and ``ssthresh`` (both in bytes) and the rules that change them. The engine owns
loss detection (duplicate ACKs, SACK scoreboard, RTO), recovery bookkeeping and FlightSize; it
calls these hooks:

- ``on_ack(now, acked_bytes, rtt, flight_size)``: an ACK cumulatively acknowledged
  ``acked_bytes`` new bytes outside fast recovery. ``rtt`` is the SRTT (or the sample it
  yielded, or None), ``flight_size`` the bytes outstanding before this ACK (SND.MAX - SND.UNA):
  cwnd grows only when it limited sending (``cwnd_limited``).
- ``on_congestion(now, flight_size)``: loss detected by duplicate ACKs / SACK: enter fast
  recovery (ssthresh reduced; cwnd = ssthresh, RFC 6675 5 step 4.2). A NewReno engine without
  SACK inflates with ``on_dupack_inflate`` (RFC 6582 3.2 step 2-3) and deflates with
  ``on_partial_ack``.
- ``on_recovery_exit(now)``: the recovery point was acknowledged: cwnd = ssthresh.
- ``on_rto(now, flight_size, repeated=False)``: the retransmission timer expired (RFC 5681
  eqn. 4 then cwnd = 1 MSS, the loss window). ``repeated=True`` when the segment had already
  been retransmitted by the timer: ssthresh is then held (RFC 5681 3.1).
- ``on_idle_restart(now)``: sending restarts after an idle period longer than the RTO
  (RFC 5681 4.1: cwnd = min(IW, cwnd)).
"""

from __future__ import annotations

import abc

from pytcp.tcp.congestion.hystart import HyStartPP, LinuxHyStart

# Effectively "arbitrarily high" initial ssthresh (RFC 5681 3.1).
INITIAL_SSTHRESH = 0x7FFFFFFF


def initial_window(mss: int, segments: int | None = None) -> int:
    """Initial cwnd in bytes: ``segments * mss`` when given, else RFC 6928's
    min(10*MSS, max(2*MSS, 14600))."""
    if segments is not None:
        return max(1, segments) * mss
    return min(10 * mss, max(2 * mss, 14600))


class CongestionControl(abc.ABC):
    """Window state in bytes. ``name`` identifies the algorithm (as in Linux's
    ``tcp_congestion_control``)."""

    name = "base"

    __slots__ = (
        "_ca_acked", "_iw_segments", "abc_limit", "cwnd", "hystart", "initial_cwnd", "mss", "ssthresh",
    )

    def __init__(self, mss: int, initial_window_segments: int | None = None, *,
                 hystart: bool = False, hystart_kind: str = "rfc9406") -> None:
        if mss <= 0:
            raise ValueError("mss must be positive")
        # RFC 9406 HyStart++ (or, ``hystart_kind="linux"``, Linux CUBIC's HyStart delay exit)
        # for the initial slow start (None: standard slow start only).
        self.hystart: HyStartPP | LinuxHyStart | None = None
        if hystart:
            if hystart_kind not in ("rfc9406", "linux"):
                raise ValueError(f"unknown hystart kind {hystart_kind!r}")
            self.hystart = LinuxHyStart() if hystart_kind == "linux" else HyStartPP()
        self.mss = mss
        self._iw_segments = initial_window_segments
        self.initial_cwnd = initial_window(mss, initial_window_segments)
        self.cwnd = self.initial_cwnd
        self.ssthresh = INITIAL_SSTHRESH
        self._ca_acked = 0  # RFC 3465 bytes_acked for congestion avoidance
        # RFC 3465 L in segments (2); 0: no limit, every acknowledged byte counts (Linux
        # tcp_slow_start). Set by the connection from TcpConfig.slow_start_abc_limit.
        self.abc_limit = 2

    @property
    def in_slow_start(self) -> bool:
        # RFC 5681 3.1: slow start when cwnd < ssthresh.
        return self.cwnd < self.ssthresh

    def cwnd_limited(self, flight_size: int) -> bool:
        """Whether the window, not the application (or the peer's window), limited sending,
        judged from the bytes in flight before the ACK. cwnd grows only then (RFC 9438 5.8:
        CUBIC does not raise cwnd while application-limited; RFC 7661 2; Linux's
        tcp_is_cwnd_limited): in slow start while cwnd < 2 * FlightSize, in congestion
        avoidance while FlightSize is within 2*SMSS of cwnd (the sender sends whole segments)."""
        if self.cwnd < self.ssthresh:
            return self.cwnd < 2 * flight_size
        return flight_size + 2 * self.mss > self.cwnd

    def set_mss(self, mss: int) -> None:
        """The effective send MSS changed (after the handshake); rescale windows that are
        still at their initial values."""
        if mss <= 0:
            raise ValueError("mss must be positive")
        at_initial = self.cwnd == self.initial_cwnd
        self.initial_cwnd = initial_window(mss, self._iw_segments)
        if at_initial:
            self.cwnd = self.initial_cwnd
        self.mss = mss

    def slow_start(self, acked_bytes: int, rtt: float | None = None, flight_size: int = 0,
                   grow: bool = True) -> int:
        """RFC 5681 3.1 with RFC 3465 appropriate byte counting, L = 2*SMSS: cwnd grows by
        min(acked, 2*SMSS), not past ssthresh. Returns the acked bytes left over (the part of
        this ACK beyond ssthresh, for congestion avoidance). With HyStart++ (RFC 9406) the
        growth is divided by CSS_GROWTH_DIVISOR during CSS, and slow start may end here
        (ssthresh = cwnd). ``grow=False`` (not cwnd-limited) only feeds HyStart++'s rounds."""
        inc = min(acked_bytes, self.abc_limit * self.mss) if self.abc_limit else acked_bytes
        hs = self.hystart
        if hs is not None and hs.active:
            div = hs.on_ack(acked_bytes, rtt, flight_size, self.cwnd // self.mss)
            if div == 0:
                # RFC 9406 4.2: enter congestion avoidance (Linux hystart_update: the same),
                # with this ACK (Linux: cong_avoid runs on it, cwnd == ssthresh).
                self.ssthresh = self.cwnd
                return acked_bytes if grow else 0
            inc //= div
        if not grow:
            return 0
        if self.cwnd + inc <= self.ssthresh:
            self.cwnd += inc
            return 0
        used = max(self.ssthresh - self.cwnd, 0)
        self.cwnd = max(self.cwnd, self.ssthresh)
        return acked_bytes - used

    def on_ack(self, now: float, acked_bytes: int, rtt: float | None, flight_size: int,
               cwnd_limited: bool | None = None) -> None:
        """An ACK for new data: slow start below ssthresh (RFC 5681 3.1, RFC 3465), then
        congestion avoidance with what is left, only while cwnd-limited (RFC 7661).
        ``cwnd_limited``: the sender's own record of it (Linux tcp_is_cwnd_limited, kept by
        the connection as sending happens); None: judged from ``flight_size``."""
        self.observe_rtt(rtt)
        if acked_bytes <= 0:
            return
        limited = self.cwnd_limited(flight_size) if cwnd_limited is None else cwnd_limited
        if self.cwnd < self.ssthresh:
            acked_bytes = self.slow_start(acked_bytes, rtt, flight_size, limited)
            if acked_bytes <= 0:
                return
        if limited:
            self.congestion_avoidance(now, acked_bytes)

    def observe_rtt(self, rtt: float | None) -> None:
        """This ACK's RTT sample (or None); for algorithms that track the RTT themselves."""

    @abc.abstractmethod
    def congestion_avoidance(self, now: float, acked_bytes: int) -> None:
        """Grow cwnd for ``acked_bytes`` acknowledged above ssthresh."""

    @abc.abstractmethod
    def on_congestion(self, now: float, flight_size: int) -> None:
        ...

    def _end_hystart(self) -> None:
        # RFC 9406 4.2/4.3: a congestion event ends (conservative) slow start; HyStart++ is
        # used in the initial slow start only.
        if self.hystart is not None:
            self.hystart.stop()

    def on_recovery_exit(self, now: float) -> None:
        """RFC 6582 3.2 step 6 / RFC 6675 5: leaving fast recovery: cwnd = ssthresh."""
        self.cwnd = max(self.ssthresh, self.mss)
        self._ca_acked = 0

    @abc.abstractmethod
    def on_rto(self, now: float, flight_size: int, repeated: bool = False) -> None:
        ...

    def on_idle_restart(self, now: float) -> None:
        """RFC 5681 4.1: after an idle period longer than the RTO, cwnd = min(IW, cwnd)."""
        self.cwnd = min(self.initial_cwnd, self.cwnd)
        self._ca_acked = 0
        if self.hystart is not None:
            self.hystart.round_left = None  # rounds restart with the next ACK

    def on_tx_start(self, now: float, idle: float) -> None:
        """Data leaves with nothing in flight, ``idle`` seconds after the last data sent
        (Linux CA_EVENT_TX_START); for algorithms that keep time themselves."""

    def on_dupack_inflate(self) -> None:
        """RFC 6582 3.2 step 2-3 (no SACK): each duplicate ACK during fast recovery says a
        segment left the network: cwnd += SMSS."""
        self.cwnd += self.mss

    def on_partial_ack(self, acked_bytes: int) -> None:
        """RFC 6582 3.2 step 5 (no SACK): deflate cwnd by the bytes newly acknowledged, then
        add back SMSS if at least SMSS was acknowledged."""
        cwnd = self.cwnd - acked_bytes
        if acked_bytes >= self.mss:
            cwnd += self.mss
        self.cwnd = max(cwnd, self.mss)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} cwnd={self.cwnd} ssthresh={self.ssthresh} mss={self.mss}>"
