"""Congestion control: NewReno window traces with exact numbers; CUBIC against RFC 9438."""

from __future__ import annotations

import itertools

import pytest

from pytcp.tcp.congestion import CongestionControl, NewReno, make_congestion
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
        cc.on_ack(0.0, 2000, None, cc.cwnd)
    assert cc.cwnd == 24000
    cc.on_idle_restart(10.0)
    assert cc.cwnd == 4000
    cc2 = make_congestion("newreno", 1000, 4)
    cc2.on_rto(0.0, 4000)
    cc2.on_idle_restart(10.0)
    assert cc2.cwnd == 1000  # min(IW, cwnd)


# ---------------------------------------------------------------- CUBIC (RFC 9438)

from pytcp.tcp.congestion.cubic import ALPHA_CUBIC, BETA_CUBIC, C, Cubic


def _cubic_at(w_segments: int, mss: int = 1000) -> Cubic:
    cc = make_congestion("cubic", mss, w_segments)
    assert isinstance(cc, Cubic)
    cc.ssthresh = cc.cwnd  # as if slow start had just ended
    return cc


def _one_rtt(cc: Cubic, now: float, rtt: float) -> None:
    """ACK one full window, MSS by MSS, at time ``now``."""
    for _ in range(cc.cwnd // cc.mss):
        cc.on_ack(now, cc.mss, rtt, cc.cwnd)


def test_cubic_constants() -> None:
    assert C == 0.4 and BETA_CUBIC == 0.7
    assert ALPHA_CUBIC == pytest.approx(3 * 0.3 / 1.7)


def test_cubic_loss_sets_wmax_k_and_ssthresh() -> None:
    cc = _cubic_at(100)
    cc.on_congestion(1.0, 100_000)
    assert cc.w_max == 100.0
    assert cc.cwnd_prior == 100.0
    assert cc.ssthresh == 70_000 and cc.cwnd == 70_000  # beta 0.7
    cc.on_recovery_exit(1.5)
    cc.on_ack(2.0, 1000, 0.1, 70_000)  # first ACK in CA starts the epoch
    assert cc.t_epoch == 2.0
    assert cc.cwnd_epoch == 70.0
    # RFC 9438 Figure 2: K = cbrt((W_max - cwnd_epoch) / C) = cbrt(30 / 0.4) = cbrt(75)
    assert cc.k == pytest.approx(75 ** (1 / 3))
    assert cc.k == pytest.approx(4.2172, abs=1e-4)


def test_cubic_curve_matches_formula() -> None:
    cc = _cubic_at(100)
    cc.on_congestion(0.0, 100_000)
    cc.on_ack(0.0, 1000, 0.1, 70_000)
    k = cc.k
    for t, expected in [
        (0.0, 70.0),                          # the curve starts at cwnd_epoch = beta*W_max
        (1.0, 0.4 * (1 - k) ** 3 + 100),
        (k, 100.0),                           # plateau at W_max after K seconds
        (6.0, 0.4 * (6 - k) ** 3 + 100),
        (10.0, 0.4 * (10 - k) ** 3 + 100),
    ]:
        assert cc.w_cubic(t) == pytest.approx(expected, rel=1e-9)
    assert cc.w_cubic(0.0) == pytest.approx(70.0)


def test_cubic_concave_then_plateau_then_convex() -> None:
    cc = _cubic_at(100)
    cc.on_congestion(0.0, 100_000)
    rtt = 0.1
    t = 0.0
    sizes = []
    for _ in range(100):  # 10 s of ACK clocking
        t += rtt
        _one_rtt(cc, t, rtt)
        sizes.append(cc.cwnd / 1000)
        # cwnd follows W_cubic(t + RTT) but never overshoots it by more than one step
        assert cc.cwnd / 1000 <= max(cc.w_cubic(t + rtt), cc.w_est) + 1.5
    k = cc.k
    growth = [b - a for a, b in itertools.pairwise(sizes)]
    i_k = int(k / rtt)
    # concave: increments shrink while approaching W_max
    assert growth[5] > growth[15] > growth[30] > 0
    assert sizes[i_k] == pytest.approx(100, abs=1.5)
    # convex (beyond the Reno-friendly stretch): increments grow again
    assert growth[90] > growth[80] > growth[70]
    assert sizes[-1] > 150


def test_cubic_reno_friendly_region() -> None:
    # Small window, tiny RTT: W_cubic barely moves in a few ms, the Reno estimate wins.
    cc = _cubic_at(10)
    cc.on_congestion(0.0, 10_000)
    assert cc.cwnd == 7000
    cc.on_ack(0.0, 1000, 0.001, 7000)  # starts the epoch; W_est = 7 + alpha * 1/7
    assert cc.w_est == pytest.approx(7 + ALPHA_CUBIC / 7)
    assert cc.w_cubic(0.0) == pytest.approx(7.0)
    assert cc.cwnd / 1000 == pytest.approx(7 + ALPHA_CUBIC / 7, abs=1e-3)
    now = 0.0
    for _ in range(20):
        now += 0.001
        _one_rtt(cc, now, 0.001)
    # about alpha_cubic segments per RTT until W_est reaches cwnd_prior, then 1 per RTT
    assert cc.w_cubic(now) < cc.w_est
    assert cc.cwnd / 1000 == pytest.approx(cc.w_est, abs=1e-3)
    assert cc.alpha == 1.0
    assert 10.0 < cc.w_est < 7 + 20 * 1.0


def test_cubic_fast_convergence() -> None:
    cc = _cubic_at(100)
    cc.on_congestion(0.0, 100_000)       # W_max = 100
    cc.on_recovery_exit(0.1)
    cc.on_congestion(0.2, 70_000)        # lost again below W_max: W_max = 70*(1+0.7)/2
    assert cc.w_max == pytest.approx(70 * 1.7 / 2)
    assert cc.ssthresh == 49_000
    slow = Cubic(1000, 100, fast_convergence=False)
    slow.on_congestion(0.0, 100_000)
    slow.on_congestion(0.2, 70_000)
    assert slow.w_max == pytest.approx(70.0)


def test_cubic_rto_and_first_ca_after_it() -> None:
    cc = _cubic_at(100)
    cc.on_rto(1.0, 100_000)
    assert cc.cwnd == 1000 and cc.ssthresh == 70_000 and cc.w_max is None
    for i in range(40):
        cc.on_ack(1.0 + i * 0.01, 2000, 0.01, cc.cwnd)
        if cc.cwnd >= cc.ssthresh:
            break
    # 1000 + 2000*34 = 69000; the next ACK fills to ssthresh and its other 1000 bytes are
    # the first congestion avoidance ACK: RFC 9438 4.8: K = 0, W_max = cwnd at CA start.
    assert 70_000 <= cc.cwnd < 70_100
    assert cc.k == 0.0 and cc.w_max == 70.0 and cc.t_epoch == pytest.approx(1.34)


def test_cubic_idle_restart_excludes_idle_time() -> None:
    cc = _cubic_at(20)
    cc.on_congestion(0.0, 20_000)
    cc.on_ack(0.0, 1000, 0.1, 14_000)
    assert cc.t_epoch == 0.0
    grown = cc.cwnd
    assert 14_000 < grown < 15_000
    cc.on_idle_restart(100.0)
    assert cc.cwnd == grown and cc.t_epoch is None  # min(IW = 20 MSS, cwnd)
    before = cc.cwnd
    cc.on_ack(100.0, 1000, 0.1, 14_000)
    assert cc.t_epoch == 100.0
    assert cc.cwnd - before < 1000  # no jump from 100 s of "elapsed" time


def test_cubic_slow_start_like_reno() -> None:
    cc = make_congestion("cubic", 1000, 2)
    cc.on_ack(0.0, 1000, 0.1, 2000)
    cc.on_ack(0.0, 5000, 0.1, 2000)
    assert cc.cwnd == 5000


def test_set_mss_rescales_the_untouched_initial_window() -> None:
    cc = make_congestion("newreno", 536, 10)
    assert cc.cwnd == 5360
    cc.set_mss(1448)  # after the handshake: Eff.snd.MSS
    assert cc.cwnd == 14480 and cc.initial_cwnd == 14480 and cc.mss == 1448
    rfc = make_congestion("cubic", 536)
    rfc.set_mss(1460)  # RFC 6928 rule recomputed, not scaled
    assert rfc.cwnd == 14600
    grown = make_congestion("newreno", 1000, 2)
    grown.on_ack(0.0, 1000, None, 2000)
    grown.set_mss(500)
    assert grown.cwnd == 3000 and grown.initial_cwnd == 1000
    grown.on_idle_restart(1.0)
    assert grown.cwnd == 1000


@pytest.mark.parametrize("name", ["newreno", "cubic"])
def test_no_growth_while_application_limited(name: str) -> None:
    # RFC 9438 5.8 / RFC 7661: an application sending less than cwnd does not grow it.
    cc = make_congestion(name, 1000, 10)
    cc.on_ack(0.0, 1000, 0.1, 4000)    # slow start: 4 KB in flight, cwnd 10 KB
    assert cc.cwnd == 10_000
    cc.on_ack(0.1, 1000, 0.1, 5001)    # more than half the window out: grows
    assert cc.cwnd == 11_000
    cc.on_congestion(0.2, 11_000)
    cc.on_recovery_exit(0.3)
    w = cc.cwnd
    for i in range(50):                # congestion avoidance, 3 segments short of cwnd
        cc.on_ack(1.0 + i, 1000, 0.1, w - 3000)
    assert cc.cwnd == w
    for i in range(50):                # now window-limited (less than 2 MSS of room)
        cc.on_ack(60.0 + i, 1000, 0.1, cc.cwnd - 1500)
    assert cc.cwnd > w


# ---------------------------------------------------------------- HyStart++ (RFC 9406)

from pytcp.tcp.congestion.hystart import (
    CSS_GROWTH_DIVISOR,
    CSS_ROUNDS,
    N_RTT_SAMPLE,
    HyStartPP,
    Phase,
)


def _rtt_rounds(cc: CongestionControl, rtts: list[float]) -> list[tuple[int, Phase]]:
    """Each entry: one RTT of ACK clocking (one ACK per MSS, the sender keeps cwnd full)."""
    out = []
    assert cc.hystart is not None
    for r, rtt in enumerate(rtts):
        for _ in range(cc.cwnd // cc.mss):
            cc.on_ack(r * 0.1, cc.mss, rtt, cc.cwnd)
        out.append((cc.cwnd, cc.hystart.phase))
    return out


def test_hystart_off_by_default() -> None:
    assert make_congestion("cubic", 1000).hystart is None
    assert make_congestion("newreno", 1000, hystart=True).hystart is not None


def test_hystart_flat_rtt_keeps_doubling() -> None:
    cc = make_congestion("newreno", 1000, 10, hystart=True)
    trace = _rtt_rounds(cc, [0.1] * 5)
    assert [w for w, _ in trace] == [20_000, 40_000, 80_000, 160_000, 320_000]
    assert all(p is Phase.SLOW_START for _, p in trace)


@pytest.mark.parametrize("name", ["newreno", "cubic"])
def test_hystart_delay_rise_css_then_exit(name: str) -> None:
    cc = make_congestion(name, 1000, 10, hystart=True)
    # RttThresh = max(4 ms, min(100 ms / 8, 16 ms)) = 12.5 ms: 120 ms is a rise
    trace = _rtt_rounds(cc, [0.1, 0.1, 0.1] + [0.12] * 8)
    phases = [p for _, p in trace]
    assert phases[:3] == [Phase.SLOW_START] * 3
    assert phases[3] is Phase.CSS
    i_done = phases.index(Phase.DONE)
    assert phases[3:i_done] == [Phase.CSS] * (i_done - 3)
    assert cc.hystart is not None and cc.hystart.css_rounds == CSS_ROUNDS
    # CSS rounds grow by 1/CSS_GROWTH_DIVISOR of the window, not double it
    for (w0, p0), (w1, _) in itertools.pairwise(trace[4:i_done]):
        assert p0 is Phase.CSS
        assert w1 / w0 == pytest.approx(1 + 1 / CSS_GROWTH_DIVISOR, abs=0.02)
    # slow start ended: ssthresh was set to cwnd at that moment, then congestion avoidance
    assert not cc.in_slow_start
    w_done = trace[i_done][0]
    assert cc.ssthresh <= w_done
    assert trace[-1][0] < w_done * 1.1


def _hs_round(hs: HyStartPP, rtt: float, n: int = 8) -> None:
    """Round 1 of a fresh HyStartPP: n ACKs of 1000 bytes, 1000 bytes still outstanding."""
    for _ in range(n):
        hs.on_ack(1000, rtt, (n + 1) * 1000)


def test_hystart_thresholds_and_sample_count() -> None:
    hs = HyStartPP()
    _hs_round(hs, 0.001)
    assert hs.rounds == 1 and hs.round_left == 1000 and hs.samples == 8
    # this ACK covers windowEnd: round 2 starts with it (its sample belongs to round 2)
    assert hs.on_ack(1000, 0.004, 10_000) == 1
    assert hs.rounds == 2 and hs.last_round_min == 0.001 and hs.round_left == 9000
    # RttThresh = max(4 ms, min(1 ms / 8, 16 ms)) = 4 ms: a 3 ms rise is not enough
    for _ in range(N_RTT_SAMPLE):
        assert hs.on_ack(100, 0.004, 10_000) == 1
    assert hs.phase is Phase.SLOW_START
    hs2 = HyStartPP()
    _hs_round(hs2, 0.001)
    divs = [hs2.on_ack(1000 if i == 0 else 100, 0.0051, 10_000) for i in range(N_RTT_SAMPLE)]
    # the decision needs N_RTT_SAMPLE samples in the round
    assert divs == [1] * (N_RTT_SAMPLE - 1) + [CSS_GROWTH_DIVISOR]
    assert hs2.phase is Phase.CSS and hs2.css_baseline == pytest.approx(0.0051)


def _phase(hs: HyStartPP) -> Phase:
    return hs.phase  # (a call, so that mypy does not narrow hs.phase between asserts)


def test_hystart_css_resumes_slow_start_when_rtt_falls() -> None:
    hs = HyStartPP()
    _hs_round(hs, 0.010)
    for i in range(N_RTT_SAMPLE):
        hs.on_ack(1000 if i == 0 else 100, 0.020, 10_000)
    assert _phase(hs) is Phase.CSS
    # finish this round; the next round's minimum falls below the CSS baseline
    left = hs.round_left or 0
    assert hs.on_ack(left, 0.011, left + 5000) == CSS_GROWTH_DIVISOR  # sample 1 of round 3
    assert hs.css_rounds == 1
    for _ in range(N_RTT_SAMPLE - 2):
        assert hs.on_ack(100, 0.011, 10_000) == CSS_GROWTH_DIVISOR
    assert hs.on_ack(100, 0.011, 10_000) == 1
    assert _phase(hs) is Phase.SLOW_START


def test_hystart_stops_at_congestion() -> None:
    cc = make_congestion("cubic", 1000, 10, hystart=True)
    cc.on_ack(0.0, 1000, 0.1, 10_000)
    cc.on_congestion(0.1, 10_000)
    assert cc.hystart is not None and not cc.hystart.active


def test_cubic_smooths_rtt_samples() -> None:
    cc = _cubic_at(10)
    cc.on_ack(0.0, 1000, 0.1, 10_000)
    assert cc.rtt == 0.1
    cc.on_ack(0.0, 1000, 0.2, 10_000)
    assert cc.rtt == pytest.approx(0.1 + 0.1 / 8)
    cc.on_ack(0.0, 1000, None, 10_000)
    assert cc.rtt == pytest.approx(0.1125)


def test_cubic_ssthresh_from_cwnd_as_linux() -> None:
    # RFC 9438 4.6 with cwnd instead of flight_size (allowed when cwnd is kept from growing
    # past the flight, as the connection does): Linux's max(cwnd * 717 / 1024, 2) segments.
    cc = Cubic(1000)
    cc.ssthresh_from_cwnd = True
    cc.on_rto(1.0, 1000)  # one segment in flight, cwnd 10
    assert (cc.ssthresh, cc.cwnd) == (7000, 1000)
    cc = Cubic(1000)
    cc.ssthresh_from_cwnd = True
    cc.cwnd = 13_000
    cc.on_congestion(1.0, 4000)
    assert (cc.ssthresh, cc.cwnd) == (9000, 9000)  # 13 * 717 // 1024 = 9
    cc = Cubic(1000)  # the RFC's flight_size rule
    cc.on_rto(1.0, 1000)
    assert cc.ssthresh == 2000


def _linux_hystart_round(cc: CongestionControl, rtts: list[float]) -> None:
    # One ACK of 2 segments per RTT sample, all of them in one round (a 100-segment flight).
    for rtt in rtts:
        cc.on_ack(0.0, 2000, rtt, 100_000, True)


def test_linux_hystart_exits_slow_start_on_a_delay_rise() -> None:
    # Linux tcp_cubic.c hystart_update (HYSTART_DELAY): from cwnd 16, after 8 samples of a
    # round, a round minimum above min_rtt + clamp(min_rtt/8, 4, 16 ms) ends slow start.
    cc = make_congestion("cubic", 1000, 10, hystart=True, hystart_kind="linux",
                         cubic_kind="linux")
    cc.abc_limit = 0  # (Linux tcp_slow_start, as the linux profile)
    cc.on_ack(0.0, 10_000, 0.2, 10_000, True)  # min_rtt 200 ms; cwnd 20
    assert cc.cwnd == 20_000 and cc.in_slow_start
    _linux_hystart_round(cc, [0.240 + i * 0.001 for i in range(8)])
    assert cc.ssthresh == INITIAL_SSTHRESH and cc.cwnd == 36_000  # 8 samples: no check yet
    _linux_hystart_round(cc, [0.248])  # the 9th: 240 ms > 200 + 16 ms
    assert (cc.ssthresh, cc.cwnd) == (36_000, 36_000)


def test_linux_hystart_keeps_slow_start_below_the_threshold() -> None:
    cc = make_congestion("cubic", 1000, 10, hystart=True, hystart_kind="linux",
                         cubic_kind="linux")
    cc.abc_limit = 0  # (Linux tcp_slow_start, as the linux profile)
    cc.on_ack(0.0, 10_000, 0.2, 10_000, True)
    _linux_hystart_round(cc, [0.215] * 12)  # 215 ms < 200 + 16 ms
    assert cc.ssthresh == INITIAL_SSTHRESH and cc.cwnd == 44_000
    # Below 16 segments nothing is checked.
    cc = make_congestion("cubic", 1000, 10, hystart=True, hystart_kind="linux",
                         cubic_kind="linux")
    cc.abc_limit = 0  # (Linux tcp_slow_start, as the linux profile)
    cc.on_ack(0.0, 1000, 0.1, 10_000, True)
    _linux_hystart_round(cc, [0.5] * 2)
    assert cc.in_slow_start and cc.cwnd == 15_000


def test_linux_cubic_root_and_constants() -> None:
    from pytcp.tcp.congestion.linux_cubic import BETA_SCALE, CUBE_FACTOR, cubic_root

    assert BETA_SCALE == 15 and CUBE_FACTOR == (1 << 40) // 410
    for a in (0, 1, 8, 27, 63, 1000, 10**6, 10**9, 10**12, 10**15):
        assert abs(cubic_root(a) - round(a ** (1 / 3))) <= max(1, a ** (1 / 3) * 0.01)


def test_linux_cubic_first_epoch_grows_one_segment_per_20_acked() -> None:
    # tcp_cubic.c bictcp_update: with no loss yet (last_max_cwnd 0) cnt is at most 20;
    # tcp_cong_avoid_ai adds one segment per cnt acknowledged.
    from pytcp.tcp.congestion.linux_cubic import LinuxCubic

    cc = LinuxCubic(1000, 10, tick=0.004)
    cc.ssthresh = cc.cwnd = 48_000
    cc.observe_rtt(0.1)
    for i in range(10):  # 20 segments acknowledged over 1 s
        cc.on_ack(2.0 + 0.1 * i, 2000, 0.1, 48_000, True)
    assert cc.cnt == 20 and cc.cwnd == 49_000
    # A loss: ssthresh = cwnd * 717 / 1024 segments, W_max = cwnd; the next epoch has K > 0.
    cc.on_congestion(3.0, 49_000)
    assert (cc.ssthresh, cc.cwnd, cc.last_max_cwnd) == (34_000, 34_000, 49)
    cc.on_ack(3.1, 1000, 0.1, 34_000, True)
    assert cc.bic_k > 0 and cc.bic_origin_point == 49


def test_linux_cubic_idle_shifts_the_epoch() -> None:
    # cubictcp_cwnd_event(CA_EVENT_TX_START): idle time is not credited to the cubic curve.
    from pytcp.tcp.congestion.linux_cubic import LinuxCubic

    cc = LinuxCubic(1000, 10, tick=0.004)
    cc.ssthresh = cc.cwnd = 48_000
    cc.on_ack(2.0, 2000, 0.1, 48_000, True)
    assert cc.epoch_start == 500
    cc.on_tx_start(6.0, 3.0)
    assert cc.epoch_start == 500 + 750
    cc.on_tx_start(7.0, 100.0)  # never past now
    assert cc.epoch_start == 1750
