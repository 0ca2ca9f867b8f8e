"""A silent peer behind a zero window, through the stack (issue 7 item 4), in virtual time:
the stack's timers drive the zero-window probes, the connection leaves the table after R2
unanswered probes (``ConnectionTimedOut``, then ``Closed``), or after the orphan limit once
the application closed it."""

from __future__ import annotations

import random

import pytest
from test_stack_tcp import Wire, connect_pair, pair

from pytcp.link.impair import Impairment, ImpairSpec
from pytcp.tcp.config import TcpConfig
from pytcp.tcp.events import Closed, ConnectionTimedOut
from pytcp.wire.ipv4 import parse_ipv4
from pytcp.wire.tcp import RST, parse_tcp


@pytest.mark.parametrize("orphan", [False, True], ids=["owned", "orphan"])
def test_silent_zero_window_peer_leaves_the_table(orphan: bool) -> None:
    a, b = pair(TcpConfig().replace(recv_buffer=8192))
    w = Wire(a, b)
    client, server = connect_pair(w)
    assert server.send(w.now, bytes(50_000)) > 8192  # the client never reads: window 0
    w.run_until(lambda: server.conn.snd_wnd == 0 and server.conn.snd_una == server.conn.snd_nxt)
    # From now on the client is silent: everything it would send is lost.
    w.imp[id(a)] = Impairment(ImpairSpec.parse("loss=1"), random.Random(1))
    if orphan:
        server.close(w.now)
    t0 = w.now
    base = max(server.conn._rtt.rto, 0.2)  # the first probe interval (RTO, at least 200 ms)
    sent: list[bytes] = []
    real = b.pending_packets

    def tap() -> list[bytes | bytearray]:
        pkts = real()
        sent.extend(bytes(p) for p in pkts)
        return pkts

    b.pending_packets = tap  # type: ignore[method-assign]
    w.run_until(lambda: server not in b.connections(), max_time=t0 + 3000.0)
    tap()  # what the last timer queued
    w.events += b.pending_events()
    limit = 8 if orphan else 15
    segs = [parse_tcp(ip.payload, ip.src, ip.dst) for ip in map(parse_ipv4, sent)]
    probes = [s for s in segs if not s.payload and not s.flags & RST]
    assert len(probes) == limit
    assert [s.flags & RST for s in segs][-1]  # it ends with an RST
    mine = [e for h, e in w.events if h is server]
    assert mine[-1] == Closed()
    assert (ConnectionTimedOut() in mine) is not orphan
    reason = server.conn.transitions[-1][3]
    assert reason == ("orphan zero-window timeout" if orphan else "zero-window probe timeout")
    print(f"{'orphan' if orphan else 'owned'}: gone {w.now - t0:.1f} s after the peer went silent")
    # The probe interval doubling per probe from max(RTO, 200 ms) (one doubling spent before
    # the silence), capped at 120 s:
    assert w.now - t0 <= (base * 1023 if orphan else 2 * base * 511 + 7 * 120.0) + 1
