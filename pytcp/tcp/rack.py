"""RACK-TLP loss detection (RFC 8985), sans I/O.

Owns the sender's record of what was sent when (the "retransmission queue" of RFC 8985 2:
one ``Sent`` record per range of sequence space sent together, in sequence order, with its
transmission time and its SACKed / lost / retransmitted marks), and the RACK state computed
from it: ``RACK.xmit_ts``, ``RACK.end_seq``, ``RACK.rtt``, ``RACK.fack``, reordering seen,
the reordering window and its adaptation from D-SACKs (RFC 8985 6.2), and the loss marking
(6.2 step 5 ``RACK_detect_loss``) with the reordering timer's delay (6.3). The tail loss probe's
timeout (7.2 ``PTO``) is computed here too; the engine owns the timers, sends the probe and
reacts to a detected loss (``pytcp/tcp/recovery.py``).

As Linux (``net/ipv4/tcp_recovery.c``): the reordering window is ``min_rtt/4`` times a step
count raised by D-SACKs and kept for 16 recoveries, capped at SRTT; it is 0 (lost at once)
before any reordering was seen when the sender is already in recovery or at least DupThresh
segments are SACKed (RFC 8985 6.2 step 4 and the RFC 6675 interplay of 6.2); a retransmitted
segment whose ACK came faster than min_rtt gives no RACK sample (it may be the original's).

Records are split at SACK block and retransmission edges so each is wholly SACKed or not; a
cumulative ACK trims or removes them from the front. Their number is bounded by the ranges
sent (one per send call at most) and they are all freed once acknowledged.

Times are floats in seconds passed in by the caller; sequence numbers use ``pytcp.tcp.seq``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from pytcp.tcp.seq import seq_ge, seq_gt, seq_le, seq_lt, seq_sub

# RFC 8985 6.2: the reordering window multiplier is kept for this many recoveries after a
# D-SACK raised it (Linux TCP_RACK_RECOVERY_THRESH).
REO_WND_PERSIST = 16
# Linux adds TCP_TIMEOUT_MIN (2 jiffies) to the reordering timer and to the PTO; with no
# timer tick modelled (``tick`` 0), 2 ms (HZ 1000).
TIMER_SLACK = 0.002
# RFC 8985 7.2: with one segment in flight the PTO adds room for a delayed ACK; Linux adds
# TCP_RTO_MIN (200 ms).
WCDELACKT = 0.2
# Linux's reordering degree: starts at net.ipv4.tcp_reordering (RFC 5681 DupThresh, 3) and
# is capped at net.ipv4.tcp_max_reordering (300).
INITIAL_REORDERING = 3
MAX_REORDERING = 300


class Sent:
    """One range of sequence space sent at ``xmit`` (seconds)."""

    __slots__ = ("end", "lost", "rtx", "rtx_out", "sacked", "start", "xmit")

    def __init__(self, start: int, end: int, xmit: float, rtx: bool) -> None:
        self.start = start
        self.end = end
        self.xmit = xmit
        self.rtx = rtx          # retransmitted at least once (RFC 8985 "RETRANSMITTED")
        self.rtx_out = rtx      # a retransmission of it is in flight (Linux SACKED_RETRANS)
        self.lost = False       # marked lost (RFC 8985 "LOST")
        self.sacked = False

    def copy_from(self, start: int, end: int) -> Sent:
        r = Sent(start, end, self.xmit, self.rtx)
        r.rtx_out = self.rtx_out
        r.lost = self.lost
        r.sacked = self.sacked
        return r

    def __repr__(self) -> str:
        marks = "".join(c for c, f in (("S", self.sacked), ("L", self.lost), ("R", self.rtx),
                                       ("O", self.rtx_out)) if f)
        return f"Sent({self.start}:{self.end} t={self.xmit:.6f} {marks})"


def in_ticks(t: float, tick: float) -> float:
    """``t`` seconds rounded up to whole timer ticks, as Linux arms these timers
    (usecs_to_jiffies: jiffies of 1/HZ s); ``tick`` 0: exact."""
    if tick <= 0:
        return t
    return math.ceil(round(t / tick, 6)) * tick


def timer_slack(tick: float) -> float:
    """Linux's TCP_TIMEOUT_MIN: two jiffies (2 ms when no tick is modelled)."""
    return 2 * tick if tick > 0 else TIMER_SLACK


