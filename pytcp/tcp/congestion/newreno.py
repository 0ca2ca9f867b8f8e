"""NewReno congestion control (RFC 5681, RFC 6582, RFC 3465 byte counting).

Owns the Reno window rules: slow start with ABC (L = 2*SMSS), congestion avoidance of one SMSS
per cwnd of acknowledged bytes (RFC 5681 3.1 / RFC 3465 2.1), halving on loss.
"""

from __future__ import annotations

from pytcp.tcp.congestion.base import CongestionControl


class NewReno(CongestionControl):
    name = "newreno"

    __slots__ = ()

    def congestion_avoidance(self, now: float, acked_bytes: int) -> None:
        # RFC 3465 2.1 / RFC 5681 3.1: count acknowledged bytes; when they reach cwnd,
        # cwnd += SMSS (at most one SMSS per ACK).
        self._ca_acked += acked_bytes
        if self._ca_acked >= self.cwnd:
            self._ca_acked -= self.cwnd
            self.cwnd += self.mss
            if self._ca_acked >= self.cwnd:
                self._ca_acked = self.cwnd - 1  # never carry more than one increase

    def on_congestion(self, now: float, flight_size: int) -> None:
        self._end_hystart()
        # RFC 5681 eqn. 4: ssthresh = max(FlightSize / 2, 2*SMSS); RFC 6675 5: cwnd = ssthresh.
        self.ssthresh = max(flight_size // 2, 2 * self.mss)
        self.cwnd = self.ssthresh
        self._ca_acked = 0

    def on_rto(self, now: float, flight_size: int, repeated: bool = False) -> None:
        self._end_hystart()
        # RFC 5681 3.1: eqn. 4 unless the segment was already retransmitted by the timer,
        # then cwnd = LW = 1 SMSS.
        if not repeated:
            self.ssthresh = max(flight_size // 2, 2 * self.mss)
        self.cwnd = self.mss
        self._ca_acked = 0
