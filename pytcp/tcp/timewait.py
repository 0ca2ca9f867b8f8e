"""TIME-WAIT as a compact record: what a connection needs for its last 2*MSL, nothing more.

A connection that reaches TIME-WAIT has nothing left to send or deliver; it only has to answer
what the peer may still send (RFC 9293 3.10.7.4) until 2*MSL passed (MUST-13). Like Linux's
timewait sockets (``struct inet_timewait_sock``), the owner (the stack) replaces the full
:class:`~pytcp.tcp.connection.Connection` with this record (``Connection.to_time_wait``), so a
busy server's TIME-WAIT connections cost a few hundred bytes each instead of a whole
connection. It answers segments exactly as ``Connection`` does in TIME-WAIT:

- PAWS (RFC 7323 5.3): an old timestamp draws an ACK, segment dropped.
- Not acceptable (3.10.7.4 first check): an RST is dropped; anything else draws an ACK (bare
  ACKs at most one per 500 ms, Linux tcp_oow_rate_limited); an old duplicate with text gets a
  D-SACK block (RFC 2883); a retransmitted FIN restarts the 2*MSL timer (3.10.7.4 eighth).
- RST: ignored when exact (RFC 1337, TIME-WAIT assassination), else a challenge ACK (RFC 5961
  3.2); SYN: a challenge ACK (RFC 5961 4.2); ACK of something not sent: an ACK.
- Text is ignored ("This should not occur since a FIN has been received").

A new SYN may reopen the 4-tuple (``accepts_new_syn``, RFC 6191). Sans I/O: time is passed in;
``handle_segment`` returns the reply to send (or None) and the drop reason to count.
"""

from __future__ import annotations

from typing import Any

from pytcp.drops import DropReason
from pytcp.tcp.config import TcpConfig
from pytcp.tcp.segment import Segment
from pytcp.tcp.seq import MASK, seq_add, seq_ge, seq_gt, seq_le, seq_lt, seq_sub
from pytcp.tcp.state import State
from pytcp.wire.tcp import ACK, FIN, NO_OPTIONS, RST, SYN, TcpOptions

# RFC 7323 5.5: TS.Recent older than 24 days is invalid for PAWS.
PAWS_IDLE = 24 * 24 * 3600.0


