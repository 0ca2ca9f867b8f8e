"""The discard service (RFC 863): read and throw away everything until the peer closes."""

from __future__ import annotations

import asyncio
import logging

from pytcp.apps.streams import close_writer

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024


async def serve_discard(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """RFC 863 TCP discard: receive and drop all data; close after the peer's FIN.

    Nothing is ever sent. Useful as a sink for throughput tests of pytcp's receive path.
    """
    discarded = 0
    try:
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                break
            discarded += len(data)
    except (ConnectionError, OSError) as exc:
        log.debug("discard: connection ended: %r", exc)
    finally:
        log.debug("discard: %d bytes discarded", discarded)
        await close_writer(writer)
