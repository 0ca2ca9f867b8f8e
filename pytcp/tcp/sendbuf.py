"""The send buffer: bytes the application gave us that the peer has not acknowledged yet.

Owns one fixed ``bytearray`` used as a ring. Byte 0 of the logical buffer is the oldest unacked
byte (SND.UNA); the engine reads segments by offset from it (offset = seq - SND.UNA), including
retransmissions, and consumes bytes as they are cumulatively acknowledged. Copies in and out
go through ``pytcp.native.ring_write`` / ``ring_read`` (C when built).
"""

from __future__ import annotations

from pytcp import native

Buffer = bytes | bytearray | memoryview


class SendBuffer:
    """A byte ring of fixed ``capacity``: ``write`` appends, ``read`` peeks, ``consume`` drops."""

    __slots__ = ("_cap", "_head", "_len", "_mv", "_ring")

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._ring = bytearray(capacity)
        self._mv = memoryview(self._ring)
        self._cap = capacity
        self._head = 0  # ring index of the oldest unacknowledged byte
        self._len = 0

    @property
    def capacity(self) -> int:
        return self._cap

    @property
    def free(self) -> int:
        """Bytes ``write`` would accept now."""
        return self._cap - self._len

    def __len__(self) -> int:
        return self._len

    def write(self, data: Buffer) -> int:
        """Append as much of ``data`` as fits; return the number of bytes accepted."""
        n = min(len(data), self._cap - self._len)
        if n <= 0:
            return 0
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
        buffered length; a negative ``n`` is a local error."""
        if n < 0:
            raise ValueError("negative consume")
        if n >= self._len:
            self._head = 0  # empty: restart at 0 so later writes and reads rarely wrap
            self._len = 0
            return
        self._len -= n
        self._head += n
        if self._head >= self._cap:
            self._head -= self._cap

    def clear(self) -> None:
        """Drop everything (e.g. on abort)."""
        self._head = 0
        self._len = 0
