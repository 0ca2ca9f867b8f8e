"""``TcpHandle.counters`` (``pytcp.stack.ConnCounters``): what each side counted matches the
other across a lossless in-memory link — with super-segments the sender cuts (GSO) and
segments the receiver coalesces (GRO) counted as the packets on the wire — and the end of a
connection is recorded, also after TIME-WAIT took its place."""

from __future__ import annotations

import asyncio
import math
import random

import pytest

from pytcp.api.aio import open_connection, start_server
from pytcp.api.pair import ADDR_B, memory_pair
from pytcp.tcp.config import TcpConfig

SIZE = 300_000


@pytest.mark.parametrize("super_segments", [False, True], ids=["mss", "gso"])
def test_counters_match_across_the_link(super_segments: bool) -> None:
    data = random.Random(3).randbytes(SIZE)
    cfg = TcpConfig.linux()
    if super_segments:
        cfg = cfg.replace(max_segment_payload=65000)  # cut into MSS pieces by the stack
    handles: list[object] = []

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handles.append(writer.get_extra_info("pytcp_handle"))
        got = await reader.readexactly(SIZE)
        writer.write(got[:1000])
        await writer.drain()
        writer.close()

    async def body() -> None:
        async with memory_pair(seed=5, tcp_config=cfg) as (a, b):
            await start_server(sink, 9, runtime=b)
            reader, writer = await open_connection(ADDR_B, 9, runtime=a)
            mine = writer.get_extra_info("pytcp_handle").counters
            writer.write(data)
            assert await reader.readexactly(1000) == data[:1000]
            assert await reader.read() == b""
            writer.close()
            theirs = handles[0].counters  # type: ignore[attr-defined]
            # The last ACKs (and delayed ACKs) are in flight: wait until both ends have counted
            # the same packets, bounded at 5 s (a loaded machine can take longer than 0.3 s).
            for _ in range(100):
                if theirs.end_state and mine.segs_out == theirs.segs_in \
                        and mine.segs_in == theirs.segs_out:
                    break
                await asyncio.sleep(0.05)
            assert (mine.segs_out, mine.wire_out, mine.data_out) == (
                theirs.segs_in, theirs.wire_in, theirs.data_in)
            assert (mine.segs_in, mine.wire_in, mine.data_in) == (
                theirs.segs_out, theirs.wire_out, theirs.data_out)
            # No loss, so every byte arrived once -- unless a timer fired late on a loaded
            # machine (a tail loss probe or RTO that is no loss): then only retransmitted
            # bytes are extra, and the sender counted a retransmission.
            sender = writer.get_extra_info("pytcp_handle").conn
            assert theirs.data_in == SIZE or (theirs.data_in > SIZE and sender.retransmits > 0)
            # The paths counted: the receiver coalesced (GRO), the sender cut super-segments.
            assert b.stack.stats["gro_segments"] > 0
            assert (a.stack.stats["gso_cut"] > 0) is super_segments
            # Every data segment at most one MSS on the wire (pieces, not super-segments).
            assert theirs.segs_in >= math.ceil(SIZE / 1460) + 2
            # IP 20 + TCP 20 + timestamps 12 per packet; the SYN's options are 20 bytes
            # (MSS, SACK-permitted, timestamps, window scale): 8 more.
            assert mine.wire_out == mine.data_out + 52 * mine.segs_out + 8
            # The server closed first: TIME-WAIT ended its record; the client's is CLOSED.
            assert theirs.end_state == "TIME-WAIT" and theirs.ended is not None
            assert theirs.ended >= theirs.opened

    asyncio.run(body())
