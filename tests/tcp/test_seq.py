"""Sequence-number arithmetic modulo 2**32 (RFC 9293 3.4), including across the wrap."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pytcp.tcp.seq import (
    MASK,
    MOD,
    seq_add,
    seq_between,
    seq_ge,
    seq_gt,
    seq_le,
    seq_lt,
    seq_max,
    seq_min,
    seq_sub,
)

u32 = st.integers(0, MASK)
# distances that keep two numbers comparable: |d| < 2**31
dist = st.integers(-(2**31) + 1, 2**31 - 1)
pos_dist = st.integers(1, 2**31 - 1)


def test_examples_across_the_wrap() -> None:
    assert MOD == 2**32 and MASK == 2**32 - 1
    assert seq_add(MASK, 1) == 0
    assert seq_add(MASK - 9, 20) == 10
    assert seq_add(5, -10) == MOD - 5
    assert seq_sub(10, MASK - 9) == 20
    assert seq_sub(MASK - 9, 10) == -20
    assert seq_lt(MASK, 0) and seq_gt(0, MASK)
    assert seq_le(MASK, MASK) and seq_ge(0, 0)
    assert not seq_lt(0, MASK)
    assert seq_max(MASK, 3) == 3 and seq_min(MASK, 3) == MASK
    assert seq_between(MASK - 1, MASK, 2) and seq_between(MASK - 1, 1, 2)
    assert not seq_between(MASK - 1, 2, 2)
    assert not seq_between(7, 7, 7)  # empty range
    assert seq_between(7, 7, 8)


def test_half_way_boundary() -> None:
    # exactly 2**31 apart: signed difference is -2**31, so a is "before" b both ways round
    assert seq_sub(2**31, 0) == -(2**31)
    assert seq_lt(2**31, 0)
    assert seq_lt(0, 2**31)


@given(a=u32, d=dist)
def test_add_sub_inverse(a: int, d: int) -> None:
    b = seq_add(a, d)
    assert 0 <= b <= MASK
    assert seq_sub(b, a) == d
    assert seq_add(b, -d) == a


@given(a=u32, d=pos_dist)
def test_ordering_with_positive_distance(a: int, d: int) -> None:
    b = seq_add(a, d)
    assert seq_lt(a, b) and seq_le(a, b)
    assert seq_gt(b, a) and seq_ge(b, a)
    assert not seq_lt(b, a) and not seq_ge(a, b)
    assert not seq_gt(a, b) and not seq_le(b, a)
    assert seq_max(a, b) == b and seq_max(b, a) == b
    assert seq_min(a, b) == a and seq_min(b, a) == a


@given(a=u32)
def test_reflexive(a: int) -> None:
    assert seq_le(a, a) and seq_ge(a, a)
    assert not seq_lt(a, a) and not seq_gt(a, a)
    assert seq_sub(a, a) == 0
    assert seq_max(a, a) == a == seq_min(a, a)


@given(a=u32, b=u32)
def test_trichotomy_and_duality(a: int, b: int) -> None:
    assert seq_lt(a, b) == seq_gt(b, a)
    assert seq_le(a, b) == seq_ge(b, a)
    assert seq_le(a, b) == (seq_lt(a, b) or a == b)
    assert seq_lt(a, b) == (seq_sub(a, b) < 0)
    if seq_sub(a, b) != -(2**31):  # away from the ambiguous half-way point
        assert sum([seq_lt(a, b), a == b, seq_gt(a, b)]) == 1


@given(base=u32, x=st.integers(0, 2**31), lo=st.integers(0, 2**31), n=st.integers(0, 2**31))
def test_between_matches_offsets(base: int, x: int, lo: int, n: int) -> None:
    # shift everything by base: seq_between depends only on distances
    lo_s = seq_add(base, lo)
    hi_s = seq_add(lo_s, n)
    x_s = seq_add(base, x)
    assert seq_between(lo_s, x_s, hi_s) == (0 <= (x - lo) % MOD < n)


@given(base=u32, a=st.integers(0, 2**30), b=st.integers(0, 2**30), c=st.integers(0, 2**30))
def test_transitive_within_half_window(base: int, a: int, b: int, c: int) -> None:
    sa, sb, sc = (seq_add(base, v) for v in (a, b, c))
    if seq_lt(sa, sb) and seq_lt(sb, sc):
        assert seq_lt(sa, sc)
    assert seq_lt(sa, sb) == (a < b)
    assert seq_max(sa, sb) == seq_add(base, max(a, b))
    assert seq_min(sa, sb) == seq_add(base, min(a, b))


def test_half_way_point_le_follows_lt() -> None:
    # At a distance of exactly 2**31 both seq_lt(a, b) and seq_gt(a, b) hold (as Linux's
    # before()/after()); seq_le/seq_ge must still agree with "lt or equal".
    a, b = 0, 2**31
    assert seq_lt(a, b) and seq_gt(a, b)
    assert seq_le(a, b) and seq_ge(a, b)
    assert seq_le(b, a) and seq_ge(b, a)