def sent_after(t1: float, seq1: int, t2: float, seq2: int) -> bool:
    """RFC 8985 6.2 ``RACK_sent_after``: sent later, ties broken by the higher end."""
    return t1 > t2 or (t1 == t2 and seq_gt(seq1, seq2))


class Rack:
    """RACK state and the sent-ranges record of one connection."""

    __slots__ = (
        "dsack_round",
        "dsacks",
        "dup_thresh",
        "end_seq",
        "fack",
        "lost_marked",
        "min_rtt",
        "records",
        "reo_timeout",
        "reo_wnd_persist",
        "reo_wnd_steps",
        "reord_seen",
        "ca_rtt",
        "reordering",
        "reordering_events",
        "rtt",
        "tick",
        "xmit_ts",
    )

    def __init__(self, dup_thresh: int = 3, tick: float = 0.0) -> None:
        self.dup_thresh = dup_thresh
        # The timer tick (Linux jiffy, 1/HZ s) the reordering timer is armed in; 0: exact.
        self.tick = tick
        self.records: list[Sent] = []
        self.xmit_ts = 0.0              # RACK.xmit_ts: latest xmit time of a delivered range
        self.end_seq: int | None = None  # RACK.end_seq
        self.rtt: float | None = None   # RACK.rtt
        self.min_rtt: float | None = None
        self.fack: int | None = None    # RACK.fack: highest end delivered (never rtx'd)
        self.reord_seen = False         # RACK.reord
        self.reo_wnd_steps = 1          # RACK.reo_wnd_mult
        self.reo_wnd_persist = 0        # RACK.reo_wnd_persist
        self.dsack_round: int | None = None  # RACK.rtt_seq: adapt once per round trip
        self.reo_timeout: float | None = None  # delay the reordering timer asked for
        self.dsacks = 0
        # RFC 8985 6.2 step 3 counts reordering (RACK.reord); Linux also keeps how far it
        # reached, in segments (tp->reordering, tcpi_reordering), and each time it was seen
        # (tp->reord_seen, tcpi_reord_seen): reordering_events.
        self.reordering_events = 0
        self.reordering = INITIAL_REORDERING
        # The RTT of the newest never-retransmitted range the last cumulative ACK delivered
        # (Linux's ca_rtt_us, the congestion controller's per-ACK sample), or None.
        self.ca_rtt: float | None = None
        self.lost_marked = 0            # bytes marked lost in total (statistics)

    # ------------------------------------------------------------------ sending
    def clear(self) -> None:
        self.records.clear()

    def on_send(self, start: int, end: int, now: float, rtx: bool) -> None:
        """``[start, end)`` left at ``now``: new data (appended) or a retransmission (the
        covered records get the new time, RETRANSMITTED, and are no longer awaiting one)."""
        if not seq_lt(start, end):
            return
        recs = self.records
        if not recs or seq_ge(start, recs[-1].end):
            recs.append(Sent(start, end, now, rtx))
            return
        if seq_lt(start, recs[0].start):
            start = recs[0].start
            if not seq_lt(start, end):
                return
        self._split(start)
        self._split(end)
        covered_end = start
        for r in recs:
            if seq_le(r.end, start):
                continue
            if seq_ge(r.start, end):
                break
            r.xmit = now
            r.rtx = True
            r.rtx_out = True
            covered_end = r.end
        if seq_lt(covered_end, end) and seq_ge(covered_end, recs[-1].end):
            recs.append(Sent(covered_end, end, now, rtx))

    def _index(self, seq: int) -> int:
        """Index of the record containing ``seq``, or of the first one after it."""
        recs = self.records
        lo, hi = 0, len(recs)
        base = recs[0].start if recs else 0
        off = seq_sub(seq, base)
        while lo < hi:
            mid = (lo + hi) // 2
            if seq_sub(recs[mid].end, base) <= off:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _split(self, seq: int) -> None:
        """Make ``seq`` a record boundary."""
        recs = self.records
        i = self._index(seq)
        if i < len(recs):
            r = recs[i]
            if seq_lt(r.start, seq) and seq_lt(seq, r.end):
                recs.insert(i + 1, r.copy_from(seq, r.end))
                r.end = seq

    # ------------------------------------------------------------------ acknowledgments
    def _fack(self, snd_una: int) -> int:
        """Linux tcp_highest_sack_seq: the end of the highest SACKed range, else SND.UNA."""
        for r in reversed(self.records):
            if r.sacked:
                return r.end
        return snd_una

    def _check_reordering(self, low_seq: int, snd_una: int, mss: int) -> None:
        """Linux tcp_check_sack_reordering: a never-retransmitted segment from ``low_seq``
        was delivered below the highest SACKed sequence: the reordering degree is at least
        that distance in segments (at most MAX_REORDERING)."""
        fack = self._fack(snd_una)
        if not seq_lt(low_seq, fack):
            return
        metric = seq_sub(fack, low_seq)
        if mss > 0 and metric > self.reordering * mss:
            self.reordering = min(-(-metric // mss), MAX_REORDERING)
        self.reordering_events += 1

    def on_ack(self, now: float, snd_una: int, sacked: Iterable[tuple[int, int]] = (),
               tsecr_before_rtx: bool = False, mss: int = 0) -> None:
        """An ACK: ``snd_una`` after it and the scoreboard's SACKed ranges (sorted). Every
        range newly delivered (cumulatively or selectively) updates RACK (RFC 8985 6.2 steps
        2-3); cumulatively acknowledged records are freed. A never-retransmitted range
        delivered below the highest SACKed one raises the reordering degree (Linux
        tcp_sacktag_one / tcp_clean_rtx_queue -> tcp_check_sack_reordering; ``mss`` > 0)."""
        recs = self.records
        prior_fack = self._fack(recs[0].start if recs else snd_una)
        # Cumulatively acknowledged: in sequence order from the front (a record the ACK
        # ends inside is split first, so only the acknowledged part counts as delivered).
        if recs and seq_lt(recs[0].start, snd_una):
            self._split(snd_una)
        n = 0
        reord: int | None = None  # lowest delivered never-retransmitted, not SACKed before
        self.ca_rtt = None
        for r in recs:
            if not seq_le(r.end, snd_una):
                break
            if not r.sacked:
                self._delivered(now, r, tsecr_before_rtx)
                if not r.rtx:
                    if reord is None:
                        reord = r.start
                    # Linux tcp_clean_rtx_queue ca_rtt_us: from the newest such range.
                    self.ca_rtt = round(now - r.xmit, 6)
            n += 1
        if n:
            del recs[:n]
        if reord is not None and seq_lt(reord, prior_fack):
            self._check_reordering(reord, snd_una, mss)
        reord = None
        for s, e in sacked:
            if not recs or seq_le(e, recs[0].start):
                continue
            self._split(s)
            self._split(e)
            i = self._index(s)
            while i < len(recs):
                r = recs[i]
                if seq_ge(r.start, e):
                    break
                if not r.sacked:
                    r.sacked = True
                    self._delivered(now, r, tsecr_before_rtx)
                    if (not r.rtx and seq_lt(r.start, prior_fack)
                            and (reord is None or seq_lt(r.start, reord))):
                        reord = r.start
                i += 1
        if reord is not None:
            self._check_reordering(reord, snd_una, mss)

    def _delivered(self, now: float, r: Sent, tsecr_before_rtx: bool) -> None:
        rtt = round(now - r.xmit, 6)  # microseconds, as Linux (and no float noise)
        if r.rtx and (tsecr_before_rtx or (self.min_rtt is not None and rtt < self.min_rtt)):
            # RFC 8985 6.2 step 2: the ACK may be for the original transmission: no sample.
            return
        self.rtt = rtt
        if self.min_rtt is None or rtt < self.min_rtt:
            self.min_rtt = rtt
        if self.end_seq is None or sent_after(r.xmit, r.end, self.xmit_ts, self.end_seq):
            self.xmit_ts = r.xmit
            self.end_seq = r.end
        # RFC 8985 6.2 step 3: a never-retransmitted range delivered below RACK.fack was
        # reordered.
        if not r.rtx:
            if self.fack is not None and seq_lt(r.end, self.fack):
                self.reord_seen = True
            elif self.fack is None or seq_gt(r.end, self.fack):
                self.fack = r.end

    def on_dsack(self, snd_nxt: int) -> None:
        """RFC 8985 6.2 step 4: a D-SACK widens the reordering window by one step (at most
        once per round trip: until SND.UNA passes ``snd_nxt`` of the last change) and keeps
        it for REO_WND_PERSIST recoveries."""
        self.dsacks += 1
        if self.dsack_round is not None:
            return
        self.dsack_round = snd_nxt
        self.reo_wnd_steps = min(self.reo_wnd_steps + 1, 0xFF)
        self.reo_wnd_persist = REO_WND_PERSIST

    def round_passed(self, snd_una: int) -> None:
        if self.dsack_round is not None and seq_ge(snd_una, self.dsack_round):
            self.dsack_round = None

    def on_recovery_exit(self) -> None:
        """RFC 8985 6.2 step 4: after REO_WND_PERSIST recoveries the multiplier resets."""
        if self.reo_wnd_persist > 0:
            self.reo_wnd_persist -= 1
            if self.reo_wnd_persist == 0:
                self.reo_wnd_steps = 1

    # ------------------------------------------------------------------ loss detection
    def sacked_segments(self, mss: int) -> int:
        n = 0
        for r in self.records:
            if r.sacked:
                n += -(-seq_sub(r.end, r.start) // mss)
        return n

    def retrans_segments(self, mss: int) -> int:
        """Segments retransmitted and still in flight (not acknowledged, SACKed or marked lost
        again): Linux's ``retrans_out`` (TCP_INFO ``tcpi_retrans``)."""
        n = 0
        for r in self.records:
            if r.rtx_out and not r.sacked:
                n += -(-seq_sub(r.end, r.start) // mss)
        return n

    def reo_wnd(self, srtt: float | None, in_recovery: bool, mss: int) -> float:
        """RFC 8985 6.2 step 4 ``RACK_update_reo_wnd`` as Linux computes it."""
        if not self.reord_seen:
            if in_recovery:
                return 0.0
            if self.sacked_segments(mss) >= self.dup_thresh:
                return 0.0
        min_rtt = self.min_rtt or 0.0
        wnd = min_rtt / 4 * self.reo_wnd_steps
        if srtt is not None:
            wnd = min(wnd, srtt)
        return wnd

    def detect_loss(self, now: float, srtt: float | None, in_recovery: bool,
                    mss: int) -> int:
        """RFC 8985 6.2 step 5 ``RACK_detect_loss``: mark lost every range sent before the
        latest delivered one by more than RACK.rtt + reo_wnd ago. Returns the bytes newly
        marked lost; ``reo_timeout`` is set to how long until the next one would be (6.3:
        the reordering timer), or None."""
        self.reo_timeout = None
        if self.rtt is None or self.end_seq is None:
            return 0
        reo_wnd = self.reo_wnd(srtt, in_recovery, mss)
        lost = 0
        wait = 0.0
        rack_ts = self.xmit_ts
        rack_end = self.end_seq
        for r in self.records:
            if r.sacked or (r.lost and not r.rtx_out):
                continue
            if not sent_after(rack_ts, rack_end, r.xmit, r.end):
                continue
            remaining = round(self.rtt + reo_wnd - (now - r.xmit), 6)
            if remaining <= 0:
                r.lost = True
                r.rtx_out = False  # a lost retransmission is no longer in flight
                n = seq_sub(r.end, r.start)
                lost += n
            elif remaining > wait:
                wait = remaining
        self.lost_marked += lost
        if wait > 0:
            # Linux tcp_rack_reo_timeout / tcp_rack_mark_lost: usecs_to_jiffies(timeout)
            # + TCP_TIMEOUT_MIN.
            self.reo_timeout = in_ticks(wait, self.tick) + timer_slack(self.tick)
        return lost

    def mark_all_lost(self) -> None:
        """RTO (RFC 8985 6.3 with RFC 6298): everything not SACKed is lost."""
        for r in self.records:
            if not r.sacked:
                r.lost = True
                r.rtx_out = False

    def lost_out(self, mss: int) -> int:
        """Segments marked lost and not SACKed, retransmitted or not (Linux tp->lost_out)."""
        return sum(-(-seq_sub(r.end, r.start) // mss) for r in self.records
                   if r.lost and not r.sacked)

    def has_lost(self) -> bool:
        return any(r.lost and not r.rtx_out and not r.sacked for r in self.records)

    def next_lost(self, limit: int) -> tuple[int, int] | None:
        """The lowest range marked lost and not yet retransmitted: ``(seq, length)`` of at
        most ``limit`` octets, merging adjacent lost records (the engine's next
        retransmission, Linux tcp_xmit_retransmit_queue)."""
        recs = self.records
        for i, r in enumerate(recs):
            if r.lost and not r.rtx_out and not r.sacked:
                end = r.end
                for q in recs[i + 1:]:
                    if q.start != end or not q.lost or q.rtx_out or q.sacked:
                        break
                    if seq_sub(end, r.start) >= limit:
                        break
                    end = q.end
                return (r.start, min(limit, seq_sub(end, r.start)))
        return None

    def pipe(self, snd_una: int, snd_nxt: int) -> int:
        """Bytes in flight (Linux tcp_packets_in_flight in bytes): every range not SACKed and
        not lost, plus every retransmission in flight."""
        total = 0
        for r in self.records:
            if seq_ge(r.start, snd_nxt):
                break
            if r.sacked:
                continue
            n = seq_sub(r.end if seq_lt(r.end, snd_nxt) else snd_nxt, r.start)
            if not r.lost:
                total += n
            if r.rtx_out:
                total += n
        return total

    def last_range(self, mss: int) -> tuple[int, int] | None:
        """RFC 8985 7.3: the probe retransmits the last segment sent: ``(seq, length)``."""
        if not self.records:
            return None
        r = self.records[-1]
        n = seq_sub(r.end, r.start)
        if n > mss:
            return (seq_sub(r.end, mss) & 0xFFFFFFFF, mss)
        return (r.start, n)

    def head_xmit(self) -> float | None:
        """Transmission time of the oldest unacknowledged range (Linux's RTO base after a
        probe or the reordering timer: tcp_rearm_rto with tcp_rto_delta_us)."""
        for r in self.records:
            if not r.sacked:
                return r.xmit
        return None


def pto(srtt: float | None, flight_segments: int, rto: float, initial_rto: float,
        tick: float = 0.0) -> float:
    """RFC 8985 7.2 probe timeout as Linux's tcp_schedule_loss_probe: 2*SRTT in timer ticks
    (``tick``, Linux jiffies; 0: exact), plus WCDelAckT (TCP_RTO_MIN) when one segment is in
    flight, else plus TCP_TIMEOUT_MIN (2 ticks, or 2 ms); without an RTT sample the initial
    RTO; never later than ``rto`` (the time left until the RTO)."""
    if srtt is None:
        t = initial_rto
    else:
        t = in_ticks(2 * srtt, tick) + (WCDELACKT if flight_segments == 1
                                         else timer_slack(tick))
    return min(t, rto)
