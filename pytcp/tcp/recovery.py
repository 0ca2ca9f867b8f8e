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

from pytcp.tcp.events import Event
from pytcp.tcp.output import CHRONO_BUSY, OUTPUT_STATES, ConnectionOutput
from pytcp.tcp.rack import pto
from pytcp.tcp.reasons import TxReason
from pytcp.tcp.sackboard import Scoreboard
from pytcp.tcp.segment import Segment
from pytcp.tcp.seq import MASK, seq_add, seq_ge, seq_gt, seq_le, seq_lt, seq_sub
from pytcp.wire.tcp import TcpOptions


class ConnectionRecovery(ConnectionOutput):
    """The sender's reaction to acknowledgments (mixin of ``Connection``)."""

    # (the attributes this module assigns; Connection lists the rest)
    __slots__ = ("_buf_seq", "_cc", "_cwr_state", "_dupacks", "_in_loss", "_in_recovery",
                 "_recover", "_reo_at", "_retries", "_rto_repeated", "_snd_up", "_tlp_at",
                 "_tlp_high", "_tlp_rtx", "_undo", "bytes_out", "delivered",
                 "snd_una", "spurious_retransmits", "tlp_probes", "tlp_recoveries")

    bytes_out: int
    spurious_retransmits: int
    _events: list[Event]
    _recover: int
    _rto_repeated: bool
    _undo: tuple[int, int, int, int, bool] | None
    _tlp_high: int | None
    _tlp_rtx: bool
    tlp_probes: int
    tlp_recoveries: int
    _in_loss: bool                 # after an RTO, until the recovery point is acknowledged
    _cwr_state: bool
    delivered: int

    def _ack_advance(self, now: float, seg: Segment, ack: int, acked: int) -> None:
        """SND.UNA < SEG.ACK =< SND.MAX: new data acknowledged."""
        self._ut_start = None  # progress: the user timeout counts again from the next send
        flight = seq_sub(self.snd_max, self.snd_una)
        # Bytes this ACK delivers for the first time (Linux tp->delivered growth, the
        # acked_sacked that tcp_cong_control hands to slow start / congestion avoidance):
        # what the peer had already SACKed was counted as delivered then.
        newly_acked = acked - self._sb.sacked_below(ack) if self._sb else acked
        if not self.sack_ok and self._dupacks:
            # Without SACK each duplicate ACK stood for one segment delivered (Linux's Reno
            # emulation, tcp_add_reno_sack); the cumulative ACK then delivers the rest, at
            # least one segment (tcp_remove_reno_sacks).
            newly_acked = max(acked - self._dupacks * self.snd_mss, min(acked, self.snd_mss))
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
            self.delivered += -(-n // self.snd_mss)
        self.snd_una = ack
        if seq_lt(self.snd_nxt, ack):
            self.snd_nxt = ack
        if not len(self._sendbuf):
            self._chrono_stop(now, CHRONO_BUSY)  # all acknowledged: not busy any more
        if self._snd_up is not None and seq_ge(ack, self._snd_up):
            self._snd_up = None  # the urgent data was received
        ca_rtt = sample
        if self._rack_on:
            self._rack.on_ack(now, ack, mss=self.snd_mss)
            self._rack.round_passed(ack)
            if self._rack.ca_rtt is not None and sample is None:
                # Linux gives the congestion controller an RTT sample from every ACK of
                # never-retransmitted data (ca_rtt_us), not only the timed segment's.
                ca_rtt = self._rack.ca_rtt
        if self._in_loss and seq_ge(ack, self._recover):
            self._in_loss = False
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
                self._prr.stop()
                self._rack.on_recovery_exit()
            elif not self.sack_ok:
                # RFC 6582 3.2 step 5: partial ACK: the next hole is lost. One duplicate ACK
                # stood for the hole just filled, the others for segments above it (Linux
                # tcp_remove_reno_sacks).
                self._dupacks = max(0, self._dupacks - max(0, acked // self.snd_mss - 1))
                self._rexmit_out = 0
                if self._prr.active:
                    # RFC 9937: PRR sets cwnd for this ACK (not a safe ACK: it marked a new
                    # loss, Linux's rs->losses); _send_data retransmits the hole as the
                    # new cwnd allows (Linux), before any new data.
                    cwnd = self._prr.on_ack(newly_acked, self._pipe(), False)
                    if cwnd is not None:
                        self._cc.cwnd = cwnd
                else:
                    self._retransmit_at(now, ack, reason=TxReason.PARTIAL_ACK)
            # With SACK, NextSeg() picks the holes as the pipe allows (RFC 6675 5 step C).
        else:
            self._dupacks = 0
            self._cc.on_ack(now, newly_acked, ca_rtt, flight, self.cwnd_is_limited())
        # RFC 8985 7.2: an ACK of new data (re)schedules the probe timeout (Linux
        # tcp_set_xmit_timer: TLP if allowed, else the RTO armed above).
        self._schedule_tlp(now, advancing=True)

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
        self._in_loss = False
        self._prr.stop()
        self._dupacks = 0
        self._rexmit_out = 0
        if was_rto and seq_lt(self.snd_nxt, self.snd_max):
            self.snd_nxt = self.snd_max

    def _on_dupack(self, now: float) -> None:
        """RFC 5681 3.2 / RFC 6582: fast retransmit on the third duplicate ACK."""
        self._dupacks += 1
        if self._in_recovery:
            # Each dupack lowers the pipe estimate; without SACK, PRR (RFC 9937) counts it
            # as one segment delivered (Linux tcp_add_reno_sack: sacked_out + 1, at most all
            # but the head) and sets cwnd for it.
            if not self.sack_ok and self._prr.active:
                self._reno_prr_dupack()
            return
        # RFC 6675 5: enter recovery on DupThresh dupacks or when IsLost(HighACK + 1).
        trigger = self._dupacks >= 3 or (
            self.sack_ok and self._sb.is_lost(self.snd_una, self.snd_mss))
        # RFC 6582 3.2 step 1 / RFC 6675 5: not again for the same window of data.
        if trigger and seq_gt(self.snd_una, self._recover):
            self._enter_recovery(now)
            if not self.sack_ok and self._prr.active:
                self._reno_prr_dupack()  # (this dupack delivered one segment too)
            # RFC 6675 5 step 4.3 / RFC 5681 3.2: retransmit the first unacknowledged segment.
            n = self._retransmit_at(now, self.snd_una, reason=TxReason.FAST_RETRANSMIT)
            self._high_rxt = seq_add(self.snd_una, n)
            self._arm_rto(now)

    def _reno_prr_dupack(self) -> None:
        """A duplicate ACK in recovery without SACK: DeliveredData is one segment, unless the
        dupacks already stand for everything but the head (Linux tcp_limit_reno_sacked);
        PRR (RFC 9937) turns it into this ACK's cwnd."""
        mss = self.snd_mss
        out = seq_sub(self.snd_max, self.snd_una)
        delivered = mss if self._dupacks * mss <= max(out - mss, 0) else 0
        cwnd = self._prr.on_ack(delivered, self._pipe(), False)
        if cwnd is not None:
            self._cc.cwnd = cwnd

    def _enter_recovery(self, now: float) -> None:
        """Loss detected (DupThresh, RFC 6675 IsLost, or RACK): fast recovery starts. The
        congestion controller sets ssthresh (RFC 5681 eqn. 4 / RFC 9438 4.6); PRR (RFC 9937,
        with or without SACK) then paces cwnd from FlightSize down to ssthresh; a tail loss probe in
        flight is forgotten (Linux tcp_init_cwnd_reduction). FlightSize here is at most cwnd:
        data sent beyond cwnd because SACKed segments left the pipe (or by limited transmit,
        RFC 3042) does not raise ssthresh (RFC 5681 3.2: "no more than" eqn. 4; Linux bases
        it on cwnd)."""
        flight = min(seq_sub(self.snd_max, self.snd_una), max(self._cc.cwnd, self.snd_mss))
        if self.ts_ok:
            self._undo = (self._cc.cwnd, self._cc.ssthresh, self._ts_val(now),
                          self.retransmits, False)
        self._cc.on_congestion(now, flight)
        self._in_recovery = True
        self._recover = self.snd_max
        self._high_rxt = self.snd_una
        self._rexmit_out = 0
        self._tlp_at = None
        self._tlp_high = None
        self._cwr_state = False  # (an ECN reduction in progress becomes the recovery)
        if self.config.prr:
            # RFC 9937: PRR in every fast recovery, with SACK or without (Linux
            # tcp_init_cwnd_reduction in tcp_enter_recovery, both cases).
            self._prr.start(self._cc.ssthresh, flight, self.snd_mss)

    def _sack_ack(self, now: float, seg: Segment, acked: int, newly: int,
                  sacked_before: int) -> None:
        """With SACK, after the scoreboard took this ACK's blocks: RACK (RFC 8985 6.2) marks
        losses and may start recovery; D-SACKs widen its reordering window; the tail loss
        probe's outcome is judged (7.4); PRR (RFC 9937) sets cwnd for this ACK."""
        blocks = seg.options.sack_blocks
        dsack = bool(blocks) and Scoreboard.dsack(list(blocks), seg.ack) is not None
        lost = 0
        if self._rack_on:
            rack = self._rack
            if dsack:
                rack.on_dsack(self.snd_nxt)
            if newly:
                rack.on_ack(now, self.snd_una, self._sb.ranges(), mss=self.snd_mss)
            if newly and acked == 0:
                self._dupacks += 1  # (limited transmit, RFC 3042)
            if newly:
                self.delivered += -(-newly // self.snd_mss)
            self._tlp_ack(now, seg.ack, acked, newly, dsack)
            if self._sb or self._in_recovery or self._in_loss:
                lost = rack.detect_loss(now, self._rtt.srtt, self._in_recovery, self.snd_mss)
                self._reo_at = now + rack.reo_timeout if rack.reo_timeout is not None else None
            if (lost and not self._in_recovery and not self._in_loss
                    and seq_ge(self.snd_una, self._recover)
                    and self.state in OUTPUT_STATES):
                # RFC 8985 6.2 step 5 -> RFC 6675 recovery with RACK's losses (Linux:
                # tcp_time_to_recover when lost_out > 0).
                self._enter_recovery(now)
                self._arm_rto(now)
        elif acked == 0 and newly > 0 and self.snd_max != self.snd_una:
            self._on_dupack(now)
        if self._in_recovery and self._prr.active:
            delivered = acked + self._sb.sacked_bytes - sacked_before
            cwnd = self._prr.on_ack(delivered, self._pipe(), acked > 0 and lost == 0)
            if cwnd is not None:
                self._cc.cwnd = cwnd

    def _tlp_ack(self, now: float, ack: int, acked: int, newly: int, dsack: bool) -> None:
        """RFC 8985 7.4 (as Linux tcp_process_tlp_ack): once the probe is acknowledged, a
        probe of new data needs nothing; a retransmitted probe answered by a D-SACK was
        spurious; an ACK beyond it means the probe repaired a loss: reduce cwnd as fast
        recovery would (7.4.2), without entering recovery."""
        high = self._tlp_high
        if high is None or seq_lt(ack, high):
            return
        if not self._tlp_rtx or dsack:
            self._tlp_high = None
        elif seq_gt(ack, high):
            self._tlp_high = None
            self.tlp_recoveries += 1
            self._cc.on_congestion(now, self._cc.cwnd)
            self._cc.on_recovery_exit(now)
        elif acked == 0 and newly == 0:
            self._tlp_high = None  # a pure duplicate ACK: the original and the probe arrived

    def _schedule_tlp(self, now: float, advancing: bool) -> None:
        """RFC 8985 7.2 (Linux tcp_schedule_loss_probe): with SACK and RACK, outside recovery
        and loss, arm the probe timeout PTO while data is outstanding, never later than the
        RTO (``advancing``: the RTO was just restarted, so the cap is a whole RTO)."""
        if (not self._rack_on or not self.config.tlp or self._in_recovery or self._in_loss
                or self.snd_una == self.snd_max or self.state not in OUTPUT_STATES
                or self._rto_at is None):
            self._tlp_at = None
            return
        mss = self.snd_mss
        segs = -(-seq_sub(self.snd_max, self.snd_una) // mss)
        cap = self._rtt.rto if advancing else max(self._rto_at - now, 0.0)
        self._tlp_at = now + pto(self._rtt.srtt, segs, cap, self.config.initial_rto,
                                 self.config.timer_tick)

    def _on_tlp(self, now: float) -> None:
        """RFC 8985 7.3: the probe timeout expired: send one segment of new data if the peer's
        window allows, else retransmit the last segment sent; then the RTO restarts. At most
        one probe is outstanding (TLPRxtOut)."""
        if (self.state not in OUTPUT_STATES or self.snd_una == self.snd_max
                or self._in_recovery or self._in_loss):
            return
        if self._tlp_high is not None:
            return
        mss = self.snd_mss
        before = self.snd_max
        if self.snd_nxt == self.snd_max and self._has_unsent():
            unsent = seq_sub(seq_add(self._buf_seq, len(self._sendbuf)), self.snd_nxt)
            room = seq_sub(self._snd_wnd_edge(), self.snd_nxt)
            if unsent <= 0 or room >= min(unsent, mss):
                self._send_data(now, force=True, reason=TxReason.TLP)
        if self.snd_max == before:
            rng = self._rack.last_range(mss)
            if rng is None or self._retransmit_at(now, rng[0], rng[1], TxReason.TLP) <= 0:
                return
            self._tlp_rtx = True
        else:
            self._tlp_rtx = False
        self._tlp_high = self.snd_max
        self.tlp_probes += 1
        self._arm_rto(now)  # Linux: "restart timer from now" after a probe

    def _on_reo_timeout(self, now: float) -> None:
        """RFC 8985 6.3: the reordering timer: detect losses again; if some are found, start
        recovery (PRR counts it as one delivered segment, as Linux) and retransmit."""
        if (not self._rack_on or self.state not in OUTPUT_STATES
                or self.snd_una == self.snd_max):
            return
        rack = self._rack
        lost = rack.detect_loss(now, self._rtt.srtt, self._in_recovery, self.snd_mss)
        self._reo_at = now + rack.reo_timeout if rack.reo_timeout is not None else None
        if not lost:
            return
        if not self._in_recovery and not self._in_loss:
            self._enter_recovery(now)
            if self._prr.active:
                cwnd = self._prr.on_ack(self.snd_mss, self._pipe(), False)
                if cwnd is not None:
                    self._cc.cwnd = cwnd
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
