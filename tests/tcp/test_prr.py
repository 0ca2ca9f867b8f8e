"""Proportional Rate Reduction (RFC 6937, RFC 9937): the sndcnt rules, alone."""

from __future__ import annotations

from pytcp.tcp.prr import Prr

MSS = 1000


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
