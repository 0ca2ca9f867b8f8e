"""ReassemblyQueue: out-of-order data, overlaps, SACK block order, D-SACK, memory bounds, 2**32 wrap."""

from __future__ import annotations

import random
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from pytcp.tcp.reassembly import COALESCE, ReassemblyQueue
from pytcp.tcp.seq import seq_add

M = 2**32


def test_in_order_pop() -> None:
    q = ReassemblyQueue(1000)
    assert q.insert(100, b"abc")
    assert q.pop(100) == b"abc"
    assert q.bytes_queued == 0 and q.blocks() == []


def test_hole_then_fill() -> None:
    q = ReassemblyQueue(1000)
    assert q.insert(105, b"fgh")
    assert q.pop(100) == b""
    assert q.blocks() == [(105, 108)]
    assert q.insert(100, b"abcde")
    assert q.blocks() == [(100, 108)]
    assert q.pop(100) == b"abcdefgh"
    assert q.bytes_queued == 0


def test_overlaps_keep_first_copy_and_count_new_bytes_only() -> None:
    q = ReassemblyQueue(1000)
    q.insert(110, b"KLMN")        # [110,114)
    q.insert(120, b"UVW")         # [120,123)
    assert q.bytes_queued == 7
    q.insert(108, b"ijklmnopqrstuvwxyz")  # [108,126) covers both and the gap
    assert q.bytes_queued == 18
    assert q.blocks() == [(108, 126)]
    q.insert(100, b"abcdefgh")
    assert q.pop(100) == b"abcdefghijKLMNopqrstUVWxyz"


def test_pop_discards_below_rcv_nxt_and_trims_partial() -> None:
    q = ReassemblyQueue(1000)
    q.insert(100, b"abcd")   # [100,104)
    q.insert(110, b"klmnop")  # [110,116)
    assert q.pop(112) == b"mnop"  # first block wholly below, second trimmed
    assert q.bytes_queued == 0


def test_pop_stops_at_hole() -> None:
    q = ReassemblyQueue(1000)
    q.insert(104, b"efg")
    q.insert(200, b"zz")
    assert q.pop(104) == b"efg"
    assert q.pop(107) == b""
    assert q.ranges() == [(200, 202)]
    assert q.bytes_queued == 2


def test_sack_blocks_most_recent_first() -> None:
    q = ReassemblyQueue(1000)
    q.insert(200, b"x" * 10)  # A [200,210)
    q.insert(300, b"x" * 10)  # B [300,310)
    q.insert(400, b"x" * 10)  # C [400,410)
    assert q.blocks() == [(400, 410), (300, 310), (200, 210)]
    q.insert(210, b"y" * 5)   # extends A: A now most recent (RFC 2018 4)
    assert q.blocks() == [(200, 215), (400, 410), (300, 310)]
    q.insert(302, b"x" * 3)   # duplicate inside B: B is the block holding it
    assert q.blocks() == [(300, 310), (200, 215), (400, 410)]
    assert q.ranges() == [(200, 215), (300, 310), (400, 410)]


def test_duplicate_of_for_dsack() -> None:
    q = ReassemblyQueue(1000)
    q.insert(200, b"x" * 10)
    q.insert(300, b"x" * 10)
    assert q.duplicate_of(190, 200) is None
    assert q.duplicate_of(195, 205) == (200, 205)
    assert q.duplicate_of(202, 206) == (202, 206)
    assert q.duplicate_of(205, 305) == (205, 210)
    assert q.duplicate_of(250, 300) is None
    assert q.duplicate_of(309, 400) == (309, 310)
    assert q.duplicate_of(310, 320) is None


def test_byte_limit_refuses_without_change() -> None:
    q = ReassemblyQueue(10)
    assert q.insert(100, b"x" * 8)
    assert not q.insert(200, b"y" * 3)
    assert q.bytes_queued == 8 and q.ranges() == [(100, 108)]
    assert q.insert(104, b"z" * 6)   # 4 old + 2 new bytes: fits exactly
    assert q.bytes_queued == 10
    assert q.insert(100, b"w" * 10)  # pure duplicate always fits
    assert not q.insert(110, b"!")


def test_block_count_limit() -> None:
    q = ReassemblyQueue(10_000, max_blocks=4)
    for i in range(4):
        assert q.insert(100 + 10 * i, b"a")
    assert len(q) == 4
    assert not q.insert(200, b"b")       # would be a fifth block
    assert q.insert(101, b"b")           # extends a block: allowed
    assert q.insert(102, b"c" * 8)       # merges two blocks
    assert len(q) == 3
    assert q.insert(200, b"d")


