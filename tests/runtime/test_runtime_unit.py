"""Runtime against a scripted fake stack over a MemoryLink: batching, the one flush, pcap,
impairment, the single timer, and event dispatch. (The real stack is exercised in
test_runtime_stack.py.)"""

from __future__ import annotations

import asyncio
import io
import random
from typing import Any

import pytest

from pytcp.link.impair import Impairment
from pytcp.link.memory import MemoryLink
from pytcp.pcap import PcapWriter
from pytcp.runtime import Runtime


class FakeStack:
    """Records what the runtime feeds it; hands out scripted packets, events, deadlines."""

    def __init__(self) -> None:
        self.received: list[tuple[float, bytes]] = []
        self.timer_calls: list[float] = []
        self.out: list[bytes] = []
        self.events: list[tuple[Any, object]] = []
        self.deadline: float | None = None
        self.pending_calls = 0
        self.echo = False  # answer each received packet with b"re:" + packet

    def receive_packet(self, now: float, pkt: bytes) -> None:
        self.received.append((now, bytes(pkt)))
        if self.echo:
            self.out.append(b"re:" + bytes(pkt))

    def receive_batch(self, now: float, pkts: list[bytes], clock: Any = None) -> None:
        for pkt in pkts:
            self.receive_packet(now, pkt)

    def handle_timers(self, now: float) -> None:
        self.timer_calls.append(now)
        if self.deadline is not None and now >= self.deadline:
            self.deadline = None
            self.out.append(b"timer-fired")

    def next_deadline(self) -> float | None:
        return self.deadline

    def pending_packets(self) -> list[bytes]:
        self.pending_calls += 1
        out, self.out = self.out, []
        return out

    def pending_events(self) -> list[tuple[Any, object]]:
        ev, self.events = self.events, []
        return ev

    def connections(self) -> list[Any]:
        return []


class Owner:
    def __init__(self, target: Any) -> None:
        self.user_data = target


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[object, float]] = []

    def handle_event(self, event: object, now: float) -> None:
        self.seen.append((event, now))


async def _until(cond: Any, timeout: float = 2.0) -> None:
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.002)
    await asyncio.wait_for(poll(), timeout)


def _read_all(link: MemoryLink) -> list[bytes]:
    return link.read_batch(1000)


def test_batch_in_one_flush_out_and_pcap() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = MemoryLink.pair()
        stack = FakeStack()
        stack.echo = True
        cap = io.BytesIO()
        pcap = PcapWriter(cap)
        rt = Runtime(stack, a, loop=loop, pcap=pcap)
        rt.start()
        for i in range(100):
            b.write(b"pkt%03d" % i)
        await _until(lambda: len(stack.received) == 100)
        assert [p for _, p in stack.received] == [b"pkt%03d" % i for i in range(100)]
        await _until(lambda: rt.packets_out == 100)
        got = _read_all(b)
        assert got == [b"re:pkt%03d" % i for i in range(100)]
        assert rt.packets_in == 100
        # 100 packets arrive in at most a few wakeups (batches of 64), not one flush per packet.
        assert stack.pending_calls < 20
        await rt.close()
        pcap.close()
        assert pcap.packets_written == 200
        a.close(); b.close()

    asyncio.run(asyncio.wait_for(main(), 10))


def test_read_budget_yields_to_the_loop() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = MemoryLink.pair()
        stack = FakeStack()
        rt = Runtime(stack, a, loop=loop, read_budget=64)
        rt.start()
        for i in range(200):
            b.write(b"x")
        await _until(lambda: len(stack.received) == 200)
        assert rt.packets_in == 200
        await rt.close()
        a.close(); b.close()

    asyncio.run(asyncio.wait_for(main(), 10))


def test_timer_fires_at_deadline_and_rearms_on_change() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = MemoryLink.pair()
        stack = FakeStack()
        rt = Runtime(stack, a, loop=loop)
        rt.start()
        t0 = loop.time()
        stack.deadline = t0 + 0.05
        rt.kick()
        await _until(lambda: stack.timer_calls)
        assert stack.timer_calls[0] >= t0 + 0.05
        assert loop.time() - t0 < 0.5
        await _until(lambda: rt.packets_out == 1)
        assert _read_all(b) == [b"timer-fired"]
        # A later deadline replaced by an earlier one: the earlier one wins.
        stack.timer_calls.clear()
        t1 = loop.time()
        stack.deadline = t1 + 5.0
        rt.kick()
        await asyncio.sleep(0.01)
        stack.deadline = t1 + 0.03
        rt.kick()
        await _until(lambda: stack.timer_calls)
        assert loop.time() - t1 < 1.0
        assert stack.deadline is None
        await rt.close()
        a.close(); b.close()

    asyncio.run(asyncio.wait_for(main(), 10))


