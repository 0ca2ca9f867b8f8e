"""Two pytcp hosts wired together in memory, in one asyncio loop: for tests, demos, benchmarks.

Owns nothing of the protocol: it builds two :class:`pytcp.stack.Stack` objects, a
:class:`pytcp.link.memory.MemoryLink` pair between them, and one :class:`pytcp.runtime.Runtime`
per host, optionally with a seeded impairment stage on either host's inbound path and pcapng
captures. No TUN device or privileges are needed::

    async with memory_pair() as (a, b):      # a: 10.0.0.1, b: 10.0.0.2
        server = await start_server(cb, 7, runtime=b)
        reader, writer = await open_connection(b.stack.addr, 7, runtime=a)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

from pytcp.link.impair import Impairment
from pytcp.link.memory import MemoryLink
from pytcp.runtime import Runtime

__all__ = ["memory_pair", "ADDR_A", "ADDR_B", "ADDR6_A", "ADDR6_B"]

ADDR_A = "10.0.0.1"
ADDR_B = "10.0.0.2"
ADDR6_A = "fd00::1"  # each host has an IPv6 address too
ADDR6_B = "fd00::2"


@contextlib.asynccontextmanager
async def memory_pair(
    *,
    seed: int = 1,
    impair_a_in: str | None = None,
    impair_b_in: str | None = None,
    pcap_a: Any | None = None,
    pcap_b: Any | None = None,
    tcp_config: Any | None = None,
    stack_config: Any | None = None,
    graceful_timeout: float = 1.0,
    link_bufsize: int | None = 4 * 1024 * 1024,
    clock: Callable[[], float] | None = None,
) -> AsyncIterator[tuple[Runtime, Runtime]]:
    """Yield two started runtimes (host A, host B) joined by an in-memory link.

    ``impair_*_in``: an ``ImpairSpec`` string applied to what that host receives (seeded from
    ``seed``). ``pcap_*``: a :class:`pytcp.pcap.PcapWriter` per host (not closed here). On exit
    both runtimes are closed (``graceful_timeout``) and the links closed. ``clock``: the
    stacks' time for both runtimes (default ``loop.time``; tests pass a virtual clock, e.g. a
    frozen one to prove an exchange waits on no timer).
    """
    from pytcp.stack import Stack  # the stack is imported lazily: it pulls in the engine

    loop = asyncio.get_running_loop()
    now = clock() if clock is not None else loop.time()
    rng = random.Random(seed)
    link_a, link_b = MemoryLink.pair(link_bufsize)
    stack_a = Stack(ADDR_A, now=now, config=stack_config, tcp_config=tcp_config,
                    secret=rng.randbytes(16), rng=random.Random(rng.random()), addr6=ADDR6_A)
    stack_b = Stack(ADDR_B, now=now, config=stack_config, tcp_config=tcp_config,
                    secret=rng.randbytes(16), rng=random.Random(rng.random()), addr6=ADDR6_B)
    imp_a = Impairment(impair_a_in, random.Random(rng.random())) if impair_a_in else None
    imp_b = Impairment(impair_b_in, random.Random(rng.random())) if impair_b_in else None
    rt_a = Runtime(stack_a, link_a, loop=loop, pcap=pcap_a, impair_in=imp_a, clock=clock)
    rt_b = Runtime(stack_b, link_b, loop=loop, pcap=pcap_b, impair_in=imp_b, clock=clock)
    rt_a.start()
    rt_b.start()
    try:
        yield rt_a, rt_b
    finally:
        try:
            await asyncio.gather(rt_a.close(graceful_timeout), rt_b.close(graceful_timeout))
        finally:
            link_a.close()
            link_b.close()
