"""Timestamps and PAWS (RFC 7323), keep-alive (RFC 9293 3.8.4, MUST-24..29), urgent data
(MUST-30..33), introspection and the debug log of transitions."""

from __future__ import annotations

import logging

import pytest
from test_connection_data import data_seg, established_server
from test_connection_harness import B_ISS, cfg, pair

from pytcp.drops import DropReason
from pytcp.tcp.events import Closed, ConnectionTimedOut, UrgentData
from pytcp.tcp.segment import Segment
from pytcp.tcp.state import State
from pytcp.wire.tcp import ACK, PSH, URG, TcpOptions


def test_paws_drops_old_timestamp_and_acks() -> None:
    c = established_server(cfg(quickack=10))
    c.handle_segment(0.1, data_seg(0, 100, t=1000))
    [a] = c.pending_output()
    assert a.options.timestamp == (100, 1000)  # TSecr echoes the peer's TSval
    # a segment with an older TSval: PAWS (RFC 7323 5.3)
    c.handle_segment(0.2, data_seg(100, 100, t=999))
    [dup] = c.pending_output()
    assert dup.ack == 9001 + 100
    assert c.drops[DropReason.PAWS] == 1
    assert c.receive(0.3) == b"d" * 100
    # TSval wrapping past 2**32 is newer, not older
    c.handle_segment(0.3, data_seg(100, 100, t=(1000 + 2**31 - 1) & 0xFFFFFFFF))
    c.pending_output()
    assert c.receive(0.4) == b"d" * 100


def test_ts_recent_follows_last_ack_sent_rule() -> None:
    c = established_server(cfg(quickack=0))
    c.handle_segment(0.1, data_seg(0, 1448, t=500))
    c.handle_segment(0.1, data_seg(1448, 1448, t=501))
    [a] = c.pending_output()
    # RFC 7323 4.3: TS.Recent is from the segment at Last.ACK.sent (the first of the two)
    assert a.options.timestamp is not None and a.options.timestamp[1] == 500


def test_rtt_from_timestamps() -> None:
    net = pair(delay=0.05)
    net.a.send(net.t, b"x" * 1000)
    net.run(1.0)
    srtt = net.a.info().srtt
    assert srtt is not None and 0.09 <= srtt <= 0.11


def test_keepalive_off_by_default() -> None:
    net = pair()
    assert net.a.next_deadline() is None
    net.run(10000.0)
    assert len(net.log) == 3  # the handshake only


def test_keepalive_probes_idle_connection_and_peer_answers() -> None:
    net = pair()
    net.a.set_keepalive(True, idle=100.0, interval=10.0, count=3)
    net.run(350.0)
    probes = [(t, s) for (t, d, s) in net.log if d == "a>b" and t > 1.0]
    assert [round(t, 2) for t, _ in probes] == [100.02, 200.04, 300.06]
    assert all(s.seq == net.a.snd_una - 1 and not s.payload for _, s in probes)
    assert net.a.state is State.ESTABLISHED


def test_keepalive_gives_up_when_peer_is_gone() -> None:
    net = pair(drop=lambda d, s: False)
    net.a.set_keepalive(True, idle=100.0, interval=10.0, count=3)
    net.drop = lambda d, s: True  # the peer vanished
    net.run(200.0)
    probes = [t for (t, d, s) in net.log if d == "a>b" and t > 1.0 and not s.flags & 0x04]
    assert [round(t, 2) for t in probes] == [100.02, 110.02, 120.02]  # MUST-29: lost probes ok
    assert net.a.state is State.CLOSED
    assert net.a.pending_events()[-2:] == [ConnectionTimedOut(), Closed()]
    assert net.a.transitions[-1][0] == pytest.approx(130.02)


def test_urgent_pointer_is_kept_and_reported() -> None:
    c = established_server()
    c.handle_segment(0.1, Segment(9001, B_ISS + 1, ACK | PSH | URG, 502, b"abcdef",
                                  options=TcpOptions(timestamp=(200, 0)), urg=4))
    ev = c.pending_events()
    assert UrgentData(4) in ev
    assert c.urgent_pending == 4  # octets before the first non-urgent one (MUST-62)
    c.receive(0.2, 3)
    assert c.urgent_pending == 1
    c.receive(0.2)
    assert c.urgent_pending == 0


