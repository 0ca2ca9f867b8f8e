"""In-memory link: two connected endpoints over ``socketpair(AF_UNIX, SOCK_SEQPACKET)``.

This module owns :class:`MemoryLink`, a :class:`pytcp.link.Link` for tests and benchmarks
that need a real pollable file descriptor but no kernel network device. Each write is one
packet (SEQPACKET keeps message boundaries); both ends are non-blocking.
"""

from __future__ import annotations

import os
import socket
from collections import Counter
from typing import Any, Self

from pytcp.link import LinkError
from pytcp.link.fdio import read_packets, write_counted, write_packets

# Largest IPv4 datagram plus room: a read never truncates a packet.
_READ_SIZE = 65536 + 64


class MemoryLink:
    """One end of an in-memory packet pipe. Create a connected pair with :meth:`pair`."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock: socket.socket | None = sock
        self._fd = sock.fileno()
        # tx_dropped: write found the peer's buffer full (EAGAIN); tx_errors: other failures.
        self.stats: Counter[str] = Counter()

    @classmethod
    def pair(cls, bufsize: int | None = None) -> tuple[MemoryLink, MemoryLink]:
        """Two connected links: what one writes, the other reads."""
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if bufsize is not None:
            for s in (a, b):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, bufsize)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
        return cls(a), cls(b)

    def fileno(self) -> int:
        if self._sock is None:
            raise LinkError("memory link is closed")
        return self._fd

    def read_batch(self, max_packets: int = 64) -> list[bytes]:
        """Read up to ``max_packets`` packets without blocking; ``[]`` when none is waiting."""
        if self._sock is None:
            return []
        return read_packets(self._fd, _READ_SIZE, max_packets, self.stats)

    def write(self, packet: bytes | bytearray | memoryview) -> None:
        """Send one packet; when the peer's buffer is full the packet is dropped and counted."""
        if self._sock is None:
            self.stats["tx_errors"] += 1
            return
        write_counted(self.stats, os.write, self._fd, packet)

    def write_batch(self, packets: list[Any]) -> int:
        """``write`` for each packet in one loop; returns how many were sent."""
        if self._sock is None:
            self.stats["tx_errors"] += len(packets)
            return 0
        return write_packets(self._fd, packets, self.stats)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def closed(self) -> bool:
        return self._sock is None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
