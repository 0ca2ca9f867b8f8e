"""The runtime with the real stack on an in-memory link: timers (RTO retransmission after a
loss), graceful close (FIN, then RST when the timeout passes), and a capture that tshark reads
as well-formed with valid checksums."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable, Coroutine

import pytest
from scapy.all import IP, TCP  # type: ignore

from pytcp.api.aio import open_connection, start_server
from pytcp.api.pair import ADDR_B, memory_pair
from pytcp.pcap import PcapWriter


def run(coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


class Recorder:
    """A pcap stand-in that keeps (monotonic time, direction, scapy packet)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.packets: list[tuple[float, str, Any]] = []

    def write(self, ts: int, packet: bytes, direction: str, comment: str | None = None) -> None:
        self.packets.append((self.loop.time(), direction, IP(bytes(packet))))

    def flush(self) -> None:
        pass

    def tcp(self, direction: str) -> list[tuple[float, Any]]:
        return [(t, p[TCP]) for t, d, p in self.packets if d == direction and TCP in p]


class Filter:
    """An impairment stage (duck-typed) that drops packets chosen by a predicate."""

    def __init__(self, drop: Callable[[bytes], bool]) -> None:
        self.drop = drop
        self.dropped: list[bytes] = []
        self._q: list[bytes] = []

    def submit(self, now: float, packet: bytes) -> None:
        if self.drop(bytes(packet)):
            self.dropped.append(bytes(packet))
        else:
            self._q.append(bytes(packet))

    def release(self, now: float) -> list[bytes]:
        out, self._q = self._q, []
        return out

    def next_deadline(self) -> float | None:
        return None


def _has_payload(pkt: bytes) -> bool:
    p = IP(pkt)
    return TCP in p and len(bytes(p[TCP].payload)) > 0


