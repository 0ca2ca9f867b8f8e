"""The sender's SACK scoreboard and RFC 6675 loss recovery rules.

Owns what the peer has selectively acknowledged above SND.UNA, kept as disjoint, sorted
``(start, end)`` ranges (RFC 2018 blocks merged), and the RFC 6675 section 4 routines computed
from it: ``IsLost`` (``is_lost``), ``NextSeg`` rules 1-3 (``next_seg``) and ``SetPipe``
(``pipe``). It owns no data and no timers; the engine owns HighRxt, RecoveryPoint, FlightSize.

Conventions: every range is half-open ``[start, end)``; ``high_rxt`` is passed as the
*exclusive* end of the highest retransmitted byte in this recovery (snd_una at its start, so
"octet <= HighRxt" of the RFC is ``seq < high_rxt``). Sequence numbers are compared with the
``pytcp.tcp.seq`` helpers; ranges may straddle 2**32. The number of ranges is bounded
(``max_ranges``) so a peer SACKing every other byte cannot grow it without limit; when full,
the highest ranges are forgotten (losing SACK information only costs extra retransmissions).
"""

from __future__ import annotations

from collections.abc import Iterable

from pytcp.tcp.seq import MASK, seq_ge, seq_gt, seq_le, seq_lt, seq_sub

DUP_THRESH = 3  # RFC 6675 2 / RFC 5681: DupThresh
DEFAULT_MAX_RANGES = 128