def test_straddles_the_wrap() -> None:
    q = ReassemblyQueue(1000)
    base = M - 5
    assert q.insert(seq_add(base, 8), b"IJ")   # [3, 5)
    assert q.insert(seq_add(base, 3), b"DEFGH")  # [M-2, 3): across 2**32
    assert q.blocks() == [(M - 2, 5)]
    assert q.duplicate_of(M - 1, 1) == (M - 1, 1)
    assert q.insert(base, b"ABC")
    assert q.pop(base) == b"ABCDEFGHIJ"


def test_clear() -> None:
    q = ReassemblyQueue(1000)
    q.insert(5, b"abc")
    q.clear()
    assert q.bytes_queued == 0 and not q and q.pop(5) == b""


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=300),
    isn_back=st.integers(0, 400),
    seed=st.integers(0, 2**32),
)
def test_random_segments_reassemble(data: bytes, isn_back: int, seed: int) -> None:
    rng = random.Random(seed)
    isn = (M - isn_back) % M  # start near the wrap
    segs = []
    for _ in range(rng.randint(1, 30)):
        a = rng.randrange(len(data))
        b = rng.randint(a + 1, min(len(data), a + 40))
        segs.append((a, b))
    # make sure every byte is covered by some segment
    pos = 0
    while pos < len(data):
        n = rng.randint(1, 25)
        segs.append((pos, min(len(data), pos + n)))
        pos += n
    segs += rng.sample(segs, k=min(len(segs), 5))  # duplicates
    rng.shuffle(segs)
    limit = len(data)
    q = ReassemblyQueue(limit)
    out = bytearray()
    rcv_nxt = isn
    for a, b in segs:
        seq = seq_add(isn, a)
        chunk = data[a:b]
        # the engine trims what is already delivered before queueing
        done = len(out)
        if b <= done:
            continue
        if a < done:
            seq = seq_add(isn, done)
            chunk = data[done:b]
        assert q.insert(seq, chunk)
        assert q.bytes_queued <= limit
        got = q.pop(rcv_nxt)
        out += got
        rcv_nxt = seq_add(rcv_nxt, len(got))
        for s, e in q.blocks():
            off = (s - isn) % M
            ln = (e - s) % M
            assert 0 < ln and off + ln <= len(data)
    assert bytes(out) == data
    assert q.bytes_queued == 0


@settings(max_examples=200, deadline=None)
@given(
    segs=st.lists(st.tuples(st.integers(0, 500), st.integers(1, 60)), max_size=40),
    limit=st.integers(0, 300),
    maxb=st.integers(1, 8),
)
def test_memory_bounds_hold(segs: list[tuple[int, int]], limit: int, maxb: int) -> None:
    q = ReassemblyQueue(limit, max_blocks=maxb)
    covered: set[int] = set()
    for off, n in segs:
        seq = seq_add(M - 100, off)
        ok = q.insert(seq, bytes([off & 0xFF]) * n)
        if ok:
            covered |= {(seq + i) % M for i in range(n)}
        assert q.bytes_queued <= limit
        assert len(q) <= maxb
        assert q.bytes_queued == len(covered)
        assert sum((e - s) % M for s, e in q.ranges()) == q.bytes_queued


@settings(max_examples=300, deadline=None)
@given(
    segs=st.lists(st.tuples(st.integers(0, 300), st.integers(1, 50)), min_size=1, max_size=30),
    base=st.sampled_from([0, 1000, M - 150]),
)
def test_octet_model_first_copy_wins(segs: list[tuple[int, int]], base: int) -> None:
    """Each insert carries distinct bytes; the queue must keep the first copy of every byte,
    report maximal runs as ranges, put the last touched run first in blocks()."""
    q = ReassemblyQueue(10_000)
    model: dict[int, int] = {}
    last_touched = 0
    for i, (off, n) in enumerate(segs):
        val = (i * 37 + 1) & 0xFF
        assert q.insert(seq_add(base, off), bytes([val]) * n)
        for o in range(off, off + n):
            model.setdefault(o, val)
        last_touched = off
        # maximal runs of the model
        runs: list[list[int]] = []
        for o in sorted(model):
            if runs and runs[-1][1] == o:
                runs[-1][1] = o + 1
            else:
                runs.append([o, o + 1])
        assert q.ranges() == [(seq_add(base, a), seq_add(base, b)) for a, b in runs]
        assert q.bytes_queued == len(model)
        first = q.blocks()[0]
        run = next(r for r in runs if r[0] <= last_touched < r[1])
        assert first == (seq_add(base, run[0]), seq_add(base, run[1]))
    # drain: fill every gap with a marker byte and pop everything
    top = max(model) + 1
    filler = bytes(0xEE if o not in model else 0 for o in range(top))
    assert q.insert(base, filler)  # only the gaps are new bytes
    got = q.pop(base)
    assert got == bytes(model.get(o, 0xEE) for o in range(top))


