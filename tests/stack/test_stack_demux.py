"""Stack demux, listener accept queue and backlog, timer heap, GSO cutting and ICMP error
routing, with a scripted fake engine (tests/stack/stack_fakeconn.py) so only the stack is tested."""

from __future__ import annotations

import random

import pytest
from scapy.layers.inet import ICMP, IP, TCP  # type: ignore[import-untyped]
from stack_fakeconn import FakeConnection

from pytcp.drops import DropReason
from pytcp.stack import AcceptReady, FourTuple, GsoPacket, Stack, StackConfig
from pytcp.tcp.events import Closed, Connected
from pytcp.tcp.segment import Segment
from pytcp.wire.ipv4 import ip_to_int
from pytcp.wire.tcp import ACK, CWR, ECE, FIN, PSH, SYN

US = "10.0.0.2"
PEER = "10.0.0.1"


def make_stack(**cfg: object) -> Stack:
    s = Stack(US, now=0.0, config=StackConfig(**cfg), secret=b"s" * 16,  # type: ignore[arg-type]
              rng=random.Random(7))
    s.connection_factory = FakeConnection
    return s


def syn(sport: int, dport: int = 80, seq: int = 1000) -> bytes:
    return bytes(IP(src=PEER, dst=US) / TCP(sport=sport, dport=dport, seq=seq, flags="S",
                                            options=[("MSS", 1400)]))


def ack(sport: int, dport: int = 80, seq: int = 1001, ackno: int = 0) -> bytes:
    return bytes(IP(src=PEER, dst=US) / TCP(sport=sport, dport=dport, seq=seq, ack=ackno,
                                            flags="A"))


def test_syn_to_listener_creates_connection_and_accept_queue() -> None:
    s = make_stack()
    lst = s.listen(80)
    s.receive_packet(1.0, syn(40000))
    [h] = s.connections()
    assert h.key == FourTuple(ip_to_int(US), 80, ip_to_int(PEER), 40000)
    conn = h.conn
    assert isinstance(conn, FakeConnection)
    assert conn.mss == 1460  # MTU - 40
    assert conn.segments[0].flags == SYN and conn.segments[0].options.mss == 1400
    synack = IP(bytes(s.pending_packets()[0]))
    assert synack[TCP].flags == "SA" and synack[TCP].ack == 1001 and synack[TCP].seq == conn.iss
    assert dict(synack[TCP].options)["MSS"] == 1460
    assert lst.pending == 1 and lst.accept() is None
    s.receive_packet(1.1, ack(40000, ackno=conn.iss + 1))
    assert s.pending_events() == [(h, Connected()), (lst, AcceptReady())]
    assert lst.accept() is h and lst.accept() is None
    assert lst.pending == 0
    # the same 4-tuple now goes to the connection, not the listener
    s.receive_packet(1.2, ack(40000, ackno=conn.iss + 1))
    assert len(conn.segments) == 3


def test_syn_queue_full_without_cookies_drops_syn_silently() -> None:
    s = make_stack(syncookies=0)
    lst = s.listen(80, syn_backlog=2)
    s.receive_packet(1.0, syn(1))
    s.receive_packet(1.0, syn(2))
    s.pending_packets()
    s.receive_packet(1.0, syn(3))  # SYN-RECEIVED ones fill the SYN queue
    assert s.pending_packets() == []
    assert s.drops[DropReason.SYN_QUEUE_FULL] == 1 and lst.syn_queue == 2
    assert len(s.connections()) == 2
    h1 = s.connections()[0]
    s.receive_packet(1.1, ack(1, ackno=h1.conn.iss + 1))  # moves to the accept queue
    assert lst.syn_queue == 1 and lst.accept_queue == 1
    s.receive_packet(1.2, syn(3))
    assert s.drops[DropReason.SYN_QUEUE_FULL] == 1 and len(s.connections()) == 3


def test_backlog_overflow_drops_syn_silently() -> None:
    s = make_stack()
    lst = s.listen(80, backlog=2)
    for port in (1, 2):
        s.receive_packet(1.0, syn(port))
        h = s.get_connection(FourTuple(ip_to_int(US), 80, ip_to_int(PEER), port))
        assert h is not None
        s.receive_packet(1.0, ack(port, ackno=h.conn.iss + 1))
    s.pending_packets()
    assert lst.accept_queue == 2
    s.receive_packet(1.2, syn(3))  # established but not accepted: the accept queue is full
    assert s.pending_packets() == []
    assert s.drops[DropReason.LISTEN_OVERFLOW] == 1 and len(s.connections()) == 2
    assert lst.accept() is not None
    s.receive_packet(1.3, syn(3))
    assert s.drops[DropReason.LISTEN_OVERFLOW] == 1 and len(s.connections()) == 3


