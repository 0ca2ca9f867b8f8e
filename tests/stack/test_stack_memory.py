"""Memory bounds at the stack level: compact TIME-WAIT entries outside the connection limit,
their own bound, and connection cycles that leave nothing behind once TIME-WAIT expired."""

from __future__ import annotations

import gc
import sys

from test_stack_tcp import B_ADDR, Wire, pair

from pytcp.stack import AcceptReady, TcpHandle
from pytcp.tcp.config import TcpConfig
from pytcp.tcp.events import Closed


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
