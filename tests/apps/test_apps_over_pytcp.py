"""The apps over pytcp itself: two stacks joined in memory (``pytcp.api.pair.memory_pair``),
no TUN needed. The same coroutines that the kernel-TCP tests drive, on pytcp's transport."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import json
import random
from pathlib import Path

import pytest
from apps_helpers import read_response, run

from tests.streamtools import exchange, read_to_eof

from pytcp.api.aio import open_connection, start_server
from pytcp.api.pair import ADDR_A, ADDR_B, memory_pair
from pytcp.apps.discard import serve_discard
from pytcp.apps.echo import serve_echo
from pytcp.apps.http_client import FetchError, fetch
from pytcp.apps.http_server import serve_http
from pytcp.apps.status import stack_status


def test_echo_over_pytcp() -> None:
    payload = random.Random(7).randbytes(1_000_003)

    async def body() -> None:
        async with memory_pair() as (a, b):
            await start_server(serve_echo, 7, runtime=b)
            reader, writer = await open_connection(ADDR_B, 7, runtime=a)
            echoed = await exchange(reader, writer, payload)
            writer.close()
            assert echoed == payload

    run(body())


def test_discard_over_pytcp_sends_nothing() -> None:
    async def body() -> None:
        async with memory_pair() as (a, b):
            await start_server(serve_discard, 9, runtime=b)
            reader, writer = await open_connection(ADDR_B, 9, runtime=a)
            writer.write(bytes(300_000))
            await writer.drain()
            writer.write_eof()
            assert await read_to_eof(reader) == b""
            writer.close()

    run(body())


@pytest.mark.parametrize("impair", [None, "loss=0.02,reorder=0.02"])
def test_http_fetch_over_pytcp(tmp_path: Path, impair: str | None) -> None:
    data = random.Random(80).randbytes(2 * 1024 * 1024 + 1)
    (tmp_path / "f.bin").write_bytes(data)

    async def body() -> None:
        async with memory_pair(impair_a_in=impair, impair_b_in=impair) as (a, b):
            await start_server(functools.partial(serve_http, root=tmp_path,
                                                 status_provider=None), 80, runtime=b)
            opener = functools.partial(open_connection, runtime=a)
            out = io.BytesIO()
            result = await fetch(f"http://{ADDR_B}/f.bin", out, open_connection=opener)
            assert result.received == len(data)
            assert hashlib.sha256(out.getvalue()).digest() == hashlib.sha256(data).digest()
            with pytest.raises(FetchError, match="HTTP 404 Not Found for /nope"):
                await fetch(f"http://{ADDR_B}/nope", io.BytesIO(), open_connection=opener)
            with pytest.raises(FetchError, match=f"connection refused by {ADDR_B}:81"):
                await fetch(f"http://{ADDR_B}:81/", io.BytesIO(), open_connection=opener)

    run(body(), timeout=60)


def test_pipelining_and_405_close_over_pytcp(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"AAA")

    async def body() -> None:
        async with memory_pair() as (a, b):
            await start_server(functools.partial(serve_http, root=tmp_path,
                                                 status_provider=None), 80, runtime=b)
            reader, writer = await open_connection(ADDR_B, 80, runtime=a)
            writer.write(b"GET /a.txt HTTP/1.1\r\nHost: b\r\n\r\n" * 3
                         + b"POST /a.txt HTTP/1.1\r\nHost: b\r\nContent-Length: 4\r\n\r\nbody")
            for _ in range(3):
                status, _, data = await read_response(reader)
                assert (status, data) == (200, b"AAA")
            status, headers, _ = await read_response(reader)
            assert (status, headers["allow"], headers["connection"]) == (405, "GET, HEAD",
                                                                        "close")
            assert await read_to_eof(reader) == b""  # the server's FIN, not a reset
            writer.close()

    run(body())


def test_status_page_lists_the_live_connection_over_pytcp() -> None:
    async def body() -> None:
        async with memory_pair() as (a, b):
            provider = functools.partial(stack_status, b.stack)
            await start_server(functools.partial(serve_http, root=None,
                                                 status_provider=provider), 80, runtime=b)
            reader, writer = await open_connection(ADDR_B, 80, runtime=a)
            writer.write(b"GET /status.json HTTP/1.1\r\nHost: b\r\n\r\n")
            status, _, data = await read_response(reader)
            assert status == 200
            snapshot = json.loads(data)
            assert snapshot["addr"] == ADDR_B
            local_port = writer.get_extra_info("sockname")[1]
            (conn,) = snapshot["connections"]
            assert conn["local"] == f"{ADDR_B}:80"
            assert conn["remote"] == f"{ADDR_A}:{local_port}"
            assert conn["state"] == "ESTABLISHED"
            assert conn["bytes_in"] == len(b"GET /status.json HTTP/1.1\r\nHost: b\r\n\r\n")
            assert snapshot["counters"]["rx_packets"] > 0
            writer.write(b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
            status, _, page = await read_response(reader)
            assert status == 200 and b"ESTABLISHED" in page and b"10.0.0.1:" in page
            assert await read_to_eof(reader) == b""
            writer.close()

    run(body())


def test_a_client_that_stops_reading_is_reset_over_pytcp(tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(bytes(16 * 1024 * 1024))

    async def body() -> None:
        async with memory_pair() as (a, b):
            await start_server(functools.partial(serve_http, root=tmp_path, status_provider=None,
                                                 idle_timeout=0.5), 80, runtime=b)
            reader, writer = await open_connection(ADDR_B, 80, runtime=a)
            writer.write(b"GET /big.bin HTTP/1.1\r\nHost: b\r\n\r\n")
            await asyncio.sleep(2.0)  # read nothing: windows fill, the server's drain times out
            got = 0
            with pytest.raises(ConnectionResetError):
                while True:
                    data = await reader.read(1 << 20)
                    assert data, "a FIN behind data nobody reads, instead of a reset"
                    got += len(data)
            assert got < 16 * 1024 * 1024  # asyncio drops buffered data on a reset
            writer.close()

    run(body())