def test_events_dispatched_and_callback_errors_contained() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _l, _c: None)
        a, b = MemoryLink.pair()
        stack = FakeStack()
        rt = Runtime(stack, a, loop=loop)
        rt.start()
        rec = Recorder()

        class Boom:
            def handle_event(self, event: object, now: float) -> None:
                raise RuntimeError("app bug")

        class FakeListener:
            closed = False

            def close(self) -> None:
                self.closed = True

        listener = FakeListener()
        lrec = Recorder()
        rt.register_listener(listener, lrec)
        stack.events = [(Owner(Boom()), "e0"), (Owner(rec), "e1"), (listener, "accept"),
                        (Owner(None), "lost")]
        rt.kick()
        await _until(lambda: rec.seen and lrec.seen)
        assert [e for e, _ in rec.seen] == ["e1"]
        assert [e for e, _ in lrec.seen] == ["accept"]
        assert rt.callback_errors == 1
        assert rt.stats()["events_unclaimed"] == 1
        await rt.close()
        assert listener.closed  # the runtime closes the listeners it serves
        a.close(); b.close()

    asyncio.run(asyncio.wait_for(main(), 10))


def test_impair_out_delay_released_by_timer_and_pcap_sees_link() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = MemoryLink.pair()
        stack = FakeStack()
        stack.echo = True
        cap = io.BytesIO()
        pcap = PcapWriter(cap)
        imp_out = Impairment("delay=40", random.Random(1))
        imp_in = Impairment("loss=1", random.Random(1))
        rt = Runtime(stack, a, loop=loop, pcap=pcap, impair_out=imp_out)
        rt.start()
        t0 = loop.time()
        b.write(b"hello")
        await _until(lambda: stack.received)
        await asyncio.sleep(0.01)
        assert _read_all(b) == []  # held by the delay stage
        await _until(lambda: rt.packets_out == 1)
        assert loop.time() - t0 >= 0.04
        assert _read_all(b) == [b"re:hello"]
        st = rt.stats()
        assert st["impair_out_delayed"] == 1 and st["impair_out_released"] == 1
        assert st["pcap_packets"] == 2
        await rt.close()
        # Inbound loss: pcap still records the packet as it came off the link.
        rt2 = Runtime(FakeStack(), a, loop=loop, pcap=pcap, impair_in=imp_in)
        rt2.start()
        b.write(b"dropped")
        await _until(lambda: rt2.packets_in == 1)
        assert rt2.stack.received == []
        await rt2.close()
        pcap.close()
        assert pcap.packets_written == 3
        a.close(); b.close()

    asyncio.run(asyncio.wait_for(main(), 10))


def test_start_twice_is_misuse() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = MemoryLink.pair()
        rt = Runtime(FakeStack(), a, loop=loop)
        rt.start()
        with pytest.raises(RuntimeError):
            rt.start()
        await rt.close()
        with pytest.raises(RuntimeError):
            rt.start()
        a.close(); b.close()

    asyncio.run(asyncio.wait_for(main(), 10))


def test_a_raising_stack_is_counted_and_the_loop_goes_on() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        reported: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _l, ctx: reported.append(ctx))
        a, b = MemoryLink.pair()

        class Fragile(FakeStack):
            def receive_packet(self, now: float, pkt: bytes) -> None:
                if pkt == b"boom":
                    raise ValueError("stack bug")
                super().receive_packet(now, pkt)

        stack = Fragile()
        rt = Runtime(stack, a, loop=loop)
        rt.start()
        b.write(b"before")
        b.write(b"boom")
        await _until(lambda: rt.stats().get("stack_errors") == 1)
        b.write(b"after")  # the loop goes on serving after a stack bug
        await _until(lambda: len(stack.received) == 2)
        assert rt.stats().get("stack_errors") == 1
        assert [p for _, p in stack.received] == [b"before", b"after"]
        assert isinstance(reported[0]["exception"], ValueError)
        await rt.close()
        a.close(); b.close()

    asyncio.run(asyncio.wait_for(main(), 10))
