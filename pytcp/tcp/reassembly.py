"""The out-of-order receive queue (RFC 9293 3.10.7.4 seventh, RFC 2018, RFC 2883).

Owns segments that arrived above RCV.NXT: it merges overlaps and duplicates into disjoint
blocks of contiguous bytes, hands back the bytes that become contiguous with RCV.NXT, reports
SACK blocks in RFC 2018 order, and finds duplicates for D-SACK. Memory is bounded by ``limit``
bytes of payload and by ``max_blocks`` separate blocks (a flood of tiny, spaced segments cannot
grow it without bound), and it is proportional to the bytes held: a block's bytes live in
``bytearray`` chunks of at least ``COALESCE`` bytes (every chunk but the last), so adjacent
small segments are copied into one chunk instead of costing an object each (Linux coalesces
out-of-order skbs the same way, tcp_try_coalesce). ``prune`` drops blocks from the highest
sequence number down, as Linux's tcp_prune_ofo_queue does under memory pressure. All sequence
comparisons use ``pytcp.tcp.seq``: blocks may straddle 2**32. Blocks are kept in sequence
order; their count is small, so lists are used.
"""

from __future__ import annotations

from pytcp.tcp.seq import MASK, seq_lt, seq_sub

Buffer = bytes | bytearray | memoryview

DEFAULT_MAX_BLOCKS = 64
# A new piece is copied into its neighbouring chunk while that chunk is shorter than this, so
# every chunk but a block's first and last holds at least COALESCE bytes (the per-chunk
# overhead, about 65 bytes, stays under 4%); the copy per insert is bounded by it too.
COALESCE = 2048


def _append(chunks: list[bytearray], piece: Buffer) -> None:
    if chunks and len(chunks[-1]) < COALESCE:
        chunks[-1] += piece
    else:
        chunks.append(bytearray(piece))


def _prepend(chunks: list[bytearray], piece: Buffer) -> None:
    if chunks and len(chunks[0]) < COALESCE:
        chunks[0][0:0] = piece
    else:
        chunks.insert(0, bytearray(piece))


class _Block:
    """Contiguous bytes [start, end) held as a list of chunks (joined only when popped)."""

    __slots__ = ("chunks", "end", "stamp", "start")

    def __init__(self, start: int, end: int, chunks: list[bytearray], stamp: int) -> None:
        self.start = start
        self.end = end
        self.chunks = chunks
        self.stamp = stamp


