"""asyncio streams over two pytcp stacks joined by an in-memory link (no TUN needed).

Each test reads like a trace: open, move bytes, close, and assert the exact bytes and the
exceptions asyncio code would see with the kernel's TCP.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from typing import Any, Coroutine

import pytest

from pytcp.api.aio import DEFAULT_HIGH_WATER, PytcpTransport, open_connection, start_server
from pytcp.api.pair import ADDR_A, ADDR_B, memory_pair
from pytcp.drops import DropReason
from tests.streamtools import exchange, read_to_eof

TEST_TIMEOUT = 30.0


def run(coro: Coroutine[Any, Any, Any], timeout: float = TEST_TIMEOUT) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


async def echo_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
        writer.write_eof()
        await writer.drain()
    finally:
        writer.close()


def _payload(n: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(n)


async def _echo_roundtrip(a: Any, b: Any, payload: bytes, port: int = 7,
                          handles: list[Any] | None = None) -> bytes:
    """``handles``: gets the client's and then the server's TcpHandle."""
    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if handles is not None:
            handles.append(w.get_extra_info("pytcp_handle"))
        await echo_handler(r, w)

    server = await start_server(handler, port, runtime=b)
    reader, writer = await open_connection(ADDR_B, port, runtime=a)
    if handles is not None:
        handles.insert(0, writer.get_extra_info("pytcp_handle"))
    got = await exchange(reader, writer, payload, 50_000)
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    return got


def test_echo_1mb_sha256_equal() -> None:
    payload = _payload(1 << 20)

    async def main() -> None:
        async with memory_pair() as (a, b):
            handles: list[Any] = []
            got = await _echo_roundtrip(a, b, payload, handles=handles)
            assert len(got) == len(payload)
            assert hashlib.sha256(got).hexdigest() == hashlib.sha256(payload).hexdigest()
            # A clean in-memory link: nothing dropped, nothing refused by the link. One
            # exception: the loop stalled (GC, a busy host) longer than the probe timeout
            # (2*SRTT + 2 ms: a few ms here), the sender's tail loss probe rightly resent its
            # last segment (RFC 8985 7.3) and the copy arrived as a duplicate, which the
            # receiver drops as out of window. Never more of those than the peer resent.
            client, server = handles
            for rt, peer in ((a, server), (b, client)):
                drops = dict(rt.stack.drops)
                duplicates = drops.pop(DropReason.OUT_OF_WINDOW, 0)
                assert drops == {} and duplicates <= peer.conn.retransmits, (
                    rt.stack.drops, peer.conn.retransmits)
            assert a.stats()["tx_errors"] == 0 and b.stats()["tx_errors"] == 0
            assert a.stats()["packets_out"] >= b.stats()["packets_in"] > 700

    run(main())


def test_names_and_extra_info() -> None:
    async def main() -> None:
        async with memory_pair() as (a, b):
            seen: list[tuple[Any, Any]] = []

            async def cb(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                seen.append((w.get_extra_info("sockname"), w.get_extra_info("peername")))
                w.close()

            server = await start_server(cb, 8080, runtime=b)
            reader, writer = await open_connection(ADDR_B, 8080, runtime=a, local_port=40001)
            assert writer.get_extra_info("peername") == (ADDR_B, 8080)
            assert writer.get_extra_info("sockname") == (ADDR_A, 40001)
            assert isinstance(writer.transport, PytcpTransport)
            handle = writer.get_extra_info("pytcp_handle")
            assert handle.key.remote_port == 8080
            assert await read_to_eof(reader) == b""
            assert seen == [((ADDR_B, 8080), (ADDR_A, 40001))]
            writer.close()
            server.close()

    run(main())


def test_half_close_write_eof_then_read_to_eof() -> None:
    async def main() -> None:
        async with memory_pair() as (a, b):
            async def cb(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                request = await read_to_eof(r)  # the client's FIN ends the request
                w.write(b"got " + str(len(request)).encode() + b": " + request[:5])
                await w.drain()
                w.close()

            await start_server(cb, 9000, runtime=b)
            reader, writer = await open_connection(ADDR_B, 9000, runtime=a)
            assert writer.can_write_eof()
            writer.write(b"hello world")
            writer.write_eof()
            with pytest.raises(RuntimeError):
                writer.write(b"more")  # as asyncio: no write after write_eof
            # Our side is shut for writing, but we still read the whole answer.
            assert await read_to_eof(reader) == b"got 11: hello"
            writer.close()
            await writer.wait_closed()

    run(main())


def test_abort_gives_connection_reset_at_peer() -> None:
    async def main() -> None:
        async with memory_pair() as (a, b):
            result: asyncio.Future[BaseException | bytes] = asyncio.get_running_loop().create_future()

            async def cb(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                try:
                    first = await r.readexactly(4)
                    assert first == b"ping"
                    result.set_result(await r.read(100))
                except Exception as exc:  # noqa: BLE001 - the test inspects it
                    result.set_result(exc)

            await start_server(cb, 9001, runtime=b)
            reader, writer = await open_connection(ADDR_B, 9001, runtime=a)
            writer.write(b"ping")
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.transport.abort()
            assert writer.transport.is_closing()
            outcome = await asyncio.wait_for(result, 5)
            assert isinstance(outcome, ConnectionResetError)
            await writer.wait_closed()  # abort: connection_lost(None) locally

    run(main())


def test_connect_to_closed_port_is_refused() -> None:
    async def main() -> None:
        async with memory_pair() as (a, b):
            with pytest.raises(ConnectionRefusedError):
                await open_connection(ADDR_B, 9999, runtime=a)
            # The stack forgot the failed connection.
            await asyncio.sleep(0)
            assert [str(h.conn.state) for h in a.stack.connections()] == []

    run(main())


def test_back_pressure_slow_reader_bounds_memory() -> None:
    total = 4 << 20
    chunk = 64 * 1024

    async def main() -> None:
        async with memory_pair() as (a, b):
            progress = {"written": 0, "max_backlog": 0, "paused_seen": False}
            done = asyncio.Event()

            async def cb(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                data = _payload(total, seed=3)
                for off in range(0, total, chunk):
                    w.write(data[off:off + chunk])
                    size = w.transport.get_write_buffer_size()
                    progress["max_backlog"] = max(progress["max_backlog"], size)
                    if size > DEFAULT_HIGH_WATER:
                        progress["paused_seen"] = True
                    await w.drain()
                    progress["written"] = off + chunk
                w.close()
                done.set()

            await start_server(cb, 5001, runtime=b)
            reader, writer = await open_connection(ADDR_B, 5001, runtime=a)
            # Do not read: the sender must stall with bounded memory. Wait (bounded) until its
            # progress stops moving.
            stalled_at = -1
            for _ in range(50):
                await asyncio.sleep(0.1)
                if progress["written"] == stalled_at:
                    break
                stalled_at = progress["written"]
            assert stalled_at < total, "the writer was never held back"
            assert progress["paused_seen"]
            assert not done.is_set()
            # Our reader buffer is bounded too: StreamReader pauses reading at 2*limit and the
            # engine's receive window closes behind it.
            assert len(getattr(reader, "_buffer")) <= 2 * (1 << 16) + (1 << 20)
            # The user-space backlog never exceeds high water + one write.
            assert progress["max_backlog"] <= DEFAULT_HIGH_WATER + chunk
            await asyncio.sleep(0.3)
            assert progress["written"] == stalled_at  # still stalled: no hidden buffering
            got = await read_to_eof(reader)
            assert hashlib.sha256(got).digest() == hashlib.sha256(_payload(total, seed=3)).digest()
            await asyncio.wait_for(done.wait(), 5)
            writer.close()

    run(main())


@pytest.mark.parametrize("spec", ["loss=0.03", "reorder=0.05,dup=0.03", "loss=0.02,reorder=0.02,dup=0.02",
                                  "delay=5,jitter=3,loss=0.01"])
def test_transfer_under_impairment_exact_bytes(spec: str) -> None:
    payload = _payload(300_000, seed=11)

    async def main() -> None:
        async with memory_pair(seed=5, impair_a_in=spec, impair_b_in=spec) as (a, b):
            got = await _echo_roundtrip(a, b, payload, port=7)
            assert got == payload
            impaired = a.impair_in.stats + b.impair_in.stats  # type: ignore[union-attr]
            assert impaired["lost"] + impaired["reordered"] + impaired["duplicated"] > 0
            if "delay" in spec:
                assert impaired["delayed"] > 0

    run(main(), timeout=60)


def test_server_close_and_serve_forever() -> None:
    async def main() -> None:
        async with memory_pair() as (a, b):
            async def cb(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                w.write(b"hi")
                await w.drain()
                w.close()

            server = await start_server(cb, 2000, runtime=b)
            assert server.is_serving()
            forever = asyncio.create_task(server.serve_forever())
            reader, writer = await open_connection(ADDR_B, 2000, runtime=a)
            assert await read_to_eof(reader) == b"hi"
            writer.close()
            forever.cancel()
            with pytest.raises(asyncio.CancelledError):
                await forever
            assert not server.is_serving()
            await asyncio.wait_for(server.wait_closed(), 1)
            with pytest.raises(ConnectionRefusedError):
                await open_connection(ADDR_B, 2000, runtime=a)
            assert server.accepted == 1

    run(main())


def test_many_concurrent_connections() -> None:
    async def main() -> None:
        async with memory_pair() as (a, b):
            await start_server(echo_handler, 7, runtime=b)

            async def one(i: int) -> bytes:
                reader, writer = await open_connection(ADDR_B, 7, runtime=a)
                msg = f"message {i} ".encode() * 100
                writer.write(msg)
                writer.write_eof()
                got = await read_to_eof(reader)
                writer.close()
                assert got == msg
                return got

            results = await asyncio.gather(*(one(i) for i in range(50)))
            assert len(results) == 50

    run(main())


def test_port_zero_picks_a_free_port_and_sync_callback_errors_are_contained() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _l, ctx: errors.append(ctx))
        async with memory_pair() as (a, b):
            calls = {"n": 0}

            def cb(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                calls["n"] += 1
                if calls["n"] == 1:
                    raise ValueError("first client fails")
                w.write(b"second ok")
                w.close()

            s1 = await start_server(cb, 0, runtime=b)
            s2 = await start_server(cb, 0, runtime=b)
            assert s1.port != s2.port and s1.port >= 1024
            r1, w1 = await open_connection(ADDR_B, s1.port, runtime=a)
            with pytest.raises(ConnectionResetError):
                await r1.read(10)  # the failed callback's connection is reset
            r2, w2 = await open_connection(ADDR_B, s1.port, runtime=a)
            assert await read_to_eof(r2) == b"second ok"
            assert any(isinstance(c.get("exception"), ValueError) for c in errors)

    run(main())


def test_connection_accepted_late_still_sees_its_data_and_eof() -> None:
    from pytcp.api.aio import Server

    async def main() -> None:
        async with memory_pair() as (a, b):
            listener = b.stack.listen(3000, 8)  # nobody accepts yet
            reader, writer = await open_connection(ADDR_B, 3000, runtime=a)
            writer.write(b"early bytes")
            writer.write_eof()
            await asyncio.sleep(0.1)  # data and FIN now wait in B's engine
            got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

            async def cb(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                got.set_result(await read_to_eof(r))
                w.close()

            server = Server(b, listener, cb)
            server._accept_all()
            assert await asyncio.wait_for(got, 5) == b"early bytes"
            assert await read_to_eof(reader) == b""

    run(main())


def test_bidirectional_concurrent_transfers_under_impairment() -> None:
    async def main() -> None:
        async with memory_pair(seed=9, impair_a_in="loss=0.01,reorder=0.02",
                               impair_b_in="loss=0.01,dup=0.02") as (a, b):
            async def cb(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                idx = int((await r.readexactly(4)).decode())
                out = _payload(100_000, seed=1000 + idx)
                incoming = await exchange(r, w, out, len(out))
                assert incoming == _payload(100_000, seed=2000 + idx)
                w.close()

            await start_server(cb, 4000, runtime=b)

            async def client(i: int) -> None:
                reader, writer = await open_connection(ADDR_B, 4000, runtime=a)
                writer.write(b"%04d" % i)
                got = await exchange(reader, writer, _payload(100_000, seed=2000 + i), 100_000)
                assert got == _payload(100_000, seed=1000 + i)
                writer.close()

            await asyncio.gather(*(client(i) for i in range(10)))

    run(main(), timeout=60)


def test_tos_given_to_open_connection_marks_the_syn(tmp_path: Any) -> None:
    """MUST-48: the TOS byte asked for at connect time is on every segment, the SYN included
    (checked in host A's capture with scapy)."""
    from scapy.layers.inet import IP, TCP  # type: ignore[import-untyped]
    from scapy.utils import rdpcap  # type: ignore[import-untyped]

    from pytcp.pcap import PcapWriter

    path = tmp_path / "a.pcapng"

    async def main() -> None:
        pcap = PcapWriter(str(path))
        async with memory_pair(pcap_a=pcap) as (a, b):
            server = await start_server(echo_handler, 7, runtime=b)
            reader, writer = await open_connection(ADDR_B, 7, runtime=a, tos=0x28)
            writer.write(b"x")
            assert await reader.readexactly(1) == b"x"
            writer.close()
            server.close()
            await server.wait_closed()
        pcap.close()

    run(main())
    ours = [p for p in rdpcap(str(path)) if p[IP].src == ADDR_A]
    assert ours[0][TCP].flags == "S" and ours[0][IP].tos == 0x28
    assert all(p[IP].tos == 0x28 for p in ours)


def test_data_unread_when_the_connection_ends_is_still_delivered() -> None:
    # The client shuts down first; the server answers 60 KB and closes, so the client's
    # connection reaches TIME-WAIT (the stack replaces it, Closed) while its reader is paused
    # with most of the answer still in the engine. As Linux keeps the receive queue for the
    # socket until close(), every byte must still be read, then EOF. (The answer fits in the
    # initial receive buffer, 64 KiB as Linux's: without reading, the buffer does not grow.)
    answer = _payload(60_000, seed=11)

    async def main() -> None:
        async with memory_pair() as (a, b):
            async def cb(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                await read_to_eof(r)
                w.write(answer)
                await w.drain()
                w.close()

            server = await start_server(cb, 9001, runtime=b)
            reader, writer = await open_connection(ADDR_B, 9001, runtime=a, limit=1024)
            handle = writer.get_extra_info("pytcp_handle")
            writer.write_eof()
            for _ in range(200):  # bounded: until the stack replaced it (TIME-WAIT)
                if getattr(handle, "_tw", None) is not None:
                    break
                await asyncio.sleep(0.01)
            assert handle._tw is not None
            got = await read_to_eof(reader)
            assert hashlib.sha256(got).digest() == hashlib.sha256(answer).digest()
            writer.close()
            server.close()
            await server.wait_closed()

    run(main())
