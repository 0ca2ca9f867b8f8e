"""Sender-side ACK processing for :class:`pytcp.tcp.connection.Connection`: what an ACK of
new data, a duplicate ACK or a timestamp echo does to the sending half.

Owns RTT measurement (RFC 6298 with Karn's rule, RFC 7323 RTTM), releasing acknowledged bytes
from the send buffer, restarting the retransmission timer (RFC 6298 5.2/5.3), fast retransmit
and the entry/exit of loss recovery (RFC 5681, RFC 6582 NewReno, RFC 6675 SACK), and Eifel
detection of spurious retransmissions (RFC 3522) with the undo (RFC 4015). It changes no
connection state (``Connection._set_state`` alone does).

A mixin: ``Connection`` inherits it; the attributes below are created by
``Connection.__init__``.
"""

from __future__ import annotations

from pytcp.tcp.events import Event, SendSpaceAvailable
from pytcp.tcp.output import ConnectionOutput
from pytcp.tcp.segment import Segment
from pytcp.tcp.seq import MASK, seq_add, seq_ge, seq_gt, seq_le, seq_lt, seq_sub
from pytcp.wire.tcp import TcpOptions


class ConnectionRecovery(ConnectionOutput):
    """The sender's reaction to acknowledgments (mixin of ``Connection``)."""

    bytes_out: int
    spurious_retransmits: int
    _events: list[Event]
    _want_space: bool
    _recover: int
    _rto_repeated: bool
    _undo: tuple[int, int, int, int, bool] | None

    def _ack_advance(self, now: float, seg: Segment, ack: int, acked: int) -> None:
        """SND.UNA < SEG.ACK =< SND.MAX: new data acknowledged."""
        flight = seq_sub(self.snd_max, self.snd_una)
        if self._undo is not None:
            self._eifel(seg)
        sample = self._rtt_sample(now, seg.options, ack)
        if sample is not None:
            self._rtt.sample(sample)
        else:
            self._rtt.reset_backoff()
        self._retries = 0
        self._rto_repeated = False
        # Release acknowledged bytes from the send buffer.
        data_end = seq_add(self._buf_seq, len(self._sendbuf))
        upto = ack if seq_le(ack, data_end) else data_end
        n = seq_sub(upto, self._buf_seq)
        if n > 0:
            self._sendbuf.consume(n)
            self._buf_seq = upto
            self.bytes_out += n
        self.snd_una = ack
        if seq_lt(self.snd_nxt, ack):
            self.snd_nxt = ack
        if self._snd_up is not None and seq_ge(ack, self._snd_up):
            self._snd_up = None  # the urgent data was received
        # RFC 6298 5.2/5.3: timer off when all is acknowledged, else restart it.
        if self.snd_una == self.snd_max:
            self._rto_at = None
        else:
            self._arm_rto(now)
        if self._in_recovery:
            if seq_ge(ack, self._recover):
                # RFC 6582 3.2 step 6 / RFC 6675 5: full acknowledgment ends recovery.
                self._in_recovery = False
                self._dupacks = 0
                self._rexmit_out = 0
                self._cc.on_recovery_exit(now)
            elif not self.sack_ok:
                # RFC 6582 3.2 step 5: partial ACK: retransmit the next hole at once.
                self._dupacks = max(0, self._dupacks - max(0, acked // self.snd_mss - 1))
                self._rexmit_out = 0
                self._retransmit_at(now, ack)
            # With SACK, NextSeg() picks the holes as the pipe allows (RFC 6675 5 step C).
        else:
            self._dupacks = 0
            self._cc.on_ack(now, acked, sample, flight)
        if self._want_space and self._sendbuf.free > 0 and not self._fin_queued:
            self._want_space = False
            self._events.append(SendSpaceAvailable())

    def _eifel(self, seg: Segment) -> None:
        """RFC 3522 Eifel detection on the first ACK that advances SND.UNA after a fast
        retransmit or an RTO: if it echoes a TSval older than the retransmission's, the
        original arrived and the retransmission was spurious (reordering or a delay, not a
        loss). Response as RFC 4015 and Linux's undo: restore cwnd and ssthresh, leave
        recovery, and after an RTO resume with new data (SND.NXT = SND.MAX). Only when
        exactly one segment was retransmitted in the episode."""
        undo = self._undo
        self._undo = None
        ts = seg.options.timestamp
        if undo is None or ts is None or ts[1] == 0:
            return
        cwnd, ssthresh, rtx_ts, rtx_count, was_rto = undo
        if not seq_lt(ts[1], rtx_ts) or self.retransmits - rtx_count > 1:
            return
        self.spurious_retransmits += 1
        self._cc.cwnd = max(self._cc.cwnd, cwnd)
        self._cc.ssthresh = max(self._cc.ssthresh, ssthresh)
        self._in_recovery = False
        self._dupacks = 0
        self._rexmit_out = 0
        if was_rto and seq_lt(self.snd_nxt, self.snd_max):
            self.snd_nxt = self.snd_max

    def _on_dupack(self, now: float) -> None:
        """RFC 5681 3.2 / RFC 6582: fast retransmit on the third duplicate ACK."""
        self._dupacks += 1
        if self._in_recovery:
            return  # each dupack lowers the pipe estimate: more may be sent
        # RFC 6675 5: enter recovery on DupThresh dupacks or when IsLost(HighACK + 1).
        trigger = self._dupacks >= 3 or (
            self.sack_ok and self._sb.is_lost(self.snd_una, self.snd_mss))
        # RFC 6582 3.2 step 1 / RFC 6675 5: not again for the same window of data.
        if trigger and seq_gt(self.snd_una, self._recover):
            flight = seq_sub(self.snd_max, self.snd_una)
            if self.ts_ok:
                self._undo = (self._cc.cwnd, self._cc.ssthresh, self._ts_val(now),
                              self.retransmits, False)
            self._cc.on_congestion(now, flight)
            self._in_recovery = True
            self._recover = self.snd_max
            self._high_rxt = self.snd_una
            self._rexmit_out = 0
            # RFC 6675 5 step 4.3 / RFC 5681 3.2: retransmit the first unacknowledged segment.
            n = self._retransmit_at(now, self.snd_una)
            self._high_rxt = seq_add(self.snd_una, n)
            self._arm_rto(now)

    def _rtt_sample(self, now: float, opts: TcpOptions, ack: int) -> float | None:
        """RTT measurement: RFC 7323 4 (TSecr) when timestamps are on, else RFC 6298 with
        Karn's algorithm (the timed segment was not retransmitted)."""
        if self.ts_ok and opts.timestamp is not None and opts.timestamp[1] != 0:
            tsecr = opts.timestamp[1]
            rtx_end = self._rtx_end
            if rtx_end is not None:
                if seq_ge(ack, rtx_end):
                    self._rtx_end = None
                if seq_lt(self.snd_una, rtx_end) and seq_lt(tsecr, self._rtx_ts):
                    # This ACK covers retransmitted data but echoes a TSval from before the
                    # retransmission (a duplicate the peer answered with an old TS.Recent):
                    # the sample would include the whole timeout. Karn: take none.
                    return None
            ticks = (self._ts_val(now) - tsecr) & MASK
            if ticks < 0x7FFFFFFF:
                self._rtt_seq = None
                return ticks / self.config.ts_hz
            return None
        if self._rtt_seq is not None and seq_ge(ack, self._rtt_seq):
            self._rtt_seq = None
            return now - self._rtt_time
        return None
