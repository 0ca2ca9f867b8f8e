"""RACK-TLP (RFC 8985): the sent-ranges record, RACK's loss marking and reordering window, the
probe timeout, and the engine's tail loss probe and RACK-driven recovery."""

from __future__ import annotations

import pytest
from test_connection_data import established_server
from test_connection_harness import cfg

from pytcp.tcp.rack import Rack, in_ticks, pto, sent_after
from pytcp.tcp.segment import Segment
from pytcp.tcp.seq import MASK
from pytcp.wire.tcp import ACK, TcpOptions

MSS = 1000


def sent(rack: Rack, base: int, n: int, t: float) -> None:
    for i in range(n):
        rack.on_send((base + i * MSS) & MASK, (base + (i + 1) * MSS) & MASK, t, False)


def test_sent_after_breaks_ties_by_sequence() -> None:
    assert sent_after(2.0, 5, 1.0, 10)
    assert sent_after(1.0, 10, 1.0, 5)
    assert not sent_after(1.0, 5, 1.0, 10)


def test_lost_after_rtt_plus_reo_wnd_and_the_timer_says_when() -> None:
    r = Rack()
    sent(r, 1000, 4, 0.0)
    r.on_ack(0.05, 1000, [(2000, 3000)])  # one SACKed segment: reo_wnd = min_rtt/4
    assert r.rtt == pytest.approx(0.05)
    assert r.reo_wnd(0.05, False, MSS) == pytest.approx(0.0125)
    # RFC 8985 6.2 step 5: 1000:2000 was sent before the delivered one but not yet
    # RACK.rtt + reo_wnd ago: not lost, the timer waits for the rest.
    assert r.detect_loss(0.05, 0.05, False, MSS) == 0
    assert r.reo_timeout == pytest.approx(0.0125 + 0.002)
    assert r.detect_loss(0.0625, 0.05, False, MSS) == MSS
    assert r.next_lost(MSS) == (1000, MSS)
    # 3000:5000 were not sent before the delivered range: never lost by this ACK.
    assert [x.lost for x in r.records] == [True, False, False, False]


def test_dupthresh_sacked_segments_make_the_window_zero() -> None:
    r = Rack()
    sent(r, 0, 5, 0.0)
    r.on_ack(0.1, 0, [(1000, 4000)])
    assert r.reo_wnd(0.1, False, MSS) == 0.0  # RFC 8985 6.2 with RFC 6675's DupThresh
    assert r.detect_loss(0.1, 0.1, False, MSS) == MSS


def test_reordering_seen_keeps_the_window_and_dsack_widens_it() -> None:
    r = Rack()
    sent(r, 0, 6, 0.0)
    r.on_ack(0.1, 0, [(2000, 3000)])
    r.on_ack(0.1, 0, [(1000, 3000)])  # 1000:2000 delivered below RACK.fack: reordering
    assert r.reord_seen and r.reordering_events == 1
    r.on_ack(0.1, 0, [(1000, 5000)])
    assert r.reo_wnd(0.1, True, MSS) == pytest.approx(0.025)  # min_rtt/4 even in recovery
    r.on_dsack(snd_nxt=6000)
    assert r.reo_wnd_steps == 2 and r.reo_wnd(0.1, True, MSS) == pytest.approx(0.05)
    r.on_dsack(snd_nxt=6000)  # once per round trip
    assert r.reo_wnd_steps == 2
    r.round_passed(6000)
    r.on_dsack(snd_nxt=9000)
    assert r.reo_wnd_steps == 3
    assert r.reo_wnd(0.05, True, MSS) == pytest.approx(0.05)  # capped at SRTT
    for _ in range(16):
        r.on_recovery_exit()
    assert r.reo_wnd_steps == 1  # RFC 8985 6.2: reset after 16 recoveries


def test_retransmission_acked_faster_than_min_rtt_gives_no_sample() -> None:
    r = Rack()
    sent(r, 0, 2, 0.0)
    r.on_ack(0.1, 1000)
    r.on_send(1000, 2000, 0.2, True)
    r.on_ack(0.21, 2000)  # 10 ms < min_rtt 100 ms: maybe the original's ACK
    assert r.rtt == pytest.approx(0.1)


def test_pipe_counts_retransmissions_and_not_lost_ranges() -> None:
    r = Rack()
    sent(r, 0, 4, 0.0)
    r.on_ack(0.1, 0, [(3000, 4000)])
    assert r.detect_loss(0.2, 0.1, True, MSS) == 3 * MSS
    assert r.pipe(0, 4000) == 0
    r.on_send(0, 1000, 0.2, True)
    assert r.pipe(0, 4000) == MSS
    assert r.next_lost(3 * MSS) == (1000, 2 * MSS)  # adjacent lost ranges merge


