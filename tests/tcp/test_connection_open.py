"""Opening: active, passive and simultaneous open with option negotiation (RFC 9293 3.5,
RFC 7323, RFC 2018), SYN retransmission and its time limit."""

from __future__ import annotations

import pytest
from test_connection_harness import A_ISS, B_ISS, Net, cfg, pair, syn_ack_for, syn_options

from pytcp.drops import DropReason
from pytcp.tcp.config import TcpConfig
from pytcp.tcp.connection import Connection
from pytcp.tcp.errors import TcpUsageError
from pytcp.tcp.events import (
    Closed,
    Connected,
    ConnectionRefused,
    ConnectionTimedOut,
)
from pytcp.tcp.segment import Segment
from pytcp.tcp.state import State
from pytcp.wire.tcp import ACK, RST, SYN, TcpOptions


def test_active_open_sends_linux_like_syn_and_acks_syn_ack() -> None:
    c = Connection(TcpConfig(), iss=A_ISS, now=0.0)
    c.ts_offset = 0
    c.open_active(0.0)
    [syn] = c.pending_output()
    # Linux tcp_select_initial_window: 64 KiB of buffer in whole 1460-byte segments.
    assert (syn.seq, syn.flags, syn.wnd) == (A_ISS, SYN, 64240)
    assert syn.options == TcpOptions(mss=1460, wscale=7, sack_permitted=True, timestamp=(0, 0))
    assert c.state is State.SYN_SENT
    # SYN-ACK 50 ms later
    c.handle_segment(0.05, syn_ack_for(A_ISS, tsval=500, tsecr=0))
    [ack] = c.pending_output()
    assert (ack.seq, ack.ack, ack.flags) == (A_ISS + 1, 7001, ACK)
    assert ack.options.timestamp == (50, 500)
    # Linux: the window grows from the SYN's 64240 (rcv_ssthresh), rounded up to the scale
    # (__tcp_select_window; RFC 7323 2.3: the field is RCV.WND >> Rcv.Wind.Shift).
    assert ack.wnd == 502
    assert c.state is State.ESTABLISHED
    assert c.pending_events() == [Connected()]
    assert [(old, new, why) for (_, old, new, why) in c.transitions] == [
        (State.CLOSED, State.SYN_SENT, "active OPEN"),
        (State.SYN_SENT, State.ESTABLISHED, "SYN-ACK"),
    ]
    assert c.snd_mss == 1460 - 12
    assert c.next_deadline() is None


def test_passive_open_answers_syn_with_negotiated_options() -> None:
    c = Connection(TcpConfig(), iss=B_ISS, now=0.0)
    c.ts_offset = 1000
    c.open_passive()
    assert c.state is State.LISTEN
    c.handle_segment(1.0, Segment(9000, 0, SYN, 65535, options=syn_options(tsval=77)))
    [sa] = c.pending_output()
    # Linux: whole segments of the MSS less the timestamp option (45 * 1448).
    assert (sa.seq, sa.ack, sa.flags, sa.wnd) == (B_ISS, 9001, SYN | ACK, 65160)
    assert sa.options == TcpOptions(mss=1460, wscale=7, sack_permitted=True,
                                    timestamp=(2000, 77))
    assert c.state is State.SYN_RECEIVED
    c.handle_segment(1.01, Segment(9001, B_ISS + 1, ACK, 502,
                                   options=TcpOptions(timestamp=(78, 2000))))
    assert c.state is State.ESTABLISHED
    assert c.pending_output() == []  # no ACK for the third segment of the handshake
    assert c.pending_events() == [Connected()]
    assert c.snd_wnd == 502 << 7
    assert c.transitions[-1][1:] == (State.SYN_RECEIVED, State.ESTABLISHED, "ACK")


def test_options_off_when_peer_does_not_offer_them() -> None:
    c = Connection(TcpConfig(), iss=B_ISS, now=0.0)
    c.open_passive()
    c.handle_segment(0.0, Segment(9000, 0, SYN, 8192))  # no options at all
    [sa] = c.pending_output()
    assert sa.options == TcpOptions(mss=1460)
    assert (c.ws_ok, c.ts_ok, c.sack_ok) == (False, False, False)
    assert (c.rcv_wscale, c.snd_wscale) == (0, 0)
    assert c.snd_mss == 536  # MUST-15: no MSS option means 536
    c.handle_segment(0.01, Segment(9001, B_ISS + 1, ACK, 8192))
    c.send(0.01, b"x" * 100)
    [d] = c.pending_output()
    assert d.options == TcpOptions()  # no TS on data
    assert d.wnd == 64240  # unscaled: Linux's initial window (44 * 1460), not yet grown


