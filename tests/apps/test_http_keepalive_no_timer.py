"""Keep-alive HTTP over pytcp waits on no timer (issue 8, item 1).

Both stacks run on a FROZEN virtual clock: every timer (delayed ACK, RTO, the cork ceiling)
stays in the future forever, so an exchange that needed one would never finish. Requests and
responses that all complete prove that every response's last byte left at the very instant
its request arrived: headers and body in one gathered write, TCP_NODELAY on the server's
connections (as nginx on keep-alive), no Nagle wait for the client's delayed ACK. The control
test shows the harness does catch such a wait: headers and body in two writes with Nagle on
stall behind the delayed ACK.
"""

from __future__ import annotations

import asyncio
import functools
import random
from pathlib import Path

import pytest
from apps_helpers import read_response, run

from pytcp.api.aio import open_connection, start_server
from pytcp.api.pair import ADDR_B, memory_pair
from pytcp.apps.http_server import serve_http

T0 = 1000.0  # the frozen instant
REQUESTS = 30


def frozen() -> float:
    return T0


async def _keepalive_requests(runtime_a: object, port: int, path: str, n: int
                              ) -> list[bytes]:
    reader, writer = await open_connection(ADDR_B, port, runtime=runtime_a)  # type: ignore[arg-type]
    bodies = []
    for _ in range(n):
        writer.write(f"GET {path} HTTP/1.1\r\nHost: b\r\n\r\n".encode())
        status, headers, body = await read_response(reader)
        assert status == 200 and headers.get("connection", "keep-alive") != "close"
        bodies.append(body)
    writer.close()
    return bodies


@pytest.mark.parametrize("size", [1024, 1400, 5000, 300_000])
def test_keepalive_round_trips_complete_on_a_frozen_clock(tmp_path: Path, size: int) -> None:
    # 1 KB (one segment with its headers), 1,400 B (headers + body just over one MSS: a
    # partial second segment), 5,000 B, and a corked multi-chunk body (300 KB > chunk).
    data = random.Random(size).randbytes(size)
    (tmp_path / "f").write_bytes(data)

    async def body() -> None:
        async with memory_pair(clock=frozen, graceful_timeout=0.5) as (a, b):
            serve = functools.partial(serve_http, root=tmp_path, chunk_size=128 * 1024)
            await start_server(serve, 80, runtime=b)
            got = await asyncio.wait_for(_keepalive_requests(a, 80, "/f", REQUESTS), 20.0)
            assert got == [data] * REQUESTS
            assert a.now() == b.now() == T0

    run(body())


def test_control_split_writes_with_nagle_stall_on_a_frozen_clock() -> None:
    # The harness catches a timer wait: a server that writes headers, then the body, with
    # Nagle on (pytcp before issue 8) waits for the client's delayed ACK, which never comes.
    body_bytes = b"b" * 1000

    async def split_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            if not await reader.readuntil(b"\r\n\r\n"):
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            await asyncio.sleep(0)  # another loop tick: the headers leave alone
            writer.write(body_bytes)
            await writer.drain()

    async def body() -> None:
        async with memory_pair(clock=frozen, graceful_timeout=0.2) as (a, b):
            await start_server(split_server, 81, runtime=b)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(_keepalive_requests(a, 81, "/", REQUESTS), 1.5)

    run(body())
