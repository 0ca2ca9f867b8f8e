"""Congestion control: NewReno window traces with exact numbers; CUBIC against RFC 9438."""

from __future__ import annotations

import pytest

from pytcp.tcp.congestion import NewReno, make_congestion
from pytcp.tcp.congestion.base import INITIAL_SSTHRESH, initial_window


def test_factory_names() -> None:
    assert isinstance(make_congestion("newreno", 1000), NewReno)
    assert make_congestion("NewReno", 1000).name == "newreno"
    with pytest.raises(ValueError):
        make_congestion("bbr", 1000)


def test_initial_window_rfc6928() -> None:
    assert initial_window(1460) == 14600
    assert initial_window(536) == 5360
    assert initial_window(9000) == 18000
    assert initial_window(1000, 3) == 3000
    cc = make_congestion("newreno", 1460)
    assert cc.cwnd == 14600 and cc.ssthresh == INITIAL_SSTHRESH


def test_newreno_trace_slow_start_loss_recovery_avoidance() -> None:
    cc = make_congestion("newreno", 1000, 3)
    assert cc.cwnd == 3000
    # slow start, RFC 3465 ABC with L = 2*SMSS
    cc.on_ack(0.1, 1000, 0.1, 3000)
    assert cc.cwnd == 4000
    cc.on_ack(0.2, 3000, 0.1, 4000)
    assert cc.cwnd == 6000  # capped at +2 MSS for one ACK
    # loss detected by dupacks: ssthresh = max(flight/2, 2 MSS)
    cc.on_congestion(0.3, 8000)
    assert (cc.cwnd, cc.ssthresh) == (4000, 4000)
    cc.on_recovery_exit(0.4)
    assert cc.cwnd == 4000 and not cc.in_slow_start
    # congestion avoidance: +1 MSS per cwnd of acked bytes
    for i in range(3):
        cc.on_ack(0.5 + i, 1000, 0.1, 4000)
        assert cc.cwnd == 4000
    cc.on_ack(0.9, 1000, 0.1, 4000)
    assert cc.cwnd == 5000
    for _ in range(4):
        cc.on_ack(1.0, 1000, 0.1, 5000)
    assert cc.cwnd == 5000
    cc.on_ack(1.1, 1000, 0.1, 5000)
    assert cc.cwnd == 6000
    # RTO: ssthresh = max(flight/2, 2 MSS), cwnd = 1 MSS
    cc.on_rto(2.0, 5000)
    assert (cc.cwnd, cc.ssthresh) == (1000, 2500)
    cc.on_rto(4.0, 5000, repeated=True)  # second timeout of the same segment: ssthresh held
    assert (cc.cwnd, cc.ssthresh) == (1000, 2500)
    cc.on_ack(5.0, 1000, None, 1000)
    assert cc.cwnd == 2000
    cc.on_ack(5.1, 2000, None, 2000)  # slow start stops at ssthresh, 1500 B carry into CA
    assert cc.cwnd == 2500
    cc.on_ack(5.2, 1000, None, 2500)  # 1500 + 1000 >= 2500: one increase
    assert cc.cwnd == 3500


def test_newreno_ssthresh_floor_is_two_mss() -> None:
    cc = make_congestion("newreno", 1000, 10)
    cc.on_congestion(0.0, 1500)
    assert cc.ssthresh == 2000 and cc.cwnd == 2000


def test_newreno_without_sack_inflate_and_partial_ack() -> None:
    cc = make_congestion("newreno", 1000, 10)
    cc.on_congestion(0.0, 10000)  # ssthresh 5000
    for _ in range(3):            # RFC 6582 step 2: ssthresh + 3*SMSS
        cc.on_dupack_inflate()
    assert cc.cwnd == 8000
    cc.on_dupack_inflate()
    assert cc.cwnd == 9000
    cc.on_partial_ack(3000)       # deflate by 3000, add back 1 MSS
    assert cc.cwnd == 7000
    cc.on_partial_ack(500)
    assert cc.cwnd == 6500
    cc.on_recovery_exit(1.0)
    assert cc.cwnd == 5000


def test_idle_restart_limits_to_initial_window() -> None:
    cc = make_congestion("newreno", 1000, 4)
    for _ in range(10):
        cc.on_ack(0.0, 2000, None, 0)
    assert cc.cwnd == 24000
    cc.on_idle_restart(10.0)
    assert cc.cwnd == 4000
    cc2 = make_congestion("newreno", 1000, 4)
    cc2.on_rto(0.0, 4000)
    cc2.on_idle_restart(10.0)
    assert cc2.cwnd == 1000  # min(IW, cwnd)