def test_retrans_segments_counts_retransmissions_in_flight() -> None:
    # Linux retrans_out (tcpi_retrans): retransmitted, not yet acknowledged, SACKed or lost.
    r = Rack()
    sent(r, 0, 4, 0.0)
    assert r.retrans_segments(MSS) == 0
    r.on_send(0, 2 * MSS, 0.1, True)  # one super-segment of two
    r.on_send(3 * MSS, 4 * MSS, 0.1, True)
    assert r.retrans_segments(MSS) == 3
    r.on_ack(0.2, MSS, [(3 * MSS, 4 * MSS)])  # one acknowledged, one SACKed
    assert r.retrans_segments(MSS) == 1
    r.mark_all_lost()  # the RTO: the retransmission is no longer in flight
    assert r.retrans_segments(MSS) == 0


def test_records_split_at_sack_edges_and_across_the_wrap() -> None:
    r = Rack()
    base = MASK - 1499
    r.on_send(base, (base + 4000) & MASK, 0.0, False)  # one super-segment
    r.on_ack(0.1, (base + 1000) & MASK, [((base + 2000) & MASK, (base + 3000) & MASK)])
    spans = [((x.start - base) & MASK, (x.end - base) & MASK, x.sacked) for x in r.records]
    assert spans == [(1000, 2000, False), (2000, 3000, True), (3000, 4000, False)]


def test_mark_all_lost_on_rto_skips_sacked() -> None:
    r = Rack()
    sent(r, 0, 3, 0.0)
    r.on_ack(0.1, 0, [(1000, 2000)])
    r.mark_all_lost()
    assert [x.lost for x in r.records] == [True, False, True]


def test_pto_formula() -> None:
    # RFC 8985 7.2 as Linux: 2*SRTT + 2 ms, or + WCDelAckT (200 ms) for one segment; capped.
    assert pto(0.1, 5, 1.0, 1.0) == pytest.approx(0.202)
    assert pto(0.1, 1, 1.0, 1.0) == pytest.approx(0.4)
    assert pto(0.1, 1, 0.3, 1.0) == pytest.approx(0.3)
    assert pto(None, 3, 5.0, 1.0) == pytest.approx(1.0)


def _sack_ack(c, ack: int, blocks=(), tsval: int = 200):  # type: ignore[no-untyped-def]
    return Segment(9001, ack, ACK, 502, options=TcpOptions(
        timestamp=(tsval, c._ts_val(c._now)), sack_blocks=tuple(blocks)))


def test_engine_tail_loss_probe_retransmits_the_last_segment() -> None:
    c = established_server()
    c.send(1.0, b"t" * 3 * 1448)
    out = c.pending_output()
    assert len(out) == 3
    srtt = c._rtt.srtt
    assert srtt is not None
    t = c.next_deadline()
    # PTO, before the RTO: 2*SRTT in 4 ms ticks (HZ 250) + 2 ticks.
    assert t == pytest.approx(1.0 + in_ticks(2 * srtt, 0.004) + 0.008)
    c.handle_timers(t)
    [probe] = c.pending_output()
    assert probe.seq == out[-1].seq and bytes(probe.payload) == bytes(out[-1].payload)
    assert c.tlp_probes == 1 and c.info().cwnd == c._cc.initial_cwnd
    # The probe repaired a tail loss: the ACK covers everything; with no D-SACK the loss
    # is answered when a later ACK passes the probe's SND.NXT (RFC 8985 7.4.2).
    c.handle_segment(t + 0.05, _sack_ack(c, out[-1].seq + 1448))
    assert c.tlp_recoveries == 0
    c.send(t + 0.05, b"u" * 100)
    c.pending_output()
    c.handle_segment(t + 0.1, _sack_ack(c, out[-1].seq + 1548))
    assert c.tlp_recoveries == 1
    assert c._cc.cwnd < c._cc.initial_cwnd


def test_engine_probe_with_dsack_is_spurious() -> None:
    c = established_server()
    c.send(1.0, b"t" * 2 * 1448)
    out = c.pending_output()
    t = c.next_deadline()
    assert t is not None
    c.handle_timers(t)
    [probe] = c.pending_output()
    end = out[-1].seq + 1448
    c.handle_segment(t + 0.05, _sack_ack(c, end, [(probe.seq, end)]))  # D-SACK of the probe
    assert c._tlp_high is None and c.tlp_recoveries == 0
    assert c._cc.cwnd == c._cc.initial_cwnd


def test_engine_probe_sends_new_data_when_it_can() -> None:
    c = established_server(cfg(initial_window=2))
    c.send(1.0, b"n" * 3 * 1448)
    out = c.pending_output()
    assert len(out) == 2  # cwnd-limited
    t = c.next_deadline()
    assert t is not None
    c.handle_timers(t)
    [probe] = c.pending_output()
    assert probe.seq == out[-1].seq + 1448  # RFC 8985 7.3: new data first


