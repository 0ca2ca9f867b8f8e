"""Round-trip time estimation and the retransmission timeout (RFC 6298).

Owns SRTT, RTTVAR, the RTO and its exponential backoff. The engine feeds RTT samples taken by
Karn's rule (RFC 6298 3: never from a retransmitted segment, unless timestamps disambiguate)
and reads ``.rto`` when it arms the retransmission timer. No clock: samples are durations.
"""

from __future__ import annotations

# RFC 6298 2.3: alpha = 1/8, beta = 1/4; K = 4.
ALPHA = 0.125
BETA = 0.25
K = 4.0
# RFC 6298 5.7: RTO used once data transmission begins after the SYN's timer expired.
SYN_LOSS_RTO = 3.0


class RttEstimator:
    """SRTT/RTTVAR/RTO per RFC 6298.

    ``rto`` is the current timeout including backoff; ``srtt`` and ``rttvar`` are ``None``
    until the first sample. ``min_rtt`` is the smallest sample seen (for CUBIC/HyStart and
    introspection).
    """

    __slots__ = (
        "_backoffs",
        "_base_rto",
        "granularity",
        "initial_rto",
        "max_rto",
        "min_on_variance",
        "min_rto",
        "min_rtt",
        "rto",
        "rttvar",
        "samples",
        "srtt",
    )

    def __init__(
        self,
        initial_rto: float = 1.0,
        min_rto: float = 1.0,
        max_rto: float = 60.0,
        granularity: float = 0.001,
        min_on_variance: bool = False,
    ) -> None:
        if not 0 < min_rto <= max_rto:
            raise ValueError("need 0 < min_rto <= max_rto")
        if initial_rto <= 0:
            raise ValueError("initial_rto must be positive")
        self.initial_rto = initial_rto
        self.min_rto = min_rto
        self.max_rto = max_rto
        self.granularity = granularity
        # Linux (tcp_set_rto): the minimum bounds the variance term, RTO = SRTT +
        # max(K*RTTVAR, min_rto), instead of the whole RTO (RFC 6298 2.4).
        self.min_on_variance = min_on_variance
        self.srtt: float | None = None
        self.rttvar: float | None = None
        self.min_rtt: float | None = None
        self.samples = 0
        # RFC 6298 2.1: until a sample is taken, RTO <- 1 second (initial_rto), which is not
        # raised to min_rto (RFC 6298 2.1 and 2.4 are separate rules) but is capped.
        self._base_rto = min(initial_rto, max_rto)
        self._backoffs = 0
        self.rto = self._base_rto

    @property
    def backoffs(self) -> int:
        """How many times the RTO has been doubled since the last sample or reset."""
        return self._backoffs

    def sample(self, rtt: float) -> None:
        """Take one RTT measurement R (seconds) and recompute the RTO.

        A sample also ends any backoff (RFC 6298 5.7 note and Karn: the backed-off RTO is
        kept until a valid sample arrives).
        """
        if rtt < 0:
            rtt = 0.0
        if self.srtt is None or self.rttvar is None:
            # RFC 6298 2.2: first measurement: SRTT <- R, RTTVAR <- R/2.
            self.srtt = rtt
            self.rttvar = rtt / 2.0
        else:
            # RFC 6298 2.3: RTTVAR first (it uses the old SRTT), then SRTT.
            self.rttvar = (1.0 - BETA) * self.rttvar + BETA * abs(self.srtt - rtt)
            self.srtt = (1.0 - ALPHA) * self.srtt + ALPHA * rtt
        if self.min_rtt is None or rtt < self.min_rtt:
            self.min_rtt = rtt
        self.samples += 1
        # RFC 6298 2.2/2.3: RTO <- SRTT + max(G, K*RTTVAR); 2.4: at least min_rto (1 s);
        # 2.5: a maximum may be placed (at least 60 s).
        if self.min_on_variance:
            rto = self.srtt + max(self.granularity, K * self.rttvar, self.min_rto)
        else:
            rto = self.srtt + max(self.granularity, K * self.rttvar)
        self._base_rto = min(max(rto, self.min_rto), self.max_rto)
        self._backoffs = 0
        self.rto = self._base_rto

    def backoff(self) -> None:
        """RFC 6298 5.5: the retransmission timer expired: RTO <- RTO * 2, capped (2.5)."""
        self._backoffs += 1
        self.rto = min(self.rto * 2.0, self.max_rto)

    def reset_backoff(self) -> None:
        """Return to the un-backed-off RTO (e.g. after an ACK of new data, RFC 6298 5.7 note)."""
        self._backoffs = 0
        self.rto = self._base_rto

    def reinit_after_syn_loss(self) -> None:
        """RFC 6298 5.7: the timer expired awaiting the ACK of a SYN and no RTT sample was taken:
        when data transmission begins the RTO is re-initialized to 3 seconds (if it is lower).
        Call once the handshake completes. Does nothing once a sample exists."""
        if self.srtt is not None:
            return
        self._base_rto = min(max(self._base_rto, SYN_LOSS_RTO), self.max_rto)
        self._backoffs = 0
        self.rto = self._base_rto
