"""Closing in every order (RFC 9293 3.6), half-close, abort, close with unread data,
TIME-WAIT (MUST-13, RFC 1337), RST handling and RFC 5961 challenge ACKs."""

from __future__ import annotations

from test_connection_data import established_server
from test_connection_harness import B_ISS, cfg, pair

from pytcp.drops import DropReason
from pytcp.tcp.connection import Connection
from pytcp.tcp.events import Closed, ConnectionReset, EndOfStream
from pytcp.tcp.segment import Segment
from pytcp.tcp.state import State
from pytcp.wire.tcp import ACK, FIN, PSH, RST, SYN, TcpOptions


def states(c: Connection) -> list[State]:
    return [t[2] for t in c.transitions]


def test_active_close_then_passive_close() -> None:
    net = pair()
    net.a.send(net.t, b"request")
    net.a.shutdown(net.t)
    assert net.a.state is State.FIN_WAIT_1
    net.run(0.1)
    assert net.b.state is State.CLOSE_WAIT
    assert net.a.state is State.FIN_WAIT_2
    assert bytes(net.received["b"]) == b"request"
    assert net.b.at_eof
    assert EndOfStream() in net.b.pending_events()
    # half-close: b still sends, a still reads
    net.b.send(net.t, b"response")
    net.run(0.1)
    assert bytes(net.received["a"]) == b"response"
    net.b.close(net.t)
    assert net.b.state is State.LAST_ACK
    net.run(0.1)
    assert net.b.state is State.CLOSED
    assert net.a.state is State.TIME_WAIT
    assert states(net.a)[-3:] == [State.FIN_WAIT_1, State.FIN_WAIT_2, State.TIME_WAIT]
    assert states(net.b)[-3:] == [State.CLOSE_WAIT, State.LAST_ACK, State.CLOSED]
    assert net.a._sendbuf.allocated == 0  # the ring is freed in TIME-WAIT
    tw_start = net.a.transitions[-1][0]
    net.run(100.0)
    assert net.a.state is State.CLOSED
    assert net.a.transitions[-1][0] == tw_start + 60.0  # 2*MSL, Linux's 60 s
    assert net.a.transitions[-1][3] == "2MSL timeout"
    assert Closed() in net.a.pending_events()
    assert net.a.next_deadline() is None and net.b.next_deadline() is None


def test_fin_acked_at_once_then_close_sends_fin() -> None:
    c = established_server(cfg(quickack=0))
    c.handle_segment(0.1, Segment(9001, B_ISS + 1, FIN | ACK, 502,
                                  options=TcpOptions(timestamp=(200, 0))))
    assert c.state is State.CLOSE_WAIT
    [a] = c.pending_output()
    assert (a.seq, a.ack, a.flags) == (B_ISS + 1, 9002, ACK)
    c.close(0.11)
    [f] = c.pending_output()
    assert (f.seq, f.ack, f.flags) == (B_ISS + 1, 9002, FIN | ACK)
    assert c.state is State.LAST_ACK


def test_simultaneous_close_goes_through_closing() -> None:
    net = pair()
    net.a.shutdown(net.t)
    net.b.shutdown(net.t)
    net.run(0.2)
    assert states(net.a)[-3:] == [State.FIN_WAIT_1, State.CLOSING, State.TIME_WAIT]
    assert states(net.b)[-3:] == [State.FIN_WAIT_1, State.CLOSING, State.TIME_WAIT]
    net.run(61.0)
    assert net.a.state is State.CLOSED and net.b.state is State.CLOSED


def test_fin_with_ack_of_our_fin_goes_straight_to_time_wait() -> None:
    c = established_server()
    c.shutdown(1.0)
    [f] = c.pending_output()
    assert f.flags == FIN | ACK
    c.handle_segment(1.01, Segment(9001, B_ISS + 2, FIN | ACK, 502,
                                   options=TcpOptions(timestamp=(300, 1000))))
    assert states(c)[-2:] == [State.FIN_WAIT_2, State.TIME_WAIT]
    [a] = c.pending_output()
    assert (a.seq, a.ack, a.flags) == (B_ISS + 2, 9002, ACK)


def test_time_wait_reacks_retransmitted_fin_and_restarts_timer_ignores_rst() -> None:
    c = established_server()
    c.shutdown(1.0)
    c.pending_output()
    fin = Segment(9001, B_ISS + 2, FIN | ACK, 502, options=TcpOptions(timestamp=(300, 1000)))
    c.handle_segment(1.01, fin)
    c.pending_output()
    assert c.state is State.TIME_WAIT
    c.handle_segment(30.0, fin)  # the peer lost our ACK and retransmits its FIN
    [a] = c.pending_output()
    assert (a.ack, a.flags) == (9002, ACK)
    assert c.next_deadline() == 90.0
    c.handle_segment(31.0, Segment(9002, 0, RST, 0))  # RFC 1337: ignored
    assert c.state is State.TIME_WAIT
    c.handle_timers(90.0)
    assert c.state is State.CLOSED


