"""TimeWait, the compact TIME-WAIT record: it answers every segment exactly as the full
Connection in TIME-WAIT would (a differential test), and it is small."""

from __future__ import annotations

import copy
import sys
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_connection_harness import cfg, pair

from pytcp.drops import DropReason
from pytcp.tcp.connection import Connection
from pytcp.tcp.errors import TcpUsageError
from pytcp.tcp.segment import Segment
from pytcp.tcp.seq import seq_add, seq_le
from pytcp.tcp.state import State
from pytcp.wire.tcp import ACK, FIN, PSH, RST, SYN, TcpOptions

M = 2**32


def time_wait_conn(**kw: object) -> tuple[Connection, float]:
    """``a`` closes first and ends in TIME-WAIT (options as negotiated by default: TS+SACK)."""
    net = pair(cfg(**kw), cfg(**kw))
    net.a.send(net.t, b"request")
    net.b.send(net.t, b"response")
    net.run(0.2)
    net.a.close(net.t)
    net.run(0.1)
    net.b.close(net.t)
    net.run(0.1)
    assert net.a.state is State.TIME_WAIT
    net.a.pending_output()
    net.a.pending_events()
    return net.a, net.t


def test_only_in_time_wait() -> None:
    net = pair()
    with pytest.raises(TcpUsageError):
        net.a.to_time_wait(net.t)


def test_fields_and_size() -> None:
    conn, now = time_wait_conn()
    tw = conn.to_time_wait(now)
    assert tw.state is State.TIME_WAIT
    assert tw.snd_nxt == conn.snd_max and tw.rcv_nxt == conn.rcv_nxt
    assert tw.deadline == pytest.approx(conn.next_deadline())
    assert tw.ts_ok and tw.sack_ok
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        many = [conn.to_time_wait(now) for _ in range(1000)]
        per = (tracemalloc.get_traced_memory()[0] - before) / len(many)
    finally:
        tracemalloc.stop()
    assert per < 400, per  # Linux's tcp_timewait_sock is ~ 200-300 bytes too
    assert sys.getsizeof(tw) < 200


segment = st.tuples(
    st.integers(-70_000, 70_000),                         # seq relative to RCV.NXT
    st.integers(-2_000_000, 100),                         # ack relative to SND.NXT
    st.sampled_from([ACK, ACK | FIN, ACK | PSH, RST, RST | ACK, SYN, SYN | ACK, FIN, 0,
                     ACK | SYN | FIN]),
    st.integers(0, 30),                                   # payload length
    st.one_of(st.none(), st.integers(-1000, 1000)),       # TSval relative to TS.Recent
    st.floats(0.0, 20.0),                                 # time since the previous segment
)


@settings(max_examples=150, deadline=None)
@given(segs=st.lists(segment, min_size=1, max_size=12), ts=st.booleans())
def test_answers_like_the_connection(segs: list[tuple[int, int, int, int, int | None, float]],
                                     ts: bool) -> None:
    conn, now = time_wait_conn(timestamps=ts)
    full, now2 = time_wait_conn(timestamps=ts)  # the same connection again (deterministic)
    assert now2 == now and full.rcv_nxt == conn.rcv_nxt and full.ts_offset == conn.ts_offset
    tw = conn.to_time_wait(now)
    base_rcv, base_snd, base_ts = full.rcv_nxt, full.snd_max, full.ts_recent
    for rel_seq, rel_ack, flags, n, rel_ts, dt in segs:
        now += dt
        seq = seq_add(base_rcv, rel_seq)
        if (flags & FIN and not flags & RST and seq_le(seq, full.rcv_nxt)
                and seq_le(full.rcv_nxt, seq_add(seq, n))):
            continue  # a second FIN at RCV.NXT: TimeWait only ACKs it (documented)
        opts = TcpOptions(timestamp=(seq_add(base_ts, rel_ts), 0)) if rel_ts is not None \
            else TcpOptions()
        seg = Segment(seq, seq_add(base_snd, rel_ack), flags, 1000, b"x" * n, opts)
        before = copy.copy(full.drops)
        full.handle_segment(now, seg)
        want = [(s.seq, s.ack, s.flags, s.wnd, s.options) for s in full.pending_output()]
        dropped = full.drops - before
        reply, drop = tw.handle_segment(now, seg)
        got = [] if reply is None else [(reply.seq, reply.ack, reply.flags, reply.wnd,
                                         reply.options)]
        assert got == want, (seg, full.state)
        assert (dict(dropped) if dropped else {}) == ({drop: 1} if drop is not None else {})
        assert full.state is State.TIME_WAIT
        assert tw.deadline == pytest.approx(full.next_deadline())


def test_retransmitted_fin_restarts_the_timer_and_old_rst_is_ignored() -> None:
    conn, now = time_wait_conn()
    tw = conn.to_time_wait(now)
    first = tw.deadline
    fin = Segment(seq_add(tw.rcv_nxt, -1), tw.snd_nxt, FIN | ACK, 1000,
                  options=TcpOptions(timestamp=(seq_add(tw.ts_recent, 5), 0)))
    reply, drop = tw.handle_segment(now + 10, fin)
    assert reply is not None and reply.flags == ACK and reply.ack == tw.rcv_nxt
    assert drop is DropReason.OUT_OF_WINDOW
    assert tw.deadline == pytest.approx(now + 10 + conn.config.time_wait) and tw.deadline > first
    reply, drop = tw.handle_segment(now + 11, Segment(tw.rcv_nxt, 0, RST, 0))
    assert reply is None and drop is DropReason.RST_INVALID  # RFC 1337
    syn = Segment(seq_add(tw.rcv_nxt, 100_000), 0, SYN, 1000,
                  options=TcpOptions(timestamp=(seq_add(tw.ts_recent, 10), 0)))
    assert tw.accepts_new_syn(syn)
    old = Segment(seq_add(tw.rcv_nxt, 100_000), 0, SYN, 1000,
                  options=TcpOptions(timestamp=(seq_add(tw.ts_recent, -10), 0)))
    assert not tw.accepts_new_syn(old)
