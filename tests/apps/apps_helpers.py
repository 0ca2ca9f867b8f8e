"""Helpers for the apps tests: a service on the kernel's TCP at 127.0.0.1 and a raw HTTP reader.

Every test body runs under ``run()``, which bounds it in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import selectors
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

TEST_TIMEOUT = 30.0

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def run(coro: Coroutine[Any, Any, Any], timeout: float = TEST_TIMEOUT) -> Any:
    """Run one test coroutine with a hard time bound."""
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[int]:
    """Start ``handler`` on 127.0.0.1 (kernel TCP, an ephemeral port); yield the port."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def read_response(reader: asyncio.StreamReader, head: bool = False
                        ) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP/1.1 response with a Content-Length body: (status, headers, body)."""
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = 0 if head else int(headers.get("content-length", "0"))
    body = await reader.readexactly(length)
    return status, headers, body


class _VirtualSelector(selectors.DefaultSelector):
    """A selector whose waits cost no real time: when nothing is ready, the loop's virtual
    clock jumps to the next timer instead of sleeping. Sound for in-memory links (a write to
    a socketpair is readable at once, so ``select(0)`` sees everything in flight)."""

    def __init__(self, start: float) -> None:
        super().__init__()
        self.now = start

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is not None and timeout > 0:
            ready = super().select(0)
            if ready:
                return ready
            self.now += timeout
            return []
        return super().select(timeout)


def run_virtual(coro: Coroutine[Any, Any, Any], timeout: float = TEST_TIMEOUT,
                start: float = 1000.0) -> Any:
    """Run one test coroutine on an event loop in virtual time (``loop.time()`` starts at
    ``start`` and jumps over idle waits): timers of seconds pass in no real time, and the
    same run gives the same times. ``timeout`` bounds the test in virtual seconds (a test
    waiting for I/O that never comes while timers tick fails fast)."""
    sel = _VirtualSelector(start)
    loop = asyncio.SelectorEventLoop(sel)
    loop.time = lambda: sel.now  # type: ignore[method-assign]
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
