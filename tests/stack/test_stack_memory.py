"""Memory bounds at the stack level: compact TIME-WAIT entries outside the connection limit,
their own bound, and connection cycles that leave nothing behind once TIME-WAIT expired."""

from __future__ import annotations

import gc
import random
import sys

from test_stack_tcp import B_ADDR, Wire, pair

from pytcp.drops import DropReason
from pytcp.stack import AcceptReady, Stack, StackConfig, TcpHandle
from pytcp.tcp.config import TcpConfig
from pytcp.tcp.events import Closed
from pytcp.wire.ipv4 import ip_to_int, parse_ipv4
from pytcp.wire.tcp import ACK, NO_OPTIONS, SYN, TcpHeader, TcpOptions, build_ipv4_tcp, parse_tcp


def cycle(w: Wire, port: int = 80, request: bytes = b"GET / HTTP/1.1\r\n\r\n",
          response: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") -> TcpHandle:
    """One connection from a to b's listener; b answers and closes first (b holds TIME-WAIT)."""
    lst = w.b._listeners[port]
    client = w.a.connect(w.now, B_ADDR, port)
    w.run_until(lambda: (lst, AcceptReady()) in w.events)
    w.events.remove((lst, AcceptReady()))
    server = lst.accept()
    assert server is not None
    client.send(w.now, request)
    w.run_until(lambda: server.conn.bytes_readable == len(request))
    assert server.receive(w.now) == request
    server.send(w.now, response)
    server.close(w.now)
    w.run_until(lambda: client.conn.bytes_readable == len(response))
    assert client.receive(w.now) == response
    w.run_until(lambda: client.conn.at_eof)
    client.close(w.now)
    w.run_until(lambda: (client, Closed()) in w.events and (server, Closed()) in w.events)
    w.events.clear()
    return server


def test_time_wait_entries_do_not_count_against_max_connections() -> None:
    a, b = pair(max_connections=4)
    w = Wire(a, b)
    b.listen(80)
    servers = [cycle(w) for _ in range(10)]
    assert b.connections() == [] and b.time_wait_count == 10  # more than max_connections
    assert all(str(s.state) == "TIME-WAIT" and not s.open for s in servers)
    assert b.stats["time_wait_entered"] == 10
    # the live table still has room: a connection is accepted while 10 are in TIME-WAIT
    client = a.connect(w.now, B_ADDR, 80)
    w.run_until(lambda: str(client.state) == "ESTABLISHED")
    # 60 s later (TcpConfig.time_wait) they are gone
    w.run_until(lambda: b.time_wait_count == 0, max_time=w.now + 61)
    assert b.stats["time_wait_expired"] == 10
    assert all(str(s.state) == "CLOSED" for s in servers)


def test_time_wait_bound_ends_the_connection_at_once() -> None:
    a, b = pair(max_time_wait=3)
    w = Wire(a, b)
    b.listen(80)
    for _ in range(5):
        cycle(w)
    assert b.time_wait_count == 3
    assert b.stats["time_wait_overflow"] == 2 and b.stats["time_wait_entered"] == 3


def _blocks() -> int:
    gc.collect()
    return sys.getallocatedblocks()


def test_connection_cycles_leave_nothing_once_time_wait_expired() -> None:
    """2,000 request/response cycles with TIME-WAIT shortened to 1 s: after it expired, the
    interpreter holds as many memory blocks as after the first 200 cycles (nothing per
    cycle is kept)."""
    a, b = pair(TcpConfig(time_wait=1.0))
    w = Wire(a, b)
    b.listen(80)
    for _ in range(200):
        cycle(w)
    w.run_until(lambda: b.time_wait_count == 0, max_time=w.now + 5)
    w.events.clear()
    before = _blocks()
    for _ in range(1800):
        cycle(w)
        w.now += 0.01
    held = b.time_wait_count
    w.run_until(lambda: b.time_wait_count == 0, max_time=w.now + 5)
    w.events.clear()
    after = _blocks()
    assert held > 50  # TIME-WAIT entries did pile up meanwhile
    assert a.connections() == [] and b.connections() == []
    # (a client port that met a 4-tuple still in TIME-WAIT reopened it: RFC 6191)
    assert b.stats["time_wait_expired"] + b.stats["time_wait_reused"] == 2000
    assert after - before < 1000, after - before  # blocks: a leak of one object a cycle is 1800


# ----------------------------------------------------------------- the stack-wide receive cap

class RawPeer:
    """A hand-driven peer (10.1.0.1) for one connection to the stack's listener on port 80."""

    def __init__(self, stack: Stack, sport: int) -> None:
        self.stack = stack
        self.sport = sport
        self.src = ip_to_int("10.1.0.1")
        self.dst = stack.addr
        self.seq = 1000 * sport
        stack.receive_packet(0.0, self.pkt(SYN, seq=self.seq, opts=TcpOptions(mss=1460)))
        synack = self.replies()[-1]
        assert synack.flags == SYN | ACK
        self.ack = (synack.seq + 1) & 0xFFFFFFFF
        self.seq += 1
        stack.receive_packet(0.0, self.pkt(ACK))
        self.replies()

    def pkt(self, flags: int, seq: int | None = None, payload: bytes = b"",
            opts: TcpOptions = NO_OPTIONS) -> bytearray:
        return build_ipv4_tcp(src=self.src, dst=self.dst, sport=self.sport, dport=80,
                              seq=self.seq if seq is None else seq, ack=getattr(self, "ack", 0),
                              flags=flags, window=65535, options=opts, payload=payload)

    def send(self, offset: int, payload: bytes) -> None:
        """Data at ``offset`` bytes past the first data byte."""
        self.stack.receive_packet(0.0, self.pkt(ACK, seq=(self.seq + offset) & 0xFFFFFFFF,
                                                payload=payload))

    def replies(self) -> list[TcpHeader]:
        out = []
        for p in self.stack.pending_packets():
            ip = parse_ipv4(p)
            th = parse_tcp(ip.payload, ip.src, ip.dst)
            if th.dport == self.sport:
                out.append(th)
        return out


def capped_stack(limit: int) -> Stack:
    st = Stack("10.1.0.2", now=0.0, config=StackConfig(recv_memory_limit=limit),
               secret=b"m" * 16, rng=random.Random(5))
    st.listen(80)
    return st


def test_out_of_order_data_is_pruned_first_when_the_cap_is_reached() -> None:
    st = capped_stack(40_000)
    p1, p2 = RawPeer(st, 1001), RawPeer(st, 1002)
    # p1: 30,000 bytes above a one-byte hole (out of order), p2: 8,000 unread in order
    for i in range(30):
        p1.send(1 + 1000 * i, b"o" * 1000)
    for i in range(8):
        p2.send(1000 * i, b"i" * 1000)
    assert st.memory()["rmem_used"] == 38_000 and st.memory()["rmem_ooo"] == 30_000
    # 5,000 more in order for p2 do not fit: p1's out-of-order data goes first (from the top)
    for i in range(8, 13):
        p2.send(1000 * i, b"i" * 1000)
    m = st.memory()
    assert m["rmem_used"] <= 40_000 and m["rmem_prunes"] >= 1
    assert m["rmem_pruned_bytes"] >= 3000 and m["rmem_ooo"] == 30_000 - m["rmem_pruned_bytes"]
    [h2] = [h for h in st.connections() if h.key.remote_port == 1002]
    assert h2.conn.bytes_readable == 13_000  # all of p2's in-order data was taken
    [h1] = [h for h in st.connections() if h.key.remote_port == 1001]
    ranges = h1.conn._reasm.ranges()
    assert ranges and ranges[0][0] == (p1.seq + 1) & 0xFFFFFFFF  # the lowest data stayed
    # p1 fills its hole: what is left joins the stream and the pruned rest comes again
    p1.send(0, b"h")
    kept = h1.conn.bytes_readable
    assert kept == 1 + m["rmem_ooo"]
    assert st.drops[DropReason.RCV_MEMORY] == 0


def test_in_order_data_is_dropped_at_the_cap_unless_nothing_is_unread() -> None:
    st = capped_stack(20_000)
    p1, p2, p3 = RawPeer(st, 1001), RawPeer(st, 1002), RawPeer(st, 1003)
    for i in range(10):
        p1.send(1000 * i, b"a" * 1000)
        p2.send(1000 * i, b"b" * 1000)
    assert st.memory()["rmem_used"] == 20_000
    wnd_before = p1.replies()[-1].window
    p1.send(10_000, b"a" * 1000)  # no room, nothing to prune: dropped, counted
    assert st.drops[DropReason.RCV_MEMORY] == 1
    [ack] = p1.replies()
    assert ack.ack == (p1.seq + 10_000) & 0xFFFFFFFF  # not acknowledged: the peer resends
    assert ack.window <= wnd_before  # and the window did not open further
    # a connection with nothing unread still makes progress (Linux sk_forced_mem_schedule)
    p3.send(0, b"c" * 1000)
    assert st.drops[DropReason.RCV_MEMORY] == 1 and st.memory()["rmem_used"] == 21_000
    # the application reads: room again, the retransmission is taken
    [h1] = [h for h in st.connections() if h.key.remote_port == 1001]
    assert h1.receive(0.1) == b"a" * 10_000
    assert st.memory()["rmem_used"] == 11_000
    p1.send(10_000, b"a" * 1000)
    assert h1.conn.bytes_readable == 1000
    # a forgotten connection's unread bytes stop counting
    [h2] = [h for h in st.connections() if h.key.remote_port == 1002]
    h2.abort(0.2)
    assert st.memory()["rmem_used"] == 2000
