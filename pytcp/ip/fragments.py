"""IPv4 fragment reassembly (RFC 791 3.2, RFC 815) and fragmentation of our own datagrams.

This module owns :class:`FragmentReassembler`, the stack's table of datagrams being
reassembled, and :func:`fragment_datagram`, which cuts an outgoing non-TCP datagram (e.g. a
large ICMP echo reply) to the MTU.

Reassembly is careful with hostile input:

- Datagrams are keyed by (source, destination, protocol, identification) (RFC 791).
- Fragments are kept as non-overlapping ``(start, end, data)`` pieces; the datagram is complete
  when the last fragment (MF=0) fixed the total length and the pieces cover it without a hole
  (RFC 815's hole descriptor list, kept implicitly as the sorted pieces).
- An exact duplicate fragment is dropped and the datagram kept; any other overlap drops the
  whole datagram (the caution of RFC 5722, as Linux does for IPv4 since FragmentSmack).
- Limits on bytes held, datagrams in flight and fragments per datagram; when a new datagram
  would pass a limit, the oldest datagrams are evicted (counted FRAGMENT_LIMIT).
- A datagram not complete ``timeout`` seconds after its first fragment is dropped (counted
  FRAGMENT_TIMEOUT) and its memory freed.
"""

from __future__ import annotations

import bisect
import struct
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from pytcp import native
from pytcp.drops import DropCounter, DropReason

FragKey = tuple[int, int, int, int]  # (src, dst, proto, ident)

_MAX_DATAGRAM = 65535 - 20  # largest payload a reassembled datagram may carry


@dataclass(slots=True)
class _Datagram:
    expires: float
    pieces: list[tuple[int, int, bytes]] = field(default_factory=list)  # sorted by start
    total: int | None = None  # payload length, known once the last fragment arrived
    nbytes: int = 0
    quote: bytes | None = None  # first fragment's IP header + 8 bytes, for ICMP time exceeded


