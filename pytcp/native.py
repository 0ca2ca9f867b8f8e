"""Hot-path helpers: Internet checksum and ring-buffer copies, in C when possible.

This module owns the choice between the cffi extension ``pytcp._native`` (built from
``native/pytcp_native.c`` by ``native/build_native.py``) and the pure-Python fallback
``pytcp._pyfallback``. The extension is used when it imports and the environment variable
``PYTCP_NO_NATIVE`` is unset (or empty / ``0``). ``HAVE_NATIVE`` tells which one is live.

Both variants have identical semantics (see ``docs/architecture.md``, section "native"):

- ``csum_partial(buf, start=0)``: RFC 1071 one's-complement sum of ``buf`` plus ``start``,
  folded to 16 bits, not inverted.
- ``checksum(buf, start=0)``: ``~csum_partial(buf, start) & 0xFFFF``.
- ``pseudo_header_sum(src, dst, proto, length)``: IPv4 pseudo-header partial sum.
- ``csum_update16(csum, old, new)``: RFC 1624 eqn. 3 incremental update.
- ``ring_write(ring, pos, src)`` / ``ring_read(ring, pos, dst, n)``: copies with wrap-around.

Buffers may be ``bytes``, ``bytearray`` or a contiguous byte ``memoryview`` (any offset).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from pytcp import _pyfallback

Buffer = bytes | bytearray | memoryview

# The pure-Python helpers need no extension; they are the same in both variants.
pseudo_header_sum = _pyfallback.pseudo_header_sum
csum_update16 = _pyfallback.csum_update16

_lib: Any = None
_ffi: Any = None

if os.environ.get("PYTCP_NO_NATIVE", "") in ("", "0"):
    try:
        _mod = importlib.import_module("pytcp._native")
        _ffi, _lib = _mod.ffi, _mod.lib
        _from_buffer = _ffi.from_buffer
        _c_csum_partial = _lib.pytcp_csum_partial
        _c_ring_write = _lib.pytcp_ring_write
        _c_ring_read = _lib.pytcp_ring_read
    except (ImportError, AttributeError):
        # Not built (no compiler at install time) or a stale build: run on the fallback.
        _lib = None

HAVE_NATIVE: bool = _lib is not None

if _lib is not None:

    def csum_partial(buf: Buffer, start: int = 0) -> int:
        """RFC 1071 one's-complement sum of ``buf`` plus ``start``, folded to 16 bits."""
        if type(buf) is bytes:
            # cffi passes a bytes object to a ``const char *`` parameter without a copy.
            return int(_c_csum_partial(buf, len(buf), start))
        mv = _from_buffer(buf)
        return int(_c_csum_partial(mv, len(mv), start))

    def checksum(buf: Buffer, start: int = 0) -> int:
        """The Internet checksum field value: ``~csum_partial(buf, start) & 0xFFFF``."""
        if type(buf) is bytes:
            return ~int(_c_csum_partial(buf, len(buf), start)) & 0xFFFF
        mv = _from_buffer(buf)
        return ~int(_c_csum_partial(mv, len(mv), start)) & 0xFFFF

    def ring_write(ring: bytearray | memoryview, pos: int, src: Buffer) -> None:
        """Copy ``src`` into ``ring`` at ``pos`` (modulo ``len(ring)``), wrapping at the end."""
        size = len(ring)
        n = len(src)
        if n > size:
            raise ValueError(f"source of {n} bytes does not fit a ring of {size}")
        if n == 0:
            return
        _c_ring_write(_from_buffer(ring, require_writable=True), size, pos % size,
                      src if type(src) is bytes else _from_buffer(src), n)

    def ring_read(ring: Buffer, pos: int, dst: bytearray | memoryview, n: int) -> None:
        """Copy ``n`` bytes from ``ring`` at ``pos`` (modulo ``len(ring)``, wrapping) into ``dst``."""
        size = len(ring)
        if n < 0 or n > size or n > len(dst):
            raise ValueError(f"cannot read {n} bytes from a ring of {size} into {len(dst)} bytes")
        if n == 0:
            return
        _c_ring_read(ring if type(ring) is bytes else _from_buffer(ring), size, pos % size,
                     _from_buffer(dst, require_writable=True), n)

else:
    csum_partial = _pyfallback.csum_partial
    checksum = _pyfallback.checksum
    ring_write = _pyfallback.ring_write
    ring_read = _pyfallback.ring_read

__all__ = [
    "HAVE_NATIVE",
    "checksum",
    "csum_partial",
    "csum_update16",
    "pseudo_header_sum",
    "ring_read",
    "ring_write",
]
