"""Receive coalescing (GRO) in Stack.receive_batch: which segments merge (Linux
tcp_gro_receive's rules), and that a receiver with GRO ends in the same state and sends the
same packets, byte for byte, as one without it, whatever the batch holds."""

from __future__ import annotations

import hashlib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from pytcp.stack import Stack, StackConfig, TcpHandle
from pytcp.tcp.config import TcpConfig
from pytcp.wire.ipv4 import parse_ipv4
from pytcp.wire.tcp import ACK, FIN, PSH, parse_tcp

A_ADDR = "10.1.0.1"
B_ADDR = "10.1.0.2"


def _pair(gro: bool) -> tuple[Stack, Stack, TcpHandle, TcpHandle]:
    """An established connection a -> b (b's GRO on or off), everything deterministic."""
    a = Stack(A_ADDR, now=0.0, config=StackConfig(gro=gro), secret=b"a" * 16,
              rng=random.Random(1), tcp_config=TcpConfig.linux())
    b = Stack(B_ADDR, now=0.0, config=StackConfig(gro=gro), secret=b"b" * 16,
              rng=random.Random(2), tcp_config=TcpConfig.linux())
    lst = b.listen(80)
    client = a.connect(0.0, B_ADDR, 80)
    for _ in range(4):
        b.receive_batch(0.0, [bytes(p) for p in a.pending_packets()])
        a.receive_batch(0.0, [bytes(p) for p in b.pending_packets()])
    server = lst.accept()
    assert server is not None and client.conn.state.synchronized
    a.pending_events()
    b.pending_events()
    client.set_nodelay(True)
    return a, b, client, server


def _fields(pkt: bytes | bytearray) -> tuple[int, int, int, int]:
    ip = parse_ipv4(memoryview(pkt))
    th = parse_tcp(ip.payload, ip.src, ip.dst)
    return th.seq, th.ack, th.flags, len(th.payload)


def test_full_segments_in_order_become_one_segment_and_one_ack() -> None:
    a, b, client, server = _pair(gro=True)
    client.send(0.001, bytes(range(256)) * 40)  # 10,240 bytes: 7 full segments + a PSH tail
    burst = [bytes(p) for p in a.pending_packets()]
    assert len(burst) == 8
    b.receive_batch(0.002, burst)
    assert b.stats["gro_segments"] == 1 and b.stats["gro_merged"] == 8
    acks = [_fields(p) for p in b.pending_packets()]
    end = (client.conn.iss + 1 + 10_240) & 0xFFFFFFFF
    assert [(ack, flags) for _, ack, flags, _ in acks] == [(end, ACK)]
    assert server.receive(0.002) == bytes(range(256)) * 40
    assert server.conn._rcv_mss == 1448  # the segment size, not the coalesced length


def test_a_psh_ends_a_group_and_a_gap_is_not_merged() -> None:
    a, b, client, server = _pair(gro=True)
    client.send(0.001, bytes(1448 * 2 + 100))  # full, full, PSH tail of 100
    first = [bytes(p) for p in a.pending_packets()]
    client.send(0.001, bytes(1448 * 3))  # full, full, full(PSH)
    second = [bytes(p) for p in a.pending_packets()]
    assert len(first) == 3 and len(second) == 3
    # Out of order: the third packet of the second write is missing in the batch.
    b.receive_batch(0.002, first + second[:1] + second[2:])
    # Groups: first (3 packets, PSH ends it), second[0] alone (the next one is not
    # contiguous), second[2] is out of order and goes to the engine as it is.
    assert b.stats["gro_segments"] == 1 and b.stats["gro_merged"] == 3
    assert server.conn.bytes_readable == 1448 * 3 + 100
    acks = [_fields(p) for p in b.pending_packets()]
    # One ACK: the duplicate ACK (with SACK) for the out-of-order segment, sent at once,
    # already acknowledges all in-order data.
    end = (client.conn.iss + 1 + 1448 * 3 + 100) & 0xFFFFFFFF
    assert [(ack, n) for _, ack, _, n in acks] == [(end, 0)]


def test_different_timestamps_do_not_merge() -> None:
    a, b, client, server = _pair(gro=True)
    client.send(0.010, bytes(1448))
    p1 = [bytes(p) for p in a.pending_packets()]
    client.send(0.020, bytes(1448))  # TSval one tick later (ts_hz 1000)
    p2 = [bytes(p) for p in a.pending_packets()]
    b.receive_batch(0.03, p1 + p2)
    assert b.stats["gro_segments"] == 0
    assert server.receive(0.03) == bytes(2896)


def test_no_coalescing_when_turned_off_or_outside_a_batch() -> None:
    a, b, client, _server = _pair(gro=False)
    client.send(0.001, bytes(1448 * 4))
    b.receive_batch(0.002, [bytes(p) for p in a.pending_packets()])
    assert b.stats["gro_segments"] == 0
    a2, b2, client2, _ = _pair(gro=True)
    client2.send(0.001, bytes(1448 * 4))
    for p in a2.pending_packets():
        b2.receive_packet(0.002, bytes(p))
    assert b2.stats["gro_segments"] == 0


# ---- equivalence: GRO on and off give the same packets and the same engine state ----

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(1, 6000), st.booleans()),
        st.tuples(st.just("tick"), st.sampled_from([0.0, 0.0005, 0.001, 0.05])),
        st.tuples(st.just("deliver"), st.integers(1, 70),
                  st.sampled_from(["none", "swap", "drop", "dup", "reverse"]),
                  st.integers(0, 1000)),
        st.tuples(st.just("read"), st.integers(0, 20000)),
    ),
    min_size=1, max_size=25)


