"""ECN and TCP Fast Open end to end over the in-memory pair and the asyncio API: a transfer
through a CE-marking impairment arrives intact and the sender reduced its window; a second
connection sends its first bytes in the SYN with the cookie the first one learned."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Coroutine
from typing import Any

from pytcp.api.aio import open_connection, start_server
from pytcp.api.pair import ADDR_B, memory_pair
from pytcp.tcp.config import TcpConfig

TEST_TIMEOUT = 30.0


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, TEST_TIMEOUT)
    return asyncio.run(bounded())


def test_transfer_through_ce_marks() -> None:
    payload = random.Random(7).randbytes(300_000)

    async def main() -> None:
        # Host B's inbound path marks 2% of ECT packets CE (RFC 3168, an AQM's job).
        async with memory_pair(tcp_config=TcpConfig(ecn=1), impair_b_in="ce=0.02") as (a, b):
            got = bytearray()
            done = asyncio.Event()

            async def sink(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                while chunk := await r.read(1 << 16):
                    got.extend(chunk)
                w.close()
                done.set()

            server = await start_server(sink, 9000, runtime=b)
            _reader, writer = await open_connection(ADDR_B, 9000, runtime=a)
            handle = writer.get_extra_info("pytcp_handle")
            writer.write(payload)
            await writer.drain()
            writer.write_eof()
            await done.wait()
            assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
            conn = handle.conn
            assert conn.ecn_ok
            assert conn._ecn.reductions >= 1       # ECE answered with a window reduction
            # Marks, not losses: the marking hop dropped nothing (it drops only Not-ECT packets
            # it would mark). Retransmissions are not asserted: on a loaded machine a starved
            # event loop can fire a tail loss probe that is not a loss.
            assert b.impair_in is not None and b.impair_in.stats["ce_marked"] >= 1
            assert b.impair_in.stats["lost"] == 0
            writer.close()
            server.close()

    run(main())


def test_fastopen_second_connection_carries_data_in_the_syn() -> None:
    async def main() -> None:
        async with memory_pair() as (a, b):
            async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                w.write(await r.read(100))
                await w.drain()
                w.close()

            server = await start_server(echo, 9001, runtime=b, fastopen=16)
            # No cookie yet: the SYN asks for one.
            r1, w1 = await open_connection(ADDR_B, 9001, runtime=a, fastopen=True,
                                           first_data=b"hello")
            assert await r1.read(100) == b"hello"
            h1 = w1.get_extra_info("pytcp_handle")
            assert h1.fastopen_sent == 5 and not h1.conn.syn_data_acked
            w1.close()
            assert a.stack.fastopen_cache.get(b.stack.addr) is not None
            # With the cookie: the data rides in the SYN and the SYN-ACK acknowledges it.
            r2, w2 = await open_connection(ADDR_B, 9001, runtime=a, fastopen=True,
                                           first_data=b"again")
            assert await r2.read(100) == b"again"
            assert w2.get_extra_info("pytcp_handle").conn.syn_data_acked
            assert b.stack.stats["fastopen_passive"] == 1
            w2.close()
            server.close()

    run(main())
