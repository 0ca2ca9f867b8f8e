"""UDP for applications over a runtime: an asyncio datagram transport and a blocking
``SOCK_DGRAM``-like socket.

This module owns :class:`DatagramTransport` (an ``asyncio.DatagramTransport`` over a
:class:`pytcp.udp.UdpEndpoint`; :func:`create_datagram_endpoint` mirrors
``loop.create_datagram_endpoint``: ``protocol.datagram_received(data, (host, port))``,
``protocol.error_received(OSError)`` for an ICMP error of a connected endpoint, as on a
connected Linux socket) and :class:`DatagramSocket` (blocking ``sendto``/``recvfrom``/
``send``/``recv`` with an optional timeout, over a :class:`pytcp.api.sock.BackgroundRuntime`).
Addresses are ``(host, port)`` with host text of either family.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import os
from collections.abc import Callable
from typing import Any

from pytcp.api.aio import _ip_int, _ip_str
from pytcp.runtime import Runtime
from pytcp.udp import DatagramError, DatagramReady, UdpEndpoint

Address = tuple[str, int]


class DatagramTransport(asyncio.DatagramTransport):
    """``asyncio.DatagramTransport`` over a pytcp UDP endpoint."""

    def __init__(self, runtime: Runtime, endpoint: UdpEndpoint,
                 protocol: asyncio.DatagramProtocol) -> None:
        super().__init__()
        self._runtime = runtime
        self._ep = endpoint
        self._protocol = protocol
        self._closing = False
        endpoint.user_data = self
        local = endpoint.local_addr
        self._extra: dict[str, Any] = {
            "sockname": (_ip_str(local) if local is not None else "::", endpoint.port),
            "pytcp_endpoint": endpoint}
        if endpoint.remote is not None:
            self._extra["peername"] = (_ip_str(endpoint.remote[0]), endpoint.remote[1])

    # ----- runtime side

    def handle_event(self, event: object, now: float) -> None:
        if self._closing:
            return
        if isinstance(event, DatagramReady):
            ep = self._ep
            while not self._closing:
                got = ep.recvfrom()
                if got is None:
                    break
                data, (addr, port) = got
                self._protocol.datagram_received(data, (_ip_str(addr), port))
        elif isinstance(event, DatagramError):
            self._ep.pending_error()  # reported here instead of SO_ERROR
            self._protocol.error_received(OSError(event.errno, os.strerror(event.errno)))

    # ----- asyncio.DatagramTransport

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        if self._closing:
            raise OSError(errno.EBADF, "transport closed")
        rt = self._runtime
        try:
            if addr is None:
                self._ep.send(rt.now(), data)
            else:
                self._ep.sendto(rt.now(), data, _ip_int(addr[0]), int(addr[1]))
        except OSError as exc:
            self._protocol.error_received(exc)
            return
        rt.kick()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._ep.close()
        self._runtime.loop.call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def get_write_buffer_size(self) -> int:
        return 0


async def create_datagram_endpoint(
        protocol_factory: Callable[[], asyncio.DatagramProtocol], local_addr: Any = None,
        remote_addr: Any = None, *, runtime: Runtime,
        rcvbuf: int | None = None) -> tuple[DatagramTransport, asyncio.DatagramProtocol]:
    """Like ``loop.create_datagram_endpoint``: bind ``local_addr`` ((host, port); host ""
    or None: both families; port 0: ephemeral), connect to ``remote_addr`` if given."""
    stack = runtime.stack
    host, port = (None, 0) if local_addr is None else local_addr
    addr = _ip_int(host) if host not in (None, "", "::", "0.0.0.0") else None
    kw: dict[str, Any] = {} if rcvbuf is None else {"rcvbuf": rcvbuf}
    ep = stack.udp_bind(int(port), addr=addr, **kw)
    try:
        if remote_addr is not None:
            ep.connect(_ip_int(remote_addr[0]), int(remote_addr[1]))
        protocol = protocol_factory()
        transport = DatagramTransport(runtime, ep, protocol)
    except BaseException:
        ep.close()
        raise
    protocol.connection_made(transport)
    return transport, protocol


class _Collect(asyncio.DatagramProtocol):
    """The protocol behind a :class:`DatagramSocket`: a bounded queue and one waiter."""

    def __init__(self) -> None:
        self.queue: collections.deque[tuple[bytes, Address]] = collections.deque(maxlen=4096)
        self.errors: collections.deque[OSError] = collections.deque(maxlen=16)
        self.waiter: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.queue.append((data, addr))
        self._wake()

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self.errors.append(exc)
        self._wake()

    async def next(self) -> tuple[bytes, Address]:
        while True:
            if self.errors:
                raise self.errors.popleft()
            if self.queue:
                return self.queue.popleft()
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter


class DatagramSocket:
    """A blocking UDP socket over a :class:`pytcp.api.sock.BackgroundRuntime` (a small part
    of ``socket.socket(AF_INET6, SOCK_DGRAM)``: bind, connect, sendto, send, recvfrom, recv,
    settimeout, close). An ICMP error of a connected socket raises from the next receive
    (ECONNREFUSED for a closed port), as on Linux."""

    def __init__(self, runtime: Any) -> None:
        self._bg = runtime
        self._transport: DatagramTransport | None = None
        self._proto: _Collect | None = None
        self._timeout: float | None = None
        self._remote: Address | None = None

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def _ensure(self, local: Address | None = None) -> DatagramTransport:
        if self._transport is None:
            rt = self._bg.runtime

            async def make() -> tuple[DatagramTransport, asyncio.DatagramProtocol]:
                return await create_datagram_endpoint(_Collect, local, self._remote,
                                                      runtime=rt)

            t, p = self._bg.run(make(), 10.0)
            self._transport = t
            assert isinstance(p, _Collect)
            self._proto = p
        return self._transport

    def bind(self, address: Address) -> None:
        if self._transport is not None:
            raise OSError(errno.EINVAL, "already bound")
        self._ensure(address)

    def connect(self, address: Address) -> None:
        self._remote = (address[0], int(address[1]))
        if self._transport is not None:
            ep = self._transport._ep
            ep_addr = _ip_int(address[0])
            self._bg.call_soon(ep.connect, ep_addr, int(address[1]))
        else:
            self._ensure()

    def sendto(self, data: bytes | bytearray | memoryview, address: Address) -> int:
        t = self._ensure()
        payload = bytes(data)

        async def send() -> None:
            t.sendto(payload, address)

        self._bg.run(send(), 10.0)
        return len(payload)

    def send(self, data: bytes | bytearray | memoryview) -> int:
        t = self._ensure()
        payload = bytes(data)

        async def send() -> None:
            t.sendto(payload)

        self._bg.run(send(), 10.0)
        return len(payload)

    def recvfrom(self, bufsize: int = 65536) -> tuple[bytes, Address]:
        self._ensure()
        proto = self._proto
        assert proto is not None
        timeout = self._timeout

        async def get() -> tuple[bytes, Address]:
            if timeout is None:
                return await proto.next()
            try:
                return await asyncio.wait_for(proto.next(), timeout)
            except TimeoutError:
                raise TimeoutError("timed out") from None

        data, addr = self._bg.run(get())
        return data[:bufsize], addr

    def recv(self, bufsize: int = 65536) -> bytes:
        return self.recvfrom(bufsize)[0]

    def getsockname(self) -> Address:
        t = self._ensure()
        return t.get_extra_info("sockname")  # type: ignore[no-any-return]

    def close(self) -> None:
        t = self._transport
        if t is not None:
            self._transport = None
            self._bg.call_soon(t.close)

    def __enter__(self) -> DatagramSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
