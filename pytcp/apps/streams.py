"""Stream helpers shared by the services: bounded, exception-safe closing of a connection, and
``SendWatch``, the send timeout for data queued anywhere below a writer."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import struct
import termios
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# How long close_writer waits for the transport to report the connection closed.
CLOSE_WAIT_TIMEOUT = 2.0
# How long / how much linger_close reads and discards after our FIN (see linger_close).
LINGER_TIMEOUT = 2.0
LINGER_MAX_BYTES = 1 << 20


async def close_writer(writer: asyncio.StreamWriter, timeout: float = CLOSE_WAIT_TIMEOUT) -> None:
    """Close the connection (FIN after queued data) and wait at most ``timeout`` for it.

    Never raises for a connection the peer already reset or closed.
    """
    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
        writer.close()
    with contextlib.suppress(ConnectionError, OSError, asyncio.TimeoutError):
        async with asyncio.timeout(timeout):  # (no task per close, unlike wait_for)
            await writer.wait_closed()


async def linger_close(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    timeout: float = LINGER_TIMEOUT,
    max_bytes: int = LINGER_MAX_BYTES,
) -> None:
    """Half-close (FIN), then read and discard until the peer's FIN, a time or byte bound.

    Closing a socket that still holds unread data makes Linux (and pytcp) send RST, and an RST
    can destroy a response the peer has not read yet (RFC 9112 9.6: a server closes in stages).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        if writer.can_write_eof():
            writer.write_eof()
        seen = 0
        while seen < max_bytes:
            left = deadline - loop.time()
            if left <= 0:
                break
            async with asyncio.timeout(left):
                data = await reader.read(65536)
            if not data:
                break
            seen += len(data)
    except (TimeoutError, ConnectionError, OSError, RuntimeError):
        pass
    await close_writer(writer)


class SendWatch:
    """The send timeout of one stream: data queued anywhere below the writer — the
    transport's backlog, the kernel socket's send queue (``SIOCOUTQ``: unsent plus
    unacknowledged bytes) or pytcp's engine (``Connection.unsent_bytes``: the same) — must
    make progress (the peer takes some of it) at least every ``timeout`` seconds, else the
    connection is aborted (RST). Like nginx's ``send_timeout``: the bound is on progress, so a
    slow reader is served and only one that takes nothing is cut off.

    The owner calls :meth:`wrote` after each ``writer.write`` (the watch counts the bytes to
    tell progress from new data) and :meth:`stop` when done. The watch polls (every
    ``min(timeout / 4, 1 s)``) only while something is queued: an idle connection costs no
    timer.
    """

    def __init__(self, writer: asyncio.StreamWriter, timeout: float, *,
                 on_timeout: Callable[[], None] | None = None, name: str = "") -> None:
        self.writer = writer
        self.timeout = timeout
        self.fired = False
        self._on_timeout = on_timeout
        self._name = name
        self._loop = asyncio.get_running_loop()
        self._written = 0
        self._delivered = 0
        self._progress_at = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = False
        transport = writer.transport
        self._conn: Any = None
        handle = transport.get_extra_info("pytcp_handle")
        if handle is not None:
            self._conn = getattr(handle, "conn", None)
        self._fd = -1
        sock = transport.get_extra_info("socket")
        if self._conn is None and sock is not None:
            with contextlib.suppress(OSError, ValueError):
                self._fd = sock.fileno()

    def queued(self) -> int:
        """Bytes written but not yet taken by the peer, wherever they wait."""
        transport = self.writer.transport
        n = 0
        with contextlib.suppress(Exception):
            n = int(transport.get_write_buffer_size())
        if self._conn is not None:
            n += int(getattr(self._conn, "unsent_bytes", 0))
        elif self._fd >= 0 and not transport.is_closing():
            with contextlib.suppress(OSError):
                n += struct.unpack("i", fcntl.ioctl(self._fd, termios.TIOCOUTQ, b"\0" * 4))[0]
        return n

    def stalled_for(self) -> float:
        """Seconds since the peer last took data, while data is queued; 0 when none is."""
        self._sample()
        if self._written - self._delivered <= 0:
            return 0.0
        return self._loop.time() - self._progress_at

    def wrote(self, n: int) -> None:
        """``n`` more bytes were handed to ``writer.write``."""
        if self._stopped or n <= 0:
            return
        if self._timer is None:
            self._sample()
            if self._written == self._delivered:
                self._progress_at = self._loop.time()  # a new send starts the clock
        self._written += n
        if self._timer is None:
            self._arm()

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _sample(self) -> None:
        delivered = self._written - self.queued()
        if delivered > self._delivered:
            self._delivered = delivered
            self._progress_at = self._loop.time()

    def _arm(self) -> None:
        self._timer = self._loop.call_later(min(self.timeout / 4, 1.0), self._check)

    def _check(self) -> None:
        self._timer = None
        if self._stopped:
            return
        self._sample()
        if self._written - self._delivered <= 0:
            return  # all taken: no timer until the next write
        if self._loop.time() - self._progress_at >= self.timeout:
            self.fired = True
            log.info("%speer took nothing for %.1f s with %d bytes queued: aborting",
                     f"{self._name}: " if self._name else "", self.timeout,
                     self._written - self._delivered)
            if self._on_timeout is not None:
                self._on_timeout()
            with contextlib.suppress(Exception):
                self.writer.transport.abort()
            return
        self._arm()
