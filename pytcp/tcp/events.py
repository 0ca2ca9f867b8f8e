"""Events the TCP engine reports to its owner (drained by ``Connection.pending_events()``).

Small frozen dataclasses named as nouns, in the h11 style. Each connection reports at most one
terminal event (``ConnectionReset``, ``ConnectionRefused`` or ``ConnectionTimedOut``) followed by
``Closed`` when it reaches CLOSED.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Connected:
    """The handshake completed: ESTABLISHED reached (RFC 9293 3.5)."""


@dataclass(frozen=True, slots=True)
class DataAvailable:
    """New in-order data can be read with ``receive()``."""


@dataclass(frozen=True, slots=True)
class EndOfStream:
    """The peer's FIN arrived; all data before it is readable (RFC 9293 3.10.7.4, eighth)."""


@dataclass(frozen=True, slots=True)
class SendSpaceAvailable:
    """ACKed data freed send-buffer space after a ``send()`` accepted less than offered."""


@dataclass(frozen=True, slots=True)
class UrgentData:
    """The peer's urgent pointer advanced (RFC 9293 3.8.5, MUST-32): ``pending`` octets of
    urgent data lie ahead of the read position."""

    pending: int


@dataclass(frozen=True, slots=True)
class TxProgress:
    """Only while ``Connection.track_tx(True)``: the send side moved. ``sent``: the stream
    offset (data octets counted from the first, no wrap) of the first octet never handed to
    the link yet; ``acked``: of the first not acknowledged yet (the socket error queue maps
    them to MSG_ZEROCOPY completions and TX timestamps)."""

    sent: int
    acked: int


@dataclass(frozen=True, slots=True)
class ConnectionReset:
    """The peer reset the connection (RFC 9293 3.10.7.4, second)."""


@dataclass(frozen=True, slots=True)
class ConnectionRefused:
    """SYN-SENT got an acceptable RST, or an ICMP port/protocol unreachable (RFC 9293 3.10.7.3)."""


@dataclass(frozen=True, slots=True)
class ConnectionTimedOut:
    """Retransmissions (SYN, data, FIN) or keep-alive probes ran out (RFC 9293 3.8.3, R2)."""


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection reached CLOSED; the owner may forget it."""


Event = (
    Connected
    | DataAvailable
    | EndOfStream
    | SendSpaceAvailable
    | UrgentData
    | TxProgress
    | ConnectionReset
    | ConnectionRefused
    | ConnectionTimedOut
    | Closed
)
