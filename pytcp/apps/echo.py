"""The echo service (RFC 862): every byte received is sent back until the peer closes."""

from __future__ import annotations

import asyncio
import logging

from pytcp.apps.streams import SendWatch, close_writer

log = logging.getLogger(__name__)

READ_SIZE = 65536
# Seconds without a byte from the peer before the connection is closed (FIN). RFC 862 sets
# none; an interactive user typing into the service is the case to allow for.
IDLE_TIMEOUT = 300.0


async def serve_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                     idle_timeout: float = IDLE_TIMEOUT,
                     send_timeout: float | None = None) -> None:
    """RFC 862 TCP echo: send back what arrives; after the peer's FIN, finish and close.

    Back-pressure: we stop reading while our own send buffer is above its high-water mark
    (``drain``), so a peer that sends but never reads cannot make us buffer without bound.
    No byte from the peer for ``idle_timeout`` seconds: closed (FIN). Echoed data the peer
    takes none of for ``send_timeout`` seconds (default: ``idle_timeout``): aborted (RST),
    see :class:`pytcp.apps.streams.SendWatch`.
    """
    echoed = 0
    send_timeout = idle_timeout if send_timeout is None else send_timeout
    watch = SendWatch(writer, send_timeout, name="echo")
    try:
        while True:
            try:
                data = await asyncio.wait_for(reader.read(READ_SIZE), idle_timeout)
            except TimeoutError:
                if watch.stalled_for() >= min(send_timeout, idle_timeout):
                    # Not idle: what we echoed is stuck (a zero window nobody opens). A FIN
                    # would only wait behind it: reset.
                    log.info("echo: peer took nothing for %.0f s, aborting", send_timeout)
                    writer.transport.abort()
                else:
                    log.info("echo: idle for %.0f s, closing", idle_timeout)
                break
            if not data:
                break
            writer.write(data)
            watch.wrote(len(data))
            echoed += len(data)
            await writer.drain()
    except (ConnectionError, OSError) as exc:
        log.debug("echo: connection ended: %r", exc)
    finally:
        log.debug("echo: %d bytes echoed", echoed)
        try:
            await close_writer(writer)
        finally:
            watch.stop()
