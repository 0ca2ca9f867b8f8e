"""Stream helpers shared by the services: bounded, exception-safe closing of a connection."""

from __future__ import annotations

import asyncio
import contextlib

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
        await asyncio.wait_for(writer.wait_closed(), timeout)


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
            data = await asyncio.wait_for(reader.read(65536), left)
            if not data:
                break
            seen += len(data)
    except (TimeoutError, ConnectionError, OSError, RuntimeError):
        pass
    await close_writer(writer)
