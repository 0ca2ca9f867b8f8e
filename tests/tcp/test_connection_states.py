"""One table per rule of RFC 9293 3.10.7.4: the same segment fed to a connection in each of
the eleven states (reached by hand-fed traces), and what it must do there."""

from __future__ import annotations

import pytest
from test_connection_data import established_server
from test_connection_harness import A_ISS, B_ISS, syn_ack_for

from pytcp.tcp.config import TcpConfig
from pytcp.tcp.connection import Connection
from pytcp.tcp.events import Closed, ConnectionRefused, ConnectionReset
from pytcp.tcp.segment import Segment
from pytcp.tcp.state import State
from pytcp.wire.tcp import ACK, FIN, RST, SYN, TcpOptions

PEER = 9001  # the peer's next sequence number once synchronized (peer ISS 9000)
TS = TcpOptions(timestamp=(400, 0))


def _fin_from_peer(c: Connection, t: float) -> None:
    c.handle_segment(t, Segment(PEER, c.snd_max, FIN | ACK, 502, options=TS))


def _ack_our_fin(c: Connection, t: float, peer_seq: int = PEER) -> None:
    c.handle_segment(t, Segment(peer_seq, c.snd_max, ACK, 502, options=TS))


def reach(state: State) -> Connection:
    """A connection in ``state`` whose peer's next sequence number is ``rcv_nxt``."""
    if state is State.CLOSED:
        return Connection(TcpConfig(), iss=A_ISS, now=0.0)
    if state is State.LISTEN:
        c = Connection(TcpConfig(), iss=B_ISS, now=0.0)
        c.open_passive()
        return c
    if state is State.SYN_SENT:
        c = Connection(TcpConfig(), iss=A_ISS, now=0.0)
        c.open_active(0.0)
        return c
    if state is State.SYN_RECEIVED:
        c = Connection(TcpConfig(), iss=B_ISS, now=0.0)
        c.open_passive()
        c.handle_segment(0.0, Segment(PEER - 1, 0, SYN, 65535))
        c.pending_output()
        return c
    c = established_server()
    if state is State.FIN_WAIT_1:
        c.shutdown(1.0)
    elif state is State.FIN_WAIT_2:
        c.shutdown(1.0)
        c.pending_output()
        _ack_our_fin(c, 1.01)
    elif state is State.CLOSE_WAIT:
        _fin_from_peer(c, 1.0)
    elif state is State.CLOSING:
        c.shutdown(1.0)
        c.pending_output()
        c.handle_segment(1.01, Segment(PEER, B_ISS + 1, FIN | ACK, 502, options=TS))
    elif state is State.LAST_ACK:
        _fin_from_peer(c, 1.0)
        c.shutdown(1.01)
    elif state is State.TIME_WAIT:
        c.shutdown(1.0)
        c.pending_output()
        _ack_our_fin(c, 1.01)
        c.handle_segment(1.02, Segment(PEER, c.snd_max, FIN | ACK, 502, options=TS))
    c.pending_output()
    c.pending_events()
    assert c.state is state
    return c


ALL = list(State)


def test_every_state_is_reachable() -> None:
    for st in ALL:
        assert reach(st).state is st


# RFC 9293 3.10.7.4 second check, with RFC 5961 3.2 and RFC 1337: an RST at exactly RCV.NXT.
RST_OUTCOME: dict[State, tuple[State, list[object]]] = {
    State.SYN_RECEIVED: (State.CLOSED, [Closed()]),            # passive: back to LISTEN
    State.ESTABLISHED: (State.CLOSED, [ConnectionReset(), Closed()]),
    State.FIN_WAIT_1: (State.CLOSED, [ConnectionReset(), Closed()]),
    State.FIN_WAIT_2: (State.CLOSED, [ConnectionReset(), Closed()]),
    State.CLOSE_WAIT: (State.CLOSED, [ConnectionReset(), Closed()]),
    State.CLOSING: (State.CLOSED, [Closed()]),
    State.LAST_ACK: (State.CLOSED, [Closed()]),
    State.TIME_WAIT: (State.TIME_WAIT, []),                    # RFC 1337: ignored
}


