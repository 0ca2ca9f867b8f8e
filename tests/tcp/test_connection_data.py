"""Data transfer: send/receive buffers, windows (RFC 7323 scaling), delayed ACK (RFC 5681 4.2,
RFC 1122), Nagle (RFC 896), PSH (MUST-61), zero window and persist (RFC 9293 3.8.6.1), GSO."""

from __future__ import annotations

import random

from test_connection_harness import B_ISS, cfg, pair, syn_options

from pytcp.tcp.config import TcpConfig
from pytcp.tcp.connection import Connection
from pytcp.tcp.events import DataAvailable, SendSpaceAvailable
from pytcp.tcp.segment import Segment
from pytcp.tcp.sendbuf import PAST_LIMIT_STEP, SKB_TRUESIZE
from pytcp.tcp.state import State
from pytcp.wire.tcp import ACK, PSH, SYN, TcpOptions


def payload(n: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(n)


def established_server(config: TcpConfig | None = None, tsval: int = 100) -> Connection:
    """A passive connection fed SYN and ACK by hand (peer ISS 9000, peer wscale 7, TS on)."""
    c = Connection(config or TcpConfig(), iss=B_ISS, now=0.0)
    c.ts_offset = 0
    c.open_passive()
    c.handle_segment(0.0, Segment(9000, 0, SYN, 65535, options=syn_options(tsval)))
    c.pending_output()
    c.handle_segment(0.01, Segment(9001, B_ISS + 1, ACK, 502,
                                   options=TcpOptions(timestamp=(tsval + 10, 0))))
    c.pending_output()
    c.pending_events()
    return c


def data_seg(seq_off: int, n: int, t: int = 120, flags: int = ACK | PSH) -> Segment:
    return Segment(9001 + seq_off, B_ISS + 1, flags, 502, b"d" * n,
                   options=TcpOptions(timestamp=(t, 10)))


def test_bulk_transfer_one_way_exact_bytes() -> None:
    net = pair()
    data = payload(1_000_000)
    sent = 0
    for _ in range(1000):
        if sent < len(data):
            sent += net.a.send(net.t, data[sent:])
        net.run(0.05)
        if len(net.received["b"]) == len(data):
            break
    assert bytes(net.received["b"]) == data
    net.run(0.1)
    # every data segment is at most one MSS and none was retransmitted
    segs = [s for s in net.segs("a>b") if s.payload]
    assert max(len(s.payload) for s in segs) == 1448
    assert net.a.info().retransmits == 0
    assert net.a.info().bytes_out == len(data)
    assert net.b.info().bytes_in == len(data)


def test_both_directions_at_once() -> None:
    net = pair()
    da, db = payload(200_000, 1), payload(150_000, 2)
    ia = ib = 0
    for _ in range(500):
        ia += net.a.send(net.t, da[ia:]) if ia < len(da) else 0
        ib += net.b.send(net.t, db[ib:]) if ib < len(db) else 0
        net.run(0.05)
        if len(net.received["b"]) == len(da) and len(net.received["a"]) == len(db):
            break
    assert bytes(net.received["b"]) == da
    assert bytes(net.received["a"]) == db


def test_quickack_then_delayed_ack_every_second_segment() -> None:
    c = established_server(cfg(quickack=2))
    # quickack: the first two data segments are ACKed at once
    c.handle_segment(0.1, data_seg(0, 1000))
    [a1] = c.pending_output()
    assert (a1.ack, a1.flags) == (9001 + 1000, ACK)
    c.handle_segment(0.2, data_seg(1000, 1000))
    [a2] = c.pending_output()
    assert a2.ack == 9001 + 2000
    # then delayed: one segment waits for the 40 ms timer
    c.handle_segment(0.3, data_seg(2000, 1000))
    assert c.pending_output() == []
    assert c.next_deadline() == 0.3 + 0.04
    c.handle_timers(0.34)
    [a3] = c.pending_output()
    assert a3.ack == 9001 + 3000
    # two full-sized segments: the second draws the ACK at once
    c.handle_segment(0.5, data_seg(3000, 1448))
    assert c.pending_output() == []
    c.handle_segment(0.5, data_seg(3000 + 1448, 1448))
    [a4] = c.pending_output()
    assert a4.ack == 9001 + 3000 + 2 * 1448
    assert c.next_deadline() is None
    assert bytes(c.receive(0.6)) == b"d" * (3000 + 2 * 1448)


def test_one_ack_for_a_batch_of_segments() -> None:
    c = established_server(cfg(quickack=0))
    for i in range(10):
        c.handle_segment(0.1, data_seg(i * 1448, 1448))
    out = c.pending_output()
    assert [s.ack for s in out] == [9001 + 10 * 1448]  # MUST-58/59: one ACK for the batch
    assert c.pending_events() == [DataAvailable()]  # one event per drain
    c.handle_segment(0.2, data_seg(10 * 1448, 100))
    assert c.pending_events() == [DataAvailable()]


def test_gro_super_segment_is_accepted_and_acked() -> None:
    c = established_server(cfg(quickack=0))
    c.handle_segment(0.1, data_seg(0, 64000))
    [a] = c.pending_output()
    assert a.ack == 9001 + 64000
    assert len(c.receive(0.1)) == 64000


def test_advertised_window_is_free_buffer_scaled() -> None:
    # The whole free buffer, scaled (without Linux's window growth: tests/tcp/test_rcvwnd.py).
    c = established_server(cfg(recv_buffer=1 << 20, quickack=1, rcv_window_growth=False))
    c.handle_segment(0.1, data_seg(0, 10000))
    [a] = c.pending_output()
    assert a.wnd == ((1 << 20) - 10000) >> 7 or a.wnd == -(-((1 << 20) - 10000) // 128)
    assert c.info().rcv_wnd <= (1 << 20) - 10000 + 127


def test_nagle_holds_small_segments_until_ack_nodelay_does_not() -> None:
    c = established_server()
    c.send(1.0, b"a")
    [s1] = c.pending_output()
    assert s1.payload == b"a" and s1.flags == ACK | PSH
    c.send(1.0, b"b")
    c.send(1.0, b"c")
    assert c.pending_output() == []  # Nagle: one small segment outstanding
    c.handle_segment(1.05, Segment(9001, B_ISS + 2, ACK, 502,
                                   options=TcpOptions(timestamp=(200, 1000))))
    [s2] = c.pending_output()
    assert s2.payload == b"bc" and s2.seq == B_ISS + 2
    c.set_nodelay(True)
    c.send(1.1, b"d")
    c.send(1.1, b"e")
    assert [s.payload for s in c.pending_output()] == [b"de"]
    c.send(1.1, b"f")
    assert [s.payload for s in c.pending_output()] == [b"f"]


def test_psh_on_last_segment_of_a_write() -> None:
    c = established_server()
    c.send(1.0, b"x" * 5000)
    out = c.pending_output()
    assert [len(s.payload) for s in out] == [1448, 1448, 1448, 656]
    assert [bool(s.flags & PSH) for s in out] == [False, False, False, True]
    assert [s.seq for s in out] == [B_ISS + 1 + i * 1448 for i in range(4)]


def test_initial_window_is_ten_segments() -> None:
    c = established_server()
    c.send(1.0, b"x" * 100_000)
    out = c.pending_output()
    assert sum(len(s.payload) for s in out) == 10 * 1448


def test_gso_super_segments_when_max_segment_payload_is_large() -> None:
    c = established_server(cfg(max_segment_payload=65000))
    c.send(1.0, b"x" * 20000)
    out = c.pending_output()
    assert len(out) == 1
    assert len(out[0].payload) == 10 * 1448 and out[0].gso_size == 1448


def test_send_buffer_full_then_send_space_event() -> None:
    # Linux accounting: a write fills skbs of the size goal; a new skb only while the queue's
    # truesize (payload + SKB_TRUESIZE each) is under SO_SNDBUF, so one skb may pass it.
    net = pair(cfg(send_buffer=10000))
    a = net.a
    assert a.sndbuf == 10000  # (autotuning is capped by send_buffer)
    goal = a._size_goal(False)
    assert goal == (65535 // 2) // 1448 * 1448  # half the peer's window, whole segments
    n = a.send(net.t, b"z" * 100_000)
    # The first skb is filled and pushed at once (tcp_push_one): the initial window leaves
    # and its unsent rest is a new tail skb with room up to the goal, filled too; a third
    # skb would start above SO_SNDBUF.
    assert n == goal + 10 * 1448
    assert a._sendbuf.skbs == 11  # one per segment sent (tso_fragment), the unsent tail
    assert a._sendbuf.queued == n + SKB_TRUESIZE * 11
    assert a.send_space == 0 and not a.writeable
    assert a.send(net.t, b"z") == 0
    net.run(0.1)
    assert SendSpaceAvailable() in a.pending_events()  # woken once writeable again
    assert a.writeable and a.send_space > 0
    assert len(net.received["b"]) == n


def test_zero_window_persist_probes_back_off_and_recover() -> None:
    net = pair(cfg_b=cfg(recv_buffer=20000))
    net.auto_read = False
    data = payload(100_000)
    sent = net.a.send(net.t, data)
    net.run(1.0)
    assert net.a.snd_wnd == 0
    got = len(net.b._rcvq)
    assert got <= 20000 + 127
    # persist: probes with SEQ = SND.UNA - 1 at growing intervals, the window stays closed
    t0 = net.t
    net.run(30.0)
    probes = [(t, s) for (t, d, s) in net.log if d == "a>b" and t >= t0 and not s.payload]
    assert len(probes) >= 4
    gaps = [b[0] - a[0] for a, b in zip(probes, probes[1:])]
    assert all(g2 >= g1 * 1.9 for g1, g2 in zip(gaps, gaps[1:]))
    assert all(s.seq == (net.a.snd_una - 1) & 0xFFFFFFFF for _, s in probes)
    assert net.a.state is State.ESTABLISHED  # a zero window may last indefinitely (MUST-37)
    # the reader drains: a window update reopens the flow
    net.auto_read = True
    for _ in range(200):
        if sent < len(data):
            sent += net.a.send(net.t, data[sent:])
        net.run(0.2)
        if len(net.received["b"]) == len(data):
            break
    assert bytes(net.received["b"]) == data


def test_receiver_sws_does_not_open_window_by_tiny_amounts() -> None:
    c = established_server(cfg(recv_buffer=8000, quickack=100, rcv_window_growth=False))
    c.handle_segment(0.1, data_seg(0, 4000))
    c.handle_segment(0.1, data_seg(4000, 4000))
    [a] = c.pending_output()
    assert a.wnd == 0
    c.receive(0.2, 10)  # 10 bytes freed: no window update (SWS avoidance)
    assert c.pending_output() == []
    c.receive(0.2, 3000)
    [u] = c.pending_output()
    assert u.wnd > 0 and u.ack == 9001 + 8000


def test_restart_after_idle_uses_initial_window() -> None:
    net = pair()
    net.a.send(net.t, payload(300_000))
    net.run(2.0)
    assert net.a.info().cwnd > 10 * 1448
    net.run(10.0)  # idle for much longer than the RTO
    t0 = net.t
    net.a.send(net.t, payload(100_000))
    first_burst = [s for s in net.segs("a>b", since=t0) if s.payload]
    net.run(0.0)
    assert len(net.a.pending_output()) == 0
    burst = [s for (t, d, s) in net.log if d == "a>b" and t == t0 and s.payload]
    assert first_burst == [] and len(burst) == 10  # RFC 5681 4.1


def test_send_buffer_holds_storage_only_while_it_holds_data() -> None:
    c = Connection(cfg(send_buffer=1 << 20), iss=B_ISS, now=0.0)
    c.open_passive()
    c.handle_segment(0.0, Segment(9000, 0, SYN, 65535, options=syn_options()))
    assert c._sendbuf.allocated == 0  # a half-open connection holds no ring
    c.handle_segment(0.01, Segment(9001, B_ISS + 1, ACK, 502,
                                   options=TcpOptions(timestamp=(110, 0))))
    # Linux tcp_sndbuf_expand at establishment: two initial windows (10 segments) of
    # worst-case skbs, a 4096-byte head (1448 + 320 + 320 rounded up) plus 256 each.
    assert c.sndbuf == 2 * 10 * (4096 + 256)
    assert c.send_space == c.sndbuf
    assert c.send(0.02, b"abc") == 3
    assert c.send_space == c.sndbuf - 3 - SKB_TRUESIZE
    assert 0 < c._sendbuf.allocated <= 4096  # a small ring for a small write
    [d] = [s for s in c.pending_output() if s.payload]
    c.handle_segment(0.05, Segment(9001, d.seq + 3, ACK, 502,
                                   options=TcpOptions(timestamp=(120, d.options.timestamp[0]))))
    assert c._sendbuf.allocated == 0  # drained: released


def test_send_buffer_limit_grows_with_cwnd_up_to_the_maximum() -> None:
    net = pair(cfg(send_buffer=300_000, send_buffer_min=4096))
    assert net.a.sndbuf == 2 * 10 * (4096 + 256)  # (tcp_sndbuf_expand at establishment)
    data = payload(2_000_000)
    sent = 0
    limits = []
    for _ in range(2000):
        if sent < len(data):
            sent += net.a.send(net.t, data[sent:])
        limits.append(net.a.sndbuf)
        # the ring: at most SO_SNDBUF plus the one skb a write may start below it
        # (past the limit the ring grows in PAST_LIMIT_STEP multiples, not per append)
        assert net.a._sendbuf.allocated <= 300_000 + net.a._size_goal(False) + PAST_LIMIT_STEP
        assert len(net.a._sendbuf) <= net.a.sndbuf + net.a._size_goal(False)
        net.run(0.02)
        if len(net.received["b"]) == len(data):
            break
    assert bytes(net.received["b"]) == data
    assert limits == sorted(limits)  # never shrinks
    assert limits[-1] == 300_000  # reached the configured maximum
    net.run(1.0)
    assert net.a._sendbuf.allocated == 0  # all acknowledged: released


def test_orphan_gives_up_on_a_window_that_never_opens() -> None:
    net = pair(cfg_b=cfg(recv_buffer=20000))
    net.auto_read = False
    net.a.send(net.t, payload(100_000))
    net.run(1.0)
    assert net.a.snd_wnd == 0
    net.a.close(net.t)  # the application is gone; the peer never reads
    net.run(3000.0)
    assert net.a.state is State.CLOSED
    assert net.a.transitions[-1][3] == "orphan zero-window timeout"
    assert net.b.state is State.CLOSED  # it got the RST


def test_msg_eor_records_are_not_joined() -> None:
    """Linux MSG_EOR: no segment carries a record's last bytes with bytes written after it;
    the record's end carries PSH and is not held by Nagle while more data is queued."""
    c = established_server()
    mss = c.snd_mss
    c.send(1.0, b"a" * 300, eor=True)
    c.send(1.0, b"b" * 300, eor=True)
    c.send(1.0, b"c" * 300)
    out = c.pending_output()
    # Two records, each its own segment with PSH; the tail (not a record) waits for Nagle
    # (Minshall: a small segment is unacknowledged), as Linux's last skb does.
    assert [len(s.payload) for s in out] == [300, 300]
    assert [bytes(s.payload[:1]) for s in out] == [b"a", b"b"]
    assert all(s.flags & PSH for s in out)
    c2 = established_server()
    c2.send(1.0, b"x" * 300)
    c2.send(1.0, b"y" * 300)
    assert [len(s.payload) for s in c2.pending_output()] == [600]  # without EOR: one segment
    assert mss > 600


def test_chronographs_busy_rwnd_and_sndbuf_limited_time() -> None:
    # Linux TCP_INFO tcpi_busy_time / tcpi_rwnd_limited / tcpi_sndbuf_limited
    # (tcp_chrono_start/stop): time with data to send, and how much of it the peer's window
    # or the send buffer held the sender back.
    # (The receiver offers its whole buffer at once: its window is not what limits here.)
    net = pair(cfg_b=cfg(rcv_window_growth=False))
    a = net.a
    assert a.chrono(net.t) == (0.0, 0.0, 0.0)  # nothing sent yet
    # A small SO_SNDBUF: everything queued is soon in flight while the queue is still over
    # two thirds of it (not writeable): the send buffer limits the sender until ACKs free it.
    a.set_sndbuf(40000)
    t0 = net.t
    data = payload(200_000)
    sent = a.send(net.t, data)
    for _ in range(500):
        net.run(0.01)
        if sent < len(data) and SendSpaceAvailable() in a.pending_events():
            sent += a.send(net.t, data[sent:])
        if len(net.received["b"]) == len(data):
            break
    assert bytes(net.received["b"]) == data
    net.run(0.5)
    busy, rwnd, sndbuf = a.chrono(net.t)
    assert rwnd == 0.0  # the receiver's window never stopped us
    assert 0 < sndbuf < busy <= net.t - t0
    assert a.chrono(net.t + 5.0) == (busy, rwnd, sndbuf)  # all acknowledged: stopped

    # A receiver that does not read: its window closes and holds the sender back.
    net = pair(cfg_b=cfg(recv_buffer=20000))
    net.auto_read = False
    net.a.send(net.t, payload(100_000))
    t0 = net.t
    net.run(2.0)
    busy, rwnd, _ = net.a.chrono(net.t)
    assert net.a.snd_wnd == 0
    assert 1.5 < rwnd <= busy <= net.t - t0
