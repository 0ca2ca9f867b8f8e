"""ECN and TCP Fast Open end to end over the in-memory pair and the asyncio API: a transfer
through a CE-marking impairment arrives intact and the sender reduced its window; a second
connection sends its first bytes in the SYN with the cookie the first one learned, and the
HTTP client (``pytcp get --fastopen``) sends its request there."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import random
from collections.abc import Coroutine
from pathlib import Path
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


def test_fetch_sends_its_request_in_the_syn_with_the_cookie_of_the_first(tmp_path: Path) -> None:
    """``pytcp get --fastopen --repeat 2`` in memory: pytcp's HTTP client against pytcp's
    HTTP server with a Fast Open listener. The first fetch's SYN asks for a cookie; the
    second's carries it and exactly the HTTP request (checked in host A's capture)."""
    from scapy.layers.inet import IP, TCP  # type: ignore[import-untyped]
    from scapy.utils import rdpcap  # type: ignore[import-untyped]

    from pytcp.api.pair import ADDR_A
    from pytcp.apps.http_client import fetch
    from pytcp.apps.http_server import serve_http
    from pytcp.pcap import PcapWriter

    body = random.Random(3).randbytes(5000)
    (tmp_path / "f").write_bytes(body)
    path = tmp_path / "a.pcapng"
    handles: list[Any] = []

    async def main() -> None:
        pcap = PcapWriter(str(path))
        async with memory_pair(pcap_a=pcap) as (a, b):
            server = await start_server(functools.partial(serve_http, root=tmp_path), 80,
                                        runtime=b, fastopen=16)

            async def connect(host: str, port: int, **kw: Any) -> Any:
                r, w = await open_connection(host, port, runtime=a, fastopen=True, **kw)
                handles.append(w.get_extra_info("pytcp_handle"))
                return r, w

            for _ in range(2):
                out = io.BytesIO()
                res = await fetch(f"http://{ADDR_B}/f", out, open_connection=connect,
                                  request_in_syn=True)
                assert res.status == 200 and out.getvalue() == body
            assert b.stack.stats["fastopen_passive"] == 1
            server.close()
            await server.wait_closed()
        pcap.close()

    run(main())
    assert handles[0].conn.syn_data_sent == 0 and not handles[0].conn.syn_data_acked
    assert handles[1].conn.syn_data_acked
    syns = [p[TCP] for p in rdpcap(str(path))
            if p[IP].src == ADDR_A and p[TCP].flags == "S"]
    assert len(syns) == 2
    assert bytes(syns[0].payload) == b""
    request = bytes(syns[1].payload)
    assert request.startswith(b"GET /f HTTP/1.1\r\n") and request.endswith(b"\r\n\r\n")
    assert handles[1].conn.syn_data_sent == len(request)
