"""The engine's segment: a TCP header's fields and payload, without IP addresses or ports.

The stack turns a parsed wire segment into a :class:`Segment` for the engine, and each
:class:`Segment` the engine emits back into an IPv4 packet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pytcp.tcp.reasons import TxReason
from pytcp.wire.tcp import FIN, NO_OPTIONS, SYN, TcpOptions, flags_to_str


@dataclass(slots=True)
class Segment:
    seq: int
    ack: int
    flags: int
    wnd: int  # the 16-bit window field as on the wire (already scaled down when sending)
    payload: bytes | bytearray | memoryview = b""
    options: TcpOptions = field(default=NO_OPTIONS)
    urg: int = 0
    # Outbound: when > 0 and len(payload) > gso_size, the payload is a super-segment that the
    # link (TSO/GSO) or the stack cuts into pieces of gso_size bytes. Inbound: a segment the
    # stack coalesced (GRO) from segments of gso_size bytes (the last may be shorter).
    gso_size: int = 0
    # Outbound only: why the engine sent it when it is not new data or a plain ACK (a
    # retransmission, a probe, a challenge ACK, a RST...); a capture's packet comment.
    reason: TxReason | None = None
    # The IP ECN codepoint (RFC 3168 5): inbound as received (CE = 3), outbound the one to
    # send (ECT(0) = 2 on new data of an ECN connection), 0 = Not-ECT.
    ecn: int = 0

    @property
    def seg_len(self) -> int:
        """SEG.LEN of RFC 9293 3.3.1: payload octets plus one for SYN and one for FIN."""
        n = len(self.payload)
        if self.flags & SYN:
            n += 1
        if self.flags & FIN:
            n += 1
        return n

    def flags_str(self) -> str:
        """tcpdump-style flags: 'S', 'S.', 'P.', 'F.', 'R', ..."""
        return flags_to_str(self.flags)
