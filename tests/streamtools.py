"""Helpers for tests that talk through asyncio streams (the kernel's or pytcp's)."""

from __future__ import annotations

import asyncio


async def read_to_eof(reader: asyncio.StreamReader, limit: int = 1 << 26) -> bytes:
    """Everything until the peer's FIN (bounded in size; callers bound the time)."""
    out = bytearray()
    while len(out) < limit:
        data = await reader.read(1 << 16)
        if not data:
            break
        out += data
    return bytes(out)


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes,
                   chunk: int = 1 << 16) -> bytes:
    """Write ``payload`` in ``chunk``-sized pieces then EOF, while reading everything the peer
    sends until its FIN, concurrently (so neither side's window can deadlock the other)."""

    async def send() -> None:
        view = memoryview(payload)
        for off in range(0, len(view), chunk):
            writer.write(view[off:off + chunk])
            await writer.drain()
        writer.write_eof()

    sender = asyncio.create_task(send())
    got = await read_to_eof(reader)
    await sender
    return got
