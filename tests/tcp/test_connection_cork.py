"""TCP_CORK and MSG_MORE (Linux tcp(7)): a corked connection sends only full segments; the
partial tail leaves when uncorked, when filled, with the FIN, or 200 ms after it was first held
(CORK_CEILING). ``send(more=True)`` holds the tail until the next send without it or the
next arriving segment, and marks no PSH on it; TCP_NODELAY pushes what is held once."""

from __future__ import annotations

from test_connection_data import established_server
from test_connection_harness import B_ISS

from pytcp.tcp.config import TcpConfig
from pytcp.tcp.output import CORK_CEILING
from pytcp.tcp.segment import Segment
from pytcp.wire.tcp import ACK, FIN, PSH, TcpOptions

MSS = 1448  # established_server: MSS 1460 minus the timestamp option


def test_cork_holds_partial_segments_until_uncorked() -> None:
    c = established_server(TcpConfig(nodelay=True))
    c.set_cork(True)
    c.send(1.0, b"h" * 200)
    c.send(1.0, b"b" * 1000)
    assert c.pending_output() == []  # 1,200 bytes < one MSS: held although NODELAY is on
    c.set_cork(False)
    [seg] = c.pending_output()
    assert seg.payload == b"h" * 200 + b"b" * 1000 and seg.flags == ACK | PSH


def test_cork_sends_full_segments_and_holds_only_the_tail() -> None:
    c = established_server(TcpConfig(nodelay=True))
    c.set_cork(True)
    c.send(1.0, b"x" * (2 * MSS + 100))
    out = c.pending_output()
    assert [len(s.payload) for s in out] == [MSS, MSS]
    c.send(1.0, b"y" * (MSS - 100))  # fills the third segment exactly
    [third] = c.pending_output()
    assert third.payload == b"x" * 100 + b"y" * (MSS - 100)


def test_cork_sends_only_whole_segments_of_a_gso_super_segment() -> None:
    c = established_server(TcpConfig(nodelay=True, max_segment_payload=65000))
    c.set_cork(True)
    c.send(1.0, b"z" * (3 * MSS + 10))
    out = c.pending_output()
    assert sum(len(s.payload) for s in out) == 3 * MSS  # the 10-byte tail stays
    c.set_cork(False)
    [tail] = c.pending_output()
    assert tail.payload == b"z" * 10


def test_cork_ceiling_releases_the_tail_after_200_ms() -> None:
    c = established_server(TcpConfig(nodelay=True))
    c.set_cork(True)
    c.send(1.0, b"a" * 10)
    assert c.pending_output() == []
    assert c.next_deadline() == 1.0 + CORK_CEILING
    c.handle_timers(1.0 + CORK_CEILING - 0.001)
    assert c.pending_output() == []
    c.handle_timers(1.0 + CORK_CEILING)
    [seg] = c.pending_output()
    assert seg.payload == b"a" * 10
    c.handle_segment(1.3, Segment(9001, B_ISS + 11, ACK, 502,
                                  options=TcpOptions(timestamp=(130, 1200))))
    # A later partial segment is held again, from its own start.
    c.send(1.5, b"b" * 10)
    assert c.pending_output() == []
    assert c.next_deadline() == 1.5 + CORK_CEILING
    c.handle_timers(1.5 + CORK_CEILING)
    assert [s.payload for s in c.pending_output()] == [b"b" * 10]


def test_fin_is_not_held_by_the_cork() -> None:
    c = established_server(TcpConfig(nodelay=True))
    c.set_cork(True)
    c.send(1.0, b"bye")
    assert c.pending_output() == []
    c.shutdown(1.0)
    [seg] = c.pending_output()
    assert seg.payload == b"bye" and seg.flags & FIN


def test_msg_more_holds_until_a_send_without_it() -> None:
    c = established_server(TcpConfig(nodelay=True))
    c.send(1.0, b"head", more=True)
    assert c.pending_output() == []
    c.send(1.0, b"body")
    [seg] = c.pending_output()
    assert seg.payload == b"headbody"


def test_uncork_with_nagle_on_still_waits_for_the_ack_of_a_small_segment() -> None:
    # Linux: uncorking pushes only when TCP_NODELAY is set; otherwise Nagle decides.
    c = established_server()
    c.send(1.0, b"a")
    [first] = c.pending_output()
    c.set_cork(True)
    c.send(1.0, b"b")
    assert c.pending_output() == []
    c.set_cork(False)
    assert c.pending_output() == []  # Nagle: "a" is unacknowledged
    c.set_nodelay(True)
    [seg] = c.pending_output()
    assert first.payload == b"a" and seg.payload == b"b"


def test_nodelay_pushes_a_msg_more_tail_without_psh() -> None:
    # Linux: setting TCP_NODELAY pushes what is pending once (TCP_NAGLE_PUSH); the bytes
    # were written with MSG_MORE, so no PSH is marked on them (tcp_push marks it only for
    # a send without MSG_MORE).
    c = established_server(TcpConfig(nodelay=True))
    c.send(1.0, b"a" * 40, more=True)
    c.send(1.05, b"b" * 40, more=True)
    assert c.pending_output() == []
    c.set_nodelay(True)  # already on: pushes anyway
    [seg] = c.pending_output()
    assert seg.payload == b"a" * 40 + b"b" * 40 and seg.flags == ACK


def test_nodelay_pushes_once_past_the_cork_which_stays() -> None:
    c = established_server(TcpConfig(nodelay=True))
    c.set_cork(True)
    c.send(1.0, b"x" * 40)
    assert c.pending_output() == []
    c.set_nodelay(True)
    [seg] = c.pending_output()
    assert seg.payload == b"x" * 40 and seg.flags == ACK | PSH
    c.send(1.1, b"y" * 40)  # new data: the push is spent and the cork holds again
    assert c.pending_output() == []
    assert c.cork


def test_msg_more_hold_ends_when_an_ack_arrives() -> None:
    # Linux applies MSG_MORE's cork to the push at the end of that send only; an arriving
    # ACK pushes by the socket's own rule (tcp_data_snd_check with tp->nonagle): NODELAY
    # sends the tail at once, without PSH.
    c = established_server(TcpConfig(nodelay=True))
    c.send(1.0, b"f" * (MSS + 100), more=True)
    [full] = c.pending_output()
    assert len(full.payload) == MSS
    c.handle_segment(1.1, Segment(9001, B_ISS + 1 + MSS, ACK, 502,
                                  options=TcpOptions(timestamp=(130, 1000))))
    [tail] = c.pending_output()
    assert tail.payload == b"f" * 100 and tail.flags == ACK


def test_cork_ceiling_send_of_a_msg_more_tail_carries_psh() -> None:
    # The held tail leaves at the ceiling with PSH (Linux: the probe timer's tcp_write_wakeup
    # marks it).
    c = established_server(TcpConfig(nodelay=True))
    c.send(1.0, b"m" * 40, more=True)
    assert c.pending_output() == []
    c.handle_timers(1.0 + CORK_CEILING)
    [seg] = c.pending_output()
    assert seg.payload == b"m" * 40 and seg.flags == ACK | PSH
