"""Receive memory shared by all connections of a stack: a cap on out-of-order and unread bytes.

Linux bounds the memory of all TCP sockets together (``net.ipv4.tcp_mem``); past the limit a
socket first prunes its out-of-order queue (tcp_prune_ofo_queue: the peer retransmits that
data, it was never acknowledged) and then drops the arriving segment. :class:`RecvMemory` is
that account for one stack: every :class:`~pytcp.tcp.connection.Connection` given the pool
charges the bytes it holds for the application (in order, not yet read) and out of order (its
reassembly queue). When a segment would take the total past ``limit``:

1. out-of-order data goes first: the pool prunes the reassembly queues of the connections
   holding the most out-of-order bytes (the arriving connection's own included), from the
   highest sequence number down, until the segment fits (``prunes``, ``pruned_bytes``);
2. if it still does not fit, the segment is dropped (``DropReason.RCV_MEMORY``, counted by
   the connection) and the peer retransmits it; but in-order data is always accepted by a
   connection with nothing unread (Linux sk_forced_mem_schedule), so every connection can
   make progress and the total passes ``limit`` by at most one segment per connection.

Connections also stop opening their window while the pool is full (``free``), so senders are
throttled before data must be dropped. Bytes are payload bytes (the reassembly queue's
overhead is proportional to them, see ``reassembly.py``). Sans I/O: no clocks, no locks.
"""

from __future__ import annotations

from typing import Protocol


class _Holder(Protocol):
    """What the pool needs from a connection: its out-of-order bytes, and pruning them."""

    @property
    def ooo_bytes(self) -> int: ...

    def prune_ooo(self, nbytes: int) -> int: ...


class RecvMemory:
    """The stack-wide account of receive bytes (see the module docstring)."""

    __slots__ = ("_holders", "limit", "ooo", "prunes", "pruned_bytes", "used")

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("limit must be >= 0")
        self.limit = limit
        self.used = 0          # bytes charged: in order and unread, plus out of order
        self.ooo = 0           # of which out of order
        self.prunes = 0        # prune passes that freed something
        self.pruned_bytes = 0  # out-of-order bytes dropped by them
        # Connections holding out-of-order bytes (insertion-ordered; pruning candidates).
        self._holders: dict[_Holder, None] = {}

    @property
    def free(self) -> int:
        """Bytes that can still be charged before the cap."""
        return max(0, self.limit - self.used)

    def update(self, holder: _Holder, d_used: int, d_ooo: int, ooo_now: int) -> None:
        """A connection's charge changed by ``d_used`` (``d_ooo`` of it out of order); it
        holds ``ooo_now`` out-of-order bytes now."""
        self.used += d_used
        self.ooo += d_ooo
        if ooo_now:
            self._holders[holder] = None
        else:
            self._holders.pop(holder, None)

    def make_room(self, nbytes: int) -> bool:
        """Room for ``nbytes`` more: True at once when they fit; else prune out-of-order
        queues, biggest holder first, and say whether they fit now. (Each pruned connection
        reports its new charge through ``update``.)"""
        if self.used + nbytes <= self.limit:
            return True
        need = self.used + nbytes - self.limit
        freed_total = 0
        for h in sorted(self._holders, key=lambda c: c.ooo_bytes, reverse=True):
            freed = h.prune_ooo(need - freed_total)
            freed_total += freed
            if freed_total >= need:
                break
        if freed_total:
            self.prunes += 1
            self.pruned_bytes += freed_total
        return self.used + nbytes <= self.limit
