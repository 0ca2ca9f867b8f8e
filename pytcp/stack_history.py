"""Per-connection history for the status dashboard and ``pytcp ss``: bounded rings of samples
of the sending and receiving state over time, and marks for segments sent for a reason
(retransmissions, probes, RSTs).

The stack owns one :class:`ConnHistory` per connection while history is on
(``Stack.enable_history``), for at most ``max_connections`` connections at a time (others get
none; ``Stack.stats["history_untracked"]`` counts them) and keeps the histories of the last
``closed_kept`` closed connections. A sample is taken when the stack services a connection
(after a batch, a timer or an application call), at most one per ``interval`` seconds unless
the connection's state changed (see :meth:`ConnHistory.sample`); a mark whenever the engine sends a segment with a reason. Both
rings are bounded (``samples``, ``marks``): the oldest entries fall off.
Within an interval the newest sample replaces the previous one, so the ring always ends with
the connection's latest state. Time is the stack's
``now``; nothing here reads a clock.
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

from pytcp.tcp.reasons import TxReason
from pytcp.tcp.seq import seq_sub

SAMPLES = 600
MARKS = 200
INTERVAL = 0.002
MAX_CONNECTIONS = 256
CLOSED_KEPT = 16


class Sample(NamedTuple):
    """One look at a connection (sequence numbers raw, 32-bit; sizes in bytes; times in s)."""

    t: float
    state: str
    snd_una: int
    snd_nxt: int
    snd_max: int
    snd_wnd: int
    cwnd: int
    ssthresh: int
    srtt: float | None
    rto: float
    rcv_nxt: int
    rcv_wnd: int
    bytes_out: int
    bytes_in: int
    retransmits: int


class Mark(NamedTuple):
    """A segment sent for a reason: its time, first sequence number, length and reason."""

    t: float
    seq: int
    length: int
    reason: str


class ConnHistory:
    """The bounded history of one connection (see the module docstring)."""

    __slots__ = ("created", "iss", "irs", "samples", "marks", "_last", "_last_state",
                 "interval")

    def __init__(self, now: float, conn: Any, samples: int = SAMPLES, marks: int = MARKS,
                 interval: float = INTERVAL) -> None:
        self.created = now
        self.iss: int = getattr(conn, "iss", 0)
        self.irs: int | None = None
        self.samples: deque[Sample] = deque(maxlen=samples)
        self.marks: deque[Mark] = deque(maxlen=marks)
        self.interval = interval
        self._last = -1e18
        self._last_state: object = None

    def sample(self, now: float, conn: Any) -> None:
        """Record the connection's state: at most one sample per ``interval`` (within it the
        newest replaces the last, so the ring always ends with the latest look), and a new
        one whenever the connection's state changed."""
        state = conn.state
        replace = now - self._last < self.interval and state is self._last_state \
            and bool(self.samples)
        if not replace:
            self._last = now
        self._last_state = state
        if self.irs is None and state.synchronized:
            self.irs = conn.irs
        rtt = conn._rtt
        cc = conn._cc
        if replace:
            self.samples.pop()
        self.samples.append(Sample(
            now, str(state), conn.snd_una, conn.snd_nxt, conn.snd_max, conn.snd_wnd,
            cc.cwnd, cc.ssthresh, rtt.srtt, rtt.rto, conn.rcv_nxt,
            max(0, seq_sub(conn.rcv_adv, conn.rcv_nxt)), conn.bytes_out, conn.bytes_in,
            conn.retransmits))

    def mark(self, now: float, seq: int, length: int, reason: TxReason) -> None:
        self.marks.append(Mark(now, seq, length, reason.value))