def test_back_to_back_handshake() -> None:
    net = pair()
    assert net.a.state is State.ESTABLISHED and net.b.state is State.ESTABLISHED
    flags = [(d, s.flags_str()) for (_, d, s) in net.log]
    assert flags == [("a>b", "S"), ("b>a", "S."), ("a>b", ".")]
    assert net.a.pending_events() == [Connected()]
    assert net.b.pending_events() == [Connected()]
    assert net.a.ts_ok and net.a.sack_ok and net.a.ws_ok


def test_simultaneous_open() -> None:
    a = Connection(TcpConfig(), iss=A_ISS, now=0.0)
    b = Connection(TcpConfig(), iss=B_ISS, now=0.0)
    a.open_active(0.0)
    b.open_active(0.0)
    net = Net(a, b, delay=0.01)
    net.run(0.2)
    assert a.state is State.ESTABLISHED and b.state is State.ESTABLISHED
    assert [t[2] for t in a.transitions] == [State.SYN_SENT, State.SYN_RECEIVED,
                                             State.ESTABLISHED]
    assert a.snd_una == A_ISS + 1 and a.rcv_nxt == B_ISS + 1
    # each side: SYN, SYN-ACK, then an ACK for the peer's (old) SYN-ACK
    assert [s.flags_str() for s in net.segs("a>b")] == ["S", "S.", "."]
    assert [s.flags_str() for s in net.segs("b>a")] == ["S", "S.", "."]
    a.send(net.t, b"hello")
    b.send(net.t, b"world")
    net.run(0.5)
    assert net.received == {"a": bytearray(b"world"), "b": bytearray(b"hello")}


def test_syn_retransmission_backoff_and_timeout() -> None:
    c = Connection(cfg(syn_retries=3), iss=A_ISS, now=0.0)
    c.open_active(0.0)
    times = [0.0]
    assert len(c.pending_output()) == 1
    for _ in range(10):
        d = c.next_deadline()
        if d is None:
            break
        c.handle_timers(d)
        out = c.pending_output()
        if out:
            assert out[0].flags == SYN and out[0].seq == A_ISS
            times.append(d)
    assert times == [0.0, 1.0, 3.0, 7.0]  # RTO 1 s doubling (RFC 6298 5.5)
    assert c.state is State.CLOSED
    assert c.pending_events() == [ConnectionTimedOut(), Closed()]
    assert c.transitions[-1][0] == 15.0


def test_rfc_profile_syn_gives_up_after_three_minutes() -> None:
    c = Connection(TcpConfig.rfc(), iss=A_ISS, now=0.0)
    c.open_active(0.0)
    for _ in range(20):
        d = c.next_deadline()
        if d is None:
            break
        c.handle_timers(d)
    assert c.state is State.CLOSED
    assert c.transitions[-1][0] >= 180.0  # MUST-23


def test_rst_in_syn_sent_refuses() -> None:
    c = Connection(TcpConfig(), iss=A_ISS, now=0.0)
    c.open_active(0.0)
    c.pending_output()
    # an RST without an acceptable ACK is ignored (RFC 5961 3.2 / RFC 9293 3.10.7.3)
    c.handle_segment(0.01, Segment(0, A_ISS + 5, RST | ACK, 0))
    assert c.state is State.SYN_SENT
    out = c.pending_output()
    assert out == []
    c.handle_segment(0.01, Segment(0, A_ISS + 1, RST | ACK, 0))
    assert c.state is State.CLOSED
    assert c.pending_events() == [ConnectionRefused(), Closed()]


def test_bad_ack_in_syn_sent_draws_rst() -> None:
    c = Connection(TcpConfig(), iss=A_ISS, now=0.0)
    c.open_active(0.0)
    c.pending_output()
    c.handle_segment(0.01, Segment(7000, A_ISS + 100, SYN | ACK, 100))
    [r] = c.pending_output()
    assert (r.seq, r.flags) == (A_ISS + 100, RST)
    assert c.state is State.SYN_SENT
    assert c.drops[DropReason.BAD_ACK] == 1


def test_passive_syn_received_rst_closes_quietly() -> None:
    c = Connection(TcpConfig(), iss=B_ISS, now=0.0)
    c.open_passive()
    c.handle_segment(0.0, Segment(9000, 0, SYN, 65535, options=syn_options()))
    c.pending_output()
    c.handle_segment(0.01, Segment(9001, 0, RST, 0))
    assert c.state is State.CLOSED
    assert c.pending_events() == [Closed()]  # MUST-11: back to LISTEN = the per-SYN conn ends


def test_syn_received_retransmits_syn_ack_on_timer_and_on_syn_again() -> None:
    c = Connection(TcpConfig(), iss=B_ISS, now=0.0)
    c.open_passive()
    syn = Segment(9000, 0, SYN, 65535, options=syn_options())
    c.handle_segment(0.0, syn)
    assert [s.flags for s in c.pending_output()] == [SYN | ACK]
    c.handle_segment(0.5, syn)  # the peer retransmits its SYN
    [again] = c.pending_output()
    assert again.flags == SYN | ACK and again.seq == B_ISS
    c.handle_timers(1.0)
    [rto] = c.pending_output()
    assert rto.flags == SYN | ACK