def test_engine_rack_recovery_retransmits_all_lost_below_the_delivered() -> None:
    c = established_server()
    c.send(1.0, b"r" * 6 * 1448)
    out = c.pending_output()
    s = [x.seq for x in out]
    end = s[-1] + 1448
    # Segments 1 and 2 are lost, 3..6 SACKed.
    c.handle_segment(1.1, _sack_ack(c, s[0], [(s[2], end)]))
    rtx = c.pending_output()
    assert [x.seq for x in rtx][:2] == [s[0], s[1]]
    # CUBIC's reduction from cwnd (linux profile, Linux bictcp_recalc_ssthresh): 10 * 0.7.
    assert c.info().ssthresh == 7 * 1448
    c.handle_segment(1.2, _sack_ack(c, end))
    assert not c._in_recovery
    assert c.info().cwnd == c.info().ssthresh  # leaving recovery: cwnd = ssthresh


def test_rack_off_in_rfc_profile_and_without_sack() -> None:
    from pytcp.tcp.config import TcpConfig

    assert not TcpConfig.rfc().rack and TcpConfig.linux().rack
    c = established_server(TcpConfig.rfc())
    assert not c._rack_on


def test_reordering_degree_grows_with_the_distance_below_the_highest_sack() -> None:
    # Linux tcp_check_sack_reordering: 3000:4000 SACKed below the highest SACK (8000):
    # the degree becomes (8000 - 3000) / MSS = 5 segments; a later one closer to it leaves
    # it, and each case counts (tcpi_reord_seen).
    r = Rack()
    sent(r, 0, 10, 0.0)
    r.on_ack(0.1, 0, [(7000, 8000)], mss=MSS)
    assert (r.reordering, r.reordering_events) == (3, 0)  # nothing below it yet
    r.on_ack(0.1, 0, [(3000, 4000), (7000, 8000)], mss=MSS)
    assert (r.reordering, r.reordering_events) == (5, 1)
    r.on_ack(0.1, 0, [(3000, 4000), (6000, 8000)], mss=MSS)
    assert (r.reordering, r.reordering_events) == (5, 2)  # 2000 < 5 segments: kept
    # A cumulative ACK of never-retransmitted data below the highest SACK (from 0, while
    # 8000 was SACKed): 8000 / MSS = 8 segments.
    r.on_ack(0.1, 8000, [], mss=MSS)
    assert (r.reordering, r.reordering_events) == (8, 3)


def test_retransmitted_data_delivered_late_is_not_reordering() -> None:
    r = Rack()
    sent(r, 0, 4, 0.0)
    r.on_send(0, 1000, 0.05, True)  # retransmitted
    r.on_ack(0.1, 0, [(3000, 4000)], mss=MSS)
    r.on_ack(0.1, 1000, [(3000, 4000)], mss=MSS)
    assert (r.reordering, r.reordering_events) == (3, 0)


def test_lost_and_retransmitted_segment_counts() -> None:
    # Linux tp->lost_out counts segments marked lost until they are SACKed or acknowledged
    # (retransmitted or not); tp->retrans_out those whose retransmission is in flight.
    r = Rack()
    sent(r, 0, 6, 0.0)
    r.on_ack(0.1, 0, [(3000, 6000)], mss=MSS)  # DupThresh SACKed: reo_wnd 0
    assert r.detect_loss(0.1, 0.1, False, MSS) == 3 * MSS
    assert (r.lost_out(MSS), r.retrans_segments(MSS)) == (3, 0)
    r.on_send(0, 1000, 0.1, True)
    assert (r.lost_out(MSS), r.retrans_segments(MSS)) == (3, 1)
    r.on_ack(0.2, 0, [(1000, 2000), (3000, 6000)], mss=MSS)
    assert (r.lost_out(MSS), r.retrans_segments(MSS)) == (2, 1)
    r.on_ack(0.2, 6000, [], mss=MSS)
    assert (r.lost_out(MSS), r.retrans_segments(MSS)) == (0, 0)


def test_timers_in_linux_jiffies() -> None:
    # Linux arms the reordering timer and the PTO with usecs_to_jiffies() (rounded up) plus
    # TCP_TIMEOUT_MIN (2 jiffies); with HZ 250 a jiffy is 4 ms.
    assert in_ticks(0.025, 0.004) == pytest.approx(0.028)
    assert in_ticks(0.024, 0.004) == pytest.approx(0.024)  # (no float noise: 6 ticks)
    assert in_ticks(0.025, 0.0) == 0.025
    assert pto(0.1, 5, 1.0, 1.0, 0.004) == pytest.approx(0.208)
    assert pto(0.101, 5, 1.0, 1.0, 0.004) == pytest.approx(0.212)
    assert pto(0.1, 1, 1.0, 1.0, 0.004) == pytest.approx(0.4)  # + TCP_RTO_MIN instead
    r = Rack(tick=0.004)
    sent(r, 1000, 4, 0.0)
    r.on_ack(0.1, 1000, [(2000, 3000)])
    assert r.detect_loss(0.1, 0.1, False, MSS) == 0
    assert r.reo_timeout == pytest.approx(0.028 + 0.008)