def test_rto_retransmits_a_lost_segment() -> None:
    async def main() -> None:
        async with memory_pair() as (a, b):
            rec = Recorder(asyncio.get_running_loop())
            a.pcap = rec
            got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

            async def cb(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                got.set_result(await r.readexactly(100))

            await start_server(cb, 80, runtime=b)
            reader, writer = await open_connection(ADDR_B, 80, runtime=a)
            state = {"dropped": 0}

            def drop_first_data(pkt: bytes) -> bool:
                if state["dropped"] == 0 and _has_payload(pkt):
                    state["dropped"] = 1
                    return True
                return False

            b.impair_in = Filter(drop_first_data)
            writer.write(b"x" * 100)
            assert await asyncio.wait_for(got, 10) == b"x" * 100
            data_out = [(t, s) for t, s in rec.tcp("out") if len(bytes(s.payload)) > 0]
            # The same segment went out twice: the original (lost) and the timer's retransmission.
            assert len(data_out) == 2
            (t1, s1), (t2, s2) = data_out
            assert s1.seq == s2.seq and bytes(s1.payload) == bytes(s2.payload) == b"x" * 100
            assert t2 - t1 > 0.005  # sent by a timer, not back to back
            writer.close()

    run(main())


def test_graceful_close_fin_then_rst_after_timeout() -> None:
    async def main() -> None:
        async with memory_pair() as (a, b):
            loop = asyncio.get_running_loop()
            rec = Recorder(loop)
            a.pcap = rec
            await start_server(lambda r, w: None, 81, runtime=b)
            reader, writer = await open_connection(ADDR_B, 81, runtime=a)
            await asyncio.sleep(0.05)
            # From now on B hears nothing from A and A hears nothing from B: A's FIN is never
            # acknowledged.
            a.impair_in = Filter(lambda p: True)
            t0 = loop.time()
            await a.close(graceful_timeout=0.4)
            elapsed = loop.time() - t0
            assert 0.35 <= elapsed < 2.0
            flags = [(t, str(s.flags)) for t, s in rec.tcp("out") if t >= t0]
            assert flags[0][1] in ("FA", "FPA")
            assert flags[-1][1] in ("R", "RA")
            assert flags[-1][0] - flags[0][0] >= 0.35
            assert all("R" not in f for _, f in flags[:-1])

    run(main())


def test_graceful_close_completes_without_rst() -> None:
    async def main() -> None:
        async with memory_pair() as (a, b):
            loop = asyncio.get_running_loop()
            rec = Recorder(loop)
            a.pcap = rec

            async def cb(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                await r.read()  # until A's FIN
                w.close()

            await start_server(cb, 82, runtime=b)
            await open_connection(ADDR_B, 82, runtime=a)
            await asyncio.sleep(0.05)
            t0 = loop.time()
            await a.close(graceful_timeout=2.0)
            assert loop.time() - t0 < 1.0
            flags = [str(s.flags) for _, s in rec.tcp("out")]
            assert any("F" in f for f in flags)
            assert not any("R" in f for f in flags)

    run(main())


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_runtime_capture_is_wellformed_for_tshark(tmp_path: Path) -> None:
    path = tmp_path / "a.pcapng"

    async def main() -> None:
        with PcapWriter(path) as pcap:
            async with memory_pair(pcap_a=pcap) as (a, b):
                async def cb(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                    data = await r.read()
                    w.write(data[::-1])
                    await w.drain()
                    w.close()

                await start_server(cb, 7, runtime=b)
                reader, writer = await open_connection(ADDR_B, 7, runtime=a)
                writer.write(bytes(range(256)) * 400)
                writer.write_eof()
                got = await reader.read()
                assert got == (bytes(range(256)) * 400)[::-1]
                writer.close()

    run(main())
    bad = subprocess.run(
        ["tshark", "-r", str(path), "-o", "tcp.check_checksum:TRUE", "-o",
         "ip.check_checksum:TRUE", "-Y", "_ws.malformed || _ws.expert.severity >= error",
         "-T", "fields", "-e", "frame.number", "-e", "_ws.expert.message"],
        capture_output=True, text=True, timeout=60, check=True).stdout
    assert bad.strip() == ""
    rows = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "frame.packet_flags_direction",
         "-e", "tcp.flags.syn", "-e", "tcp.len"],
        capture_output=True, text=True, timeout=60, check=True).stdout.splitlines()
    assert len(rows) > 10
    dirs = {int(r.split("\t")[0], 16) for r in rows}
    assert dirs == {1, 2}
    assert sum(int(r.split("\t")[2] or 0) for r in rows) == 2 * 256 * 400


def test_graceful_close_delivers_the_user_space_backlog_first() -> None:
    payload = bytes(range(256)) * 8192  # 2 MB: far more than the engine's send buffer

    async def main() -> None:
        async with memory_pair() as (a, b):
            got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

            async def cb(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                got.set_result(await r.read())  # to EOF
                w.close()

            await start_server(cb, 83, runtime=b)
            reader, writer = await open_connection(ADDR_B, 83, runtime=a)
            writer.write(payload)
            assert writer.transport.get_write_buffer_size() > 0
            await a.close(graceful_timeout=10.0)
            data = await asyncio.wait_for(got, 10)
            assert len(data) == len(payload) and data == payload
            assert a.stack.connections() == [] or all(
                str(h.conn.state) == "TIME-WAIT" for h in a.stack.connections())

    run(main())


def test_close_under_impairment_still_resets_a_stuck_peer() -> None:
    """Issue 7 item 5: with loss, delay and reordering on A's output, A's close still ends
    B's connection: what the stage holds is flushed and the final RST bypasses it."""
    import random

    from pytcp.link.impair import Impairment

    async def main() -> None:
        async with memory_pair() as (a, b):
            loop = asyncio.get_running_loop()
            rec = Recorder(loop)
            a.pcap = rec

            async def cb(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                w.write(bytes(4 << 20))  # more than B will ever read: no FIN can follow it
                await w.drain()

            await start_server(cb, 83, runtime=b)
            reader, writer = await open_connection(ADDR_B, 83, runtime=a)
            await reader.readexactly(1000)  # B is mid-"download" of A... then A stops reading
            # The stuck side is B (the server): A's output is now lossy, slow and reordered.
            b.impair_out = Impairment("loss=0.2,delay=300,reorder=0.3", random.Random(5))
            [handle] = a.stack.connections()
            t0 = loop.time()
            await b.close(graceful_timeout=0.5)
            assert loop.time() - t0 < 2.0
            assert b.impair_out.next_deadline() is None  # nothing left inside the stage
            # A hears the RST at once (no 300 ms delay, no loss) and forgets the connection.
            for _ in range(50):
                if not handle.open:
                    break
                await asyncio.sleep(0.01)
            assert not handle.open, handle

    run(main())