def test_syn_received_bad_ack_draws_rst() -> None:
    c = Connection(TcpConfig(), iss=B_ISS, now=0.0)
    c.open_passive()
    c.handle_segment(0.0, Segment(9000, 0, SYN, 65535, options=syn_options()))
    c.pending_output()
    c.handle_segment(0.01, Segment(9001, B_ISS + 99, ACK, 100))
    [r] = c.pending_output()
    assert (r.seq, r.flags) == (B_ISS + 99, RST)
    assert c.state is State.SYN_RECEIVED


def test_usage_errors() -> None:
    c = Connection(TcpConfig(), iss=A_ISS, now=0.0)
    with pytest.raises(TcpUsageError):
        c.send(0.0, b"x")
    c.open_active(0.0)
    with pytest.raises(TcpUsageError):
        c.open_active(0.0)
    with pytest.raises(TcpUsageError):
        c.open_passive()


def test_icmp_soft_errors_do_not_abort_but_port_unreachable_refuses_syn() -> None:
    net = pair()
    for t, code in ((11, 0), (3, 0), (3, 1), (3, 3), (12, 0), (4, 0)):
        net.a.handle_icmp_error(net.t, t, code)
    assert net.a.state is State.ESTABLISHED  # MUST-56 / MUST-55
    c = Connection(TcpConfig(), iss=A_ISS, now=0.0)
    c.open_active(0.0)
    c.handle_icmp_error(0.1, 3, 3)
    assert c.state is State.CLOSED
    assert c.pending_events() == [ConnectionRefused(), Closed()]


def test_syn_sent_shutdown_closes() -> None:
    c = Connection(TcpConfig(), iss=A_ISS, now=0.0)
    c.open_active(0.0)
    c.shutdown(0.1)
    assert c.state is State.CLOSED
    assert c.next_deadline() is None


def test_icmp_fragmentation_needed_lowers_mss_and_resends() -> None:
    net = pair()
    net.auto_read = False
    net.drop = lambda d, s: d == "a>b" and len(s.payload) > 1048  # a 1,100-byte MTU hop
    net.a.send(net.t, b"m" * 5000)
    net.run(0.005)
    assert net.a.snd_mss == 1448
    net.a.handle_icmp_error(net.t, 3, 4, mtu=1100)
    assert net.a.snd_mss == 1100 - 40 - 12
    assert net.a.state is State.ESTABLISHED
    net.run(1.0)
    assert net.b.receive(net.t) == b"m" * 5000
    resent = [s for (t, d, s) in net.log if d == "a>b" and s.payload][4:]
    assert len(resent) == 5 and max(len(s.payload) for s in resent) == 1048


def test_new_syn_in_passive_syn_received_ends_it_quietly() -> None:
    c = Connection(TcpConfig(), iss=B_ISS, now=0.0)
    c.open_passive()
    c.handle_segment(0.0, Segment(9000, 0, SYN, 65535, options=syn_options()))
    c.pending_output()
    c.handle_segment(0.1, Segment(14000, 0, SYN, 65535, options=syn_options()))
    assert c.pending_output() == []
    assert c.state is State.CLOSED  # RFC 9293 3.10.7.4 fourth: back to LISTEN (MUST-11)
    assert c.pending_events() == [Closed()]


def test_inexact_rst_in_syn_received_draws_challenge_ack() -> None:
    c = Connection(TcpConfig(), iss=B_ISS, now=0.0)
    c.open_passive()
    c.handle_segment(0.0, Segment(9000, 0, SYN, 65535))
    c.pending_output()
    c.handle_segment(0.1, Segment(9500, 0, RST, 0))
    [ch] = c.pending_output()
    assert (ch.seq, ch.ack, ch.flags) == (B_ISS + 1, 9001, ACK)
    assert c.state is State.SYN_RECEIVED
    assert c.drops[DropReason.RST_CHALLENGED] == 1


def test_data_on_syn_ack_is_taken_within_the_window() -> None:
    c = Connection(cfg(recv_buffer=1000), iss=A_ISS, now=0.0)
    c.open_active(0.0)
    c.pending_output()
    sa = syn_ack_for(A_ISS)
    c.handle_segment(0.05, Segment(sa.seq, sa.ack, sa.flags | 0x01, sa.wnd, b"h" * 5000,
                                   sa.options))
    assert c.state is State.ESTABLISHED
    assert c.receive(0.06) == b"h" * 1000  # trimmed to the 1,000-byte window; FIN dropped
    assert not c.at_eof
