"""Explicit Congestion Notification for TCP (RFC 3168), sans I/O.

Owns one connection's ECN state and the rules of RFC 3168 section 6.1:

- negotiation (6.1.1): an ECN-setup SYN carries ECE and CWR; the SYN-ACK answers with ECE
  alone; ECN is then on for the connection. ``TcpConfig.ecn`` follows Linux's ``tcp_ecn``:
  0 never, 1 ask on our SYNs and accept on others', 2 accept only (Linux's default);
- the sender marks new data packets ECT(0) (6.1.2), never SYNs, SYN-ACKs, pure ACKs,
  retransmissions (6.1.5) or window probes (6.1.6);
- the receiver that gets a CE-marked packet sets ECE on its ACKs until a segment with CWR
  arrives (6.1.3);
- the sender that gets ECE reduces its congestion window as for a loss, at most once per
  window of data (6.1.2), and sets CWR on the next new data packet.

IP codepoints (RFC 3168 5): Not-ECT 0b00, ECT(1) 0b01, ECT(0) 0b10, CE 0b11.
"""

from __future__ import annotations

from pytcp.tcp.seq import seq_ge
from pytcp.wire.tcp import CWR, ECE

NOT_ECT = 0
ECT1 = 1
ECT0 = 2
CE = 3


class Ecn:
    """RFC 3168 state of one connection."""

    __slots__ = ("ce_seen", "cwr_end", "cwr_pending", "ece_pending", "ok", "reductions",
                 "seen", "want")

    def __init__(self, mode: int) -> None:
        self.want = mode          # TcpConfig.ecn: 0 off, 1 request and accept, 2 accept
        self.ok = False           # negotiated (Linux TCPI_OPT_ECN)
        self.seen = False         # an ECT or CE packet arrived (Linux TCPI_OPT_ECN_SEEN)
        self.ece_pending = False  # receiver: CE seen, ECE on every ACK until CWR
        self.cwr_pending = False  # sender: CWR goes on the next new data packet
        self.cwr_end: int | None = None  # sender: no new reduction before SND.UNA passes it
        self.ce_seen = 0
        self.reductions = 0

    # ---- handshake (6.1.1)
    def syn_flags(self) -> int:
        """Flags to add to our SYN: ECE|CWR when we ask for ECN."""
        return ECE | CWR if self.want == 1 else 0

    def on_syn(self, flags: int) -> int:
        """The peer's SYN: if it is an ECN-setup SYN (ECE and CWR) and we accept, ECN is on;
        returns the flags to add to our SYN-ACK (ECE)."""
        if self.want in (1, 2) and flags & (ECE | CWR) == ECE | CWR:
            self.ok = True
            return ECE
        self.ok = False
        return 0

    def on_synack(self, flags: int) -> None:
        """The SYN-ACK to our (ECN-setup) SYN: ECE without CWR turns ECN on."""
        self.ok = self.want == 1 and flags & (ECE | CWR) == ECE

    # ---- receiver (6.1.3)
    def on_segment(self, codepoint: int, flags: int, has_data: bool) -> bool:
        """An arriving segment's IP ECN codepoint and TCP flags. Returns True when it was
        CE-marked (the caller ACKs at once, as Linux does)."""
        if not self.ok:
            return False
        if codepoint != NOT_ECT:
            self.seen = True
        if flags & CWR:
            self.ece_pending = False  # the sender reacted (6.1.3)
        if codepoint == CE:
            self.ce_seen += 1
            self.ece_pending = True
            return True
        return False

    def ack_flags(self) -> int:
        """ECE on our ACKs while a CE mark is unanswered."""
        return ECE if self.ece_pending else 0

    # ---- sender (6.1.2)
    def on_ece(self, ack: int, snd_max: int) -> bool:
        """An ACK with ECE: True when the sender must reduce cwnd now (not again for the same
        window: until SND.UNA passes the SND.MAX of the last reduction)."""
        if not self.ok:
            return False
        if self.cwr_end is not None and not seq_ge(ack, self.cwr_end):
            return False
        self.cwr_end = snd_max
        self.cwr_pending = True
        self.reductions += 1
        return True

    def data_flags(self) -> int:
        """CWR for the next new data packet after a reduction (then cleared)."""
        if self.cwr_pending:
            self.cwr_pending = False
            return CWR
        return 0
