"""Test harness for the engine: two Connections back to back in virtual time.

``Net`` carries segments between ``a`` and ``b`` with a fixed one-way delay and optional seeded
loss / reordering / duplication, and runs timers. Every run is bounded in steps and virtual
time. ``log`` keeps a trace ``(t, "a>b" | "b>a", Segment)`` to assert on.
(Named test_connection_* to live with the engine's tests; it holds no tests itself.)
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable

from pytcp.tcp.config import TcpConfig
from pytcp.tcp.connection import Connection
from pytcp.tcp.segment import Segment
from pytcp.tcp.state import State
from pytcp.wire.tcp import ACK, RST, SYN, TcpOptions

A_ISS = 1000
B_ISS = 50000


def cfg(**kw: object) -> TcpConfig:
    return TcpConfig().replace(**kw)


def syn_options(tsval: int = 100) -> TcpOptions:
    """What a Linux peer puts in its SYN."""
    return TcpOptions(mss=1460, wscale=7, sack_permitted=True, timestamp=(tsval, 0))


def copy_seg(s: Segment) -> Segment:
    return Segment(s.seq, s.ack, s.flags, s.wnd, bytes(s.payload), s.options, s.urg, s.gso_size)


class Net:
    def __init__(self, a: Connection, b: Connection, *, delay: float = 0.01, t: float = 0.0,
                 loss: float = 0.0, reorder: float = 0.0, dup: float = 0.0,
                 seed: int = 1, drop: Callable[[str, Segment], bool] | None = None) -> None:
        self.a = a
        self.b = b
        self.t = t
        self.delay = delay
        self.loss = loss
        self.reorder = reorder
        self.dup = dup
        self.rng = random.Random(seed)
        self.drop = drop
        self.log: list[tuple[float, str, Segment]] = []
        self._q: list[tuple[float, int, str, Segment]] = []
        self._n = 0
        self.received = {"a": bytearray(), "b": bytearray()}
        self.auto_read = True
        self.outbox = {"a": b"", "b": b""}  # send_all(): the part the send buffer refused
        self.closed_rst = True  # a CLOSED end answers like the stack (RST), not silently

    def _collect(self) -> None:
        for name, conn in (("a>b", self.a), ("b>a", self.b)):
            for seg in conn.pending_output():
                seg = copy_seg(seg)
                self.log.append((self.t, name, seg))
                if self.drop is not None and self.drop(name, seg):
                    continue
                if self.loss and self.rng.random() < self.loss:
                    continue
                d = self.delay
                if self.reorder and self.rng.random() < self.reorder:
                    d += self.delay * self.rng.random() * 2
                copies = 2 if self.dup and self.rng.random() < self.dup else 1
                for _ in range(copies):
                    self._n += 1
                    heapq.heappush(self._q, (self.t + d, self._n, name, seg))

    def send_all(self, key: str, data: bytes) -> None:
        """Send ``data`` on side ``key``, the rest as the (autotuned) send buffer has room."""
        self.outbox[key] += data
        self._feed()

    def _feed(self) -> None:
        for key, conn in (("a", self.a), ("b", self.b)):
            left = self.outbox[key]
            if left and conn.send_space:
                n = conn.send(self.t, left)
                self.outbox[key] = left[n:]

    def _read(self) -> None:
        self._feed()
        if not self.auto_read:
            return
        for key, conn in (("a", self.a), ("b", self.b)):
            data = conn.receive(self.t)
            if data:
                self.received[key] += data

    def step(self, until: float) -> bool:
        """Advance to the next event before ``until``; False when there is none."""
        self._collect()
        cands = []
        if self._q:
            cands.append(self._q[0][0])
        for c in (self.a, self.b):
            d = c.next_deadline()
            if d is not None:
                cands.append(d)
        if not cands:
            return False
        t = min(cands)
        if t > until:
            return False
        self.t = max(self.t, t)
        while self._q and self._q[0][0] <= self.t:
            _, _, name, seg = heapq.heappop(self._q)
            dst = self.b if name == "a>b" else self.a
            if dst.state is State.CLOSED and self.closed_rst:
                # What the stack does for a segment to no connection (RFC 9293 3.10.7.1).
                if not seg.flags & RST:
                    back = "b>a" if name == "a>b" else "a>b"
                    rst = (Segment(seg.ack, 0, RST, 0) if seg.flags & ACK else
                           Segment(0, (seg.seq + seg.seg_len) & 0xFFFFFFFF, RST | ACK, 0))
                    self.log.append((self.t, back, rst))
                    self._n += 1
                    heapq.heappush(self._q, (self.t + self.delay, self._n, back, rst))
                continue
            dst.handle_segment(self.t, seg)
        for c in (self.a, self.b):
            d = c.next_deadline()
            if d is not None and d <= self.t:
                c.handle_timers(self.t)
        self._read()
        self._collect()
        return True

    def run(self, duration: float, max_steps: int = 200_000) -> None:
        until = self.t + duration
        self._read()
        for _ in range(max_steps):
            if not self.step(until):
                self.t = max(self.t, until)
                return
        raise AssertionError("harness: step limit reached")

    def segs(self, direction: str, since: float = -1.0) -> list[Segment]:
        return [s for (t, d, s) in self.log if d == direction and t >= since]


def pair(cfg_a: TcpConfig | None = None, cfg_b: TcpConfig | None = None, *,
         iss_a: int = A_ISS, iss_b: int = B_ISS, delay: float = 0.01,
         **net_kw: object) -> Net:
    """Two connections with the handshake done (a active, b passive)."""
    a = Connection(cfg_a or TcpConfig(), iss=iss_a, now=0.0)
    b = Connection(cfg_b or TcpConfig(), iss=iss_b, now=0.0)
    b.open_passive()
    a.open_active(0.0)
    net = Net(a, b, delay=delay, **net_kw)  # type: ignore[arg-type]
    net.run(4 * delay + 0.001)
    return net


def syn_ack_for(conn_iss: int, peer_iss: int = 7000, tsval: int = 500, tsecr: int = 0,
                wnd: int = 65535) -> Segment:
    return Segment(peer_iss, (conn_iss + 1) & 0xFFFFFFFF, SYN | ACK, wnd,
                   options=TcpOptions(mss=1460, wscale=7, sack_permitted=True,
                                      timestamp=(tsval, tsecr)))