class ReassemblyQueue:
    """Out-of-order segments above RCV.NXT, as disjoint, non-adjacent blocks in seq order."""

    __slots__ = ("_blocks", "_bytes", "_stamp", "limit", "max_blocks")

    def __init__(self, limit: int, max_blocks: int = DEFAULT_MAX_BLOCKS) -> None:
        if limit < 0 or max_blocks < 1:
            raise ValueError("limit must be >= 0 and max_blocks >= 1")
        self.limit = limit
        self.max_blocks = max_blocks
        self._blocks: list[_Block] = []
        self._bytes = 0
        self._stamp = 0

    @property
    def bytes_queued(self) -> int:
        """Payload bytes held."""
        return self._bytes

    def __len__(self) -> int:
        """Number of separate blocks held."""
        return len(self._blocks)

    def __bool__(self) -> bool:
        return bool(self._blocks)

    def insert(self, seq: int, data: Buffer) -> bool:
        """Queue ``data`` at ``seq``. Bytes already queued are kept (the first copy wins);
        only new bytes are copied. Returns False, changing nothing, when the new bytes would
        pass ``limit`` or a new separate block would pass ``max_blocks``; True otherwise
        (including a pure duplicate, which marks its block as the most recent for SACK)."""
        n = len(data)
        if n == 0:
            return True
        seq &= MASK
        end = (seq + n) & MASK
        blocks = self._blocks
        # Find the run of blocks that overlap or touch [seq, end): lo..hi-1.
        lo = 0
        nb = len(blocks)
        while lo < nb and seq_lt(blocks[lo].end, seq):
            lo += 1
        hi = lo
        covered = 0
        while hi < nb and not seq_lt(end, blocks[hi].start):
            b = blocks[hi]
            # Overlap of [seq, end) with [b.start, b.end).
            ov_lo = b.start if seq_lt(seq, b.start) else seq
            ov_hi = end if seq_lt(end, b.end) else b.end
            d = seq_sub(ov_hi, ov_lo)
            if d > 0:
                covered += d
            hi += 1
        new_bytes = n - covered
        if self._bytes + new_bytes > self.limit:
            return False
        if hi == lo and nb >= self.max_blocks:
            return False
        self._stamp += 1
        if new_bytes == 0 and hi - lo == 1:
            # A pure duplicate inside one block: nothing to copy.
            blocks[lo].stamp = self._stamp
            return True
        mv = data if isinstance(data, memoryview) else memoryview(data)
        if hi == lo:
            blocks.insert(lo, _Block(seq, end, [bytearray(mv)], self._stamp))
            self._bytes += n
            return True
        if hi - lo == 1:
            # The common case (a segment extending one block): grow it in place.
            b = blocks[lo]
            if seq_lt(seq, b.start):
                _prepend(b.chunks, mv[:seq_sub(b.start, seq)])
                b.start = seq
            if seq_lt(b.end, end):
                _append(b.chunks, mv[seq_sub(b.end, seq):])
                b.end = end
            b.stamp = self._stamp
            self._bytes += new_bytes
            return True
        # Merge blocks lo..hi-1 and the new bytes into one block.
        first = blocks[lo]
        last = blocks[hi - 1]
        start = seq if seq_lt(seq, first.start) else first.start
        new_end = last.end if seq_lt(end, last.end) else end
        chunks: list[bytearray] = []
        cur = start
        for i in range(lo, hi):
            b = blocks[i]
            gap = seq_sub(b.start, cur)
            if gap > 0:  # bytes between cur and this block come from the new segment
                off = seq_sub(cur, seq)
                _append(chunks, mv[off:off + gap])
            bc = b.chunks
            if chunks and len(chunks[-1]) < COALESCE:
                chunks[-1] += bc[0]  # joins a short chunk at the seam
                chunks.extend(bc[1:])
            else:
                chunks.extend(bc)
            cur = b.end
        tail = seq_sub(new_end, cur)
        if tail > 0:
            off = seq_sub(cur, seq)
            _append(chunks, mv[off:off + tail])
        blocks[lo:hi] = [_Block(start, new_end, chunks, self._stamp)]
        self._bytes += new_bytes
        return True

    def pop(self, rcv_nxt: int) -> bytes:
        """Remove and return the bytes contiguous from ``rcv_nxt`` (``b""`` if none). Bytes
        entirely or partly below ``rcv_nxt`` (already delivered) are discarded."""
        rcv_nxt &= MASK
        blocks = self._blocks
        while blocks and not seq_lt(rcv_nxt, blocks[0].end):  # block.end <= rcv_nxt
            self._bytes -= seq_sub(blocks[0].end, blocks[0].start)
            del blocks[0]
        if not blocks:
            return b""
        b = blocks[0]
        if seq_lt(rcv_nxt, b.start):
            return b""
        del blocks[0]
        self._bytes -= seq_sub(b.end, b.start)
        skip = seq_sub(rcv_nxt, b.start)
        if len(b.chunks) == 1:
            return bytes(memoryview(b.chunks[0])[skip:])
        data = b"".join(b.chunks)
        return data[skip:] if skip else data

    def prune(self, nbytes: int) -> int:
        """Under memory pressure: drop ``nbytes`` (or all) from the highest sequence number
        down, whole blocks and then the tail of the next one; return the bytes freed. The
        peer retransmits them (SACK reneging, RFC 2018 8: it keeps SACKed data until it is
        cumulatively acknowledged). Linux tcp_prune_ofo_queue."""
        freed = 0
        blocks = self._blocks
        while blocks and freed < nbytes:
            b = blocks[-1]
            size = seq_sub(b.end, b.start)
            cut = nbytes - freed
            if size <= cut:
                blocks.pop()
                freed += size
                continue
            b.end = (b.end - cut) & MASK
            chunks = b.chunks
            while cut:
                last = chunks[-1]
                if len(last) <= cut:
                    chunks.pop()
                    cut -= len(last)
                    freed += len(last)
                else:
                    del last[len(last) - cut:]
                    freed += cut
                    cut = 0
        self._bytes -= freed
        return freed

    def blocks(self) -> list[tuple[int, int]]:
        """SACK blocks ``(left, right)``, the block holding the most recently received segment
        first, then the others, most recently changed first (RFC 2018 4)."""
        if len(self._blocks) == 1:
            b = self._blocks[0]
            return [(b.start, b.end)]
        ordered = sorted(self._blocks, key=lambda b: b.stamp, reverse=True)
        return [(b.start, b.end) for b in ordered]

    def ranges(self) -> list[tuple[int, int]]:
        """The queued ranges ``(start, end)`` in sequence order."""
        return [(b.start, b.end) for b in self._blocks]

    def duplicate_of(self, seq: int, end: int) -> tuple[int, int] | None:
        """The part of ``[seq, end)`` already queued (the lowest such part when it touches
        several blocks), for a D-SACK block (RFC 2883 4); None when nothing is a duplicate.
        Call it before ``insert``."""
        seq &= MASK
        end &= MASK
        for b in self._blocks:
            if not seq_lt(seq, b.end):  # seq >= b.end
                continue
            if not seq_lt(b.start, end):  # b.start >= end: no later block overlaps either
                return None
            lo = b.start if seq_lt(seq, b.start) else seq
            hi = end if seq_lt(end, b.end) else b.end
            return (lo, hi)
        return None

    def clear(self) -> None:
        self._blocks.clear()
        self._bytes = 0
