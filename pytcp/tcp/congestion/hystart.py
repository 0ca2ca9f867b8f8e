"""HyStart++: leaving slow start before it overshoots (RFC 9406).

Owns the per-round RTT tracking of RFC 9406 section 4: it watches the minimum RTT of each
round of slow start; when it rises by more than RttThresh it switches to Conservative Slow
Start (CSS, growth divided by CSS_GROWTH_DIVISOR); after CSS_ROUNDS rounds of CSS it ends
slow start (ssthresh = cwnd), or it resumes standard slow start if the RTT falls back.

Rounds are counted without sequence numbers: a round started by an ACK ends once the bytes
that were outstanding after that ACK (SND.NXT - SND.UNA, i.e. windowEnd - SND.UNA) have been
acknowledged, which is the RFC's "an ACK covers windowEnd" for cumulative ACKs. Used only in
the initial slow start (RFC 9406 4.3: after a loss or an RTO, standard slow start).
"""

from __future__ import annotations

import enum
import math

# RFC 9406 4.3 constants.
MIN_RTT_THRESH = 0.004
MAX_RTT_THRESH = 0.016
MIN_RTT_DIVISOR = 8
N_RTT_SAMPLE = 8
CSS_GROWTH_DIVISOR = 4
CSS_ROUNDS = 5


# Linux tcp_cubic.c HyStart (HYSTART_DELAY) constants.
LINUX_MIN_SAMPLES = 8        # HYSTART_MIN_SAMPLES
LINUX_DELAY_MIN = 0.004      # HYSTART_DELAY_MIN (4 ms)
LINUX_DELAY_MAX = 0.016      # HYSTART_DELAY_MAX (16 ms)
LINUX_LOW_WINDOW = 16        # hystart_low_window (segments)


class LinuxHyStart:
    """Linux CUBIC's HyStart delay detection (tcp_cubic.c cubictcp_acked / hystart_update,
    HYSTART_DELAY): once cwnd is at least 16 segments, each round of slow start takes the
    minimum RTT of its first samples; after 8 samples, if that minimum exceeds the
    connection's minimum RTT by clamp(min_rtt / 8, 4 ms, 16 ms), slow start ends at once
    (ssthresh = cwnd). Rounds: as Linux, a round ends when SND.UNA passes the SND.NXT of its
    start (counted here in bytes, as ``HyStartPP`` does). The ACK-train detection
    (HYSTART_ACK_TRAIN, which depends on the pacing rate) is not modelled."""

    __slots__ = ("curr_rtt", "delay_min", "found", "round_left", "sample_cnt")

    def __init__(self) -> None:
        self.found = False
        self.delay_min: float | None = None
        self.curr_rtt = math.inf
        self.sample_cnt = 0
        self.round_left: int | None = None

    @property
    def active(self) -> bool:
        return not self.found

    def stop(self) -> None:
        self.found = True

    def on_ack(self, acked_bytes: int, rtt: float | None, flight_size: int,
               cwnd_segments: int = 0) -> int:
        """One ACK in slow start: 1 (go on), or 0: leave slow start (ssthresh = cwnd)."""
        if self.found or rtt is None:
            return 1
        delay = max(rtt, 1e-6)
        if self.delay_min is None or delay < self.delay_min:
            self.delay_min = delay  # (cubictcp_acked: first call or the delay decreased)
        if cwnd_segments < LINUX_LOW_WINDOW:
            return 1
        # hystart_update: a new round once SND.UNA passed the round's end (bictcp_hystart_reset).
        if self.round_left is not None:
            self.round_left -= acked_bytes
        if self.round_left is None or self.round_left < 0:
            self.round_left = max(flight_size - acked_bytes, 0)
            self.curr_rtt = math.inf
            self.sample_cnt = 0
        self.curr_rtt = min(self.curr_rtt, delay)
        if self.sample_cnt < LINUX_MIN_SAMPLES:
            self.sample_cnt += 1
            return 1
        thresh = min(max(self.delay_min / 8, LINUX_DELAY_MIN), LINUX_DELAY_MAX)
        if self.curr_rtt > self.delay_min + thresh:
            self.found = True
            return 0
        return 1


