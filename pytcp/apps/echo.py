"""The echo service (RFC 862): every byte received is sent back until the peer closes."""

from __future__ import annotations

import asyncio
import logging

from pytcp.apps.streams import close_writer

log = logging.getLogger(__name__)

READ_SIZE = 65536


async def serve_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """RFC 862 TCP echo: send back what arrives; after the peer's FIN, finish and close.

    Back-pressure: we stop reading while our own send buffer is above its high-water mark
    (``drain``), so a peer that sends but never reads cannot make us buffer without bound.
    """
    echoed = 0
    try:
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                break
            writer.write(data)
            echoed += len(data)
            await writer.drain()
    except (ConnectionError, OSError) as exc:
        log.debug("echo: connection ended: %r", exc)
    finally:
        log.debug("echo: %d bytes echoed", echoed)
        await close_writer(writer)
