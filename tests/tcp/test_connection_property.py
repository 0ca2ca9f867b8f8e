"""Property test: whatever the options, buffer sizes and a seeded impaired channel, two engines
exchange the exact bytes both ways, close in a random order and both reach CLOSED."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_connection_harness import cfg, pair

from pytcp.tcp.state import State


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    sack=st.booleans(), ts=st.booleans(), ws=st.booleans(), nodelay=st.booleans(),
    congestion=st.sampled_from(["cubic", "newreno"]),
    recv_buffer=st.sampled_from([3000, 20000, 1 << 20]),
    send_buffer=st.sampled_from([5000, 1 << 20]),
    loss=st.sampled_from([0.0, 0.02, 0.1]),
    reorder=st.sampled_from([0.0, 0.2]),
    a_len=st.integers(0, 60_000), b_len=st.integers(0, 30_000),
    close_order=st.sampled_from(["a", "b", "both"]),
    iss_a=st.integers(0, 2**32 - 1), iss_b=st.integers(0, 2**32 - 1),
)
def test_exact_bytes_and_clean_close(seed: int, sack: bool, ts: bool, ws: bool, nodelay: bool,
                                     congestion: str, recv_buffer: int, send_buffer: int,
                                     loss: float, reorder: float, a_len: int, b_len: int,
                                     close_order: str, iss_a: int, iss_b: int) -> None:
    c = cfg(sack=sack, timestamps=ts, window_scaling=ws, nodelay=nodelay, congestion=congestion,
            recv_buffer=recv_buffer, send_buffer=send_buffer, syn_retries=30, retries2=30)
    net = pair(c, c, iss_a=iss_a, iss_b=iss_b, loss=loss, reorder=reorder, seed=seed,
               delay=0.005)
    net.run(120.0)
    assert net.a.state is State.ESTABLISHED and net.b.state is State.ESTABLISHED
    rng = random.Random(seed)
    da, db = rng.randbytes(a_len), rng.randbytes(b_len)
    ia = ib = 0
    for _ in range(5000):
        if ia < len(da):
            ia += net.a.send(net.t, da[ia:ia + rng.randrange(1, 9000)])
        if ib < len(db):
            ib += net.b.send(net.t, db[ib:ib + rng.randrange(1, 9000)])
        net.run(0.02)
        if len(net.received["b"]) == len(da) and len(net.received["a"]) == len(db):
            break
    assert bytes(net.received["b"]) == da
    assert bytes(net.received["a"]) == db
    if close_order in ("a", "both"):
        net.a.close(net.t)
    if close_order == "b":
        net.b.close(net.t)
    net.run(1.0)
    if close_order == "a":
        net.b.close(net.t)
    elif close_order == "b":
        net.a.close(net.t)
    else:
        net.b.close(net.t)
    net.run(400.0)
    assert net.a.state is State.CLOSED and net.b.state is State.CLOSED
    assert net.a.next_deadline() is None and net.b.next_deadline() is None
