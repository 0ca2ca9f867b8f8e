"""Linux's delayed-ACK model (pytcp/tcp/delack.py): quick-ACK mode, pingpong (interactive)
mode, the ATO estimate and its bounds (RFC 9293 MUST-40: < 0.5 s; RFC 5681 4.2: every second
full-sized segment), on the model alone and through a Connection."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from test_connection_data import data_seg, established_server
from test_connection_harness import B_ISS, cfg

from pytcp.tcp.config import TcpConfig
from pytcp.tcp.connection import Connection
from pytcp.tcp.delack import DelayedAck
from pytcp.tcp.fastopen import ClientRequest
from pytcp.tcp.segment import Segment
from pytcp.tcp.state import State
from pytcp.wire.tcp import ACK, FIN, PSH, SYN, TcpOptions

RTO = 1.0


def model(**kw: object) -> DelayedAck:
    return DelayedAck(TcpConfig().replace(**kw))


def test_first_data_arms_quick_acks_bounded_by_window() -> None:
    d = model()
    d.on_data(0.0, 1000, True, 1000, 65535, RTO)
    assert (d.quick, d.ato, d.scheduled) == (16, 0.04, True)  # min(65535 // 2000, 16)
    assert d.ack_now(0.0, 1000, 1000, 2, 0.0)
    small = model()
    small.on_data(0.0, 1000, True, 1000, 3000, RTO)
    assert small.quick == 1  # 3000 // (2 * 1000): Linux tcp_incr_quickack
    tiny = model()
    tiny.on_data(0.0, 1000, True, 1000, 1000, RTO)
    assert tiny.quick == 2  # 0 -> 2


def test_quick_ack_spent_only_by_acks_of_waiting_data() -> None:
    d = model()
    d.on_data(0.0, 100, True, 536, 65535, RTO)
    d.on_ack_sent()
    assert (d.quick, d.scheduled, d.pushed) == (15, False, False)
    d.on_ack_sent()  # (an ACK with nothing waiting, e.g. on our data: no quick ACK spent)
    assert d.quick == 15
    d.quick = 1
    d.ato = 0.12
    d.on_data(0.5, 100, True, 536, 65535, RTO)
    d.on_ack_sent()
    assert (d.quick, d.ato) == (0, 0.04)  # leaving quick-ACK mode resets ATO


def test_reply_within_ato_enters_pingpong_and_delays_the_next_ack() -> None:
    d = model()
    d.on_data(1.0, 100, True, 536, 65535, RTO)
    d.on_ack_sent()
    d.on_data_sent(1.05)  # 50 ms > ATO 40 ms: not a reply
    assert not d.in_pingpong
    d.on_data(2.0, 100, True, 536, 65535, RTO)
    d.on_ack_sent()
    d.on_data_sent(2.01)
    assert d.in_pingpong and d.quick > 0
    d.on_data(2.1, 100, True, 536, 65535, RTO)
    assert not d.ack_now(2.1, 100, 536, 2, 0.1)  # quick ACKs left, but interactive
    assert d.timer_at == 2.1 + 0.04
    # ... yet every second full-sized segment is ACKed at once (RFC 5681 4.2).
    assert d.ack_now(2.1, 1100, 536, 2, 0.1)


def test_timer_in_pingpong_leaves_it_outside_doubles_ato() -> None:
    d = model(quickack=0)
    d.on_data(0.0, 100, True, 536, 65535, RTO)
    assert not d.ack_now(0.0, 100, 536, 2, 0.0)
    assert d.on_timer(0.3)
    assert d.ato == 0.08
    d.on_ack_sent()
    d.on_data(1.0, 100, True, 536, 65535, 0.3)
    assert d.on_timer(0.3)
    assert d.ato == 0.16
    d.on_data(1.5, 100, True, 536, 65535, 0.3)
    assert d.on_timer(0.3)
    assert d.ato == 0.3  # bounded by the RTO
    d.on_ack_sent()
    assert not d.on_timer(0.3)  # nothing waits: no ACK
    d.pingpong = 1
    d.on_data(2.0, 100, True, 536, 65535, 0.3)
    assert d.on_timer(0.3)
    assert (d.pingpong, d.ato) == (0, 0.04)


def test_ato_follows_interarrival_time() -> None:
    d = model()
    d.on_data(0.0, 100, True, 536, 65535, RTO)
    d.ato = 0.2
    d.on_data(0.01, 100, True, 536, 65535, RTO)  # <= ATO_MIN / 2: fast
    assert abs(d.ato - (0.1 + 0.02)) < 1e-9
    d.on_data(0.1, 100, True, 536, 65535, RTO)  # 90 ms < ATO 120 ms
    assert abs(d.ato - (0.06 + 0.09)) < 1e-9
    d.quick = 0
    d.on_data(3.0, 100, True, 536, 65535, RTO)  # a gap over the RTO: quick ACKs again
    assert d.quick == 16


def test_every_delay_stays_below_half_a_second() -> None:
    d = model(quickack=0)
    d.on_data(0.0, 100, True, 536, 65535, 60.0)
    d.ato = 10.0  # (whatever the estimate) MUST-40: the timer is at most TCP_DELACK_MAX
    d.pingpong = 1
    assert not d.ack_now(0.0, 100, 536, 2, 5.0)
    assert d.timer_at == 0.2
    d2 = model(quickack=0)
    d2.on_data(0.0, 1000, False, 1460, 65535, 60.0)
    d2.ato = 10.0
    assert not d2.ack_now(0.0, 1000, 1460, 2, 0.0)
    assert d2.timer_at is not None and d2.timer_at < 0.5


def test_an_earlier_deadline_is_never_postponed() -> None:
    d = model(quickack=0)
    d.on_data(0.0, 100, True, 536, 65535, RTO)
    assert not d.ack_now(0.0, 100, 536, 2, 0.0)
    assert d.timer_at == 0.04
    d.on_data(0.02, 100, True, 536, 65535, RTO)
    assert d.ack_now(0.031, 200, 536, 2, 0.0)  # due within ATO/4: ACK now
    assert model().timer_at is None


def test_read_of_pushed_data_acks_unless_interactive() -> None:
    d = model(quickack=0)
    d.on_data(0.0, 100, True, 536, 65535, RTO)
    assert d.pushed and not d.pushed2
    assert d.ack_on_read(100, True, 100, 536)
    assert not d.ack_on_read(100, False, 100, 536)  # data left unread
    d.pingpong = 1
    assert not d.ack_on_read(100, True, 100, 536)
    d.on_data(0.01, 100, True, 536, 65535, RTO)
    assert d.pushed2 and d.ack_on_read(100, True, 200, 536)  # two small pushed segments


def test_fixed_model_of_the_rfc_profile() -> None:
    d = DelayedAck(TcpConfig.rfc())
    d.on_data(0.0, 100, True, 536, 65535, RTO)
    d.on_ack_sent()
    d.on_data_sent(0.001)
    assert not d.in_pingpong
    d.on_data(0.1, 100, True, 536, 65535, RTO)
    assert not d.ack_now(0.1, 100, 536, 2, 0.05)
    assert d.timer_at == 0.1 + 0.2
    assert d.on_timer(RTO) and d.ato == 0.2
    d.on_data(0.5, 100, True, 536, 65535, RTO)
    assert d.pushed and not d.ack_on_read(100, True, 100, 536)  # the timer decides


# ---- through a Connection


def test_request_reply_piggybacks_the_ack_on_the_reply() -> None:
    c = established_server()
    c.handle_segment(0.1, data_seg(0, 100))
    [a1] = c.pending_output()
    assert (a1.ack, a1.payload) == (9001 + 100, b"")  # quick ACK
    assert c.receive(0.1) == b"d" * 100
    c.send(0.11, b"r" * 200)
    [r1] = c.pending_output()
    assert (r1.ack, len(r1.payload)) == (9101, 200)
    c.handle_segment(0.2, Segment(9101, B_ISS + 1 + 200, ACK | PSH, 502, b"d" * 100,
                                  options=TcpOptions(timestamp=(130, 10))))
    assert c.pending_output() == []  # pingpong: the ACK waits...
    assert c.next_deadline() == 0.2 + 0.04
    c.receive(0.2)
    assert c.pending_output() == []
    c.send(0.22, b"r" * 200)
    [r2] = c.pending_output()
    assert (r2.ack, len(r2.payload)) == (9201, 200)  # ... and rides on the reply
    assert c.next_deadline() != 0.24


def test_peer_fin_ack_rides_on_our_fin() -> None:
    c = established_server()
    c.handle_segment(0.1, data_seg(0, 100))
    assert [s.ack for s in c.pending_output()] == [9101]
    c.handle_segment(0.3, Segment(9101, B_ISS + 1, ACK | FIN, 502,
                                  options=TcpOptions(timestamp=(130, 10))))
    assert c.state is State.CLOSE_WAIT
    assert c.pending_output() == []
    c.receive(0.3)
    c.close(0.31)
    [f] = c.pending_output()
    assert (f.flags & FIN, f.ack) == (FIN, 9102)


def test_peer_fin_on_a_fresh_connection_is_acked_at_once() -> None:
    # No data received yet: ATO is 0, the delayed ACK is due at once (Linux's next tick).
    c = established_server()
    c.handle_segment(0.1, Segment(9001, B_ISS + 1, ACK | FIN, 502,
                                  options=TcpOptions(timestamp=(130, 10))))
    [a] = c.pending_output()
    assert (a.flags, a.ack) == (ACK, 9002)


def test_rfc_profile_acks_the_fin_at_once() -> None:
    c = established_server(TcpConfig.rfc())
    c.handle_segment(0.1, data_seg(0, 100))
    c.handle_timers(0.31)
    assert [s.ack for s in c.pending_output()] == [9101]
    c.handle_segment(0.4, Segment(9101, B_ISS + 1, ACK | FIN, 502,
                                  options=TcpOptions(timestamp=(130, 10))))
    assert [s.ack for s in c.pending_output()] == [9102]


def test_syn_ack_ack_waits_for_pending_data_then_pingpong() -> None:
    # Linux tcp_rcv_synsent_state_process with sk_write_pending: a blocking Fast Open write
    # whose data did not all fit in the SYN: the SYN-ACK's ACK rides on the rest of the data,
    # and the peer's answer is then ACKed late (here on our FIN).
    c = Connection(cfg(timestamps=False), iss=1000, now=0.0)
    taken = c.open_active(0.0, ClientRequest(cookie=b"\x01" * 8, exp=False, space=900),
                          b"x" * 1900, syn_only=False)
    assert taken == 1900
    [syn] = c.pending_output()
    assert len(syn.payload) == 900
    c.handle_segment(0.02, Segment(5000, 1000 + 901, SYN | ACK, 5840,
                                   options=TcpOptions(mss=1460, wscale=6,
                                                      sack_permitted=True)))
    [d] = c.pending_output()
    assert (d.seq, len(d.payload), d.ack) == (1901, 1000, 5001)
    c.handle_segment(0.04, Segment(5001, 2901, ACK | PSH, 257, b"a" * 500))
    assert c.pending_output() == []  # no pure ACK: interactive
    assert c.receive(0.04) == b"a" * 500
    c.close(0.04)
    [f] = c.pending_output()
    assert (f.flags & FIN, f.seq, f.ack) == (FIN, 2901, 5501)


def test_syn_ack_is_acked_at_once_without_pending_data() -> None:
    c = Connection(cfg(timestamps=False), iss=1000, now=0.0)
    c.open_active(0.0)
    c.pending_output()
    c.handle_segment(0.02, Segment(5000, 1001, SYN | ACK, 5840,
                                   options=TcpOptions(mss=1460)))
    [a] = c.pending_output()
    assert (a.flags, a.ack) == (ACK, 5001)
    c.handle_segment(0.03, Segment(5001, 1001, ACK | PSH, 257, b"a" * 500))
    assert [s.ack for s in c.pending_output()] == [5501]  # first data: quick ACK


def test_tcp_quickack_option() -> None:
    # Linux TCP_QUICKACK: 0 -> pingpong (even the first data's ACK waits); 1 -> the pending
    # ACK of drained data leaves at once. (A 64 KB buffer: the SYN-ACK offered it all, so
    # reading sends no window update.)
    c = established_server(cfg(recv_buffer=65535))
    assert c.quickack
    c.set_quickack(0.05, False)
    assert not c.quickack
    c.handle_segment(0.1, data_seg(0, 100))
    assert c.pending_output() == []
    assert c.receive(0.1) == b"d" * 100
    assert c.pending_output() == []
    c.set_quickack(0.11, True)
    assert c.quickack
    assert [(s.ack, s.payload) for s in c.pending_output()] == [(9101, b"")]
    c.set_quickack(0.2, True)  # nothing waits: no ACK
    assert c.pending_output() == []


def test_configured_delays_are_capped_below_half_a_second() -> None:
    # MUST-40 whatever the configuration: a 2 s "delayed_ack" becomes 0.499 s.
    for conf in (TcpConfig().replace(delayed_ack=2.0, delayed_ack_max=3.0, quickack=0),
                 TcpConfig.rfc().replace(delayed_ack=2.0)):
        d = DelayedAck(conf)
        d.on_data(0.0, 100, True, 536, 65535, 60.0)
        assert not d.ack_now(0.0, 100, 536, 2, 0.0)
        assert d.timer_at == 0.499


@settings(max_examples=300, deadline=None)
@given(adaptive=st.booleans(), seg=st.integers(500, 1500), count=st.integers(1, 50),
       tail=st.integers(0, 1499), psh=st.booleans(), rcv_mss=st.integers(500, 1500),
       prior=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 1500)), max_size=4),
       gap=st.floats(0, 1))
def test_on_data_run_equals_on_data_piece_by_piece(
        adaptive: bool, seg: int, count: int, tail: int, psh: bool, rcv_mss: int,
        prior: list[tuple[float, int]], gap: float) -> None:
    # A coalesced segment handled at once ends in exactly the state of its pieces one by one.
    runs = [model(adaptive_delack=adaptive) for _ in range(2)]
    now = 0.0
    for d in runs:
        t = 0.0
        for dt, k in prior:  # some history first (ATO, last_seg_size, pushed flags)
            t += dt
            d.on_data(t, k, False, 1448, 65535, 0.2)
    now = sum(dt for dt, _ in prior) + gap
    n = seg * count + tail
    left, mss = n, rcv_mss
    while left > seg:
        mss = runs[0].on_data(now, seg, False, mss, 65535, 0.2)
        left -= seg
    mss = runs[0].on_data(now, left, psh, mss, 65535, 0.2)
    got = runs[1].on_data_run(now, seg, n, psh, rcv_mss, 65535, 0.2)
    assert got == mss
    assert {k: getattr(runs[1], k) for k in DelayedAck.__slots__} == \
        {k: getattr(runs[0], k) for k in DelayedAck.__slots__}
