"""The receive window we offer, as Linux grows it (pytcp/tcp/rcvwnd.py): the initial window
(tcp_select_initial_window), its growth as in-order data arrives (tcp_grow_window), the
buffer's autotuning as the application reads (tcp_rcv_space_adjust), the cap, SO_RCVBUF,
and the rfc profile's fixed window; the right edge never retreats (RFC 9293 3.8.6.2.2)."""

from __future__ import annotations

import hashlib
import random

from test_connection_harness import B_ISS, cfg, pair, syn_options

from pytcp.tcp.config import TcpConfig
from pytcp.tcp.connection import Connection
from pytcp.tcp.rcvwnd import RecvWindow, initial_window
from pytcp.tcp.segment import Segment
from pytcp.tcp.seq import seq_add, seq_ge
from pytcp.wire.tcp import ACK, PSH, SYN, TcpOptions


def _server(config: TcpConfig) -> tuple[Connection, Segment]:
    """A passive connection after SYN (peer wscale 7, TS on) and the handshake's ACK; its
    SYN-ACK."""
    c = Connection(config, iss=B_ISS, now=0.0)
    c.ts_offset = 0
    c.open_passive()
    c.handle_segment(0.0, Segment(9000, 0, SYN, 65535, options=syn_options(100)))
    [synack] = c.pending_output()
    c.handle_segment(0.01, Segment(9001, B_ISS + 1, ACK, 502,
                                   options=TcpOptions(timestamp=(110, 0))))
    c.pending_output()
    c.pending_events()
    return c, synack


def _data(off: int, n: int, tsval: int, tsecr: int) -> Segment:
    return Segment(9001 + off, B_ISS + 1, ACK | PSH, 502, b"d" * n,
                   options=TcpOptions(timestamp=(tsval, tsecr)))


def test_initial_window_is_linux_select_initial_window() -> None:
    linux = TcpConfig.linux()
    # 64 KiB of window (Linux tcp_rmem[1] = 131072 bytes of memory) in whole segments.
    assert initial_window(linux, 1460) == 64240 == 44 * 1460
    assert initial_window(linux, 1448) == 65160 == 45 * 1448  # MSS less the TS option
    # A big initial buffer: 65535 at most (RFC 7323 2.2: the SYN's window is not scaled).
    assert initial_window(linux.replace(recv_buffer_min=540000), 1460) == 65535
    # A small buffer: whole segments of it.
    assert initial_window(linux.replace(recv_buffer=3000), 1460) == 2920
    # The rfc profile offers the whole buffer (at most 65535 in the SYN).
    assert initial_window(TcpConfig.rfc(), 1460) == 65535
    assert initial_window(TcpConfig.rfc().replace(recv_buffer=3000), 1460) == 3000


def test_grow_window_adds_two_segments_per_segment_up_to_the_free_buffer() -> None:
    rw = RecvWindow(TcpConfig.linux().replace(recv_buffer_min=200_000))
    rw.syn_window(1448)
    rw.established(0.0, 1460, 0, 65160)
    assert (rw.rcv_ssthresh, rw.window_clamp, rw.space) == (65535, 200_000, 14600)
    rw.grow(1448, 200_000 - 1448, 1460)
    assert rw.rcv_ssthresh == 65535 + 2 * 1460  # max(2 advmss, 2 len)
    rw.grow(4000, 200_000 - 5448, 1460)
    assert rw.rcv_ssthresh == 65535 + 2 * 1460 + 8000
    rw.grow(4000, 78_000, 1460)  # bounded by the free buffer
    assert rw.rcv_ssthresh == 78_000 and rw.grows == 3
    rw.grow(4000, 60_000, 1460)  # never lowered
    assert rw.rcv_ssthresh == 78_000 and rw.grows == 3


def test_space_adjust_grows_the_buffer_once_per_rtt_up_to_the_cap() -> None:
    rw = RecvWindow(TcpConfig.linux().replace(recv_buffer=300_000))
    rw.syn_window(1448)
    rw.established(0.0, 1460, 0, 65160)
    assert rw.rcvbuf == 65536 and rw.space == 14600
    assert not rw.space_adjust(0.5, 50_000, 0, 50_000, 1460)  # no receiver RTT yet
    rw.measure_ts(1000, 1020, 1000, 1448, 1448)  # a full segment echoing TSval 1000, 20 ms
    assert rw.rtt == 0.02
    assert not rw.space_adjust(0.01, 50_000, 0, 50_000, 1460)  # less than an RTT
    # 50,000 bytes read in the RTT (> 14,600): rcvwin = 2*50000 + 16*1460 = 123,360,
    # plus twice its share of the increase: 123360 * 35400 // 14600 = 299,107.
    assert rw.space_adjust(0.03, 50_000, 0, 50_000, 1460)
    assert rw.rcvbuf == rw.window_clamp == 300_000  # capped (recv_buffer)
    assert (rw.space, rw.space_seq, rw.tunes) == (50_000, 50_000, 1)
    # Unread bytes do not count as read (Linux 6.16 receive-queue awareness).
    rw2 = RecvWindow(TcpConfig.linux())
    rw2.syn_window(1448)
    rw2.established(0.0, 1460, 0, 65160)
    rw2.measure_ts(1000, 1020, 1000, 1448, 1448)
    assert not rw2.space_adjust(0.03, 20_000, 10_000, 20_000, 1460)  # 10,000 < 14,600
    assert rw2.rcvbuf == 65536 and rw2.space == 14600


