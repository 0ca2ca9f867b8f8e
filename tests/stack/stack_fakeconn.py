"""A scripted stand-in for the TCP engine, to test the stack's demux, listener queue, timer
heap and output path alone. It answers a SYN with a SYN-ACK and the ACK with Connected, and
otherwise emits whatever a test puts in ``script_out``."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pytcp.drops import DropReason
from pytcp.tcp.events import Closed, Connected, Event
from pytcp.tcp.segment import Segment
from pytcp.wire.tcp import ACK, RST, SYN, TcpOptions


class FakeConnection:
    def __init__(self, config: Any, *, iss: int, now: float, mss: int | None = None) -> None:
        self.iss = iss
        self.mss = mss
        self.state = "CLOSED"
        self.segments: list[Segment] = []
        self.icmp: list[tuple[float, int, int]] = []
        self.timer_calls: list[float] = []
        self.deadline: float | None = None
        self.out: list[Segment] = []
        self.events: list[Event] = []
        self.drops: Counter[DropReason] = Counter()
        self.fail = False

    def open_passive(self) -> None:
        self.state = "LISTEN"

    def open_active(self, now: float) -> None:
        self.state = "SYN-SENT"
        self.out.append(Segment(self.iss, 0, SYN, 65535, options=TcpOptions(mss=self.mss)))

    def handle_segment(self, now: float, seg: Segment) -> None:
        if self.fail:
            raise RuntimeError("engine bug")
        self.segments.append(Segment(seg.seq, seg.ack, seg.flags, seg.wnd, bytes(seg.payload),
                                     seg.options, seg.urg))
        if seg.flags & RST:
            self.state = "CLOSED"
            self.events.append(Closed())
        elif self.state == "LISTEN" and seg.flags & SYN:
            self.state = "SYN-RECEIVED"
            self.irs = seg.seq
            self.out.append(Segment(self.iss, (seg.seq + 1) & 0xFFFFFFFF, SYN | ACK, 65535,
                                    options=TcpOptions(mss=self.mss)))
        elif self.state == "SYN-RECEIVED" and seg.flags & ACK:
            self.state = "ESTABLISHED"
            self.events.append(Connected())

    def handle_timers(self, now: float) -> None:
        self.timer_calls.append(now)
        self.deadline = None

    def next_deadline(self, flush: bool = True) -> float | None:
        return self.deadline

    def handle_icmp_error(self, now: float, type: int, code: int,
                          mtu: int | None = None) -> None:
        self.icmp.append((now, type, code))

    def abort(self, now: float) -> None:
        self.out.append(Segment(0, 0, RST, 0))
        self.state = "CLOSED"
        self.events.append(Closed())

    def send(self, now: float, data: bytes, push: bool = True) -> int:
        return len(data)

    def pending_output(self, now: float | None = None) -> list[Segment]:
        out, self.out = self.out, []
        return out

    def pending_events(self) -> list[Event]:
        ev, self.events = self.events, []
        return ev
