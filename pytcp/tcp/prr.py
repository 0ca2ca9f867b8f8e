"""Proportional Rate Reduction for fast recovery (RFC 6937, updated by RFC 9937), sans I/O.

Owns the PRR state of one recovery episode: ``RecoverFS``, ``prr_delivered`` and ``prr_out``,
and the per-ACK computation of how much may be sent (``sndcnt``). During recovery the window
is brought from its value at the loss down to ``ssthresh`` (set by the congestion controller,
CUBIC or NewReno alike) in proportion to the data the receiver reports delivered, instead of
halting and then bursting (RFC 6675 alone) or halving at once; when the pipe has fallen below
ssthresh it grows back to it no faster than slow start (the "reduction bound").

RFC 9937's rules (as Linux's ``tcp_cwnd_reduction`` runs them):

- pipe > ssthresh (proportional part): ``sndcnt = CEIL(prr_delivered * ssthresh / RecoverFS)
  - prr_out``;
- otherwise: ``sndcnt = MIN(ssthresh - pipe, MAX(prr_delivered - prr_out, DeliveredData)
  + (SMSS if the ACK is safe))`` where a safe ACK advances SND.UNA and reports no new loss
  (PRR-SSRB for safe ACKs, PRR-CRB otherwise);
- at least one segment goes out on the first ACK of recovery (the fast retransmit);
- cwnd = pipe + sndcnt.

Sizes are bytes; ``RecoverFS`` is the FlightSize when recovery starts (RFC 6937 3).
"""

from __future__ import annotations


def _segs(nbytes: int, mss: int) -> int:
    return -(-nbytes // mss)


class Prr:
    """One connection's PRR state (reset at every entry into recovery). Counts are kept in
    segments, as Linux does (so the proportional step rounds to whole segments)."""

    __slots__ = ("active", "delivered", "mss", "out", "recover_fs", "ssthresh")

    def __init__(self) -> None:
        self.active = False
        self.mss = 1
        self.recover_fs = 1
        self.delivered = 0   # prr_delivered (segments)
        self.out = 0         # prr_out (segments)
        self.ssthresh = 0    # segments

    def start(self, ssthresh: int, recover_fs: int, mss: int) -> None:
        """Entering recovery: ``ssthresh`` (bytes) from the congestion controller, RecoverFS
        = FlightSize in bytes (RFC 6937 3 "on entering recovery")."""
        self.active = True
        self.mss = max(mss, 1)
        self.ssthresh = max(ssthresh // self.mss, 1)
        self.recover_fs = max(_segs(recover_fs, self.mss), 1)
        self.delivered = 0
        self.out = 0

    def stop(self) -> None:
        self.active = False

    def on_sent(self, nbytes: int) -> None:
        """Data (new or retransmitted) sent during recovery: prr_out += it."""
        if self.active and nbytes > 0:
            self.out += _segs(nbytes, self.mss)

    def on_ack(self, delivered: int, pipe: int, safe_ack: bool) -> int | None:
        """One ACK in recovery: ``delivered`` = DeliveredData (bytes newly acknowledged
        cumulatively or by SACK), ``pipe`` the bytes in flight after it. Returns the new
        cwnd in bytes (pipe + sndcnt), or None when the ACK delivered nothing."""
        if not self.active or delivered <= 0:
            return None
        mss = self.mss
        dd = _segs(delivered, mss)
        self.delivered += dd
        pipe_segs = _segs(pipe, mss)
        ssthresh = self.ssthresh
        if pipe_segs > ssthresh:
            # RFC 9937 / RFC 6937 3: proportional rate reduction.
            sndcnt = -(-self.delivered * ssthresh // self.recover_fs) - self.out
        else:
            # RFC 9937: PRR-SSRB on a safe ACK, else PRR-CRB (conservative bound).
            limit = max(self.delivered - self.out, dd)
            if safe_ack:
                limit += 1
            sndcnt = min(ssthresh - pipe_segs, limit)
        # RFC 9937: force the fast retransmit on the first ACK of recovery.
        sndcnt = max(sndcnt, 0 if self.out else 1)
        return (pipe_segs + max(sndcnt, 0)) * mss
