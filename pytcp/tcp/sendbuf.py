"""The send buffer: bytes the application gave us that the peer has not acknowledged yet.

A byte ring whose *storage follows use*: it holds no memory while empty, allocates a small
ring on the first write (``MIN_RING`` bytes, or what the write needs), doubles it when a
write needs more room (never past ``limit``), and releases it as soon as every byte has been
acknowledged (drained), as Linux frees a socket's skbs as they are acknowledged. ``limit`` is
how many bytes it accepts at most (the connection's autotuned SO_SNDBUF, see
``Connection``); raising it never copies. Byte 0 of the logical buffer is the oldest unacked
byte (SND.UNA); the engine reads segments by offset from it (offset = seq - SND.UNA),
including retransmissions, and consumes bytes as they are cumulatively acknowledged. Copies
in and out go through ``pytcp.native.ring_write`` / ``ring_read`` (C when built).
"""

from __future__ import annotations

from pytcp import native

Buffer = bytes | bytearray | memoryview

# The smallest ring allocated (Linux's tcp_wmem[0] is one page too).
MIN_RING = 4096

_EMPTY = bytearray()
_EMPTY_MV = memoryview(_EMPTY)


class SendBuffer:
    """A byte ring accepting up to ``limit`` bytes: ``write`` appends, ``read`` peeks,
    ``consume`` drops. Storage grows on demand and is released when drained."""

    __slots__ = ("_cap", "_head", "_len", "_mv", "_ring", "limit")

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError("limit must be positive")
        self.limit = limit
        self._ring = _EMPTY
        self._mv = _EMPTY_MV
        self._cap = 0   # bytes allocated (len(self._ring))
        self._head = 0  # ring index of the oldest unacknowledged byte
        self._len = 0

    @property
    def capacity(self) -> int:
        """Bytes it accepts at most (``limit``)."""
        return self.limit

    @property
    def allocated(self) -> int:
        """Bytes of ring storage held now (0 when empty)."""
        return self._cap

    @property
    def free(self) -> int:
        """Bytes ``write`` would accept now."""
        return max(0, self.limit - self._len)

    def __len__(self) -> int:
        return self._len

    def _grow(self, need: int) -> None:
        """Reallocate so that ``need`` bytes fit: double (at least ``MIN_RING``), at most
        ``limit``; the content is copied to the start of the new ring."""
        cap = max(MIN_RING, 2 * self._cap)
        while cap < need:
            cap *= 2
        cap = min(cap, max(self.limit, need))
        ring = bytearray(cap)
        if self._len:
            native.ring_read(self._ring, self._head, ring, self._len)
        self._ring = ring
        self._mv = memoryview(ring)
        self._cap = cap
        self._head = 0

    def write(self, data: Buffer) -> int:
        """Append as much of ``data`` as fits under ``limit``; return the bytes accepted."""
        n = min(len(data), self.limit - self._len)
        if n <= 0:
            return 0
        if self._len + n > self._cap:
            self._grow(self._len + n)
        tail = self._head + self._len
        if tail >= self._cap:
            tail -= self._cap
        src = data if n == len(data) else memoryview(data)[:n]
        native.ring_write(self._ring, tail, src)
        self._len += n
        return n

    def _clip(self, offset: int, n: int) -> int:
        if offset < 0:
            raise ValueError("negative offset")
        avail = self._len - offset
        if avail <= 0 or n <= 0:
            return 0
        return min(avail, n)

    def read(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes starting ``offset`` bytes after the oldest unacked byte (clipped to
        what is buffered; ``b""`` when ``offset >= len(self)``). The buffer is unchanged."""
        n = self._clip(offset, n)
        if n == 0:
            return b""
        pos = self._head + offset
        if pos >= self._cap:
            pos -= self._cap
        if pos + n <= self._cap:
            return self._mv[pos:pos + n].tobytes()  # one copy, no wrap
        out = bytearray(n)
        native.ring_read(self._ring, pos, out, n)
        return bytes(out)

    def read_into(self, offset: int, n: int, dst: bytearray | memoryview) -> int:
        """Copy up to ``n`` bytes from ``offset`` into ``dst`` (e.g. straight into a packet
        buffer after its headers); return the number copied. ``dst`` must hold them."""
        n = self._clip(offset, n)
        if n == 0:
            return 0
        pos = self._head + offset
        if pos >= self._cap:
            pos -= self._cap
        native.ring_read(self._ring, pos, dst, n)
        return n

    def consume(self, n: int) -> None:
        """Drop the ``n`` oldest bytes (cumulatively acknowledged). ``n`` is clipped to the
        buffered length; a negative ``n`` is a local error. Drained: the ring is released."""
        if n < 0:
            raise ValueError("negative consume")
        if n >= self._len:
            self.clear()
            return
        self._len -= n
        self._head += n
        if self._head >= self._cap:
            self._head -= self._cap

    def clear(self) -> None:
        """Drop everything (drained, or an abort) and release the storage."""
        self._ring = _EMPTY
        self._mv = _EMPTY_MV
        self._cap = 0
        self._head = 0
        self._len = 0