def test_info_and_transitions_and_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pytcp.tcp.connection")
    net = pair()
    net.a.debug_name = "A"
    net.a.send(net.t, b"x" * 5000)
    net.run(1.0)
    info = net.a.info()
    assert info.state is State.ESTABLISHED and info.bytes_out == 5000
    assert info.cwnd > 0 and info.snd_wnd > 0 and info.rto >= 0.2
    assert net.b.info().bytes_in == 5000
    net.a.shutdown(net.t)
    net.run(0.1)
    assert "A ESTABLISHED -> FIN-WAIT-1 (CLOSE)" in caplog.text


def test_no_rtt_sample_when_ack_of_retransmission_echoes_the_original_tsval() -> None:
    c = established_server()
    srtt0 = c.info().srtt
    c.send(1.0, b"x" * 100)
    [orig] = c.pending_output()
    assert orig.options.timestamp is not None
    t = c.next_deadline()
    assert t is not None
    c.handle_timers(t)
    [rtx] = c.pending_output()
    assert rtx.seq == orig.seq and rtx.options.timestamp != orig.options.timestamp
    # the peer got the original, its ACK was lost; the retransmission is a duplicate there and
    # its ACK echoes the original TSval: Karn applies, no sample
    c.handle_segment(t + 0.01, Segment(9001, orig.seq + 100, ACK, 502,
                                       options=TcpOptions(timestamp=(500, orig.options.timestamp[0]))))
    assert c.snd_una == orig.seq + 100
    assert c.info().srtt == srtt0
    # a later ACK of new data gives a sample again
    c.send(t + 0.02, b"y")
    [d] = c.pending_output()
    assert d.options.timestamp is not None
    c.handle_segment(t + 0.05, Segment(9001, d.seq + 1, ACK, 502,
                                       options=TcpOptions(timestamp=(501, d.options.timestamp[0]))))
    assert c.info().srtt != srtt0


def test_sending_urgent_data_sets_urg_and_pointer() -> None:
    net = pair()
    net.auto_read = False
    net.a.send(net.t, b"normal ")
    net.a.send(net.t, b"URGENT", urgent=True)
    net.run(0.1)
    segs = [s for s in net.segs("a>b") if s.payload]
    urg = [s for s in segs if s.flags & URG]
    assert urg, segs
    last = urg[-1]
    # the pointer points at the first non-urgent octet: right after b"URGENT" (MUST-62)
    assert (last.seq + last.urg) & 0xFFFFFFFF == net.a.iss + 1 + len(b"normal URGENT")
    assert UrgentData(len(b"normal URGENT")) in net.b.pending_events()
    assert net.b.urgent_pending == len(b"normal URGENT")
    assert net.b.receive(net.t) == b"normal URGENT"  # inline (RFC 6093)
    net.a.send(net.t, b"after")
    net.run(0.1)
    later = [s for s in net.segs("a>b") if s.payload][-1]
    assert not later.flags & URG  # SND.UP acknowledged: no more URG


def test_tx_progress_events_only_when_tracked() -> None:
    from pytcp.tcp.events import TxProgress

    net = pair()
    net.a.pending_events()
    net.a.send(net.t, b"x" * 3000)
    net.a.pending_output()
    assert not [e for e in net.a.pending_events() if isinstance(e, TxProgress)]
    net.a.track_tx(True)
    assert net.a.tx_progress() == (3000, 0)  # sent (initial window), nothing acked yet
    assert net.a.pending_events() == [TxProgress(3000, 0)]
    assert net.a.pending_events() == []  # reported once per change
    net.run(1.0)
    evs = [e for e in net.a.pending_events() if isinstance(e, TxProgress)]
    assert evs == [TxProgress(3000, 3000)]
    net.a.close(net.t)
    net.run(1.0)
    assert net.a.tx_progress() == (3000, 3000)  # the FIN is not data
