"""Proportional Rate Reduction (RFC 6937, RFC 9937): the sndcnt rules alone, and the engine's
fast recovery without SACK under PRR (for CUBIC and NewReno, as Linux)."""

from __future__ import annotations

import pytest

from pytcp.tcp.config import TcpConfig
from pytcp.tcp.connection import Connection
from pytcp.tcp.prr import Prr
from pytcp.tcp.segment import Segment
from pytcp.wire.tcp import ACK, SYN, TcpOptions

MSS = 1000
ISS = 50000
PEER = 9000


def test_proportional_part_sends_ssthresh_over_recoverfs_per_delivered() -> None:
    p = Prr()
    p.start(ssthresh=7 * MSS, recover_fs=10 * MSS, mss=MSS)
    # First ACK: forced fast retransmit (at least one segment).
    cwnd = p.on_ack(MSS, pipe=9 * MSS, safe_ack=False)
    assert cwnd == 10 * MSS  # pipe 9 + 1
    p.on_sent(MSS)
    sent = 1
    for _ in range(9):
        cwnd = p.on_ack(MSS, pipe=9 * MSS, safe_ack=False)
        assert cwnd is not None
        k = cwnd // MSS - 9
        p.on_sent(k * MSS)
        sent += k
    # 10 delivered -> CEIL(10 * 7 / 10) = 7 sent in total (RFC 6937 3).
    assert sent == 7


def test_reduction_bound_crb_and_ssrb() -> None:
    p = Prr()
    p.start(ssthresh=10 * MSS, recover_fs=20 * MSS, mss=MSS)
    p.on_sent(MSS)  # the fast retransmit already went out
    # pipe below ssthresh: conservative (CRB) on an unsafe ACK ...
    assert p.on_ack(2 * MSS, pipe=4 * MSS, safe_ack=False) == 6 * MSS
    p.on_sent(2 * MSS)
    # ... one segment more (slow-start like, SSRB) on a safe ACK (RFC 9937).
    assert p.on_ack(MSS, pipe=4 * MSS, safe_ack=True) == 6 * MSS
    # never more than up to ssthresh
    assert p.on_ack(8 * MSS, pipe=9 * MSS, safe_ack=True) == 10 * MSS


def test_nothing_delivered_changes_nothing_and_inactive_is_inert() -> None:
    p = Prr()
    assert p.on_ack(MSS, 0, True) is None
    p.start(5 * MSS, 10 * MSS, MSS)
    assert p.on_ack(0, 3 * MSS, True) is None
    p.stop()
    p.on_sent(MSS)
    assert p.out == 0


# --- the engine: PRR in fast recovery without SACK (NewReno, RFC 6582), as Linux runs it ---

def _nosack_server(congestion: str, prr: bool = True) -> Connection:
    """An established passive connection whose peer offered neither SACK nor timestamps
    (MSS 1000, window 65535), with 10 segments of a 20-segment write in flight."""
    c = Connection(TcpConfig().replace(congestion=congestion, prr=prr), iss=ISS, now=0.0)
    c.open_passive()
    c.handle_segment(0.0, Segment(PEER, 0, SYN, 65535, options=TcpOptions(mss=MSS)))
    c.pending_output()
    c.handle_segment(0.1, Segment(PEER + 1, ISS + 1, ACK, 65535))
    c.pending_output()
    c.pending_events()
    c.send(0.1, b"p" * 20 * MSS)
    first = [s for s in c.pending_output() if s.payload]
    assert sum(len(s.payload) for s in first) == 10 * MSS  # IW 10
    return c


