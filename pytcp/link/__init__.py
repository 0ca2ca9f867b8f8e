"""pytcp.link: where packets enter and leave the stack.

This package owns the :class:`Link` protocol and its implementations: ``tun.TunLink`` (a Linux
TUN device), ``memory.MemoryLink`` (an in-memory pair for tests) and ``impair.Impairment`` (a
seeded fault injector placed between a link and the stack). Links move whole IPv4 datagrams;
they never parse them.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class LinkError(OSError):
    """A link could not be opened or configured; the message says why and what to do."""


@runtime_checkable
class Link(Protocol):
    """A packet device: pollable, non-blocking, one IPv4 datagram per read/write."""

    def fileno(self) -> int: ...

    def read_batch(self, max_packets: int = 64) -> list[bytes]: ...

    def write(self, packet: bytes | bytearray | memoryview) -> None: ...

    def close(self) -> None: ...

    # Optional (TunLink and MemoryLink have it; the runtime uses it when present):
    # ``write_batch(packets) -> int`` writes each packet in one loop, counts what it dropped
    # in the link's stats and returns how many were written.


__all__ = ["Link", "LinkError"]