class Phase(enum.Enum):
    SLOW_START = "slow_start"
    CSS = "css"
    DONE = "done"  # slow start ended (by HyStart++ or a congestion event): inactive


class HyStartPP:
    """RFC 9406 state for one connection's initial slow start."""

    __slots__ = (
        "css_baseline",
        "css_rounds",
        "cur_round_min",
        "last_round_min",
        "phase",
        "round_left",
        "rounds",
        "samples",
    )

    def __init__(self) -> None:
        self.phase = Phase.SLOW_START
        self.round_left: int | None = None  # bytes still to be acked before this round ends
        self.rounds = 0
        self.last_round_min = math.inf
        self.cur_round_min = math.inf
        self.samples = 0
        self.css_baseline = math.inf
        self.css_rounds = 0

    @property
    def active(self) -> bool:
        return self.phase is not Phase.DONE

    def stop(self) -> None:
        """Slow start is over for good (congestion event, RTO, HyStart++'s own exit)."""
        self.phase = Phase.DONE

    def _new_round(self, outstanding: int) -> None:
        # RFC 9406 4.2: at the start of each round: lastRoundMinRTT = currentRoundMinRTT,
        # currentRoundMinRTT = infinity, rttSampleCount = 0; windowEnd = SND.NXT.
        self.round_left = outstanding
        self.rounds += 1
        self.last_round_min = self.cur_round_min
        self.cur_round_min = math.inf
        self.samples = 0
        if self.phase is Phase.CSS:
            self.css_rounds += 1

    def on_ack(self, acked_bytes: int, rtt: float | None, flight_size: int,
               cwnd_segments: int = 0) -> int:
        """One ACK in slow start. Returns the divisor for this ACK's cwnd growth: 1 (standard
        slow start), CSS_GROWTH_DIVISOR (CSS), or 0: leave slow start now (set ssthresh =
        cwnd, RFC 9406 4.2 "enter congestion avoidance")."""
        if self.phase is Phase.DONE:
            return 1
        if self.round_left is None:
            self._new_round(flight_size)
        assert self.round_left is not None
        self.round_left -= acked_bytes
        if self.round_left <= 0:
            self._new_round(max(flight_size - acked_bytes, 0))
            if self.phase is Phase.CSS and self.css_rounds >= CSS_ROUNDS:
                # RFC 9406 4.2: CSS_ROUNDS rounds of CSS without the RTT falling back.
                self.phase = Phase.DONE
                return 0
        if rtt is not None:
            self.cur_round_min = min(self.cur_round_min, rtt)
            self.samples += 1
        if self.samples >= N_RTT_SAMPLE and self.cur_round_min != math.inf:
            if self.phase is Phase.SLOW_START:
                if self.last_round_min != math.inf:
                    # RFC 9406 4.2: RttThresh = max(MIN_RTT_THRESH,
                    #   min(lastRoundMinRTT / MIN_RTT_DIVISOR, MAX_RTT_THRESH))
                    thresh = max(MIN_RTT_THRESH,
                                 min(self.last_round_min / MIN_RTT_DIVISOR, MAX_RTT_THRESH))
                    if self.cur_round_min >= self.last_round_min + thresh:
                        self.phase = Phase.CSS
                        self.css_baseline = self.cur_round_min
                        self.css_rounds = 0
            elif self.cur_round_min < self.css_baseline:
                # RFC 9406 4.2: the delay increase was spurious: back to slow start.
                self.css_baseline = math.inf
                self.phase = Phase.SLOW_START
        return CSS_GROWTH_DIVISOR if self.phase is Phase.CSS else 1
