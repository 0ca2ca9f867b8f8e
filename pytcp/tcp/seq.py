"""Sequence-number arithmetic modulo 2**32 (RFC 9293 3.4).

Never compare sequence numbers with ``<``: a transfer crosses the 2**32 wrap after 4 GiB.
Comparisons use the signed 32-bit difference, as Linux's ``before()``/``after()`` do.
"""

from __future__ import annotations

MOD = 1 << 32
MASK = MOD - 1
_HALF = 1 << 31


def seq_add(a: int, n: int) -> int:
    """a + n modulo 2**32."""
    return (a + n) & MASK


def seq_sub(a: int, b: int) -> int:
    """The signed distance a - b, in [-2**31, 2**31)."""
    return ((a - b + _HALF) & MASK) - _HALF


def seq_lt(a: int, b: int) -> bool:
    return ((a - b) & MASK) >= _HALF


def seq_le(a: int, b: int) -> bool:
    # seq_lt(a, b) or a == b, also at the half-way point where seq_lt and seq_gt both hold.
    return ((b - a) & MASK) <= _HALF


def seq_gt(a: int, b: int) -> bool:
    return ((b - a) & MASK) >= _HALF


def seq_ge(a: int, b: int) -> bool:
    # seq_gt(a, b) or a == b (see seq_le).
    return ((a - b) & MASK) <= _HALF


def seq_between(lo: int, x: int, hi: int) -> bool:
    """lo <= x < hi on the sequence circle (lo == hi means an empty range)."""
    return ((x - lo) & MASK) < ((hi - lo) & MASK)


def seq_max(a: int, b: int) -> int:
    return b if seq_lt(a, b) else a


def seq_min(a: int, b: int) -> int:
    return a if seq_lt(a, b) else b
