"""Shared fixtures of the socket API tests: two pytcp hosts on an in-memory link, each with
its stack run by a BackgroundRuntime thread (seeded secrets and ISN sources)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest

from pytcp.api.pair import ADDR_A, ADDR_B
from pytcp.api.sock import BackgroundRuntime
from pytcp.link.memory import MemoryLink


@pytest.fixture
def hosts() -> Iterator[tuple[BackgroundRuntime, BackgroundRuntime]]:
    from pytcp.stack import Stack

    rng = random.Random(2)
    link_a, link_b = MemoryLink.pair(4 * 1024 * 1024)
    now = time.monotonic()
    a = BackgroundRuntime(Stack(ADDR_A, now=now, secret=rng.randbytes(16),
                                rng=random.Random(1)), link_a, name="pytcp-A")
    b = BackgroundRuntime(Stack(ADDR_B, now=now, secret=rng.randbytes(16),
                                rng=random.Random(2)), link_b, name="pytcp-B")
    a.start()
    b.start()
    try:
        yield a, b
    finally:
        a.close(graceful_timeout=0.5)
        b.close(graceful_timeout=0.5)