def test_window_starts_at_64k_and_opens_only_as_the_application_reads() -> None:
    c, synack = _server(cfg())
    assert synack.wnd == 65160
    # In-order full segments, TSecr echoing our TSval of 10 ms earlier: the window's right
    # edge never retreats by a scale unit (RFC 7323 Appendix F: < 2**7 when the rounded-up
    # field would pass the buffer) and never passes the buffer (64 KiB, nothing read).
    edges = []
    off = 0
    t = 0.02
    for i in range(40):
        c.handle_segment(t, _data(off, 1448, 200 + i, int(t * 1000) - 10))
        off += 1448
        for s in c.pending_output():
            edges.append(seq_add(s.ack, s.wnd << 7))
        t += 0.001
    assert all(seq_ge(b, seq_add(a, -127)) for a, b in zip(edges, edges[1:]))
    assert all(seq_ge(seq_add(9001, 65536), e) for e in edges)
    assert c.info().rcvbuf == 65536  # nothing read: no autotuning
    right_edge = edges[-1]
    assert right_edge - 9001 <= 65536
    # The application reads everything, an RTT later: the buffer grows (DRS) and the window
    # opens past 64 KiB.
    got = c.receive(t + 0.05)
    assert len(got) == off
    info = c.info()
    assert info.rcvbuf > 65536 and info.rcv_space == off
    c.pending_output()
    c.handle_segment(t + 0.06, _data(off, 1448, 300, int((t + 0.05) * 1000)))
    c.handle_timers(t + 0.5)  # (the delayed ACK)
    a = c.pending_output()[-1]
    assert a.ack == 9001 + off + 1448
    assert seq_add(a.ack, a.wnd << 7) - right_edge > 0
    assert c.info().rcv_ssthresh > 65160


def test_bulk_into_a_reading_receiver_grows_to_the_cap_and_never_shrinks() -> None:
    cap = 400_000
    net = pair(cfg_b=cfg(recv_buffer=cap))
    data = random.Random(3).randbytes(1_500_000)
    sent = 0
    for _ in range(2000):
        if sent < len(data):
            sent += net.a.send(net.t, data[sent:])
        net.run(0.01)
        if len(net.received["b"]) == len(data):
            break
    assert hashlib.sha256(bytes(net.received["b"])).digest() == hashlib.sha256(data).digest()
    info = net.b.info()
    assert 65536 < info.rcvbuf <= cap
    assert info.rcv_ssthresh <= cap
    acks = [s for s in net.segs("b>a") if not s.flags & SYN]
    edges = [seq_add(s.ack, s.wnd << 7) for s in acks]
    # RFC 9293 3.8.6.2.2 (no shrinking; < 2**7 at the buffer's end, RFC 7323 Appendix F)
    assert all(seq_ge(b, seq_add(a, -127)) for a, b in zip(edges, edges[1:]))
    assert max(s.wnd << 7 for s in acks) > 65536  # it did open past the initial window
    assert max(s.wnd << 7 for s in acks) <= cap + 127


def test_rfc_profile_and_so_rcvbuf_keep_a_fixed_window() -> None:
    c, synack = _server(TcpConfig.rfc().replace(wscale=7, min_rto=0.2))
    assert synack.wnd == 65535
    c.handle_segment(0.02, _data(0, 1448, 200, 10))
    c.handle_timers(0.5)  # (the rfc profile's delayed ACK)
    [a] = c.pending_output()
    assert a.wnd == ((1 << 20) - 1448) >> 7  # the whole free buffer at once
    # SO_RCVBUF: a fixed buffer, no autotuning however fast the application reads.
    c, _ = _server(cfg())
    c.set_rcvbuf(30_000)
    off = 0
    for i in range(10):
        c.handle_segment(0.02 + i * 0.03, _data(off, 1448, 200 + i, 10 + i * 30))
        off += 1448
        c.receive(0.03 + i * 0.03)
    c.pending_output()
    assert c.info().rcvbuf == 30_000 and c._rw.tunes == 0


def test_bookkeeping_stops_once_fully_grown() -> None:
    # A fixed 70,000-byte buffer: rcv_ssthresh grows from 65535 to it, then nothing is left
    # to grow and the per-segment bookkeeping stops (RecvWindow.active).
    rw = RecvWindow(TcpConfig.linux().replace(recv_buffer=70_000, recv_buffer_min=70_000))
    rw.syn_window(1448)
    rw.established(0.0, 1460, 0, 65535)
    assert rw.active and rw.rcv_ssthresh == 65535
    rw.grow(1448, 70_000, 1460)
    assert rw.active and rw.rcv_ssthresh == 65535 + 2920
    rw.grow(1448, 70_000, 1460)
    assert not rw.active and rw.rcv_ssthresh == 70_000