class Scoreboard:
    """SACKed ranges above SND.UNA, sorted, merged, at most ``max_ranges`` of them."""

    __slots__ = ("_ranges", "_sacked", "dup_thresh", "max_ranges")

    def __init__(self, dup_thresh: int = DUP_THRESH, max_ranges: int = DEFAULT_MAX_RANGES) -> None:
        if dup_thresh < 1 or max_ranges < 1:
            raise ValueError("dup_thresh and max_ranges must be >= 1")
        self.dup_thresh = dup_thresh
        self.max_ranges = max_ranges
        self._ranges: list[list[int]] = []  # [start, end] pairs, sorted, disjoint, non-adjacent
        self._sacked = 0

    # ------------------------------------------------------------------ state
    @property
    def sacked_bytes(self) -> int:
        """Bytes above SND.UNA the peer has SACKed."""
        return self._sacked

    @property
    def highest_sacked(self) -> int | None:
        """The end (exclusive) of the highest SACKed range, or None when nothing is SACKed."""
        return self._ranges[-1][1] if self._ranges else None

    def ranges(self) -> list[tuple[int, int]]:
        return [(r[0], r[1]) for r in self._ranges]

    def __bool__(self) -> bool:
        return bool(self._ranges)

    def __len__(self) -> int:
        return len(self._ranges)

    def clear(self) -> None:
        """Forget everything (RTO: RFC 6675 5.1 says the scoreboard may be kept, but RFC 2018
        8 allows reneging, so an engine that clears it on RTO is safe)."""
        self._ranges.clear()
        self._sacked = 0

    # ------------------------------------------------------------------ input
    def update(self, blocks: Iterable[tuple[int, int]], snd_una: int, snd_max: int) -> int:
        """Record the SACK blocks of one ACK (after the engine advanced ``snd_una``) and drop
        what is now cumulatively acknowledged. Blocks that are empty, at or below ``snd_una``
        (D-SACK, RFC 2883) or reaching beyond ``snd_max`` (never sent: bogus) are ignored; a
        block straddling ``snd_una`` keeps its part above it. Returns the bytes newly SACKed
        (RFC 6675 2: an ACK that SACKs new data counts as a duplicate ACK)."""
        snd_una &= MASK
        snd_max &= MASK
        self._trim(snd_una)
        before = self._sacked
        for start, end in blocks:
            start &= MASK
            end &= MASK
            if not seq_lt(start, end):
                continue
            if seq_le(end, snd_una) or seq_gt(end, snd_max):
                continue
            if seq_lt(start, snd_una):
                start = snd_una
            self._add(start, end)
        return self._sacked - before

    def _trim(self, snd_una: int) -> None:
        rs = self._ranges
        while rs and seq_le(rs[0][1], snd_una):
            self._sacked -= seq_sub(rs[0][1], rs[0][0])
            del rs[0]
        if rs and seq_lt(rs[0][0], snd_una):
            self._sacked -= seq_sub(snd_una, rs[0][0])
            rs[0][0] = snd_una

    def _add(self, start: int, end: int) -> None:
        rs = self._ranges
        n = len(rs)
        lo = 0
        while lo < n and seq_lt(rs[lo][1], start):
            lo += 1
        hi = lo
        while hi < n and seq_le(rs[hi][0], end):
            hi += 1
        if hi == lo:
            rs.insert(lo, [start, end])
            self._sacked += seq_sub(end, start)
        else:
            new_start = start if seq_lt(start, rs[lo][0]) else rs[lo][0]
            new_end = end if seq_gt(end, rs[hi - 1][1]) else rs[hi - 1][1]
            old = 0
            for i in range(lo, hi):
                old += seq_sub(rs[i][1], rs[i][0])
            rs[lo:hi] = [[new_start, new_end]]
            self._sacked += seq_sub(new_end, new_start) - old
        while len(rs) > self.max_ranges:
            last = rs.pop()
            self._sacked -= seq_sub(last[1], last[0])

    # ------------------------------------------------------------------ queries
    def is_sacked(self, seq: int) -> bool:
        """Whether the byte ``seq`` has been SACKed."""
        for s, e in self._ranges:
            if seq_lt(seq, s):
                return False
            if seq_lt(seq, e):
                return True
        return False

    def sacked_below(self, seq: int) -> int:
        """Bytes SACKed below ``seq`` (what a cumulative ACK up to ``seq`` acknowledges
        that the peer had already reported)."""
        n = 0
        for s, e in self._ranges:
            if not seq_lt(s, seq):
                break
            n += seq_sub(e if seq_lt(e, seq) else seq, s)
        return n

    def sacked_end(self, seq: int) -> int | None:
        """If ``seq`` is SACKed, the end of its range (where the next hole starts)."""
        for s, e in self._ranges:
            if seq_lt(seq, s):
                return None
            if seq_lt(seq, e):
                return e
        return None

    def _above(self, seq: int) -> tuple[int, int]:
        """(SACKed bytes above ``seq``, ranges wholly above ``seq``)."""
        nbytes = 0
        count = 0
        for s, e in reversed(self._ranges):
            if seq_le(e, seq):
                break
            if seq_gt(s, seq):
                nbytes += seq_sub(e, s)
                count += 1
            else:  # seq inside this range
                nbytes += seq_sub(e, seq) - 1
                break
        return nbytes, count

    def _lost_by(self, nbytes: int, count: int, mss: int) -> bool:
        # RFC 6675 4 IsLost: DupThresh discontiguous SACKed sequences above, or more than
        # (DupThresh - 1) * SMSS SACKed bytes above.
        return count >= self.dup_thresh or nbytes > (self.dup_thresh - 1) * mss

    def is_lost(self, seq: int, mss: int) -> bool:
        """RFC 6675 IsLost(SeqNum) for an un-SACKed byte ``seq`` (a SACKed byte is not lost)."""
        if self.is_sacked(seq):
            return False
        nbytes, count = self._above(seq)
        return self._lost_by(nbytes, count, mss)

    def first_hole(self, snd_una: int, high_rxt: int) -> tuple[int, int] | None:
        """The lowest un-SACKed range ``[s, e)`` with s >= max(snd_una, high_rxt) below the
        highest SACKed byte (RFC 6675 NextSeg 1.a and 1.b), or None."""
        if not self._ranges:
            return None
        s = high_rxt if seq_gt(high_rxt, snd_una) else snd_una
        for rs, re in self._ranges:
            if seq_lt(s, rs):
                return (s, rs)
            if seq_lt(s, re):
                s = re  # inside a SACKed range: the hole starts at its end
        return None

    def next_seg(
        self, snd_una: int, snd_nxt: int, high_rxt: int, mss: int, can_send_new: bool
    ) -> tuple[int, int, bool] | None:
        """RFC 6675 4 NextSeg(): ``(seq, length, is_retransmission)`` or None.

        Rule 1: the smallest un-SACKed S2 >= high_rxt below the highest SACKed byte with
        IsLost(S2): retransmit up to ``mss`` bytes from S2 (clipped to the hole).
        Rule 2: otherwise, if ``can_send_new`` (data queued and the peer's window allows):
        new data at ``snd_nxt`` (the engine clips the length to what it has and the window).
        Rule 3: otherwise such an S2 even if not IsLost: retransmit it (RFC 6675: SHOULD).
        The rescue retransmission (rule 4, MAY) is left to the engine."""
        hole = self.first_hole(snd_una, high_rxt)
        if hole is not None:
            s2, hole_end = hole
            if seq_gt(hole_end, snd_nxt):
                hole_end = snd_nxt
            length = min(mss, seq_sub(hole_end, s2))
            if length > 0:
                nbytes, count = self._above(s2)
                if self._lost_by(nbytes, count, mss):
                    return (s2, length, True)
        if can_send_new:
            return (snd_nxt & MASK, mss, False)
        if hole is not None:
            s2, hole_end = hole
            if seq_gt(hole_end, snd_nxt):
                hole_end = snd_nxt
            length = min(mss, seq_sub(hole_end, s2))
            if length > 0:
                return (s2, length, True)
        return None

    def pipe(self, snd_una: int, snd_nxt: int, high_rxt: int, mss: int) -> int:
        """RFC 6675 4 SetPipe(): for each un-SACKed octet in [snd_una, snd_nxt): +1 if not
        IsLost, and +1 if it was retransmitted (below ``high_rxt``). Computed per hole: all
        un-SACKed octets between two SACKed ranges have the same IsLost answer."""
        snd_una &= MASK
        snd_nxt &= MASK
        if not seq_lt(snd_una, snd_nxt):
            return 0
        rs = self._ranges
        # SACKed bytes and ranges above each hole: suffix sums.
        total_bytes = self._sacked
        total_count = len(rs)
        rxt_end = high_rxt if seq_gt(high_rxt, snd_una) else snd_una
        if seq_gt(rxt_end, snd_nxt):
            rxt_end = snd_nxt
        pipe = 0
        cur = snd_una
        above_bytes = total_bytes
        above_count = total_count
        for s, e in rs:
            if seq_ge(cur, snd_nxt):
                break
            hole_end = s if seq_lt(s, snd_nxt) else snd_nxt
            if seq_lt(cur, hole_end):
                pipe += self._hole_pipe(cur, hole_end, rxt_end, above_bytes, above_count, mss)
            above_bytes -= seq_sub(e, s)
            above_count -= 1
            if seq_gt(e, cur):
                cur = e
        if seq_lt(cur, snd_nxt):
            pipe += self._hole_pipe(cur, snd_nxt, rxt_end, 0, 0, mss)
        return pipe

    def _hole_pipe(self, s: int, e: int, rxt_end: int, above_bytes: int, above_count: int,
                   mss: int) -> int:
        n = seq_sub(e, s)
        # IsLost for octet x in the hole: the SACKed bytes above x are the same for every x
        # in the hole (all SACKed bytes above the hole's start).
        count = 0 if self._lost_by(above_bytes, above_count, mss) else n
        if seq_lt(s, rxt_end):
            count += seq_sub(e if seq_lt(e, rxt_end) else rxt_end, s)
        return count

    # ------------------------------------------------------------------ D-SACK
    @staticmethod
    def dsack(blocks: list[tuple[int, int]], ack: int) -> tuple[int, int] | None:
        """RFC 2883 4: the first block is a D-SACK when it starts below the cumulative ``ack``
        or lies inside the second block; return it, else None."""
        if not blocks:
            return None
        s0, e0 = blocks[0]
        if not seq_lt(s0, e0):
            return None
        if seq_lt(s0, ack):
            return (s0 & MASK, e0 & MASK)
        if len(blocks) > 1:
            s1, e1 = blocks[1]
            if seq_le(s1, s0) and seq_le(e0, e1):
                return (s0 & MASK, e0 & MASK)
        return None