class FragmentReassembler:
    """Reassembles IPv4 datagrams; ``drops`` counts what it threw away and why."""

    def __init__(self, *, timeout: float = 30.0, max_bytes: int = 4 * 1024 * 1024,
                 max_datagrams: int = 256, max_fragments: int = 128) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_datagrams = max_datagrams
        self.max_fragments = max_fragments
        self.bytes_held = 0
        self._table: OrderedDict[FragKey, _Datagram] = OrderedDict()  # oldest first
        self.drops: Counter[DropReason] = DropCounter()
        self.stats: Counter[str] = Counter()
        # Quotes of timed-out datagrams whose first fragment had arrived: the owner sends
        # ICMP Time Exceeded, code 1 for them (RFC 792, RFC 1122 3.3.2) and clears the list.
        self.timed_out_quotes: list[bytes] = []

    def __len__(self) -> int:
        return len(self._table)

    def _discard(self, key: FragKey, reason: DropReason) -> None:
        dg = self._table.pop(key)
        self.bytes_held -= dg.nbytes
        self.drops[reason] += 1

    def expire(self, now: float) -> int:
        """Drop datagrams whose reassembly time ran out; return how many."""
        n = 0
        table = self._table
        while table:
            key, dg = next(iter(table.items()))
            if dg.expires > now:
                break
            if dg.quote is not None and len(self.timed_out_quotes) < 16:
                self.timed_out_quotes.append(dg.quote)
            self._discard(key, DropReason.FRAGMENT_TIMEOUT)
            n += 1
        return n

    def next_deadline(self) -> float | None:
        if not self._table:
            return None
        return next(iter(self._table.values())).expires

    def add(self, now: float, key: FragKey, offset: int, more: bool,
            data: bytes | bytearray | memoryview, header: bytes | memoryview | None = None
            ) -> bytes | None:
        """Take one fragment (``offset`` in bytes, ``more`` = the MF flag); return the whole
        payload when this fragment completed the datagram, else ``None``. ``header`` (the
        fragment's IP header) lets a timeout of a datagram whose first fragment came be
        reported in ``timed_out_quotes``."""
        if self._table:
            self.expire(now)
        n = len(data)
        end = offset + n
        # RFC 791: every fragment but the last carries a multiple of 8 octets.
        if (more and (n == 0 or n % 8)) or end > _MAX_DATAGRAM:
            self.drops[DropReason.FRAGMENT_INVALID] += 1
            return None
        self.stats["fragments"] += 1
        dg = self._table.get(key)
        if dg is None:
            # Make room: evict oldest datagrams past the count or byte limits.
            while self._table and (len(self._table) >= self.max_datagrams
                                   or self.bytes_held + n > self.max_bytes):
                self._discard(next(iter(self._table)), DropReason.FRAGMENT_LIMIT)
            if n > self.max_bytes or self.max_datagrams <= 0:
                self.drops[DropReason.FRAGMENT_LIMIT] += 1
                return None
            dg = _Datagram(expires=now + self.timeout)
            self._table[key] = dg
        elif self.bytes_held + n > self.max_bytes:
            # Evict others (oldest first) before giving up on this one.
            for other in list(self._table):
                if self.bytes_held + n <= self.max_bytes:
                    break
                if other != key:
                    self._discard(other, DropReason.FRAGMENT_LIMIT)
            if self.bytes_held + n > self.max_bytes:
                self._discard(key, DropReason.FRAGMENT_LIMIT)
                return None

        if not more:
            if dg.total is not None and dg.total != end:
                self._discard(key, DropReason.FRAGMENT_INVALID)  # two different "last" ends
                return None
            if dg.pieces and dg.pieces[-1][1] > end:
                self._discard(key, DropReason.FRAGMENT_INVALID)  # data past the end
                return None
            dg.total = end
        elif dg.total is not None and end > dg.total:
            self._discard(key, DropReason.FRAGMENT_INVALID)
            return None

        pieces = dg.pieces
        i = bisect.bisect_left(pieces, (offset,))
        # Overlap with the neighbours? (pieces never overlap each other)
        prev_overlaps = i > 0 and pieces[i - 1][1] > offset
        next_overlaps = i < len(pieces) and pieces[i][0] < end
        if prev_overlaps or next_overlaps:
            if i < len(pieces) and pieces[i][0] == offset and pieces[i][1] == end:
                if pieces[i][2] == bytes(data):
                    self.drops[DropReason.FRAGMENT_OVERLAP] += 1  # exact duplicate: drop it
                    return None
            self._discard(key, DropReason.FRAGMENT_OVERLAP)
            return None
        if len(pieces) >= self.max_fragments:
            self._discard(key, DropReason.FRAGMENT_LIMIT)
            return None
        pieces.insert(i, (offset, end, bytes(data)))
        if offset == 0 and header is not None:
            dg.quote = bytes(header) + bytes(data[:8])
        dg.nbytes += n
        self.bytes_held += n

        if dg.total is None or pieces[0][0] != 0:
            return None
        # Complete when the pieces are contiguous from 0 to total.
        if dg.nbytes != dg.total:
            return None
        del self._table[key]
        self.bytes_held -= dg.nbytes
        self.stats["reassembled"] += 1
        return b"".join(p[2] for p in pieces)


def fragment_datagram(*, src: int, dst: int, proto: int, payload: bytes | bytearray | memoryview,
                      ident: int, ttl: int, mtu: int, tos: int = 0) -> list[bytes]:
    """Cut one datagram into IPv4 fragments (RFC 791 3.2) of at most ``mtu`` bytes each;
    a payload that fits gives one unfragmented packet (DF clear)."""
    max_data = ((mtu - 20) // 8) * 8
    if max_data <= 0:
        raise ValueError(f"MTU {mtu} too small to fragment")
    mv = memoryview(payload)
    n = len(mv)
    out: list[bytes] = []
    off = 0
    while True:
        chunk = mv[off:off + max_data]
        more = off + len(chunk) < n
        hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(chunk), ident & 0xFFFF,
                                    (0x2000 if more else 0) | (off >> 3), ttl, proto, 0,
                                    src.to_bytes(4, "big"), dst.to_bytes(4, "big")))
        struct.pack_into("!H", hdr, 10, native.checksum(hdr))
        out.append(bytes(hdr) + bytes(chunk))
        off += len(chunk)
        if not more:
            return out
