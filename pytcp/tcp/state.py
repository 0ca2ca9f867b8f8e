"""The eleven connection states of RFC 9293 3.3.2.

``str(State.SYN_RECEIVED)`` gives ``"SYN-RECEIVED"``, the RFC's spelling.
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"

    # Members are singletons compared by identity: hash them by identity too, in C (Enum's
    # own __hash__ hashes the name in Python, and the engine tests state sets per segment).
    __hash__ = object.__hash__

    def __str__(self) -> str:
        return self.value

    @property
    def synchronized(self) -> bool:
        """RFC 9293 3.5.2: the states after the handshake's SYNs were exchanged."""
        return self not in (State.CLOSED, State.LISTEN, State.SYN_SENT, State.SYN_RECEIVED)


# The states in which the local side may still send data (RFC 9293 3.10.2).
SEND_STATES = frozenset({State.SYN_SENT, State.SYN_RECEIVED, State.ESTABLISHED, State.CLOSE_WAIT})
# The states in which data from the peer is still accepted (RFC 9293 3.10.7.4, seventh).
RECEIVE_STATES = frozenset({State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2})