def test_listener_rfc9293_listen_checks() -> None:
    s = make_stack()
    s.listen(80)
    # second check: an ACK to a listener -> <SEQ=SEG.ACK><CTL=RST>
    s.receive_packet(1.0, ack(5, ackno=0x12345678))
    rst = IP(bytes(s.pending_packets()[0]))
    assert rst[TCP].flags == "R" and rst[TCP].seq == 0x12345678
    # first check: RST ignored; fourth: neither SYN nor RST nor ACK -> drop
    s.receive_packet(1.0, bytes(IP(src=PEER, dst=US) / TCP(sport=5, dport=80, flags="R")))
    s.receive_packet(1.0, bytes(IP(src=PEER, dst=US) / TCP(sport=5, dport=80, flags="F")))
    assert s.pending_packets() == [] and s.connections() == []
    # SYN-ACK to a listener: ACK check first -> RST
    s.receive_packet(1.0, bytes(IP(src=PEER, dst=US) / TCP(sport=5, dport=80, flags="SA", ack=9)))
    assert IP(bytes(s.pending_packets()[0]))[TCP].flags == "R"
    assert s.connections() == []


def test_listener_close_aborts_pending_and_port_closes() -> None:
    s = make_stack()
    lst = s.listen(80)
    s.receive_packet(1.0, syn(1))
    s.receive_packet(1.0, syn(2))
    s.pending_packets()
    lst.close(2.0)
    rsts = [IP(bytes(p)) for p in s.pending_packets()]
    assert [p[TCP].flags for p in rsts] == ["R", "R"]
    assert s.connections() == []
    s.receive_packet(3.0, syn(3))
    assert IP(bytes(s.pending_packets()[0]))[TCP].flags == "RA"  # closed port now
    with pytest.raises(OSError):
        s.listen(81) and s.listen(81)


def test_gso_super_segment_cut_to_pieces() -> None:
    s = make_stack()
    h = s.connect(0.0, PEER, 5001)
    s.pending_packets()
    data = bytes(random.Random(1).randbytes(10_000))
    seq0 = 0xFFFFF000  # crosses the 2**32 wrap
    h.conn.out.append(Segment(seq0, 777, ACK | PSH | FIN | CWR | ECE, 500, payload=data,
                              gso_size=1448))
    s._service(h, 1.0)
    pkts = [IP(bytes(p)) for p in s.pending_packets()]
    assert len(pkts) == 7
    assert [len(bytes(p[TCP].payload)) for p in pkts] == [1448] * 6 + [10_000 - 6 * 1448]
    assert [p[TCP].seq for p in pkts] == [(seq0 + i * 1448) & 0xFFFFFFFF for i in range(7)]
    assert [str(p[TCP].flags) for p in pkts] == ["AEC"] + ["AE"] * 5 + ["FPAE"]
    assert all(p[TCP].ack == 777 and p[TCP].window == 500 for p in pkts)
    assert b"".join(bytes(p[TCP].payload) for p in pkts) == data
    for raw in pkts:  # checksums right (scapy recomputes them)
        c = raw.copy()
        del c.chksum
        del c[TCP].chksum
        assert bytes(IP(bytes(c))) == bytes(raw)
    assert len({p.id for p in pkts}) == 7

    g = make_stack(gso=True)
    h = g.connect(0.0, PEER, 5001)
    g.pending_packets()
    h.conn.out.append(Segment(seq0, 777, ACK | PSH, 500, payload=data, gso_size=1448))
    g._service(h, 1.0)
    [one] = g.pending_packets()
    assert len(one) == 40 + 10_000 and bytes(IP(bytes(one))[TCP].payload) == data
    assert isinstance(one, GsoPacket) and one.gso_size == 1448  # the link's TSO cuts it


def test_timer_heap_runs_only_due_connections() -> None:
    s = make_stack()
    hs = [s.connect(0.0, PEER, 6000 + i) for i in range(5)]
    assert s.next_deadline() is None
    for i, h in enumerate(hs):
        h.conn.deadline = 10.0 + i
        s._service(h, 0.0)
    assert s.next_deadline() == 10.0
    hs[0].conn.deadline = 20.0  # moved later: the old heap entry is stale
    s._service(hs[0], 0.5)
    assert s.next_deadline() == 11.0
    s.handle_timers(12.5)
    assert [h.conn.timer_calls for h in hs] == [[], [12.5], [12.5], [], []]
    assert s.next_deadline() == 13.0
    s.handle_timers(100.0)
    assert [len(h.conn.timer_calls) for h in hs] == [1, 1, 1, 1, 1]
    assert s.next_deadline() is None


