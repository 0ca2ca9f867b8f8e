"""The runtime with offloaded packets (issue 8): TCP super-packets are cut in software before
an impairment stage (so loss acts per MSS-sized packet), and pcap records them as they cross
the link with checksums filled in, or cut to per-MSS packets with ``pcap_segments``."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from scapy.layers.inet import IP, TCP
from test_runtime_unit import FakeStack, _until

from pytcp.link.impair import Impairment
from pytcp.link.memory import MemoryLink
from pytcp.runtime import Runtime
from pytcp.stack import GsoPacket
from pytcp.wire.offload import RxPacket

DATA = random.Random(5).randbytes(6000)
SUPER = bytes(IP(src="10.77.0.1", dst="10.77.0.2") /
              TCP(sport=40000, dport=80, seq=1, ack=1, flags="PA") / DATA)


def _partial(raw: bytes) -> bytes:
    pkt = bytearray(raw)
    pkt[36:38] = b"\xab\xcd"  # a partial checksum, as the kernel hands it over (NEEDS_CSUM)
    return bytes(pkt)


class OffloadLink:
    """A MemoryLink end whose reads come back as a TUN with offloads returns them."""

    def __init__(self, link: MemoryLink) -> None:
        self.link = link

    def fileno(self) -> int:
        return self.link.fileno()

    def read_batch(self, max_packets: int = 64) -> list[bytes]:
        out: list[bytes] = []
        for raw in self.link.read_batch(max_packets):
            pkt = RxPacket(raw)
            pkt.csum_partial = True
            if len(raw) > 1500:
                pkt.gso_size = 1460
            out.append(pkt)
        return out

    def write(self, packet: bytes | bytearray) -> None:
        self.link.write(packet)

    def close(self) -> None:
        self.link.close()


class ListPcap:
    def __init__(self) -> None:
        self.packets: list[tuple[str, bytes]] = []
        self.packets_written = 0

    def write(self, wall: int, pkt: Any, direction: str, comment: str | None = None) -> None:
        self.packets.append((direction, bytes(pkt)))

    def flush(self) -> None:
        pass


def _good(raw: bytes) -> bool:
    c = IP(raw).copy()
    del c.chksum
    del c[TCP].chksum
    return bytes(IP(bytes(c))) == raw


def test_super_packets_are_cut_before_the_impairment() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = MemoryLink.pair(1 << 20)
        stack = FakeStack()
        imp_in = Impairment("loss=0", random.Random(1))
        pcap = ListPcap()
        rt = Runtime(stack, OffloadLink(a), loop=loop, impair_in=imp_in, pcap=pcap)
        rt.start()
        b.write(_partial(SUPER))
        await _until(lambda: len(stack.received) == 5)
        pieces = [p for _, p in stack.received]
        assert [len(IP(p)[TCP].payload) for p in pieces] == [1460] * 4 + [6000 - 4 * 1460]
        assert b"".join(bytes(IP(p)[TCP].payload) for p in pieces) == DATA
        assert all(_good(p) for p in pieces)  # whole checksums: the stack verifies them
        assert imp_in.stats["submitted"] == 5
        # The capture shows the super-packet as it crossed the link, checksum filled.
        [(direction, cap)] = pcap.packets
        assert direction == "in" and len(cap) == len(SUPER) and _good(cap)
        await rt.close()
        a.close()
        b.close()

    asyncio.run(asyncio.wait_for(main(), 10))


def test_outbound_gso_packets_in_the_capture_whole_or_per_mss() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        for segments in (False, True):
            a, b = MemoryLink.pair(1 << 20)
            stack = FakeStack()
            pcap = ListPcap()
            rt = Runtime(stack, a, loop=loop, pcap=pcap, pcap_segments=segments)
            rt.start()
            out = GsoPacket(_partial(SUPER))
            out.gso_size = 1000
            stack.out.append(out)  # type: ignore[arg-type]
            rt.kick()
            await _until(lambda rt=rt: rt.packets_out == 1)  # type: ignore[misc]
            caps = [p for d, p in pcap.packets if d == "out"]
            assert all(_good(p) for p in caps)
            if segments:
                assert [len(IP(p)[TCP].payload) for p in caps] == [1000] * 6
            else:
                assert [len(p) for p in caps] == [len(SUPER)]
            assert b.read_batch() == [_partial(SUPER)]  # the link got it untouched
            await rt.close()
            a.close()
            b.close()

    asyncio.run(asyncio.wait_for(main(), 10))
