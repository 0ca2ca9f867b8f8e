"""The discard service (RFC 863): read and throw away everything until the peer closes."""

from __future__ import annotations

import asyncio
import logging

from pytcp.apps.streams import close_writer

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024
# Seconds without a byte from the peer before the connection is closed (FIN); RFC 863 sets
# none. The same default as echo's.
IDLE_TIMEOUT = 300.0


async def serve_discard(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                        idle_timeout: float = IDLE_TIMEOUT) -> None:
    """RFC 863 TCP discard: receive and drop all data; close after the peer's FIN, or after
    ``idle_timeout`` seconds without a byte from the peer.

    Nothing is ever sent. Useful as a sink for throughput tests of pytcp's receive path.
    """
    discarded = 0
    try:
        while True:
            try:
                data = await asyncio.wait_for(reader.read(READ_SIZE), idle_timeout)
            except TimeoutError:
                log.info("discard: idle for %.0f s, closing", idle_timeout)
                break
            if not data:
                break
            discarded += len(data)
    except (ConnectionError, OSError) as exc:
        log.debug("discard: connection ended: %r", exc)
    finally:
        log.debug("discard: %d bytes discarded", discarded)
        await close_writer(writer)
