"""RFC 6298 RTO estimation: exact SRTT/RTTVAR/RTO after each sample, backoff and clamps."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytcp.tcp.rtt import RttEstimator


def test_before_first_sample_rto_is_initial() -> None:
    r = RttEstimator()
    assert r.srtt is None and r.rttvar is None and r.min_rtt is None
    assert r.rto == 1.0  # RFC 6298 2.1


def test_first_sample_sets_srtt_and_half_rttvar() -> None:
    r = RttEstimator(min_rto=0.2)
    r.sample(0.1)
    assert r.srtt == pytest.approx(0.1)
    assert r.rttvar == pytest.approx(0.05)
    assert r.rto == pytest.approx(0.3)  # 0.1 + 4*0.05, above min_rto 0.2


def test_second_sample_updates_rttvar_with_old_srtt() -> None:
    r = RttEstimator(min_rto=0.01)
    r.sample(0.1)
    r.sample(0.3)
    # RTTVAR = 3/4*0.05 + 1/4*|0.1-0.3| = 0.0875 ; SRTT = 7/8*0.1 + 1/8*0.3 = 0.125
    assert r.rttvar == pytest.approx(0.0875)
    assert r.srtt == pytest.approx(0.125)
    assert r.rto == pytest.approx(0.125 + 4 * 0.0875)
    assert r.min_rtt == pytest.approx(0.1)


def test_granularity_floors_the_variance_term() -> None:
    r = RttEstimator(min_rto=0.001, granularity=0.5)
    for _ in range(50):
        r.sample(0.1)  # RTTVAR decays towards 0
    assert r.rttvar is not None and 4 * r.rttvar < 0.5
    assert r.rto == pytest.approx(r.srtt + 0.5)  # type: ignore[operator]


def test_min_rto_clamps_up() -> None:
    r = RttEstimator()  # min_rto 1 s (RFC 6298 2.4)
    r.sample(0.01)
    assert r.rto == 1.0


def test_max_rto_clamps_down() -> None:
    r = RttEstimator(max_rto=60.0)
    r.sample(50.0)
    assert r.rto == 60.0


def test_backoff_doubles_capped_then_sample_recomputes() -> None:
    r = RttEstimator(min_rto=0.2, max_rto=5.0)
    r.sample(0.1)
    assert r.rto == pytest.approx(0.3)
    r.backoff()
    assert r.rto == pytest.approx(0.6)
    assert r.backoffs == 1
    r.backoff()
    r.backoff()
    r.backoff()
    assert r.rto == pytest.approx(4.8)
    r.backoff()
    assert r.rto == 5.0
    r.backoff()
    assert r.rto == 5.0 and r.backoffs == 6
    r.sample(0.1)  # a valid sample ends backoff (Karn)
    assert r.backoffs == 0
    assert r.rto == pytest.approx(0.1 + 4 * 0.0375)


def test_reset_backoff_returns_to_base() -> None:
    r = RttEstimator()
    r.backoff()
    assert r.rto == 2.0
    r.reset_backoff()
    assert r.rto == 1.0


def test_syn_loss_reinit_to_three_seconds() -> None:
    r = RttEstimator()
    r.backoff()
    r.reinit_after_syn_loss()  # RFC 6298 5.7
    assert r.rto == 3.0
    r.sample(0.05)
    r.reinit_after_syn_loss()  # no effect once a sample exists
    assert r.rto == 1.0


def test_bad_parameters_rejected() -> None:
    with pytest.raises(ValueError):
        RttEstimator(min_rto=2.0, max_rto=1.0)
    with pytest.raises(ValueError):
        RttEstimator(initial_rto=0)


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(st.one_of(st.floats(0.0, 100.0), st.just("b"), st.just("r")), max_size=40),
    min_rto=st.floats(0.01, 2.0),
)
def test_rto_always_within_bounds(ops: list[float | str], min_rto: float) -> None:
    r = RttEstimator(min_rto=min_rto, max_rto=60.0)
    for op in ops:
        before = r.rto
        if op == "b":
            r.backoff()
            assert r.rto == min(2 * before, 60.0)
        elif op == "r":
            r.reset_backoff()
            assert r.backoffs == 0
        else:
            assert isinstance(op, float)
            r.sample(op)
            assert r.srtt is not None and r.rttvar is not None
            assert r.rto == pytest.approx(min(max(r.srtt + max(0.001, 4 * r.rttvar), min_rto), 60.0))
        assert 0 < r.rto <= 60.0
        if r.samples:
            assert r.rto >= min(min_rto, 60.0)


def test_linux_rto_floor_bounds_the_variance_term() -> None:
    """Linux (tcp_set_rto): RTO = SRTT + max(4*RTTVAR, min_rto); RFC 6298 2.4 bounds the sum.
    Steady 100 ms samples: RTTVAR shrinks, so the RFC RTO falls toward the 200 ms floor while
    Linux's stays at SRTT + 200 ms."""
    rfc = RttEstimator(1.0, 0.2, 60.0)
    linux = RttEstimator(1.0, 0.2, 60.0, min_on_variance=True)
    for _ in range(20):
        rfc.sample(0.1)
        linux.sample(0.1)
    assert rfc.rto == pytest.approx(0.2, abs=0.002)
    assert linux.rto == pytest.approx(0.3, abs=0.001)
