"""Peers that go quiet (issue 7 item 4): echo and discard close idle connections, the HTTP
server's send timeout cuts off a peer that takes none of a response queued anywhere (transport
backlog, kernel socket, pytcp's engine), and a stream closed with data that cannot drain
becomes an orphan that the engine's orphan limit ends. Over the kernel's TCP (127.0.0.1) and
over pytcp (two stacks in memory)."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import pytest
from apps_helpers import read_response, run, serving

from tests.streamtools import read_to_eof

from pytcp.api.aio import open_connection, start_server
from pytcp.api.pair import ADDR_B, memory_pair
from pytcp.apps.discard import serve_discard
from pytcp.apps.echo import serve_echo
from pytcp.apps.http_server import serve_http
from pytcp.tcp.config import TcpConfig
from pytcp.tcp.state import State


@pytest.mark.parametrize("service", [serve_echo, serve_discard], ids=["echo", "discard"])
def test_idle_connection_is_closed_after_the_idle_timeout(service: object) -> None:
    async def body() -> None:
        handler = functools.partial(service, idle_timeout=0.3)  # type: ignore[call-overload]
        async with serving(handler) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            loop = asyncio.get_running_loop()
            writer.write(b"x")  # activity restarts the clock
            await asyncio.sleep(0.2)
            t0 = loop.time()
            got = await asyncio.wait_for(read_to_eof(reader), 5)
            assert got in (b"", b"x")  # echo may still send back the byte
            assert 0.05 < loop.time() - t0 < 2.0  # FIN after ~0.3 s of silence
            writer.close()

    run(body())


def test_echo_peer_that_sends_but_never_reads_is_aborted() -> None:
    async def body() -> None:
        handler = functools.partial(serve_echo, idle_timeout=30.0, send_timeout=0.5)
        async with serving(handler) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            chunk = bytes(1 << 20)
            with pytest.raises((ConnectionError, TimeoutError)):
                for _ in range(512):  # far more than every buffer on the way holds
                    writer.write(chunk)
                    await asyncio.wait_for(writer.drain(), 10)
            # the echo server aborted (our writes fail) well before the idle timeout
            assert loop.time() - t0 < 10
            writer.close()

    run(body())


def _small_buffers(**kw: object) -> TcpConfig:
    return TcpConfig().replace(recv_buffer=16384, **kw)


def test_http_response_that_fits_the_send_buffer_but_is_never_read_is_reset(
        tmp_path: Path) -> None:
    """The silent-zero-window case on the stream level: the whole response sits in the
    server's engine (drain() returned at once), the client's window is closed and stays so.
    The send timeout resets it; the idle timeout (much longer) plays no part."""
    (tmp_path / "f.bin").write_bytes(bytes(200_000))

    async def body() -> None:
        async with memory_pair(tcp_config=_small_buffers()) as (a, b):
            await start_server(functools.partial(
                serve_http, root=tmp_path, status_provider=None, idle_timeout=20.0,
                send_timeout=0.5), 80, runtime=b)
            reader, writer = await open_connection(ADDR_B, 80, runtime=a)
            writer.transport.pause_reading()  # the client's window closes at 16 KB
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            writer.write(b"GET /f.bin HTTP/1.1\r\nHost: b\r\n\r\n")
            for _ in range(100):  # bounded: 5 s
                if not b.stack.connections():
                    break
                await asyncio.sleep(0.05)
            assert not b.stack.connections(), [h.conn for h in b.stack.connections()]
            assert 0.4 < loop.time() - t0 < 3.0
            handle = writer.transport.get_extra_info("pytcp_handle")
            for _ in range(40):  # bounded: 2 s for the RST to cross the link
                if handle.conn.state is State.CLOSED:
                    break
                await asyncio.sleep(0.05)
            assert handle.conn.state is State.CLOSED  # the client got the RST
            assert handle.conn.transitions[-1][3] == "RST"
            writer.close()

    run(body())


def test_http_slow_reader_is_served_in_full(tmp_path: Path) -> None:
    """The send timeout bounds time without progress, not the transfer: a reader that takes
    16 KB every 0.2 s of a 300 KB file over 3+ s, with a 0.5 s send timeout, gets it all."""
    data = bytes(range(256)) * 1200
    (tmp_path / "f.bin").write_bytes(data)

    async def body() -> None:
        async with memory_pair(tcp_config=_small_buffers()) as (a, b):
            await start_server(functools.partial(
                serve_http, root=tmp_path, status_provider=None, idle_timeout=20.0,
                send_timeout=0.5), 80, runtime=b)
            reader, writer = await open_connection(ADDR_B, 80, runtime=a, limit=16384)
            writer.write(b"GET /f.bin HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200 ")
            got = bytearray()
            while len(got) < len(data):
                await asyncio.sleep(0.2)
                got += await asyncio.wait_for(reader.read(16384), 5)
            assert bytes(got) == data
            writer.close()

    run(body(), timeout=60)


def test_stream_closed_with_a_backlog_that_cannot_drain_is_an_orphan() -> None:
    """writer.close() with data the peer never takes (its window stays 0 though it answers
    every probe): the connection becomes an orphan and the orphan limit ends it (RST)."""
    cfg = _small_buffers(send_buffer=16384, persist_max=0.4, orphan_retries=2)

    async def body() -> None:
        async with memory_pair(tcp_config=cfg) as (a, b):
            done = asyncio.Event()

            async def hog(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                writer.write(bytes(1 << 20))  # a backlog above the engine's 16 KB
                writer.close()  # and gone: nobody waits for this data any more
                done.set()

            await start_server(hog, 7, runtime=b)
            reader, writer = await open_connection(ADDR_B, 7, runtime=a)
            writer.transport.pause_reading()
            await asyncio.wait_for(done.wait(), 5)
            [server_handle] = b.stack.connections()
            assert server_handle.conn.orphaned
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            for _ in range(200):  # bounded: 10 s
                if not b.stack.connections():
                    break
                await asyncio.sleep(0.05)
            assert not b.stack.connections()
            assert loop.time() - t0 < 8.0
            assert server_handle.conn.transitions[-1][3] == "orphan zero-window timeout"
            writer.close()

    run(body())


def test_http_keep_alive_idle_is_still_a_quiet_close(tmp_path: Path) -> None:
    """Nothing queued at the idle timeout: a FIN, not a reset (the send watch stays out)."""
    (tmp_path / "h.txt").write_bytes(b"hi\n")

    async def body() -> None:
        handler = functools.partial(serve_http, root=tmp_path, status_provider=None,
                                    idle_timeout=0.3, send_timeout=0.1)
        async with serving(handler) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /h.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            status, _, data = await read_response(reader)
            assert (status, data) == (200, b"hi\n")
            assert await asyncio.wait_for(read_to_eof(reader), 5) == b""
            writer.close()

    run(body())