def test_tiny_segment_flood_is_bounded() -> None:
    """A hostile peer sends 20,000 one-byte segments with gaps: at most max_blocks are kept,
    the rest are refused, and SACK blocks stay within the bound."""
    q = ReassemblyQueue(1 << 20)
    refused = 0
    for i in range(20_000):
        if not q.insert(seq_add(M - 10_000, 2 * i + 1), b"z"):
            refused += 1
    assert len(q) == 64 and q.bytes_queued == 64
    assert refused == 20_000 - 64
    assert len(q.blocks()) == 64
    # a segment that bridges existing blocks is still accepted (it does not add a block)
    assert q.insert(seq_add(M - 10_000, 1), b"abc")
    assert len(q) == 63


def test_adjacent_small_segments_cost_about_their_size() -> None:
    """Issue 7: 2-byte segments above a hole used to cost ~26x their size (an object each);
    adjacent ones are now coalesced into chunks of at least COALESCE bytes."""
    q = ReassemblyQueue(1 << 20)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(50_000):  # 100,000 bytes above a one-byte hole, 2 bytes a segment
            assert q.insert(1 + 2 * i, b"ab")
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(q) == 1 and q.bytes_queued == 100_000
    assert held < 1.2 * 100_000, held
    chunks = q._blocks[0].chunks
    assert all(len(c) >= COALESCE for c in chunks[:-1])
    assert q.insert(0, b"X")
    assert q.pop(0) == b"X" + b"ab" * 50_000


def test_prune_drops_from_the_highest_sequence() -> None:
    q2 = ReassemblyQueue(10_000)
    for start in (100, 10, M - 50):  # M - 50 is the lowest: it lies before the wrap
        q2.insert(seq_add(start, 60) if start == M - 50 else start + 60, b"y" * 30)
    assert q2.ranges() == [(M + 10 - M, 40), (70, 100), (160, 190)]
    assert q2.prune(30) == 30 and q2.ranges() == [(10, 40), (70, 100)]
    assert q2.prune(31) == 31 and q2.ranges() == [(10, 39)] and q2.bytes_queued == 29
    assert q2.insert(39, b"z" * 3000)  # (a block of several chunks)
    assert q2.prune(2500) == 2500 and q2.ranges() == [(10, 539)]
    assert q2.pop(10) == b"y" * 29 + b"z" * 500
    assert q2.prune(10) == 0


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=400),
    seed=st.integers(0, 2**32),
    base=st.sampled_from([0, M - 200]),
    prune_every=st.integers(0, 9),
)
def test_output_equals_the_stream_under_any_order_duplication_and_pruning(
        data: bytes, seed: int, base: int, prune_every: int) -> None:
    """The receiver's view: segments of the stream arrive in any order, duplicated, some
    overlapping; in-order ones go straight to the output as in the engine; the queue is
    pruned now and then (memory pressure) and pruned bytes come again later (the peer
    retransmits). Whatever happens, the output is exactly the stream."""
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(0, 40))))
    segs = list(zip([0] + cuts, cuts + [len(data)]))
    segs += [(a, min(len(data), a + rng.randint(1, 30))) for a, _ in rng.sample(segs, k=min(4, len(segs)))]
    arrivals = segs * 2  # every segment at least once more (duplicates, retransmissions)
    rng.shuffle(arrivals)
    q = ReassemblyQueue(len(data))
    out = bytearray()
    i = 0
    while len(out) < len(data):
        if i >= len(arrivals):  # the peer's RTO: everything not yet acknowledged, in order
            arrivals += [s for s in segs if s[1] > len(out)]
        a, b = arrivals[i]
        i += 1
        assert i < 10_000
        done = len(out)
        if b <= done:
            continue
        if a < done:
            a = done
        seq = seq_add(base, a)
        if a == done:
            out += data[a:b]
            got = q.pop(seq_add(base, b))
        else:
            assert q.insert(seq, data[a:b])
            got = b""
        out += got
        if prune_every and i % prune_every == 0:
            q.prune(rng.randint(1, 50))
        assert q.bytes_queued == sum((e - s) % M for s, e in q.ranges())
    assert bytes(out) == data