def test_timer_heap_is_compacted_under_churn() -> None:
    s = make_stack()
    hs = [s.connect(0.0, PEER, 7000 + i) for i in range(10)]
    compactions = 0
    orig = s._compact_timers

    def counting() -> None:
        nonlocal compactions
        compactions += 1
        orig()

    s._compact_timers = counting  # type: ignore[method-assign]
    for k in range(20_000):
        h = hs[k % 10]
        # alternating deadlines (delayed ACK <-> RTO) leave many equal-valued stale entries
        h.conn.deadline = 1000.0 + (k // 10) % 2
        s._service(h, 0.0)
    assert len(s._timers) <= 4 * 10 + 1024 + 1
    assert compactions <= 20_000 // 1024 + 1  # amortised: not on every call
    assert s.next_deadline() == 1000.0 + (19_999 // 10) % 2
    s.handle_timers(1001.0)
    assert [len(h.conn.timer_calls) for h in hs] == [1] * 10


def test_connect_ephemeral_ports_deterministic_and_unique() -> None:
    a, b = make_stack(), make_stack()
    pa = [a.connect(0.0, PEER, 80).key.local_port for _ in range(50)]
    pb = [b.connect(0.0, PEER, 80).key.local_port for _ in range(50)]
    assert pa == pb
    assert len(set(pa)) == 50 and all(32768 <= p <= 60999 for p in pa)
    small = make_stack(ephemeral_ports=(40000, 40002))
    ports = {small.connect(0.0, PEER, 80).key.local_port for _ in range(3)}
    assert ports == {40000, 40001, 40002}
    with pytest.raises(OSError):
        small.connect(0.0, PEER, 80)
    assert small.connect(0.0, PEER, 81).key.local_port in ports  # other 4-tuple: fine
    for bad in ("255.255.255.255", "224.0.0.1", "0.0.0.0", "127.0.0.1"):
        with pytest.raises(ValueError):
            a.connect(0.0, bad, 80)


def test_closed_connection_leaves_table_and_keeps_drops() -> None:
    s = make_stack()
    h = s.connect(0.0, PEER, 80)
    h.conn.drops[DropReason.OUT_OF_WINDOW] += 3
    assert s.drops[DropReason.OUT_OF_WINDOW] == 3
    seg = IP(src=PEER, dst=US) / TCP(sport=80, dport=h.key.local_port, flags="R")
    s.receive_packet(1.0, bytes(seg))
    assert (h, Closed()) in s.pending_events()
    assert s.connections() == [] and not h.open
    assert s.drops[DropReason.OUT_OF_WINDOW] == 3


def test_icmp_error_routed_to_quoted_connection() -> None:
    s = make_stack()
    h = s.connect(0.0, PEER, 80)
    [synpkt] = s.pending_packets()
    err = IP(src="10.9.9.9", dst=US) / ICMP(type=3, code=1) / bytes(synpkt)[:28]
    s.receive_packet(2.0, bytes(err))
    assert h.conn.icmp == [(2.0, 3, 1)]
    # quoting a 4-tuple we do not have, or not from us: ignored
    other = bytes(IP(src=US, dst=PEER) / TCP(sport=1, dport=2))[:28]
    s.receive_packet(2.0, bytes(IP(src=PEER, dst=US) / ICMP(type=11) / other))
    s.receive_packet(2.0, bytes(IP(src=PEER, dst=US) / ICMP(type=3, code=3) / bytes(syn(9))[:28]))
    s.receive_packet(2.0, bytes(IP(src=PEER, dst=US) / ICMP(type=0)))  # stray echo reply
    assert s.drops[DropReason.ICMP_IGNORED] == 3
    assert h.conn.icmp == [(2.0, 3, 1)]


def test_engine_exception_is_counted_not_raised() -> None:
    s = make_stack()
    h = s.connect(0.0, PEER, 80)
    h.conn.fail = True
    seg = IP(src=PEER, dst=US) / TCP(sport=80, dport=h.key.local_port, flags="A")
    s.receive_packet(1.0, bytes(seg))
    s.receive_packet(1.0, bytes(seg))
    assert s.drops[DropReason.STACK_ERROR] == 2


def test_thousands_of_connections_timers_stay_cheap() -> None:
    import time

    s = make_stack()
    hs = [s.connect(0.0, PEER, 10_000 + i) for i in range(3000)]
    for i, h in enumerate(hs):
        h.conn.deadline = 100.0 + (i % 300)  # 10 connections due per second
        s._service(h, 0.0)
    t0 = time.perf_counter()
    for sec in range(100, 400):
        assert s.next_deadline() == float(sec)
        s.handle_timers(float(sec))
    elapsed = time.perf_counter() - t0
    assert [len(h.conn.timer_calls) for h in hs] == [1] * 3000
    assert all(h.conn.timer_calls[0] == 100.0 + (i % 300) for i, h in enumerate(hs))
    assert s.next_deadline() is None
    assert elapsed < 1.0  # O(due * log n), not O(n) per call


def test_timer_exception_is_counted_and_other_timers_still_run() -> None:
    s = make_stack()
    bad, good = s.connect(0.0, PEER, 80), s.connect(0.0, PEER, 81)
    for h in (bad, good):
        h.conn.deadline = 5.0
        s._service(h, 0.0)

    def boom(now: float) -> None:
        raise RuntimeError("timer bug")

    bad.conn.handle_timers = boom  # type: ignore[method-assign]
    s.handle_timers(5.0)
    assert s.drops[DropReason.STACK_ERROR] == 1
    assert good.conn.timer_calls == [5.0]
