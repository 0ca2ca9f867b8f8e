"""RFC 6675 scoreboard: SACK ranges, IsLost, NextSeg, SetPipe; checked against an octet model."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from pytcp.tcp.sackboard import Scoreboard
from pytcp.tcp.seq import seq_add

M = 2**32
MSS = 100


def test_update_merges_and_counts_new_bytes() -> None:
    sb = Scoreboard()
    assert sb.highest_sacked is None and sb.sacked_bytes == 0
    assert sb.update([(1200, 1300)], 1000, 2000) == 100
    assert sb.update([(1400, 1500), (1200, 1300)], 1000, 2000) == 100
    assert sb.update([(1300, 1400)], 1000, 2000) == 100  # fills the gap: one range
    assert sb.ranges() == [(1200, 1500)]
    assert sb.update([(1250, 1450)], 1000, 2000) == 0    # nothing new: not a dupack by SACK
    assert sb.sacked_bytes == 300 and sb.highest_sacked == 1500


def test_update_ignores_bogus_and_old_blocks() -> None:
    sb = Scoreboard()
    assert sb.update([(900, 1000)], 1000, 2000) == 0   # at/below snd_una (D-SACK)
    assert sb.update([(1500, 1500)], 1000, 2000) == 0  # empty
    assert sb.update([(1600, 1500)], 1000, 2000) == 0  # reversed
    assert sb.update([(1900, 2100)], 1000, 2000) == 0  # beyond snd_max: never sent
    assert sb.update([(950, 1100)], 1000, 2000) == 100  # straddles snd_una: keep the top
    assert sb.ranges() == [(1000, 1100)]


def test_cumulative_ack_trims() -> None:
    sb = Scoreboard()
    sb.update([(1200, 1300), (1400, 1500)], 1000, 2000)
    sb.update([], 1250, 2000)
    assert sb.ranges() == [(1250, 1300), (1400, 1500)] and sb.sacked_bytes == 150
    sb.update([], 1500, 2000)
    assert sb.ranges() == [] and sb.sacked_bytes == 0


def test_is_lost_by_bytes_and_by_ranges() -> None:
    sb = Scoreboard()
    # hole [1000,1100), then SACKed [1100,1300): 200 bytes above = 2*MSS, not > 2*MSS
    sb.update([(1100, 1300)], 1000, 2000)
    assert not sb.is_lost(1000, MSS)
    sb.update([(1300, 1301)], 1000, 2000)  # 201 bytes above
    assert sb.is_lost(1000, MSS)
    assert not sb.is_lost(1150, MSS)  # SACKed bytes are never lost
    sb2 = Scoreboard()
    sb2.update([(1100, 1101), (1200, 1201), (1300, 1301)], 1000, 2000)
    assert sb2.is_lost(1000, MSS)      # three discontiguous SACKed sequences above
    assert not sb2.is_lost(1101, MSS)  # only two above


def test_next_seg_rules() -> None:
    sb = Scoreboard()
    # sent [1000, 1600); SACKed 1100-1400: [1000,1100) lost
    sb.update([(1100, 1400)], 1000, 1600)
    assert sb.next_seg(1000, 1600, 1000, MSS, can_send_new=True) == (1000, 100, True)
    # after retransmitting it (HighRxt = 1100): no lost hole below the highest SACK
    assert sb.next_seg(1000, 1600, 1100, MSS, can_send_new=True) == (1600, MSS, False)
    # rule 3: no new data may go: retransmit the first un-SACKed byte above HighRxt
    assert sb.next_seg(1000, 1600, 1100, MSS, can_send_new=False) is None
    sb.update([(1450, 1500)], 1000, 1600)
    # hole [1400,1450) has 50 bytes SACKed above: not lost; rule 2 first, then rule 3
    assert sb.next_seg(1000, 1600, 1100, MSS, can_send_new=True) == (1600, MSS, False)
    assert sb.next_seg(1000, 1600, 1100, MSS, can_send_new=False) == (1400, 50, True)


def test_pipe_counts_retransmitted_twice_when_not_lost() -> None:
    sb = Scoreboard()
    sb.update([(1100, 1400)], 1000, 1600)
    # holes: [1000,1100) lost (300 B SACKed above), [1400,1600) not lost
    assert sb.pipe(1000, 1600, 1000, MSS) == 200
    assert sb.pipe(1000, 1600, 1100, MSS) == 300  # + the retransmission of [1000,1100)
    # a retransmitted octet that is not lost counts twice (RFC 6675 SetPipe (a) and (b))
    sb2 = Scoreboard()
    sb2.update([(1100, 1150)], 1000, 1200)
    assert sb2.pipe(1000, 1200, 1050, MSS) == 100 + 50 + 50


def test_dsack_detection() -> None:
    assert Scoreboard.dsack([(900, 1000), (1200, 1300)], 1000) == (900, 1000)
    assert Scoreboard.dsack([(1250, 1260), (1200, 1300)], 1000) == (1250, 1260)
    assert Scoreboard.dsack([(1200, 1300), (1400, 1500)], 1000) is None
    assert Scoreboard.dsack([], 1000) is None


def test_ranges_bounded() -> None:
    sb = Scoreboard(max_ranges=4)
    blocks = [(1000 + 20 * i, 1010 + 20 * i) for i in range(10)]
    for b in blocks:
        sb.update([b], 1000, 5000)
    assert len(sb) == 4 and sb.ranges() == blocks[:4] and sb.sacked_bytes == 40


def test_wrap_around() -> None:
    una = M - 150
    sb = Scoreboard()
    sb.update([(seq_add(una, 100), seq_add(una, 400))], una, seq_add(una, 500))
    assert sb.ranges() == [(M - 50, 250)]
    assert sb.is_lost(una, MSS)
    assert sb.next_seg(una, seq_add(una, 500), una, MSS, False) == (una, 100, True)
    assert sb.pipe(una, seq_add(una, 500), una, MSS) == 100
    sb.update([], 10, seq_add(una, 500))
    assert sb.ranges() == [(10, 250)] and sb.sacked_bytes == 240


# ------------------------------------------------------------------ octet-level model

def _model(
    sacked: set[int], una: int, nxt: int, high_rxt: int, mss: int, dt: int = 3
) -> tuple[Callable[[int], bool], int]:
    def runs_above(x: int) -> int:
        n = 0
        prev = False
        for o in range(x + 1, nxt):
            cur = o in sacked
            if cur and not prev:
                n += 1
            prev = cur
        return n

    def is_lost(x: int) -> bool:
        if x in sacked:
            return False
        above = sum(1 for o in sacked if o > x)
        return runs_above(x) >= dt or above > (dt - 1) * mss

    pipe = 0
    for o in range(una, nxt):
        if o in sacked:
            continue
        if not is_lost(o):
            pipe += 1
        if o < high_rxt:
            pipe += 1
    return is_lost, pipe


@settings(max_examples=300, deadline=None)
@given(
    blocks=st.lists(st.tuples(st.integers(0, 600), st.integers(1, 120)), max_size=8),
    acked=st.integers(0, 200),
    rxt=st.integers(0, 600),
    base=st.sampled_from([0, 5000, M - 300]),
    mss=st.sampled_from([10, 50, 100]),
)
def test_against_octet_model(
    blocks: list[tuple[int, int]], acked: int, rxt: int, base: int, mss: int
) -> None:
    nxt = 600
    sb = Scoreboard()
    sacked: set[int] = set()
    for off, n in blocks:
        end = min(off + n, nxt)
        sb.update([(seq_add(base, off), seq_add(base, off + n))], base, seq_add(base, nxt))
        if off + n <= nxt:
            sacked |= set(range(off, end))
    sb.update([], seq_add(base, acked), seq_add(base, nxt))
    sacked = {o for o in sacked if o >= acked}
    assert sb.sacked_bytes == len(sacked)
    high_rxt = max(rxt, acked)
    is_lost, pipe = _model(sacked, acked, nxt, high_rxt, mss)
    assert sb.pipe(seq_add(base, acked), seq_add(base, nxt), seq_add(base, high_rxt), mss) == pipe
    for o in range(acked, nxt, 7):
        assert sb.is_lost(seq_add(base, o), mss) == is_lost(o), o
    # NextSeg rule 1 / 3 against the model
    top = max(sacked) + 1 if sacked else None
    cand = None
    if top is not None:
        cand = next((o for o in range(high_rxt, top) if o not in sacked), None)
    got = sb.next_seg(seq_add(base, acked), seq_add(base, nxt), seq_add(base, high_rxt), mss,
                      can_send_new=False)
    if cand is None:
        assert got is None
    else:
        assert got is not None
        seq, length, rx = got
        assert rx and seq == seq_add(base, cand)
        assert all(o not in sacked for o in range(cand, cand + length))
        assert length == min(mss, next(o for o in range(cand, nxt + 1) if o in sacked or o == nxt) - cand)
        got1 = sb.next_seg(seq_add(base, acked), seq_add(base, nxt), seq_add(base, high_rxt), mss,
                           can_send_new=True)
        assert got1 == (got if is_lost(cand) else (seq_add(base, nxt), mss, False))


def test_sacked_below_counts_what_a_cumulative_ack_covers() -> None:
    sb = Scoreboard()
    sb.update([(1200, 1300), (1500, 1700)], 1000, 2000)
    assert sb.sacked_below(1000) == 0
    assert sb.sacked_below(1250) == 50
    assert sb.sacked_below(1500) == 100
    assert sb.sacked_below(1600) == 200
    assert sb.sacked_below(2000) == 300
    # Across the 2**32 wrap.
    sb = Scoreboard()
    sb.update([((M - 50) % M, 50)], M - 100, 100)
    assert sb.sacked_below(25) == 75
