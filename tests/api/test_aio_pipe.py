"""The asyncio transport alone, over a stand-in stack of in-memory pipes (tests/api/pipestack):
back-pressure, half-close, abort, refusal and close ordering, deterministic and fast."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Coroutine

import pytest
from pipestack import PipeNet, PipeStack

from tests.streamtools import read_to_eof

from pytcp.api.aio import open_connection, start_server
from pytcp.link.memory import MemoryLink
from pytcp.runtime import Runtime


def run(coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


@contextlib.asynccontextmanager
async def pipe_pair(capacity: int = 64 * 1024) -> AsyncIterator[tuple[Runtime, Runtime]]:
    loop = asyncio.get_running_loop()
    net = PipeNet()
    links = MemoryLink.pair()
    rts = []
    for addr, link in zip(("10.0.0.1", "10.0.0.2"), links):
        stack = PipeStack(addr, net, capacity)
        rt = Runtime(stack, link, loop=loop)
        net.runtimes[stack.addr] = rt
        rt.start()
        rts.append(rt)
    try:
        yield rts[0], rts[1]
    finally:
        for rt in rts:
            await rt.close(0.1)
        for link in links:
            link.close()


def test_echo_and_names() -> None:
    async def main() -> None:
        async with pipe_pair() as (a, b):
            async def cb(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                w.write((await read_to_eof(r)).upper())
                w.write_eof()

            server = await start_server(cb, 7, runtime=b)
            reader, writer = await open_connection("10.0.0.2", 7, runtime=a, local_port=5555)
            assert writer.get_extra_info("peername") == ("10.0.0.2", 7)
            assert writer.get_extra_info("sockname") == ("10.0.0.1", 5555)
            writer.write(b"abc" * 100_000)
            writer.write_eof()
            assert await read_to_eof(reader) == b"ABC" * 100_000
            writer.close()
            await writer.wait_closed()
            assert server.accepted == 1

    run(main())


def test_write_backlog_pauses_and_resumes_protocol() -> None:
    async def main() -> None:
        async with pipe_pair(capacity=16 * 1024) as (a, b):
            accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
            await start_server(lambda r, w: accepted.put_nowait((r, w)), 7, runtime=b)
            reader, writer = await open_connection("10.0.0.2", 7, runtime=a)
            r2, w2 = await accepted.get()
            transport = writer.transport
            transport.set_write_buffer_limits(high=64 * 1024)
            assert transport.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
            w2.transport.pause_reading()  # type: ignore[attr-defined]  # the peer stops reading: nothing drains
            writer.write(b"x" * 200_000)
            # The engine took 16 KB; the rest waits in the backlog above high water.
            assert transport.get_write_buffer_size() == 200_000 - 16 * 1024
            drain = asyncio.create_task(writer.drain())
            await asyncio.sleep(0.05)
            assert not drain.done()  # paused: drain blocks
            w2.transport.resume_reading()  # type: ignore[attr-defined]
            got = await r2.readexactly(200_000)
            assert got == b"x" * 200_000
            await asyncio.wait_for(drain, 1)
            assert transport.get_write_buffer_size() == 0
            writer.close()

    run(main())


def test_pause_reading_stops_pulling_from_engine() -> None:
    async def main() -> None:
        async with pipe_pair(capacity=32 * 1024) as (a, b):
            accepted: asyncio.Queue[Any] = asyncio.Queue()
            await start_server(lambda r, w: accepted.put_nowait((r, w)), 7, runtime=b)
            reader, writer = await open_connection("10.0.0.2", 7, runtime=a, limit=8 * 1024)
            r2, w2 = await accepted.get()
            w2.write(b"y" * 1_000_000)
            await asyncio.sleep(0.05)
            # StreamReader paused the transport above 2*limit; the engine buffer is full.
            assert not writer.transport.is_reading()  # type: ignore[attr-defined]
            assert len(getattr(reader, "_buffer")) <= 2 * 8 * 1024 + 32 * 1024
            handle = writer.get_extra_info("pytcp_handle")
            assert len(handle.conn.rbuf) == 32 * 1024
            total = 0
            while total < 1_000_000:
                total += len(await reader.read(4096))
            assert total == 1_000_000
            writer.close()

    run(main())


def test_close_sends_backlog_before_fin() -> None:
    async def main() -> None:
        async with pipe_pair(capacity=8 * 1024) as (a, b):
            got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

            async def cb(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                got.set_result(await read_to_eof(r))
                w.close()

            await start_server(cb, 7, runtime=b)
            reader, writer = await open_connection("10.0.0.2", 7, runtime=a)
            writer.write(b"z" * 100_000)
            writer.close()
            assert writer.transport.is_closing()
            writer.write(b"ignored")  # as asyncio: silently dropped after close()
            assert await got == b"z" * 100_000
            await writer.wait_closed()

    run(main())


def test_abort_resets_peer_and_refused_connect() -> None:
    async def main() -> None:
        async with pipe_pair() as (a, b):
            accepted: asyncio.Queue[Any] = asyncio.Queue()
            await start_server(lambda r, w: accepted.put_nowait((r, w)), 7, runtime=b)
            reader, writer = await open_connection("10.0.0.2", 7, runtime=a)
            r2, w2 = await accepted.get()
            w2.transport.abort()
            with pytest.raises(ConnectionResetError):
                await reader.read(10)
            with pytest.raises(ConnectionResetError):
                await writer.wait_closed()
            with pytest.raises(ConnectionRefusedError):
                await open_connection("10.0.0.2", 8, runtime=a)

    run(main())


def test_eof_received_keeps_transport_open_for_writing() -> None:
    async def main() -> None:
        async with pipe_pair() as (a, b):
            accepted: asyncio.Queue[Any] = asyncio.Queue()
            await start_server(lambda r, w: accepted.put_nowait((r, w)), 7, runtime=b)
            reader, writer = await open_connection("10.0.0.2", 7, runtime=a)
            r2, w2 = await accepted.get()
            writer.write_eof()
            assert await r2.read() == b""
            assert not w2.transport.is_closing()
            w2.write(b"after your eof")
            w2.write_eof()
            assert await read_to_eof(reader) == b"after your eof"
            await asyncio.wait_for(writer.wait_closed(), 1)  # both sides shut: Closed

    run(main())


def test_callback_exception_does_not_break_the_runtime() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _l, ctx: errors.append(ctx))
        async with pipe_pair() as (a, b):
            async def bad(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                raise ValueError("app bug")

            await start_server(bad, 7, runtime=b)
            reader, writer = await open_connection("10.0.0.2", 7, runtime=a)
            # asyncio's StreamReaderProtocol closes the transport when the callback fails.
            assert await read_to_eof(reader) == b""
            assert any(isinstance(c.get("exception"), ValueError) for c in errors)

    run(main())
