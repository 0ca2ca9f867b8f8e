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

The buffer also keeps Linux's view of these bytes as a queue of skbs (socket buffers), which
is what Linux's send-buffer accounting counts: each skb costs its payload plus
``SKB_TRUESIZE`` bytes of overhead (``sk_wmem_queued``, see ``queued``). A write fills the
tail skb up to the size goal before starting a new one (tcp_sendmsg_locked); a transmission
that ends inside an skb splits it in two (tso_fragment), so every packet sent is one skb
until it is acknowledged; an acknowledgment frees the skbs it covers whole and trims the
payload of one it covers in part (tcp_trim_head), which keeps its overhead. Boundaries are
kept as stream offsets (bytes ever written: Python ints, no wrap-around).

It also keeps which skbs carry PSH of their own (Linux TCP_SKB_CB(skb)->tcp_flags): the
engine marks the tail skb when a write ends without MSG_MORE or a forced push happens
(tcp_mark_push, ``mark_push``); the first bytes a later write adds to that tail clear it
(tcp_sendmsg_locked: ``if (!copied) tcp_flags &= ~TCPHDR_PSH``), more bytes of the same
write keep it; a split leaves it on the second part only (tso_fragment/tcp_fragment: "PSH
and FIN should only be set in the second packet"). A mark is kept as the skb's end offset,
so a split (which adds an end before it) moves nothing. ``pushed`` answers whether a packet
ending at an offset ends such an skb, for new data and retransmissions alike.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from pytcp import native

Buffer = bytes | bytearray | memoryview

# The smallest ring allocated (Linux's tcp_wmem[0] is one page too).
MIN_RING = 4096

# The truesize of an skb holding no payload, as Linux x86-64 charges it to sk_wmem_queued
# (SKB_TRUESIZE of a 1 KiB kmalloc'd head after the 320-byte skb_shared_info, plus the
# 256-byte struct sk_buff): the per-skb overhead of the accounting.
SKB_TRUESIZE = 1280
# Past ``limit`` the ring grows in multiples of this (see _grow_to).
PAST_LIMIT_STEP = 32 * 1024

_EMPTY = bytearray()
_EMPTY_MV = memoryview(_EMPTY)


class SendBuffer:
    """A byte ring accepting up to ``limit`` bytes: ``write`` appends, ``read`` peeks,
    ``consume`` drops. Storage grows on demand and is released when drained."""

    __slots__ = ("_base", "_c", "_cap", "_ends", "_h", "_head", "_len", "_mv", "_ph", "_pm",
                 "_ring", "limit")

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError("limit must be positive")
        self.limit = limit
        self._ring = _EMPTY
        self._mv = _EMPTY_MV
        self._cap = 0   # bytes allocated (len(self._ring))
        self._head = 0  # ring index of the oldest unacknowledged byte
        self._len = 0
        # skbs: the end (stream offset) of each, oldest first, from index _h on; _base is
        # the stream offset of byte 0. At most one skb per byte (bounded by the bytes held).
        self._ends: list[int] = []
        self._h = 0
        self._base = 0
        self._c = 0  # a hint: the index after the last split (packets go out in order)
        # PSH marks: the end (stream offset) of each skb carrying PSH, ascending, from index
        # _ph on; at most one per skb (bounded like _ends).
        self._pm: list[int] = []
        self._ph = 0

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

    def _grow_to(self, need: int) -> None:
        """Reallocate so that ``need`` bytes fit: double (at least ``MIN_RING``), at most
        ``limit`` (past it, see below); the content is copied to the start of the new ring."""
        cap = max(MIN_RING, 2 * self._cap)
        while cap < need:
            cap *= 2
        if need <= self.limit:
            cap = min(cap, self.limit)
        else:
            # Past the limit (``append``'s one skb beyond SO_SNDBUF, as Linux lets a write
            # start an skb below it): ``need`` rounded up to PAST_LIMIT_STEP, not exactly
            # ``need``, so the appends that fill that skb do not each copy the whole ring (they
            # did: ~9% of a bulk download's CPU in py-spy). Overshoot < PAST_LIMIT_STEP.
            cap = -(-need // PAST_LIMIT_STEP) * PAST_LIMIT_STEP
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
            self._grow_to(self._len + n)
        tail = self._head + self._len
        if tail >= self._cap:
            tail -= self._cap
        src = data if n == len(data) else memoryview(data)[:n]
        native.ring_write(self._ring, tail, src)
        self._len += n
        if self._h == len(self._ends):
            self._ends.append(0)  # (no skb yet: the bytes start one)
        elif self._ph < len(self._pm) and self._pm[-1] == self._ends[-1]:
            self._pm.pop()  # (a new write's first bytes clear the tail's PSH)
        self._ends[-1] = self._base + self._len
        return n

    def append(self, data: Buffer, new_skb: bool, first: bool = True) -> None:
        """Add all of ``data`` (the caller applied the limits), to the tail skb or, with
        ``new_skb``, to a new one (the ring grows past ``limit`` if it must). ``first``: the
        write's first bytes, which clear a PSH mark of the tail they join (Linux
        tcp_sendmsg_locked); later bytes of the same write keep it on the grown skb."""
        n = len(data)
        pm = self._pm
        if new_skb or self._h == len(self._ends):
            self._ends.append(self._base + self._len)
            moved = False
        else:
            moved = n > 0 and self._ph < len(pm) and pm[-1] == self._ends[-1]
        if n == 0:
            return
        if moved:
            pm.pop()
        if self._len + n > self._cap:
            self._grow_to(self._len + n)
        tail = self._head + self._len
        if tail >= self._cap:
            tail -= self._cap
        native.ring_write(self._ring, tail, data)
        self._len += n
        self._ends[-1] = self._base + self._len
        if moved and not first:
            pm.append(self._ends[-1])

    # --- PSH marks (Linux TCP_SKB_CB(skb)->tcp_flags & TCPHDR_PSH) ---
    def mark_push(self) -> None:
        """Linux tcp_mark_push: the tail skb carries PSH (nothing without one)."""
        ends = self._ends
        if self._h == len(ends) or self._len == 0:
            return
        pm = self._pm
        end = ends[-1]
        if self._ph == len(pm) or pm[-1] != end:
            pm.append(end)

    def pushed(self, offset: int) -> bool:
        """Whether ``offset`` (after byte 0) is the end of an skb carrying PSH."""
        pm = self._pm
        ph = self._ph
        if ph == len(pm):
            return False
        pos = self._base + offset
        i = bisect_left(pm, pos, ph)
        return i < len(pm) and pm[i] == pos

    @property
    def push_marks(self) -> int:
        """skbs carrying PSH (the marks held)."""
        return len(self._pm) - self._ph

    # --- the skb view (Linux's sk_wmem_queued) ---
    @property
    def skbs(self) -> int:
        """skbs holding the buffered bytes."""
        return len(self._ends) - self._h

    @property
    def queued(self) -> int:
        """Linux's sk_wmem_queued: the bytes plus ``SKB_TRUESIZE`` per skb."""
        return self._len + SKB_TRUESIZE * (len(self._ends) - self._h)

    def tail_skb(self) -> tuple[int, int]:
        """(offset of its first byte, length) of the last skb; (len, 0) when there is none."""
        ends = self._ends
        k = len(ends) - self._h
        if k == 0:
            return self._len, 0
        start = ends[-2] if k > 1 else self._base
        return start - self._base, ends[-1] - start

    def _find(self, pos: int) -> int:
        """The index of the first skb end >= ``pos`` (bisect_left from _h), found from the
        hint in O(1) when packets go out in order, else by bisection."""
        ends = self._ends
        h = self._h
        c = self._c if self._c > h else h
        n = len(ends)
        if c < n and (c == h or ends[c - 1] < pos):
            for _ in range(4):
                if ends[c] >= pos:
                    return c
                c += 1
                if c == n:
                    return c
        return bisect_left(ends, pos, h)

    def to_skb_end(self, offset: int) -> int:
        """Bytes from ``offset`` (after byte 0) to the end of the skb holding it (Linux sends
        no packet across two skbs); 0 at or past the end of the buffer."""
        pos = self._base + offset
        ends = self._ends
        i = self._find(pos + 1)  # (the first end > pos)
        return ends[i] - pos if i < len(ends) else 0

    def skb_bounds(self, offset: int) -> tuple[int, int] | None:
        """(first offset, end offset) of the skb holding the byte at ``offset``; None outside
        the buffer."""
        if offset < 0 or offset >= self._len:
            return None
        pos = self._base + offset
        ends = self._ends
        i = self._find(pos + 1)
        if i >= len(ends):
            return None
        start = ends[i - 1] if i > self._h else self._base
        return start - self._base, ends[i] - self._base

    def split(self, offset: int) -> None:
        """A transmission ended ``offset`` bytes after byte 0: the skb around it becomes two
        (Linux tso_fragment); nothing changes at a boundary or outside the buffer."""
        if offset <= 0 or offset >= self._len:
            return
        pos = self._base + offset
        ends = self._ends
        i = self._find(pos)
        if i < len(ends) and ends[i] != pos:
            ends.insert(i, pos)
        self._c = i + 1

    def split_run(self, offsets: list[int]) -> None:
        """``split`` at each of ``offsets`` (ascending): the packets of one burst."""
        ends = self._ends
        base = self._base
        i = -1
        for off in offsets:
            if off <= 0 or off >= self._len:
                continue
            pos = base + off
            if i < 0:
                i = self._find(pos)
            else:
                n = len(ends)
                while i < n and ends[i] < pos:
                    i += 1
            if i < len(ends) and ends[i] != pos:
                ends.insert(i, pos)
            i += 1
        if i >= 0:
            self._c = i

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
        base = self._base = self._base + n
        ends = self._ends
        h = self._h
        while ends[h] <= base:  # (the last end is past base: bytes remain)
            h += 1
        if h > 32 and 2 * h > len(ends):
            del ends[:h]
            self._c = max(0, self._c - h)
            h = 0
        self._h = h
        pm = self._pm
        ph = self._ph
        if ph < len(pm):
            while ph < len(pm) and pm[ph] <= base:  # (marks of skbs acknowledged whole)
                ph += 1
            if ph > 32 and 2 * ph > len(pm):
                del pm[:ph]
                ph = 0
            self._ph = ph

    def clear(self) -> None:
        """Drop everything (drained, or an abort) and release the storage."""
        self._ring = _EMPTY
        self._mv = _EMPTY_MV
        self._cap = 0
        self._head = 0
        self._base += self._len
        self._len = 0
        self._ends = []
        self._h = 0
        self._c = 0
        self._pm = []
        self._ph = 0
