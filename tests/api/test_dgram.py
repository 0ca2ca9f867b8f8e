"""UDP and TCP over IPv6 through the application APIs, two stacks joined in memory: the
asyncio datagram endpoint, the blocking DatagramSocket, and asyncio streams over IPv6."""

from __future__ import annotations

import asyncio
import errno
import random
from collections.abc import Coroutine
from typing import Any

import pytest

from pytcp.api.aio import open_connection, start_server
from pytcp.api.dgram import DatagramSocket, create_datagram_endpoint
from pytcp.api.pair import ADDR6_A, ADDR6_B, ADDR_A, ADDR_B, memory_pair
from pytcp.api.sock import BackgroundRuntime
from pytcp.apps.udp_echo import UdpEcho
from pytcp.link.memory import MemoryLink
from pytcp.stack import Stack


def run(coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


class Collect(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.q: asyncio.Queue[Any] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.q.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:
        self.q.put_nowait(exc)


def test_udp_echo_both_families_sizes_0_to_20000() -> None:
    async def main() -> None:
        async with memory_pair() as (a, b):
            server, echo = await create_datagram_endpoint(UdpEcho, ("", 7), runtime=b)
            client, coll = await create_datagram_endpoint(Collect, None, runtime=a)
            assert isinstance(coll, Collect) and isinstance(echo, UdpEcho)
            for host in (ADDR_B, ADDR6_B):
                for size in (0, 1, 1472, 1473, 1452, 1453, 9000, 20000):
                    data = random.Random(size).randbytes(size)
                    client.sendto(data, (host, 7))
                    got, src = await asyncio.wait_for(coll.q.get(), 5)
                    assert (got, src) == (data, (host, 7)), size
            assert echo.datagrams == 16
            client.close()
            server.close()

    run(main())


def test_connected_endpoint_gets_econnrefused_for_a_closed_port() -> None:
    async def main() -> None:
        async with memory_pair() as (a, _b):
            for host in (ADDR_B, ADDR6_B):
                t, coll = await create_datagram_endpoint(Collect, None, (host, 9), runtime=a)
                assert isinstance(coll, Collect)
                t.sendto(b"anyone?")
                exc = await asyncio.wait_for(coll.q.get(), 5)
                assert isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED
                assert t.get_extra_info("peername") == (host, 9)
                t.close()

    run(main())


def test_tcp_echo_over_ipv6_streams() -> None:
    payload = random.Random(5).randbytes(300_000)

    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while data := await r.read(1 << 16):
            w.write(data)
            await w.drain()
        w.close()

    async def main() -> None:
        async with memory_pair() as (a, b):
            server = await start_server(handler, 7, runtime=b)
            reader, writer = await open_connection(ADDR6_B, 7, runtime=a)
            assert writer.get_extra_info("peername") == (ADDR6_B, 7)
            assert writer.get_extra_info("sockname")[0] == ADDR6_A
            writer.write(payload)
            writer.write_eof()
            got = await reader.read()
            assert got == payload
            writer.close()
            # the same listener takes IPv4 too
            r4, w4 = await open_connection(ADDR_B, 7, runtime=a)
            w4.write(b"four")
            w4.write_eof()
            assert await r4.read() == b"four"
            w4.close()
            server.close()

    run(main())


def test_blocking_datagram_socket_over_a_background_runtime() -> None:
    import time

    la, lb = MemoryLink.pair(1 << 22)
    sa = Stack(ADDR_A, addr6=ADDR6_A, now=time.monotonic(), secret=b"a")
    sb = Stack(ADDR_B, addr6=ADDR6_B, now=time.monotonic(), secret=b"b")
    with BackgroundRuntime(sa, la) as bga, BackgroundRuntime(sb, lb) as bgb:
        server = bgb.datagram_socket()
        server.bind(("", 5000))
        server.settimeout(5)
        client = DatagramSocket(bga)
        client.settimeout(5)
        for host in (ADDR_B, ADDR6_B):
            client.sendto(b"ping " + host.encode(), (host, 5000))
            data, addr = server.recvfrom()
            assert data == b"ping " + host.encode()
            server.sendto(data.upper(), addr)
            assert client.recvfrom() == (data.upper(), (host, 5000))
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.recvfrom()
        closed = DatagramSocket(bga)
        closed.settimeout(5)
        closed.connect((ADDR6_B, 9))
        closed.send(b"x")
        with pytest.raises(ConnectionRefusedError):
            closed.recv()
        for s in (server, client, closed):
            s.close()


def test_udp_endpoints_in_the_status_snapshot_and_ss_table() -> None:
    from pytcp.apps.ss import format_table, ss_snapshot
    from pytcp.apps.status import render_html, stack_status

    async def main() -> None:
        async with memory_pair() as (a, b):
            server, _ = await create_datagram_endpoint(UdpEcho, ("", 7), runtime=b)
            client, coll = await create_datagram_endpoint(Collect, None, (ADDR6_B, 7),
                                                          runtime=a)
            assert isinstance(coll, Collect)
            client.sendto(b"abc")
            await asyncio.wait_for(coll.q.get(), 5)
            (row,) = stack_status(b.stack)["udp"]
            assert row == {"local": "*:7", "remote": "*", "rx_datagrams": 1,
                           "tx_datagrams": 1, "queued": 0, "queued_bytes": 0, "drops": 0}
            assert b"UDP endpoints (1)" in render_html(stack_status(b.stack))
            snap = ss_snapshot(a, ifname="mem0", addr=ADDR_A)
            (u,) = snap["udp"]
            assert u["remote"] == f"[{ADDR6_B}]:7" and u["tx_datagrams"] == 1
            lines = format_table([snap]).splitlines()
            assert lines[1].split() == ["ESTAB", "0", "0", u["local"], f"[{ADDR6_B}]:7"]
            assert lines[2].split() == ["udp", "datagrams_in:1", "datagrams_out:1", "drops:0"]
            client.close()
            server.close()

    run(main())