def _run(ops: list[tuple[object, ...]], gro: bool) -> tuple[object, ...]:
    a, b, client, server = _pair(gro)
    now = 0.001
    out_b: list[bytes] = []
    got = hashlib.sha256()
    n_got = 0
    queue: list[bytes] = []
    payload = bytes(range(251)) * 30
    for op in ops:
        kind = op[0]
        if kind == "send":
            size, nodelay = int(op[1]), bool(op[2])  # type: ignore[call-overload]
            client.set_nodelay(nodelay, now)
            if client.conn.send_space:
                client.send(now, payload[:size])
            queue += [bytes(p) for p in a.pending_packets()]
        elif kind == "tick":
            now += float(op[1])  # type: ignore[arg-type]
            for s in (a, b):
                d = s.next_deadline()
                if d is not None and d <= now:
                    s.handle_timers(now)
            queue += [bytes(p) for p in a.pending_packets()]
        elif kind == "deliver":
            n, how, at = int(op[1]), op[2], int(op[3])  # type: ignore[call-overload]
            batch, queue = queue[:n], queue[n:]
            if batch:
                i = at % len(batch)
                if how == "swap" and i + 1 < len(batch):
                    batch[i], batch[i + 1] = batch[i + 1], batch[i]
                elif how == "drop":
                    del batch[i]
                elif how == "dup":
                    batch.insert(i, batch[i])
                elif how == "reverse":
                    batch.reverse()
                b.receive_batch(now, batch)
            back = [bytes(p) for p in b.pending_packets()]
            out_b += back
            a.receive_batch(now, back)
            queue += [bytes(p) for p in a.pending_packets()]
        elif kind == "read":
            data = server.receive(now, int(op[1]))  # type: ignore[call-overload]
            got.update(data)
            n_got += len(data)
            back = [bytes(p) for p in b.pending_packets()]
            out_b += back
    c = server.conn
    d = c._dack
    state = (c.state, c.rcv_nxt, c.rcv_adv, c.ts_recent, c._rcv_mss, c._rcv_unacked,
             (d.quick, d.pingpong, d.ato, d.scheduled, d.pushed, d.pushed2, d.timer_at,
              d.last_seg_size), c._delack_at, c._ack_now, c.bytes_in,
             sorted((k.name, v) for k, v in c.drops.items()),  # (DropReason: no order)
             c._reasm.ranges(), c.next_deadline())
    events = [type(e).__name__ for _, e in b.pending_events()]
    return out_b, got.hexdigest(), n_got, state, events


@settings(max_examples=150, deadline=None)
@given(_ops)
def test_gro_gives_the_same_packets_and_state_as_segment_by_segment(
        ops: list[tuple[object, ...]]) -> None:
    with_gro = _run(ops, True)
    without = _run(ops, False)
    assert with_gro[0] == without[0]  # every packet the receiver sent, byte for byte
    assert with_gro[1:] == without[1:]


def test_equivalence_holds_for_a_long_bulk_stream() -> None:
    """The property on one long deterministic run (the bulk case GRO is for)."""
    ops: list[tuple[object, ...]] = []
    for i in range(40):
        ops += [("send", 6000, i % 3 == 0), ("tick", 0.0005 if i % 5 else 0.001),
                ("deliver", 64, "none", 0), ("read", 20000)]
    with_gro = _run(ops, True)
    assert with_gro == _run(ops, False)
    assert with_gro[2] == 240_000


def test_psh_and_flags_rules() -> None:
    """Only ACK(+PSH) data merges: a FIN segment is processed on its own."""
    a, b, client, server = _pair(gro=True)
    client.send(0.001, bytes(1448 * 2))
    client.shutdown(0.001)
    pkts = [bytes(p) for p in a.pending_packets()]
    flags = [_fields(p)[2] for p in pkts]
    assert flags == [ACK, ACK | PSH, ACK | FIN]
    b.receive_batch(0.002, pkts)
    # The PSH segment joins the first and ends the group; the FIN is processed on its own.
    assert b.stats["gro_segments"] == 1 and b.stats["gro_merged"] == 2
    assert server.receive(0.002) == bytes(2896)
    assert server.conn.at_eof


def test_an_inbound_gso_packet_gives_its_segment_size_to_the_engine() -> None:
    # A super-packet from the link (virtio-net gso_size, e.g. the kernel's GRO) reaches the
    # engine whole; the receive-MSS estimate is its gso_size (Linux tcp_measure_rcv_mss).
    from pytcp.wire.offload import RxPacket

    a = Stack(A_ADDR, now=0.0, config=StackConfig(gso=True), secret=b"a" * 16,
              rng=random.Random(1), tcp_config=TcpConfig.linux().replace(
                  max_segment_payload=60000))
    b = Stack(B_ADDR, now=0.0, secret=b"b" * 16, rng=random.Random(2),
              tcp_config=TcpConfig.linux())
    lst = b.listen(80)
    client = a.connect(0.0, B_ADDR, 80)
    for _ in range(4):
        b.receive_batch(0.0, [bytes(p) for p in a.pending_packets()])
        a.receive_batch(0.0, [bytes(p) for p in b.pending_packets()])
    server = lst.accept()
    assert server is not None
    client.set_nodelay(True)
    data = bytes(range(256)) * 20  # 5120 bytes
    client.send(0.001, data)
    [sup] = a.pending_packets()  # one super-packet, gso_size = the MSS
    assert getattr(sup, "gso_size", 0) == client.conn.snd_mss
    rx = RxPacket(bytes(sup))
    rx.gso_size = 1000  # as the link's header says
    b.receive_packet(0.002, rx)
    assert server.receive(0.002) == data
    assert server.conn._rcv_mss == 1000