class TimeWait:
    """One connection in TIME-WAIT (see the module docstring). ``deadline`` is when it ends;
    ``key``, ``tos`` and ``queued`` belong to the owner (the stack's table and timer queue)."""

    __slots__ = ("_chal_count", "_chal_window", "_oow_ack_at", "config", "deadline", "key",
                 "max_snd_wnd", "md5_key", "queued", "rcv_nxt", "rcv_wnd", "sack_ok", "snd_nxt", "tos",
                 "ts_offset", "ts_ok", "ts_recent", "ts_recent_age", "wnd")

    state = State.TIME_WAIT

    def __init__(self, config: TcpConfig, *, snd_nxt: int, rcv_nxt: int, rcv_wnd: int,
                 wnd: int, max_snd_wnd: int, deadline: float, ts_ok: bool = False,
                 ts_recent: int = 0, ts_recent_age: float = 0.0, ts_offset: int = 0,
                 sack_ok: bool = False, oow_ack_at: float = -1.0) -> None:
        self.config = config
        self.md5_key: bytes | None = None  # the owner's: its replies are signed (RFC 2385)
        self.snd_nxt = snd_nxt          # SND.NXT = SND.UNA (our FIN was acknowledged)
        self.rcv_nxt = rcv_nxt          # after the peer's FIN
        self.rcv_wnd = rcv_wnd          # the window we last advertised (acceptability test)
        self.wnd = wnd                  # its 16-bit field, as sent (scaled)
        self.max_snd_wnd = max_snd_wnd  # for the RFC 5961 5.2 old-ACK test
        self.deadline = deadline
        self.ts_ok = ts_ok
        self.ts_recent = ts_recent
        self.ts_recent_age = ts_recent_age
        self.ts_offset = ts_offset
        self.sack_ok = sack_ok
        self._oow_ack_at = oow_ack_at
        self._chal_window = -1.0
        self._chal_count = 0
        self.key: Any = None
        self.tos = 0
        self.queued = 0

    def __repr__(self) -> str:
        return (f"<TimeWait snd_nxt={self.snd_nxt} rcv_nxt={self.rcv_nxt} "
                f"until={self.deadline:.3f}>")

    def accepts_new_syn(self, seg: Segment) -> bool:
        """May this SYN start a new incarnation of the 4-tuple (RFC 6191: timestamps newer,
        or without timestamps a sequence number above RCV.NXT, as Linux does)?"""
        if not seg.flags & SYN or seg.flags & (ACK | RST):
            return False
        ts = seg.options.timestamp
        if self.ts_ok and ts is not None:
            return seq_gt(ts[0], self.ts_recent)
        return seq_gt(seg.seq, self.rcv_nxt)

    def _ack(self, now: float, dsack: tuple[int, int] | None = None) -> Segment:
        ts = None
        if self.ts_ok:
            ts = ((int(now * self.config.ts_hz) + self.ts_offset) & MASK, self.ts_recent)
        blocks = (dsack,) if dsack is not None and self.sack_ok else ()
        opts = TcpOptions(timestamp=ts, sack_blocks=blocks) if ts or blocks else NO_OPTIONS
        return Segment(self.snd_nxt, self.rcv_nxt, ACK, self.wnd, options=opts)

    def _challenge(self, now: float, dsack: tuple[int, int] | None = None) -> Segment | None:
        """RFC 5961 7: challenge ACKs rate limited per second."""
        if now - self._chal_window >= 1.0:
            self._chal_window = now
            self._chal_count = 0
        if self._chal_count >= self.config.challenge_ack_limit:
            return None
        self._chal_count += 1
        return self._ack(now, dsack)

    def handle_segment(self, now: float,
                       seg: Segment) -> tuple[Segment | None, DropReason | None]:
        """RFC 9293 3.10.7.4 for TIME-WAIT: (the reply to send or None, the drop reason to
        count or None)."""
        flags = seg.flags
        seq = seg.seq
        n = len(seg.payload)
        ts = seg.options.timestamp if self.ts_ok else None
        rcv_nxt = self.rcv_nxt
        # RFC 7323 5.3 PAWS, before the sequence number check.
        if ts is not None and not flags & RST:
            if seq_lt(ts[0], self.ts_recent) and now - self.ts_recent_age <= PAWS_IDLE:
                return self._ack(now), DropReason.PAWS
        # first: check the sequence number
        seg_len = n + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        rcv_wnd = self.rcv_wnd
        if seg_len == 0:
            ok = (seq == rcv_nxt) if rcv_wnd == 0 else ((seq - rcv_nxt) & MASK) < rcv_wnd
        elif rcv_wnd == 0:
            ok = False
        else:
            last = seq_add(seq, seg_len - 1)
            ok = ((seq - rcv_nxt) & MASK) < rcv_wnd or ((last - rcv_nxt) & MASK) < rcv_wnd
        ack_now = False
        drop: DropReason | None = None
        dsack: tuple[int, int] | None = None
        if not ok:
            if rcv_wnd == 0 and seq == rcv_nxt:
                drop = DropReason.OUT_OF_WINDOW  # MUST-66: still process ACK and RST
                n = 0
                flags &= ~FIN
                ack_now = True
            else:
                if flags & RST:
                    return None, DropReason.RST_INVALID
                if seg_len and seq_lt(seq, rcv_nxt):
                    if n:
                        end = seq_add(seq, n)
                        dsack = (seq, end if seq_le(end, rcv_nxt) else rcv_nxt)
                    if flags & FIN:
                        # The peer's FIN again: ACK it and restart 2MSL (3.10.7.4 eighth).
                        self.deadline = now + self.config.time_wait
                reply = None
                if seg_len or now - self._oow_ack_at >= 0.5:
                    self._oow_ack_at = now
                    reply = self._ack(now, dsack)
                return reply, DropReason.OUT_OF_WINDOW
        # RFC 7323 4.3: remember the peer's timestamp (our last ACK acknowledged RCV.NXT), as
        # the connection does: only once the segment passed the ACK check below.
        ts_update = (ts[0] if ts is not None and seq_le(seq, rcv_nxt)
                     and seq_ge(ts[0], self.ts_recent) else None)
        # second: RST (RFC 5961 3.2), ignored in TIME-WAIT when exact (RFC 1337)
        if flags & RST:
            if seq != rcv_nxt:
                return self._challenge(now), DropReason.RST_CHALLENGED
            return None, DropReason.RST_INVALID
        if seq_lt(seq, rcv_nxt) and n:
            cut = seq_sub(rcv_nxt, seq)
            dsack = (seq, seq_add(seq, min(cut, n)))
            n = max(0, n - cut)
            seq = rcv_nxt
            ack_now = True
        # fourth: SYN -> challenge ACK (RFC 5961 4.2)
        if flags & SYN:
            return self._challenge(now, dsack), DropReason.SYN_CHALLENGED
        # fifth: ACK
        if not flags & ACK:
            return (self._ack(now, dsack) if ack_now else None), DropReason.NO_ACK_FLAG
        ack = seg.ack
        if seq_gt(ack, self.snd_nxt):
            return self._ack(now, dsack), DropReason.BAD_ACK
        if seq_lt(ack, seq_sub(self.snd_nxt, max(self.max_snd_wnd, 1)) & MASK):
            return self._challenge(now, dsack), DropReason.ACK_TOO_OLD
        if ts_update is not None:
            self.ts_recent = ts_update
            self.ts_recent_age = now
        # seventh: text is ignored; eighth: a FIN at RCV.NXT is acknowledged.
        if n:
            drop = DropReason.UNEXPECTED_SEGMENT
        if flags & FIN and seq == rcv_nxt:
            ack_now = True
        return (self._ack(now, dsack) if ack_now else None), drop