@pytest.mark.parametrize("state", list(RST_OUTCOME), ids=str)
def test_exact_rst(state: State) -> None:
    c = reach(state)
    c.handle_segment(2.0, Segment(c.rcv_nxt, 0, RST, 0))
    new, events = RST_OUTCOME[state]
    assert c.state is new
    assert c.pending_events() == events
    assert c.pending_output() == []


@pytest.mark.parametrize("state", list(RST_OUTCOME), ids=str)
def test_in_window_inexact_rst_draws_challenge_ack(state: State) -> None:
    c = reach(state)
    c.handle_segment(2.0, Segment((c.rcv_nxt + 10) & 0xFFFFFFFF, 0, RST, 0))
    assert c.state is state
    [ch] = c.pending_output()
    assert (ch.ack, ch.flags) == (c.rcv_nxt, ACK)


def test_rst_in_syn_sent_needs_an_acceptable_ack() -> None:
    c = reach(State.SYN_SENT)
    c.pending_output()
    c.handle_segment(0.1, Segment(0, A_ISS, RST | ACK, 0))  # ACK of nothing we sent
    assert c.state is State.SYN_SENT
    c.handle_segment(0.1, Segment(0, A_ISS + 1, RST | ACK, 0))
    assert c.state is State.CLOSED
    assert c.pending_events() == [ConnectionRefused(), Closed()]


# Fourth check: a SYN in a synchronized state draws a challenge ACK (RFC 5961 4.2) and
# changes nothing; in a passive SYN-RECEIVED a new SYN ends the half-open connection.
@pytest.mark.parametrize("state", [s for s in RST_OUTCOME if s is not State.SYN_RECEIVED],
                         ids=str)
def test_syn_in_synchronized_state(state: State) -> None:
    c = reach(state)
    c.handle_segment(2.0, Segment(c.rcv_nxt, 0, SYN, 65535))
    assert c.state is state
    [ch] = c.pending_output()
    assert (ch.ack, ch.flags) == (c.rcv_nxt, ACK)


# Seventh check: text is taken in ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2 only.
@pytest.mark.parametrize("state", [State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2,
                                   State.CLOSE_WAIT, State.CLOSING, State.LAST_ACK,
                                   State.TIME_WAIT], ids=str)
def test_segment_text_by_state(state: State) -> None:
    c = reach(state)
    before = c.rcv_nxt
    c.handle_segment(2.0, Segment(c.rcv_nxt, c.snd_una, ACK, 502, b"late", options=TS))
    c.pending_output()
    took = state in (State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2)
    assert c.rcv_nxt == ((before + 4) & 0xFFFFFFFF if took else before)


# Eighth check: the peer's FIN in each state that can still get one.
FIN_OUTCOME: dict[State, State] = {
    State.ESTABLISHED: State.CLOSE_WAIT,
    State.FIN_WAIT_1: State.CLOSING,       # our FIN not yet acknowledged
    State.FIN_WAIT_2: State.TIME_WAIT,
}


@pytest.mark.parametrize("state", list(FIN_OUTCOME), ids=str)
def test_fin_by_state(state: State) -> None:
    c = reach(state)
    c.handle_segment(2.0, Segment(c.rcv_nxt, c.snd_una, FIN | ACK, 502, options=TS))
    assert c.state is FIN_OUTCOME[state]
    [a] = c.pending_output()
    assert a.ack == c.rcv_nxt and a.flags & ACK


def test_listen_rejects_ack_and_ignores_rst() -> None:
    c = reach(State.LISTEN)
    c.handle_segment(0.0, Segment(5, 777, ACK, 100))
    [r] = c.pending_output()
    assert (r.seq, r.flags) == (777, RST)
    c.handle_segment(0.0, Segment(5, 0, RST, 0))
    assert c.pending_output() == [] and c.state is State.LISTEN


def test_closed_connection_ignores_everything() -> None:
    c = reach(State.CLOSED)
    c.handle_segment(0.0, syn_ack_for(A_ISS))
    assert c.pending_output() == [] and c.state is State.CLOSED

