"""No connection outlives its peer (issue 7 item 4), in virtual time: unanswered zero-window
probes count toward R2 (``retries2``) as Linux's tcp_probe_timer counts them, answered probes
keep a zero window open indefinitely (MUST-37), and orphans (``close()`` / ``set_orphan()``)
give up after ``orphan_retries`` retransmissions or probes."""

from __future__ import annotations

import random

import pytest

from test_connection_harness import Net, cfg, pair

from pytcp.tcp.events import Closed, ConnectionTimedOut
from pytcp.tcp.state import State
from pytcp.wire.tcp import RST


def payload(n: int) -> bytes:
    return random.Random(3).randbytes(n)


def zero_window_pair(**cfg_a: object) -> tuple[Net, list[bool]]:
    """a has sent more than b's 20 KB receive buffer and b never reads: b's window is 0.
    Setting the returned flag makes b silent (every b->a segment is lost)."""
    silent = [False]
    net = pair(cfg(**cfg_a), cfg(recv_buffer=20000),
               drop=lambda d, s: silent[0] and d == "b>a")
    net.auto_read = False
    assert net.a.send(net.t, payload(100_000)) > 20000  # (the autotuned send buffer takes ~29 KB)
    net.run(1.0)
    assert net.a.snd_wnd == 0 and net.a.snd_una == net.a.snd_nxt
    net.a.pending_events()
    return net, silent


def probes_since(net: Net, t0: float) -> list[tuple[float, int]]:
    """(time, seq) of a's zero-window probes (no payload, no RST) sent from t0 on."""
    return [(t, s.seq) for (t, d, s) in net.log
            if d == "a>b" and t >= t0 and not s.payload and not s.flags & RST]


def test_silent_peer_behind_zero_window_is_dropped_after_retries2_probes() -> None:
    net, silent = zero_window_pair()
    silent[0] = True
    t0 = net.t
    net.run(3000.0)
    a = net.a
    assert a.state is State.CLOSED
    assert a.transitions[-1][3] == "zero-window probe timeout"
    probes = probes_since(net, t0)
    assert len(probes) == a.retries2 == 15  # exactly R2 unanswered probes, then give up
    assert all(seq == (a.snd_una - 1) & 0xFFFFFFFF for _, seq in probes)
    end = a.transitions[-1][0]
    # Backoff doubles up to persist_max (120 s): 16 intervals at most.
    assert end - t0 <= 16 * 120.0
    rst = [s for (t, d, s) in net.log if d == "a>b" and s.flags & RST]
    assert len(rst) == 1 and net.b.state is State.CLOSED  # the peer, if alive, learns it
    events = a.pending_events()
    assert events == [ConnectionTimedOut(), Closed()]


def test_answered_probes_keep_a_zero_window_open_and_reset_the_count() -> None:
    net, silent = zero_window_pair()
    t0 = net.t
    net.run(5000.0)  # the peer answers every probe: MUST-37, the window may stay 0 forever
    assert net.a.state is State.ESTABLISHED
    answered = len(probes_since(net, t0))
    assert answered > 15  # more probes than R2, all answered: no limit reached
    silent[0] = True
    t1 = net.t
    net.run(3000.0)
    assert net.a.state is State.CLOSED
    assert net.a.transitions[-1][3] == "zero-window probe timeout"
    # The count started again from 0 at the last answer: exactly R2 more probes.
    assert len(probes_since(net, t1)) == 15


def test_set_retries_bounds_the_probes_too() -> None:
    net, silent = zero_window_pair()
    net.a.set_retries(retries2=3)
    silent[0] = True
    t0 = net.t
    net.run(3000.0)
    assert net.a.state is State.CLOSED
    assert len(probes_since(net, t0)) == 3


def test_closed_stream_behind_a_silent_zero_window_is_an_orphan_that_gives_up() -> None:
    net, silent = zero_window_pair()
    silent[0] = True
    t0 = net.t
    net.a.close(net.t)  # queued data cannot drain: an orphan (FIN queued behind it)
    assert net.a.orphaned
    net.run(3000.0)
    a = net.a
    assert a.state is State.CLOSED
    assert a.transitions[-1][3] == "orphan zero-window timeout"
    assert len(probes_since(net, t0)) == a.config.orphan_retries == 8
    assert a.pending_events() == [Closed()]  # nobody to tell: no error event


def test_set_orphan_applies_the_orphan_limit_without_closing() -> None:
    net, silent = zero_window_pair()
    silent[0] = True
    t0 = net.t
    net.a.set_orphan()  # e.g. the api closed a stream that still has a backlog
    net.run(3000.0)
    assert net.a.state is State.CLOSED
    assert net.a.transitions[-1][3] == "orphan zero-window timeout"
    assert len(probes_since(net, t0)) == 8


def test_orphan_gives_up_on_an_answering_peer_once_the_backoff_is_capped() -> None:
    net, _ = zero_window_pair(persist_max=10.0)
    net.a.close(net.t)
    t0 = net.t
    net.run(3000.0)  # the peer answers every probe but never opens its window
    a = net.a
    assert a.state is State.CLOSED
    assert a.transitions[-1][3] == "orphan zero-window timeout"
    # The backoff counts every probe since the window closed (before close() too, as Linux's
    # icsk_backoff); the orphan ends once it reached orphan_retries (8) and the interval sits
    # at its 10 s cap ("not alive"), not before.
    after = probes_since(net, t0)
    assert 1 <= len(after) <= 8
    assert after[-1][0] - after[-2][0] == pytest.approx(10.0)
    assert a.transitions[-1][0] - after[-1][0] == pytest.approx(10.0)
    assert a.transitions[-1][0] - t0 < 200.0


def test_orphan_retransmissions_use_orphan_retries() -> None:
    silent = [False]
    net = pair(drop=lambda d, s: silent[0] and d == "b>a")
    silent[0] = True
    net.a.send(net.t, payload(5000))
    net.a.close(net.t)
    net.run(5000.0)
    assert net.a.state is State.CLOSED
    assert net.a.transitions[-1][3] == "retransmission timeout"
    # (a tail loss probe, RFC 8985 7, comes before the timeouts and is not an RTO)
    assert net.a.retransmits - net.a.tlp_probes == 8


def test_owned_connection_retransmits_retries2_times() -> None:
    silent = [False]
    net = pair(drop=lambda d, s: silent[0] and d == "b>a")
    silent[0] = True
    net.a.send(net.t, payload(5000))
    net.run(5000.0)
    assert net.a.state is State.CLOSED
    assert net.a.retransmits - net.a.tlp_probes == 15
    assert ConnectionTimedOut() in net.a.pending_events()
