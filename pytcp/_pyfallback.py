"""Pure-Python versions of the hot-path helpers in :mod:`pytcp.native`.

Used when the cffi extension ``pytcp._native`` is missing or ``PYTCP_NO_NATIVE=1`` is set.
Every function here has the exact semantics documented in ``docs/architecture.md`` and is
property-tested against the C version and against scapy (``tests/native/``).

The checksum never loops over 16-bit words: it reads the whole buffer as one big integer and
uses the fact that 2**16 == 1 (mod 0xFFFF), so the one's-complement sum of the words of a
buffer (RFC 1071) is congruent to that integer modulo 0xFFFF. A few shift-folds shrink a large
integer before the final ``%`` (faster than one long division at 64 KiB).
"""

from __future__ import annotations

Buffer = bytes | bytearray | memoryview

# Below this many bits a single ``% 0xFFFF`` beats further shift-folding (measured).
_FOLD_THRESHOLD_BITS = 4096


def _ones_sum_mod(buf: Buffer) -> int:
    """Sum of the big-endian 16-bit words of ``buf`` (odd byte zero-padded), mod 0xFFFF."""
    if type(buf) is memoryview and buf.itemsize != 1:
        buf = buf.cast("B")  # count bytes, not items
    n = len(buf)
    x = int.from_bytes(buf, "big")
    if n & 1:
        x <<= 8  # RFC 1071: a trailing odd byte is the high byte of a zero-padded word
        n += 1
    bits = n << 3
    while bits > _FOLD_THRESHOLD_BITS:
        half = ((bits >> 1) + 15) & ~15  # split on a 16-bit word boundary
        x = (x >> half) + (x & ((1 << half) - 1))
        bits = half + 1
    return x % 0xFFFF


def csum_partial(buf: Buffer, start: int = 0) -> int:
    """RFC 1071 one's-complement sum of ``buf`` plus ``start``, folded to 16 bits (not inverted).

    The result is 0 only when the sum is zero (every word and ``start`` zero); otherwise it is
    in 1..0xFFFF, exactly what repeated end-around-carry folding gives.
    """
    if start < 0 or start >= 1 << 32:
        raise ValueError(f"start must be in 0..2**32-1, got {start}")
    s = _ones_sum_mod(buf) + start
    if s == 0:
        # Zero mod 0xFFFF can mean "all zero" or "a multiple of 0xFFFF"; only the former folds to 0.
        return 0xFFFF if any(buf) else 0
    return (s - 1) % 0xFFFF + 1


def checksum(buf: Buffer, start: int = 0) -> int:
    """The Internet checksum field value: ``~csum_partial(buf, start) & 0xFFFF``."""
    return ~csum_partial(buf, start) & 0xFFFF


def pseudo_header_sum(src: int, dst: int, proto: int, length: int) -> int:
    """Partial sum of the IPv4 pseudo-header (RFC 9293 3.1), folded to 16 bits."""
    s = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + proto + length
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def csum_update16(csum: int, old: int, new: int) -> int:
    """RFC 1624 eqn. 3: checksum field after one 16-bit word changes from ``old`` to ``new``.

    HC' = ~(~HC + ~m + m')
    """
    s = (~csum & 0xFFFF) + (~old & 0xFFFF) + (new & 0xFFFF)
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ring_write(ring: bytearray | memoryview, pos: int, src: Buffer) -> None:
    """Copy ``src`` into ``ring`` at ``pos`` (taken modulo ``len(ring)``), wrapping at the end."""
    size = len(ring)
    n = len(src)
    if n > size:
        raise ValueError(f"source of {n} bytes does not fit a ring of {size}")
    if n == 0:
        return
    pos %= size
    first = size - pos
    if n <= first:
        ring[pos:pos + n] = src
    else:
        mv = src if isinstance(src, memoryview) else memoryview(src)
        ring[pos:] = mv[:first]
        ring[:n - first] = mv[first:]


def ring_read(ring: Buffer, pos: int, dst: bytearray | memoryview, n: int) -> None:
    """Copy ``n`` bytes from ``ring`` at ``pos`` (modulo ``len(ring)``, wrapping) into ``dst``."""
    size = len(ring)
    if n < 0 or n > size or n > len(dst):
        raise ValueError(f"cannot read {n} bytes from a ring of {size} into {len(dst)} bytes")
    if n == 0:
        return
    pos %= size
    first = size - pos
    mv = ring if isinstance(ring, memoryview) else memoryview(ring)
    if n <= first:
        dst[:n] = mv[pos:pos + n]
    else:
        dst[:first] = mv[pos:]
        dst[first:n] = mv[:n - first]
