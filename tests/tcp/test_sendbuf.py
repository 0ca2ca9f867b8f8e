"""SendBuffer: a ring of unacked bytes read by offset from SND.UNA, checked against a bytes model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytcp.tcp.sendbuf import MIN_RING, SendBuffer


def test_write_accepts_what_fits() -> None:
    sb = SendBuffer(10)
    assert sb.capacity == 10 and sb.free == 10 and len(sb) == 0
    assert sb.write(b"hello") == 5
    assert sb.write(b"world!!") == 5
    assert len(sb) == 10 and sb.free == 0
    assert sb.write(b"x") == 0
    assert sb.read(0, 100) == b"helloworld"


def test_read_by_offset_is_clipped_and_does_not_consume() -> None:
    sb = SendBuffer(16)
    sb.write(b"abcdefgh")
    assert sb.read(2, 3) == b"cde"
    assert sb.read(6, 10) == b"gh"
    assert sb.read(8, 1) == b""
    assert sb.read(20, 1) == b""
    assert sb.read(0, 0) == b""
    assert len(sb) == 8


def test_consume_then_wrap_around() -> None:
    sb = SendBuffer(8)
    sb.write(b"012345")
    sb.consume(4)  # acked "0123"
    assert sb.read(0, 10) == b"45"
    assert sb.write(b"ABCDEF") == 6  # wraps the ring end
    assert len(sb) == 8
    assert sb.read(0, 8) == b"45ABCDEF"
    assert sb.read(3, 4) == b"BCDE"
    dst = bytearray(10)
    assert sb.read_into(1, 5, memoryview(dst)[2:]) == 5
    assert bytes(dst) == b"\0\0" + b"5ABCD" + b"\0\0\0"


def test_consume_more_than_buffered_empties() -> None:
    sb = SendBuffer(4)
    sb.write(b"ab")
    sb.consume(10)
    assert len(sb) == 0 and sb.free == 4
    with pytest.raises(ValueError):
        sb.consume(-1)
    with pytest.raises(ValueError):
        SendBuffer(0)


def test_write_accepts_memoryview_and_bytearray() -> None:
    sb = SendBuffer(6)
    assert sb.write(memoryview(b"xyz123")[1:]) == 5
    assert sb.write(bytearray(b"QQ")) == 1
    assert sb.read(0, 6) == b"yz123Q"


ops = st.lists(
    st.one_of(
        st.tuples(st.just("w"), st.binary(max_size=40)),
        st.tuples(st.just("c"), st.integers(0, 40)),
        st.tuples(st.just("r"), st.tuples(st.integers(0, 40), st.integers(0, 40))),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(cap=st.integers(1, 37), ops=ops)
def test_matches_bytes_model(cap: int, ops: list[tuple[str, object]]) -> None:
    sb = SendBuffer(cap)
    model = b""
    for kind, arg in ops:
        if kind == "w":
            assert isinstance(arg, bytes)
            n = sb.write(arg)
            assert n == min(len(arg), cap - len(model))
            model += arg[:n]
        elif kind == "c":
            assert isinstance(arg, int)
            sb.consume(arg)
            model = model[arg:]
        else:
            assert isinstance(arg, tuple)
            off, n = arg
            assert sb.read(off, n) == model[off:off + n]
            dst = bytearray(n)
            got = sb.read_into(off, n, dst)
            assert bytes(dst[:got]) == model[off:off + n]
        assert len(sb) == len(model)
        assert sb.free == cap - len(model)
    assert sb.read(0, cap) == model


def test_read_into_too_small_destination_is_local_misuse() -> None:
    sb = SendBuffer(8)
    sb.write(b"abcdef")
    with pytest.raises(ValueError):
        sb.read_into(0, 6, bytearray(3))
    with pytest.raises(ValueError):
        sb.read(-1, 2)


def test_storage_starts_empty_grows_by_doubling_and_is_released_when_drained() -> None:
    sb = SendBuffer(1 << 20)
    assert sb.allocated == 0 and sb.free == 1 << 20
    assert sb.write(b"x" * 100) == 100
    assert sb.allocated == MIN_RING  # a small ring first
    sb.consume(40)  # the head moves: the next growth must unwrap the ring
    assert sb.write(b"y" * (MIN_RING - 30)) == MIN_RING - 30  # wraps the ring end
    assert sb.allocated == 2 * MIN_RING  # doubled, content copied to the start
    assert sb.read(0, 1 << 20) == b"x" * 60 + b"y" * (MIN_RING - 30)
    sb.write(b"z" * 100_000)
    assert sb.allocated == 32 * MIN_RING  # doubled until it fits
    assert len(sb) == 60 + MIN_RING - 30 + 100_000
    sb.consume(len(sb) - 1)
    assert sb.allocated == 32 * MIN_RING  # not drained yet: kept (no churn mid-transfer)
    sb.consume(1)
    assert sb.allocated == 0 and len(sb) == 0  # drained: released
    assert sb.read(0, 10) == b""


def test_storage_never_passes_the_limit_and_the_limit_can_grow() -> None:
    sb = SendBuffer(6000)
    assert sb.write(b"a" * 10_000) == 6000
    assert sb.allocated == 6000  # doubling clipped at the limit
    sb.limit = 9000  # autotuning raised it: more is accepted, the ring grows on demand
    assert sb.free == 3000
    assert sb.write(b"b" * 5000) == 3000
    assert sb.allocated == 9000
    assert sb.read(5990, 20) == b"a" * 10 + b"b" * 10


@settings(max_examples=200, deadline=None)
@given(limits=st.lists(st.integers(1, 9000), min_size=1, max_size=5), ops=ops)
def test_growing_limit_matches_bytes_model(limits: list[int], ops: list[tuple[str, object]]) -> None:
    limits.sort()
    sb = SendBuffer(limits[0])
    model = b""
    for i, (kind, arg) in enumerate(ops):
        if i % 7 == 6 and limits:
            sb.limit = max(sb.limit, limits.pop())
        if kind == "w":
            assert isinstance(arg, bytes)
            n = sb.write(arg * 50)
            assert n == min(len(arg) * 50, sb.limit - len(model))
            model += (arg * 50)[:n]
        elif kind == "c":
            assert isinstance(arg, int)
            sb.consume(arg * 37)
            model = model[arg * 37:]
        else:
            assert isinstance(arg, tuple)
            off, n = arg
            assert sb.read(off * 30, n * 30) == model[off * 30:off * 30 + n * 30]
        assert len(sb) == len(model)
        assert sb.allocated <= max(sb.limit, MIN_RING) and (sb.allocated == 0) == (not model)


def test_skb_view_counts_truesize_splits_on_send_and_frees_on_ack() -> None:
    from pytcp.tcp.sendbuf import SKB_TRUESIZE

    sb = SendBuffer(1 << 20)
    assert sb.skbs == 0 and sb.queued == 0 and sb.tail_skb() == (0, 0)
    sb.append(b"a" * 16000, new_skb=True)
    sb.append(b"b" * 4000, new_skb=False)  # appended to the tail skb
    assert sb.skbs == 1 and sb.tail_skb() == (0, 20000)
    sb.append(b"c" * 16000, new_skb=True)
    assert sb.skbs == 2 and sb.tail_skb() == (20000, 16000)
    assert sb.queued == 36000 + 2 * SKB_TRUESIZE
    sb.split(10000)  # a packet ended inside the first skb (tso_fragment)
    sb.split(20000)  # at a boundary: nothing changes
    sb.split(36000)  # at the end: nothing changes
    assert sb.skbs == 3 and sb.queued == 36000 + 3 * SKB_TRUESIZE
    assert sb.to_skb_end(0) == 10000 and sb.to_skb_end(10000) == 10000
    assert sb.to_skb_end(25000) == 11000 and sb.to_skb_end(36000) == 0
    sb.consume(12000)  # frees the first skb, trims the second (it keeps its overhead)
    assert sb.skbs == 2 and sb.queued == 24000 + 2 * SKB_TRUESIZE
    assert sb.to_skb_end(0) == 8000 and sb.tail_skb() == (8000, 16000)
    assert sb.read(0, 3) == b"aaa" and sb.read(8000, 2) == b"cc"
    sb.consume(24000)
    assert sb.skbs == 0 and sb.queued == 0 and sb.allocated == 0


def test_skb_view_survives_many_skbs_and_compaction() -> None:
    sb = SendBuffer(1 << 20)
    for i in range(200):
        sb.append(bytes([i]) * 100, new_skb=True)
    assert sb.skbs == 200
    for i in range(199):
        sb.consume(100)
        assert sb.skbs == 199 - i
        assert sb.read(0, 1) == bytes([i + 1]) and sb.to_skb_end(0) == 100


def test_skb_view_matches_a_plain_model_under_random_use() -> None:
    # split/to_skb_end use a hint for in-order sending; any order must give the same skbs
    # as a plain sorted list of boundaries.
    import bisect
    import random

    rng = random.Random(7)
    sb = SendBuffer(1 << 20)
    base, ends = 0, []  # the model: stream offsets of skb ends
    total = 0
    for _ in range(3000):
        op = rng.random()
        if op < 0.3:
            n = rng.randint(1, 3000)
            new = rng.random() < 0.5 or not ends
            sb.append(b"x" * n, new_skb=new)
            total += n
            if new:
                ends.append(total)
            else:
                ends[-1] = total
        elif op < 0.7 and total > base:
            off = rng.randint(0, total - base) if rng.random() < 0.2 else min(
                total - base, rng.randint(0, 4000))
            sb.split(off)
            pos = base + off
            if base < pos < total and pos not in ends:
                bisect.insort(ends, pos)
        elif op < 0.85 and total > base:
            n = rng.randint(0, total - base)
            sb.consume(n)
            base += n
            ends = [e for e in ends if e > base]
        assert sb.skbs == len(ends)
        if total > base:
            off = rng.randint(0, total - base)
            i = bisect.bisect_right(ends, base + off)
            assert sb.to_skb_end(off) == (ends[i] - base - off if i < len(ends) else 0)


def test_split_run_equals_splits_one_by_one() -> None:
    a, b = SendBuffer(1 << 20), SendBuffer(1 << 20)
    for sb in (a, b):
        sb.append(b"x" * 5000, new_skb=True)
        sb.append(b"y" * 7000, new_skb=True)
        sb.consume(1000)
    cuts = [0, 1000, 3000, 4000, 4500, 6000, 9000, 11000, 12000]
    a.split_run(cuts)
    for c in cuts:
        b.split(c)
    assert a.skbs == b.skbs == 7  # 2 written + 5 new cuts (4000 is a boundary already)
    assert [a.to_skb_end(o) for o in range(0, 11000, 250)] == [
        b.to_skb_end(o) for o in range(0, 11000, 250)]


def test_skb_bounds_name_the_packet_holding_a_byte() -> None:
    sb = SendBuffer(1 << 20)
    sb.append(b"a" * 16000, new_skb=True)
    sb.append(b"c" * 4000, new_skb=True)
    sb.split(6000)
    assert sb.skb_bounds(0) == (0, 6000) and sb.skb_bounds(5999) == (0, 6000)
    assert sb.skb_bounds(6000) == (6000, 16000) and sb.skb_bounds(16000) == (16000, 20000)
    assert sb.skb_bounds(20000) is None and sb.skb_bounds(-1) is None
    sb.consume(7000)  # the first skb freed, the second trimmed
    assert sb.skb_bounds(0) == (0, 9000) and sb.skb_bounds(9000) == (9000, 13000)


def test_psh_marks_follow_linux_skb_flags() -> None:
    """tcp_mark_push marks the tail skb; a later write's first bytes joining it clear the
    mark, more bytes of the same write keep it on the grown skb; a split leaves it on the
    second part only (tso_fragment); acknowledged skbs drop their marks."""
    sb = SendBuffer(1 << 16)
    sb.append(b"a" * 1000, True)
    sb.mark_push()  # write 1 ends: skb 0:1000 carries PSH
    assert sb.pushed(1000) and not sb.pushed(500) and sb.push_marks == 1
    sb.append(b"b" * 500, False, first=True)  # write 2 joins the unsent tail: mark cleared
    assert not sb.pushed(1000) and not sb.pushed(1500) and sb.push_marks == 0
    sb.mark_push()
    sb.append(b"c" * 500, False, first=False)  # same write goes on: the mark moves
    assert sb.pushed(2000) and not sb.pushed(1500) and sb.push_marks == 1
    sb.append(b"d" * 1000, True)  # a new skb leaves the previous one's mark alone
    sb.mark_push()
    assert sb.pushed(2000) and sb.pushed(3000) and sb.push_marks == 2
    sb.split(1200)  # a packet ended inside the first skb: PSH stays on its second part
    assert sb.skb_bounds(0) == (0, 1200) and not sb.pushed(1200) and sb.pushed(2000)
    sb.consume(1200)
    assert sb.pushed(800) and sb.pushed(1800) and sb.push_marks == 2
    sb.consume(800)  # the marked skb acknowledged whole
    assert sb.push_marks == 1 and sb.pushed(1000)
    sb.consume(1000)
    assert sb.push_marks == 0 and not sb.pushed(0)


def test_an_skb_past_the_limit_does_not_copy_the_ring_per_append() -> None:
    # A write may start one skb below SO_SNDBUF and fill it beyond (Linux); the appends that
    # fill it (4 KiB pieces here) must not each reallocate and copy the whole ring.
    from pytcp.tcp import sendbuf as sbm

    sb = SendBuffer(limit=256 * 1024)
    sb.append(bytes(250 * 1024), True)
    grows = 0
    orig = sbm.SendBuffer._grow_to

    def counting(self: SendBuffer, need: int) -> None:
        nonlocal grows
        grows += 1
        orig(self, need)

    sbm.SendBuffer._grow_to = counting  # type: ignore[method-assign]
    try:
        sb.append(b"x" * 4096, True)
        for _ in range(15):
            sb.append(b"y" * 4096, False)
    finally:
        sbm.SendBuffer._grow_to = orig  # type: ignore[method-assign]
    assert len(sb) == 250 * 1024 + 64 * 1024
    assert grows <= 4  # was 15: one whole-ring copy per append past the limit
    assert sb.allocated < len(sb) + sbm.PAST_LIMIT_STEP
    assert sb.read(250 * 1024, 64 * 1024) == b"x" * 4096 + b"y" * (15 * 4096)