def test_fin_retransmitted_until_acked() -> None:
    c = established_server()
    c.shutdown(1.0)
    [f] = c.pending_output()
    c.handle_timers(c.next_deadline() or 0)
    [f2] = c.pending_output()
    assert (f2.seq, f2.flags) == (f.seq, FIN | ACK)
    assert c.info().retransmits == 1


def test_close_with_unread_data_sends_rst() -> None:
    net = pair()
    net.auto_read = False
    net.a.send(net.t, b"unread")
    net.run(0.1)
    t0 = net.t
    net.b.close(net.t)
    assert net.b.state is State.CLOSED
    net.run(0.1)
    [r] = net.segs("b>a", since=t0)
    assert r.flags == RST | ACK and r.seq == net.b.snd_max
    assert net.a.state is State.CLOSED
    assert net.a.pending_events()[-2:] == [ConnectionReset(), Closed()]


def test_data_after_close_draws_rst() -> None:
    c = established_server()
    c.close(1.0)
    c.pending_output()
    c.handle_segment(1.01, Segment(9001, B_ISS + 2, ACK | PSH, 502, b"late",
                                   options=TcpOptions(timestamp=(300, 1000))))
    out = c.pending_output()
    assert out[-1].flags & RST
    assert c.state is State.CLOSED


def test_abort_sends_rst() -> None:
    net = pair()
    net.a.abort(net.t)
    assert net.a.state is State.CLOSED
    net.run(0.1)
    assert net.b.state is State.CLOSED
    assert net.b.pending_events()[-2:] == [ConnectionReset(), Closed()]


def test_rst_exact_resets_in_window_challenged_outside_dropped() -> None:
    c = established_server()
    c.handle_segment(1.0, Segment(9001 + 1000, 0, RST, 0))  # in window, not exact
    [ch] = c.pending_output()
    assert (ch.seq, ch.ack, ch.flags) == (B_ISS + 1, 9001, ACK)  # challenge ACK
    assert c.drops[DropReason.RST_CHALLENGED] == 1
    c.handle_segment(1.0, Segment(9001 + 10_000_000, 0, RST, 0))  # outside the window
    assert c.pending_output() == []
    assert c.drops[DropReason.RST_INVALID] == 1
    assert c.state is State.ESTABLISHED
    c.handle_segment(1.0, Segment(9001, 0, RST, 0))
    assert c.state is State.CLOSED
    assert c.pending_events() == [ConnectionReset(), Closed()]


def test_rst_keeps_unread_bytes_unless_rst_flushes_unread() -> None:
    # RFC 9293 3.10.7.4 (second): "All segment queues should be flushed"; Linux (tcp_reset)
    # keeps the in-order bytes readable, the rfc profile flushes them.
    from test_connection_data import data_seg

    from pytcp.tcp.config import TcpConfig

    for config, left in ((TcpConfig.linux(), b"d" * 10), (TcpConfig.rfc(), b"")):
        c = established_server(config)
        c.handle_segment(1.0, data_seg(0, 10))
        c.handle_segment(1.0, Segment(9011, 0, RST, 0))
        assert c.state is State.CLOSED
        assert c.pending_events()[-2:] == [ConnectionReset(), Closed()]
        assert c.receive(1.0) == left
        assert c.receive(1.0) == b""


def test_syn_in_established_draws_challenge_ack() -> None:
    c = established_server()
    c.handle_segment(1.0, Segment(12345, 0, SYN, 65535))
    [ch] = c.pending_output()
    assert (ch.seq, ch.ack, ch.flags) == (B_ISS + 1, 9001, ACK)
    assert c.state is State.ESTABLISHED
    assert c.drops[DropReason.SYN_CHALLENGED] + c.drops[DropReason.OUT_OF_WINDOW] == 1


def test_challenge_ack_rate_limit() -> None:
    c = established_server(cfg(challenge_ack_limit=3))
    for _ in range(10):
        c.handle_segment(1.0, Segment(9001 + 100, 0, RST, 0))
        c.pending_output()
    assert c.drops[DropReason.RST_CHALLENGED] == 10
    sent = 0
    c2 = established_server(cfg(challenge_ack_limit=3))
    for _ in range(10):
        c2.handle_segment(1.0, Segment(9001 + 100, 0, RST, 0))
        sent += len(c2.pending_output())
    assert sent == 3