def _dupack(c: Connection, t: float) -> list[tuple[int, int]]:
    """One duplicate ACK; the data it lets out as (segment number, length in segments)."""
    c.handle_segment(t, Segment(PEER + 1, ISS + 1, ACK, 65535))
    return [((s.seq - ISS - 1) // MSS + 1, len(s.payload) // MSS)
            for s in c.pending_output() if s.payload]


def _expected_prr(ssthresh: int, recover_fs: int, dupacks: int, out: int) -> list[int]:
    """Segments Linux's tcp_cwnd_reduction lets out on each duplicate ACK of recovery
    without SACK (entered on the first of them), computed independently: pipe =
    out - dupacks - 1 (the lost head) + 1 once it is retransmitted."""
    prr_delivered = prr_out = 0
    sent = []
    for k in range(1, dupacks + 1):
        prr_delivered += 1
        pipe = out - (2 + k) - 1 + (1 if prr_out else 0)
        if pipe > ssthresh:
            sndcnt = -(-prr_delivered * ssthresh // recover_fs) - prr_out
        else:
            sndcnt = min(ssthresh - pipe, max(prr_delivered - prr_out, 1))
        sndcnt = max(sndcnt, 0 if prr_out else 1)
        sent.append(sndcnt)
        prr_out += sndcnt
        out += sndcnt - (1 if k == 1 else 0)  # (the first is the retransmission)
    return sent


@pytest.mark.parametrize(("congestion", "ssthresh"), [("newreno", 5), ("cubic", 7)])
def test_recovery_without_sack_follows_prr(congestion: str, ssthresh: int) -> None:
    c = _nosack_server(congestion)
    # Two dupacks: limited transmit (RFC 3042), one new segment each (11, 12).
    assert _dupack(c, 0.2) == [(11, 1)]
    assert _dupack(c, 0.2) == [(12, 1)]
    sent = []
    for i in range(9):
        out = _dupack(c, 0.21 + i * 0.01)
        if i == 0:
            assert out[0] == (1, 1)  # the fast retransmit of the head first
        sent.append(sum(n for _, n in out))
        if i == 0:
            assert c.info().ssthresh == ssthresh * MSS
    # RecoverFS = FlightSize at entry, at most cwnd: 10 segments; 12 out at entry.
    assert sent == _expected_prr(ssthresh, 10, 9, 12)
    # Neither silence until the pipe drains nor a burst: never more than 2 per dupack, and
    # the proportional total: CEIL(delivered * ssthresh / RecoverFS) while pipe > ssthresh.
    assert max(sent) <= 2 and sum(sent[:2]) == -(-2 * ssthresh // 10)
    # The retransmission arrives (everything to 12 acknowledged): recovery ends, cwnd =
    # ssthresh (RFC 9937 6).
    c.handle_segment(0.4, Segment(PEER + 1, ISS + 1 + 12 * MSS, ACK, 65535))
    c.pending_output()
    assert not c._in_recovery and c.info().cwnd == ssthresh * MSS


def test_partial_ack_without_sack_retransmits_the_hole_under_prr() -> None:
    # Segments 1 and 2 lost: the ACK for the retransmitted 1 is partial (RFC 6582 3.2
    # step 5): the next hole (2) is lost and goes out before new data, as PRR's cwnd for
    # that ACK allows (Linux: conservative bound, the ACK marked a loss).
    c = _nosack_server("newreno")
    _dupack(c, 0.2)
    _dupack(c, 0.2)
    for i in range(10):  # segments 3..12 arrive
        _dupack(c, 0.21 + i * 0.01)
    c.handle_segment(0.4, Segment(PEER + 1, ISS + 1 + MSS, ACK, 65535))
    out = [(s.seq - ISS - 1) // MSS + 1 for s in c.pending_output() if s.payload]
    assert out[:1] == [2]
    assert c._in_recovery
    pipe = c._pipe()
    assert c.info().cwnd >= pipe  # cwnd = pipe + sndcnt (RFC 9937)
    # Its ACK is the full acknowledgment: recovery ends with cwnd = ssthresh.
    c.handle_segment(0.5, Segment(PEER + 1, ISS + 1 + 12 * MSS, ACK, 65535))
    c.pending_output()
    assert not c._in_recovery and c.info().cwnd == 5 * MSS


def test_without_prr_recovery_without_sack_is_rfc_6582() -> None:
    # prr=False: cwnd = ssthresh and the pipe shrinks by one segment per dupack (no PRR
    # pacing): nothing new goes out until the pipe is below ssthresh; then the rest.
    c = _nosack_server("newreno", prr=False)
    _dupack(c, 0.2)
    _dupack(c, 0.2)
    sent = [sum(n for _, n in _dupack(c, 0.21 + i * 0.01)) for i in range(9)]
    assert sent[0] == 1 and c.info().cwnd == 5 * MSS
    assert sent != _expected_prr(5, 10, 9, 12)
