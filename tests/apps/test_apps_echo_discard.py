"""echo (RFC 862) and discard (RFC 863) over the kernel's TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import random

from apps_helpers import run, serving

from tests.streamtools import exchange, read_to_eof

from pytcp.apps.discard import serve_discard
from pytcp.apps.echo import serve_echo


def test_echo_returns_every_byte_in_order_then_closes_after_our_fin() -> None:
    payload = random.Random(862).randbytes(3 * 1024 * 1024 + 17)

    async def body() -> None:
        async with serving(serve_echo) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            echoed = await exchange(reader, writer, payload, 100_000)
            writer.close()
            assert len(echoed) == len(payload)
            assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()

    run(body())


def test_echo_answers_each_small_write_before_the_next() -> None:
    async def body() -> None:
        async with serving(serve_echo) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for line in (b"hello\n", b"x", b"\x00\xff binary\r\n"):
                writer.write(line)
                assert await reader.readexactly(len(line)) == line
            writer.close()

    run(body())


def test_discard_sends_nothing_and_closes_after_our_fin() -> None:
    async def body() -> None:
        async with serving(serve_discard) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            blob = bytes(1 << 20)
            for _ in range(8):
                writer.write(blob)
                await writer.drain()
            writer.write_eof()
            assert await read_to_eof(reader) == b""  # FIN, and not one byte before it
            writer.close()

    run(body())


def test_services_survive_a_peer_reset() -> None:
    async def body() -> None:
        done = asyncio.Event()

        async def echo_then_flag(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await serve_echo(r, w)  # must return, not raise
            done.set()

        async with serving(echo_then_flag) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"abc")
            assert await reader.readexactly(3) == b"abc"
            writer.transport.abort()  # RST (SO_LINGER 0 is not needed: abort drops the socket)
            await asyncio.wait_for(done.wait(), 5)

    run(body())
