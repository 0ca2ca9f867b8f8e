"""TCP_CORK / MSG_MORE / TCP_NODELAY on the asyncio transport, on a frozen virtual clock (the
200 ms cork ceiling never passes, so only uncorking or a write without ``more`` releases)."""

from __future__ import annotations

import asyncio

from pytcp.api.aio import PytcpTransport, open_connection, start_server
from pytcp.api.pair import ADDR_B, memory_pair


def _frozen() -> float:
    return 50.0


async def _pair_streams(a: object, b: object) -> tuple[asyncio.StreamReader,
                                                      asyncio.StreamWriter,
                                                      asyncio.StreamReader]:
    accepted: asyncio.Queue[asyncio.StreamReader] = asyncio.Queue()

    async def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await accepted.put(r)

    await start_server(on_client, 90, runtime=b)  # type: ignore[arg-type]
    reader, writer = await open_connection(ADDR_B, 90, runtime=a)  # type: ignore[arg-type]
    return reader, writer, await accepted.get()


async def _nothing_arrives(r: asyncio.StreamReader) -> None:
    try:
        got = await asyncio.wait_for(r.read(100), 0.3)
    except TimeoutError:
        return
    raise AssertionError(f"held data arrived: {got!r}")


def test_cork_holds_writes_until_uncorked() -> None:
    async def body() -> None:
        async with memory_pair(clock=_frozen, graceful_timeout=0.2) as (a, b):
            _, writer, peer = await _pair_streams(a, b)
            transport = writer.transport
            assert isinstance(transport, PytcpTransport)
            transport.set_nodelay(True)
            transport.set_cork(True)
            writer.write(b"one ")
            writer.writelines([b"two ", b"three"])
            await _nothing_arrives(peer)
            transport.set_cork(False)
            assert await asyncio.wait_for(peer.readexactly(13), 5) == b"one two three"
            transport.write(b"more ", more=True)
            await _nothing_arrives(peer)
            transport.write(b"done")
            assert await asyncio.wait_for(peer.readexactly(9), 5) == b"more done"
            writer.close()

    asyncio.run(asyncio.wait_for(body(), 30))