def test_ack_for_unsent_data_is_dropped_and_acked() -> None:
    c = established_server()
    c.handle_segment(1.0, Segment(9001, B_ISS + 500, ACK | PSH, 502, b"abc",
                                  options=TcpOptions(timestamp=(300, 0))))
    [a] = c.pending_output()
    assert a.ack == 9001  # the data was not taken
    assert c.drops[DropReason.BAD_ACK] == 1


def test_too_old_ack_is_dropped_rfc5961() -> None:
    c = established_server()
    old = (B_ISS + 1 - 70000) & 0xFFFFFFFF
    c.handle_segment(1.0, Segment(9001, old, ACK | PSH, 502, b"abc",
                                  options=TcpOptions(timestamp=(300, 0))))
    assert c.drops[DropReason.ACK_TOO_OLD] == 1
    assert c.receive(1.0) == b""


def test_segment_without_ack_is_dropped() -> None:
    c = established_server()
    c.handle_segment(1.0, Segment(9001, 0, PSH, 502, b"abc"))
    assert c.drops[DropReason.NO_ACK_FLAG] == 1
    assert c.receive(1.0) == b""


def test_orphaned_fin_wait_2_times_out_after_close() -> None:
    c = established_server()
    c.close(1.0)
    c.pending_output()
    c.handle_segment(1.01, Segment(9001, B_ISS + 2, ACK, 502,
                                   options=TcpOptions(timestamp=(300, 1000))))
    assert c.state is State.FIN_WAIT_2
    c.handle_timers(61.01)
    assert c.state is State.CLOSED


def test_time_wait_tells_the_stack_about_a_new_incarnation_syn() -> None:
    c = established_server()
    c.shutdown(1.0)
    c.pending_output()
    c.handle_segment(1.01, Segment(9001, B_ISS + 2, FIN | ACK, 502,
                                   options=TcpOptions(timestamp=(300, 1000))))
    assert c.state is State.TIME_WAIT
    newer = Segment(5, 0, SYN, 65535, options=TcpOptions(mss=1460, timestamp=(400, 0)))
    older = Segment(5, 0, SYN, 65535, options=TcpOptions(mss=1460, timestamp=(200, 0)))
    assert c.accepts_new_syn(newer)  # RFC 6191
    assert not c.accepts_new_syn(older)
    assert not c.accepts_new_syn(Segment(9002, 0, ACK, 0))


def test_close_in_syn_received_sends_fin_and_keeps_retransmitting_syn_ack() -> None:
    c = Connection(cfg(), iss=B_ISS, now=0.0)
    c.open_passive()
    c.handle_segment(0.0, Segment(9000, 0, SYN, 65535))
    assert [s.flags for s in c.pending_output()] == [SYN | ACK]
    c.close(0.1)
    assert c.state is State.FIN_WAIT_1
    [f] = c.pending_output()
    assert (f.seq, f.flags) == (B_ISS + 1, FIN | ACK)  # RFC 9293 3.10.4 SYN-RECEIVED
    c.handle_timers(c.next_deadline() or 0.0)
    assert [s.flags for s in c.pending_output()] == [SYN | ACK]
    c.handle_segment(1.5, Segment(9001, B_ISS + 2, ACK, 100))
    assert c.state is State.FIN_WAIT_2


def test_old_ack_does_not_update_the_send_window() -> None:
    c = established_server()
    c.send(1.0, b"x" * 3000)
    c.pending_output()
    c.handle_segment(1.05, Segment(9001, B_ISS + 1 + 3000, ACK, 400,
                                   options=TcpOptions(timestamp=(300, 1000))))
    assert c.snd_wnd == 400 << 7
    # a later segment (new data) carrying an older ACK and a bigger window
    c.handle_segment(1.06, Segment(9001, B_ISS + 1 + 1000, ACK | PSH, 500, b"hi",
                                   options=TcpOptions(timestamp=(301, 1000))))
    assert c.snd_wnd == 400 << 7  # RFC 9293 3.10.7.4: only if SND.UNA =< SEG.ACK
    assert c.receive(1.1) == b"hi"


def test_out_of_window_bare_acks_answered_at_most_every_half_second() -> None:
    c = established_server()
    answers = 0
    for i in range(20):
        c.handle_segment(1.0 + i * 0.1, Segment(9001 + 10_000_000, B_ISS + 1, ACK, 502))
        answers += len(c.pending_output())
    assert answers == 4  # at 1.0, 1.5, 2.0, 2.5
    # data-bearing duplicates are always answered (the peer lost our ACK)
    for i in range(3):
        c.handle_segment(3.0, Segment(9001 - 100, B_ISS + 1, ACK, 502, b"x" * 50))
        answers += len(c.pending_output())
    assert answers == 7
