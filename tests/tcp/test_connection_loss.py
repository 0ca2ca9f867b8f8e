"""Loss and reordering: RTO with backoff and R2 (RFC 6298, RFC 9293 3.8.3), fast retransmit
and NewReno (RFC 5681, RFC 6582), SACK recovery (RFC 6675), receiver SACK/D-SACK (RFC 2018,
RFC 2883), the 2**32 wrap, and seeded lossy transfers that must deliver the exact bytes."""

from __future__ import annotations

import random
import zlib

import pytest
from test_connection_data import data_seg, established_server, payload
from test_connection_harness import cfg, pair

from pytcp.tcp.errors import TcpUsageError
from pytcp.tcp.events import Closed, ConnectionTimedOut
from pytcp.tcp.segment import Segment
from pytcp.tcp.state import State
from pytcp.wire.tcp import ACK, TcpOptions


def transfer(net, data: bytes, max_rounds: int = 3000, step: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    sent = 0
    for _ in range(max_rounds):
        if sent < len(data):
            sent += net.a.send(net.t, data[sent:])
        net.run(step)
        if len(net.received["b"]) >= len(data):
            break


def test_rto_retransmits_with_backoff_then_times_out() -> None:
    c = established_server(cfg(retries2=4, tlp=False))  # (no tail loss probe before the RTO)
    c.send(1.0, b"q" * 100)
    [d] = c.pending_output()
    times = []
    for _ in range(10):
        t = c.next_deadline()
        if t is None:
            break
        c.handle_timers(t)
        for s in c.pending_output():
            assert s.seq == d.seq and bytes(s.payload) == b"q" * 100
            times.append(round(t - 1.0, 6))
    rto = times[0]
    assert times == pytest.approx([rto, 3 * rto, 7 * rto, 15 * rto])  # RFC 6298 5.5 doubling
    assert c.state is State.CLOSED
    assert c.pending_events() == [ConnectionTimedOut(), Closed()]
    assert c.info().retransmits == 4


def test_rto_retransmission_recovers_lost_segment() -> None:
    lost = []

    def drop(direction: str, seg: Segment) -> bool:
        if direction == "a>b" and seg.payload and not lost:
            lost.append(seg.seq)
            return True
        return False

    net = pair(drop=drop)
    net.a.send(net.t, b"only segment")
    net.run(2.0)
    assert bytes(net.received["b"]) == b"only segment"
    assert net.a.info().retransmits == 1


def test_fast_retransmit_newreno_without_sack() -> None:
    dropped: list[int] = []

    def drop(direction: str, seg: Segment) -> bool:
        # lose the 3rd data segment once
        if direction == "a>b" and seg.payload and len(dropped) == 0:
            drop.count += 1  # type: ignore[attr-defined]
            if drop.count == 3:  # type: ignore[attr-defined]
                dropped.append(seg.seq)
                return True
        return False

    drop.count = 0  # type: ignore[attr-defined]
    net = pair(cfg(sack=False), cfg(sack=False), drop=drop)
    data = payload(30 * 1448)
    transfer(net, data)
    assert bytes(net.received["b"]) == data
    rtx = [(t, s) for (t, d, s) in net.log if d == "a>b" and s.payload and s.seq == dropped[0]]
    assert len(rtx) == 2
    # retransmitted after about one RTT of dupacks, long before the 1 s-ish RTO
    assert rtx[1][0] - rtx[0][0] < 0.1
    assert net.a.info().retransmits == 1
    assert net.a.info().ssthresh < 10_000_000


def test_sack_recovery_retransmits_several_holes_without_rto() -> None:
    count = [0]
    dropped: set[int] = set()

    def drop(direction: str, seg: Segment) -> bool:
        if direction == "a>b" and seg.payload:
            count[0] += 1
            if count[0] in (3, 6, 9):
                dropped.add(seg.seq)
                return True
        return False

    net = pair(drop=drop)
    assert net.a.sack_ok
    data = payload(40 * 1448)
    transfer(net, data)
    assert bytes(net.received["b"]) == data
    assert net.a.info().retransmits == 3
    # the receiver reported the holes with SACK blocks
    assert any(s.options.sack_blocks for s in net.segs("b>a"))
    for seq in dropped:
        sends = [t for (t, d, s) in net.log if d == "a>b" and s.payload and s.seq == seq]
        assert len(sends) == 2 and sends[1] - sends[0] < 0.1


def test_out_of_order_gets_immediate_ack_with_sack_and_hole_fill_acks_all() -> None:
    c = established_server(cfg(quickack=0))
    c.handle_segment(0.1, data_seg(1000, 1000))  # bytes 1000..2000 first
    [a1] = c.pending_output()
    assert a1.ack == 9001
    assert a1.options.sack_blocks == ((9001 + 1000, 9001 + 2000),)
    c.handle_segment(0.1, data_seg(3000, 500))
    [a2] = c.pending_output()
    assert a2.options.sack_blocks == ((9001 + 3000, 9001 + 3500), (9001 + 1000, 9001 + 2000))
    c.handle_segment(0.2, data_seg(0, 1000))  # fills the first hole
    [a3] = c.pending_output()
    assert a3.ack == 9001 + 2000
    assert a3.options.sack_blocks == ((9001 + 3000, 9001 + 3500),)
    c.handle_segment(0.2, data_seg(2000, 1000))
    [a4] = c.pending_output()
    assert a4.ack == 9001 + 3500 and a4.options.sack_blocks == ()
    assert c.receive(0.3) == b"d" * 3500


def test_duplicate_segment_draws_dsack() -> None:
    c = established_server(cfg(quickack=10))
    c.handle_segment(0.1, data_seg(0, 1000))
    c.pending_output()
    c.handle_segment(0.2, data_seg(0, 1000))  # the same again
    [a] = c.pending_output()
    assert a.ack == 9001 + 1000
    assert a.options.sack_blocks == ((9001, 9001 + 1000),)  # RFC 2883 D-SACK
    c.handle_segment(0.3, data_seg(1000, 100))
    [b] = c.pending_output()
    assert b.options.sack_blocks == ()  # reported once


def test_karn_no_rtt_sample_from_retransmission_without_timestamps() -> None:
    first = [True]

    def drop(direction: str, seg: Segment) -> bool:
        if direction == "a>b" and seg.payload and first[0]:
            first[0] = False
            return True
        return False

    net = pair(cfg(timestamps=False), cfg(timestamps=False), drop=drop)
    srtt0 = net.a.info().srtt
    net.a.send(net.t, b"x")
    net.run(3.0)
    assert net.received["b"] == b"x"
    assert net.a.info().srtt == srtt0  # the retransmitted segment gave no sample


@pytest.mark.parametrize("iss", [0xFFFFFFFF - 5000, 0xFFFFFFFF])
def test_transfer_across_the_sequence_wrap(iss: int) -> None:
    net = pair(iss_a=iss, iss_b=(iss - 100) & 0xFFFFFFFF)
    data = payload(300_000, 3)
    back = payload(100_000, 4)
    net.send_all("b", back)
    transfer(net, data)
    net.run(1.0)
    assert bytes(net.received["b"]) == data
    assert bytes(net.received["a"]) == back
    assert net.a.snd_una == (iss + 1 + len(data)) & 0xFFFFFFFF


@pytest.mark.parametrize("sack", [True, False])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lossy_reordering_duplicating_channel_delivers_exact_bytes(sack: bool, seed: int) -> None:
    c = cfg(sack=sack)
    net = pair(c, c, loss=0.05, reorder=0.1, dup=0.03, seed=seed, delay=0.01)
    # the handshake may itself have lost segments: let it finish
    net.run(10.0)
    assert net.a.state is State.ESTABLISHED and net.b.state is State.ESTABLISHED
    data = payload(200_000, seed)
    back = payload(50_000, seed + 10)
    net.send_all("b", back)
    transfer(net, data, max_rounds=4000)
    for _ in range(100):  # a lost retransmission waits for a (backed-off) RTO
        if len(net.received["a"]) == len(back):
            break
        net.run(1.0)
    assert bytes(net.received["b"]) == data
    assert bytes(net.received["a"]) == back
    # then close both ways over the same lossy channel
    net.a.shutdown(net.t)
    net.b.shutdown(net.t)
    net.run(200.0)
    assert net.a.state is State.CLOSED and net.b.state is State.CLOSED


def test_reordering_alone_without_loss() -> None:
    net = pair(reorder=0.3, seed=9)
    data = payload(100_000, 9)
    transfer(net, data)
    assert bytes(net.received["b"]) == data


def test_window_shrinks_to_zero_under_flight_no_timeout() -> None:
    c = established_server(cfg(retries2=3))
    c.send(1.0, b"w" * 4000)
    out = c.pending_output()
    assert len(out) == 3
    # the peer takes the first segment and closes its window
    c.handle_segment(1.05, Segment(9001, out[0].seq + 1448, ACK, 0,
                                   options=TcpOptions(timestamp=(300, 1000))))
    assert c.pending_output() == []
    # for a long time: only probes, never a timeout (MUST-34, MUST-37)
    t = 1.05
    for _ in range(50):
        d = c.next_deadline()
        assert d is not None
        t = d
        c.handle_timers(t)
        for s in c.pending_output():
            c.handle_segment(t, Segment(9001, out[0].seq + 1448, ACK, 0,
                                        options=TcpOptions(timestamp=(300, 1000))))
    assert c.state is State.ESTABLISHED and t > 300
    c.handle_segment(t, Segment(9001, out[0].seq + 1448, ACK, 100,
                                options=TcpOptions(timestamp=(300, 1000))))
    resent = c.pending_output()
    assert resent and resent[0].seq == out[0].seq + 1448


def test_random_segments_never_raise() -> None:
    rng = random.Random(5)
    c = established_server()
    c.send(1.0, b"abc" * 1000)
    for i in range(3000):
        seg = Segment(rng.getrandbits(32) if rng.random() < 0.5 else 9001 + rng.randrange(-5, 70000),
                      rng.getrandbits(32) if rng.random() < 0.5 else c.snd_una + rng.randrange(-5, 5000),
                      rng.getrandbits(8), rng.getrandbits(16), b"z" * rng.randrange(0, 3000),
                      TcpOptions(timestamp=(rng.getrandbits(32), rng.getrandbits(32)),
                                 sack_blocks=((rng.getrandbits(32), rng.getrandbits(32)),))
                      if rng.random() < 0.5 else TcpOptions(),
                      rng.getrandbits(16))
        c.handle_segment(1.0 + i * 0.001, seg)
        c.pending_output()
        if c.state is State.CLOSED:
            c = established_server()


def test_application_sets_r2_per_connection() -> None:
    c = established_server(cfg(retries2=15, tlp=False))
    c.set_retries(retries2=1)  # MUST-21
    c.send(1.0, b"q")
    c.pending_output()
    sends = 0
    for _ in range(10):
        t = c.next_deadline()
        if t is None:
            break
        c.handle_timers(t)
        sends += len(c.pending_output())
    assert sends == 1
    assert c.pending_events() == [ConnectionTimedOut(), Closed()]


def test_rto_go_back_skips_sacked_data() -> None:
    # segments 1 and 2 of 6 lost, and the ACKs draw no fast retransmit (RTO instead)
    count = [0]

    def drop(direction: str, seg: Segment) -> bool:
        if direction == "a>b" and seg.payload:
            count[0] += 1
            return count[0] in (1, 2, 7)  # 7: the first fast retransmission is lost too
        return False

    net = pair(drop=drop)
    data = payload(6 * 1448)
    net.a.send(net.t, data)
    net.run(5.0)
    assert bytes(net.received["b"]) == data
    sent = [s.seq for (_, d, s) in net.log if d == "a>b" and s.payload]
    # each of the 4 SACKed segments went out once: nothing SACKed was sent again
    first = net.a.iss + 1
    for k in range(2, 6):
        assert sent.count(first + k * 1448) == 1


def test_sack_blocks_never_push_a_data_segment_past_the_mss() -> None:
    c = established_server(cfg(quickack=0))
    c.handle_segment(0.1, data_seg(2000, 100))  # a hole: SACK blocks are due
    [dupack] = c.pending_output()
    assert dupack.options.sack_blocks == ((9001 + 2000, 9001 + 2100),)
    c.send(0.2, b"y" * 3000)
    out = c.pending_output()
    for s in out:
        opt_len = 12 + (4 + 8 * len(s.options.sack_blocks) if s.options.sack_blocks else 0)
        assert len(s.payload) + opt_len <= 1460
    assert out[0].options.sack_blocks == ()  # a full segment has no room for them
    assert out[-1].options.sack_blocks == ((9001 + 2000, 9001 + 2100),)  # the short tail does


def _fuzz_segment(rng: random.Random, c) -> Segment:  # type: ignore[no-untyped-def]
    near = rng.random() < 0.7
    seq = (c.rcv_nxt + rng.randrange(-3000, 70000)) & 0xFFFFFFFF if near else rng.getrandbits(32)
    ack = (c.snd_una + rng.randrange(-3000, 5000)) & 0xFFFFFFFF if near else rng.getrandbits(32)
    opts = TcpOptions(
        mss=rng.choice([None, 0, 1, 536, 65535]),
        wscale=rng.choice([None, 0, 14, 200]),
        sack_permitted=rng.random() < 0.3,
        sack_blocks=tuple((rng.getrandbits(32), rng.getrandbits(32))
                          for _ in range(rng.randrange(0, 4))),
        timestamp=rng.choice([None, (rng.getrandbits(32), rng.getrandbits(32))]))
    return Segment(seq, ack, rng.getrandbits(8), rng.getrandbits(16),
                   b"f" * rng.choice([0, 0, 1, 100, 1448, 5000]), opts, rng.getrandbits(16))


@pytest.mark.parametrize("setup", ["syn_sent", "syn_received", "established", "fin_wait",
                                   "close_wait", "time_wait", "closing_data"])
def test_hostile_segments_in_every_state_never_raise(setup: str) -> None:
    from pytcp.tcp.config import TcpConfig
    from pytcp.tcp.connection import Connection

    rng = random.Random(zlib.crc32(setup.encode()))

    def fresh():  # type: ignore[no-untyped-def]
        if setup == "syn_sent":
            c = Connection(TcpConfig(), iss=rng.getrandbits(32), now=0.0)
            c.open_active(0.0)
            return c
        if setup == "syn_received":
            c = Connection(TcpConfig(), iss=rng.getrandbits(32), now=0.0)
            c.open_passive()
            c.handle_segment(0.0, Segment(rng.getrandbits(32), 0, 0x02, 65535))
            return c
        net = pair(iss_a=rng.getrandbits(32), iss_b=rng.getrandbits(32))
        net.a.send(net.t, b"a" * 3000)
        net.b.send(net.t, b"b" * 3000)
        net.run(0.1)
        if setup == "fin_wait":
            net.a.shutdown(net.t)
            net.run(0.1)
        elif setup == "close_wait":
            net.b.shutdown(net.t)
            net.run(0.1)
        elif setup == "time_wait":
            net.a.shutdown(net.t)
            net.b.shutdown(net.t)
            net.run(0.1)
        elif setup == "closing_data":
            net.a.send(net.t, b"z" * 100_000)
            net.a.shutdown(net.t)
        return net.a

    c = fresh()
    t = 1.0
    for _ in range(1500):
        t += rng.random() * 0.05
        c.handle_segment(t, _fuzz_segment(rng, c))
        if rng.random() < 0.1:
            d = c.next_deadline()
            if d is not None:
                t = max(t, d)
                c.handle_timers(t)
        if rng.random() < 0.05:
            c.receive(t)
        c.pending_output()
        c.pending_events()
        if c.state is State.CLOSED:
            c = fresh()


def test_pure_ack_during_rto_go_back_carries_snd_max() -> None:
    # both directions lose their first segment; each end's RTO goes back, and its ACKs for
    # the peer's data must still be acceptable to the peer
    lost: set[str] = set()

    def drop(direction: str, seg: Segment) -> bool:
        if seg.payload and direction not in lost:
            lost.add(direction)
            return True
        return False

    net = pair(cfg(sack=False, timestamps=False), cfg(sack=False, timestamps=False), drop=drop)
    net.a.send(net.t, b"A" * 3000)
    net.b.send(net.t, b"B" * 3000)
    net.run(3.0)
    assert net.received == {"a": bytearray(b"B" * 3000), "b": bytearray(b"A" * 3000)}
    assert net.a.snd_una == net.a.snd_max and net.b.snd_una == net.b.snd_max
    assert net.a.info().retransmits <= 2 and net.b.info().retransmits <= 2


def test_newreno_partial_ack_recovers_second_loss_without_rto() -> None:
    count = [0]
    dropped: set[int] = set()

    def drop(direction: str, seg: Segment) -> bool:
        if direction == "a>b" and seg.payload:
            count[0] += 1
            if count[0] in (3, 6):
                dropped.add(seg.seq)
                return True
        return False

    net = pair(cfg(sack=False), cfg(sack=False), drop=drop)
    data = payload(30 * 1448)
    transfer(net, data)
    assert bytes(net.received["b"]) == data
    assert net.a.info().retransmits == 2
    sends = {seq: [t for (t, d, s) in net.log if d == "a>b" and s.payload and s.seq == seq]
             for seq in dropped}
    # the second hole is retransmitted one RTT after the first (RFC 6582 partial ACK)
    for times in sends.values():
        assert len(times) == 2 and times[1] - times[0] < 0.1


def test_window_closing_during_sack_recovery_does_not_stall() -> None:
    # found by a stress run: the peer's window closed while the sender was in SACK recovery;
    # the pull-back of SND.NXT left no timer and NextSeg() found nothing to send
    c = established_server()
    c.send(1.0, b"r" * 20 * 1448)
    out = c.pending_output()
    first = out[0].seq
    ts = TcpOptions(timestamp=(300, 1000))
    for k in range(2, 6):  # segment 0 lost: SACKs for 2..5 -> recovery
        c.handle_segment(1.05, Segment(9001, first, ACK, 502,
                                       options=TcpOptions(timestamp=(300, 1000), sack_blocks=(
                                           (first + 1448, first + k * 1448),))))
    c.pending_output()
    assert c._in_recovery
    c.handle_segment(1.06, Segment(9001, first, ACK, 0, options=ts))  # window closes
    c.pending_output()
    assert c.next_deadline() is not None  # a timer keeps the connection alive
    c.handle_segment(1.5, Segment(9001, first, ACK, 502, options=ts))  # window reopens
    resent = c.pending_output()
    assert resent and resent[0].seq == first


def _sacks(c, first: int, t: float, n: int, tsecr: int) -> None:  # type: ignore[no-untyped-def]
    for k in range(2, 2 + n):
        c.handle_segment(t, Segment(9001, first, ACK, 502, options=TcpOptions(
            timestamp=(300, tsecr), sack_blocks=((first + 1448, first + k * 1448),))))


def test_eifel_undoes_a_spurious_fast_retransmit() -> None:
    c = established_server()
    c.send(1.0, b"e" * 10 * 1448)
    out = c.pending_output()
    first, ts0 = out[0].seq, out[0].options.timestamp[0]  # type: ignore[index]
    cwnd0 = c.info().cwnd
    _sacks(c, first, 1.05, 3, ts0)  # segment 0 is only late: three SACKed segments pass it
    [rtx] = c.pending_output()
    assert rtx.seq == first and c.info().cwnd < cwnd0
    # the original arrives; its ACK echoes the original's TSval (RFC 3522)
    c.handle_segment(1.06, Segment(9001, first + 10 * 1448, ACK, 502,
                                   options=TcpOptions(timestamp=(301, ts0))))
    assert c.spurious_retransmits == 1
    assert c.info().cwnd >= cwnd0 and not c._in_recovery


def test_eifel_keeps_the_reduction_after_a_real_loss() -> None:
    c = established_server()
    c.send(1.0, b"e" * 10 * 1448)
    out = c.pending_output()
    first, ts0 = out[0].seq, out[0].options.timestamp[0]  # type: ignore[index]
    cwnd0 = c.info().cwnd
    _sacks(c, first, 1.05, 3, ts0)
    [rtx] = c.pending_output()
    ts1 = rtx.options.timestamp[0]  # type: ignore[index]
    # the retransmission filled the hole: the ACK echoes the retransmission's TSval
    c.handle_segment(1.08, Segment(9001, first + 10 * 1448, ACK, 502,
                                   options=TcpOptions(timestamp=(301, ts1))))
    assert c.spurious_retransmits == 0
    assert c.info().cwnd < cwnd0


def test_eifel_after_spurious_rto_resumes_new_data() -> None:
    c = established_server(cfg(tlp=False))
    c.send(1.0, b"e" * 4 * 1448)
    out = c.pending_output()
    first, ts0 = out[0].seq, out[0].options.timestamp[0]  # type: ignore[index]
    t = c.next_deadline()
    assert t is not None
    c.handle_timers(t)  # the ACKs are only slow: RTO
    [rtx] = c.pending_output()
    assert rtx.seq == first
    c.handle_segment(t + 0.01, Segment(9001, first + 1448, ACK, 502,
                                       options=TcpOptions(timestamp=(301, ts0))))
    assert c.spurious_retransmits == 1
    assert c.snd_nxt == c.snd_max  # no go-back of the rest (RFC 4015)
    c.send(t + 0.02, b"n" * 100)
    nxt = c.pending_output()
    assert nxt and nxt[0].seq == first + 4 * 1448  # new data, not retransmissions


def test_user_timeout_aborts_before_r2() -> None:
    """RFC 9293 3.8.3 USER TIMEOUT / RFC 5482 (Linux TCP_USER_TIMEOUT): data unacknowledged
    for the user timeout ends the connection although R2 (15) is far away; the last RTO is
    clamped to fire when the timeout ends."""
    c = established_server(cfg(retries2=15, tlp=False))
    c.set_user_timeout(3.0)
    c.send(1.0, b"q")
    c.pending_output()
    events: list[object] = []
    t = 0.0
    for _ in range(20):
        d = c.next_deadline()
        if d is None or Closed() in events:
            break
        t = d
        c.handle_timers(t)
        c.pending_output()
        events += c.pending_events()
    assert events == [ConnectionTimedOut(), Closed()]
    assert t == pytest.approx(4.0)  # 1.0 + 3.0, not the next backed-off RTO (after 1 + 3 s)
    with pytest.raises(TcpUsageError):
        c.set_user_timeout(-1)
