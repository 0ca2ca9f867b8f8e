"""asyncio streams over pytcp: ``start_server``, ``open_connection`` and the transport under them.

Owns the mapping between the engine's connection handles and asyncio's transport/protocol
model. Applications get asyncio's OWN ``StreamReader``/``StreamWriter`` (through
``asyncio.StreamReaderProtocol``) over :class:`PytcpTransport`, so code written for
``asyncio.open_connection`` runs unchanged.

Engine events (dispatched by the runtime to ``TcpHandle.user_data``) map to protocol calls:
``DataAvailable`` -> ``handle.receive()`` -> ``data_received``; ``EndOfStream`` ->
``eof_received``; ``ConnectionReset``/``ConnectionTimedOut``/``ConnectionRefused`` ->
``connection_lost(ConnectionResetError/TimeoutError/ConnectionRefusedError)``; ``Connected``
-> ``connection_made``; ``SendSpaceAvailable`` -> move the user-space backlog into the engine
and ``resume_writing`` below the low-water mark; ``Closed`` -> ``connection_lost(None)`` if
not already lost. Every failure goes through :meth:`PytcpTransport._fatal_error`.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

from pytcp.runtime import Runtime
from pytcp.tcp.errors import TcpUsageError

__all__ = [
    "PytcpTransport",
    "Server",
    "start_server",
    "open_connection",
    "create_connection",
    "DEFAULT_HIGH_WATER",
]

DEFAULT_HIGH_WATER = 256 * 1024  # user-space backlog above which the protocol is paused
DEFAULT_LIMIT = 2**16  # StreamReader limit, as asyncio's default
_NO_EXTRA: dict[str, Any] = {}  # the extras of a transport given none (never mutated)

ClientConnectedCb = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None] | None]


def _ip_str(addr: Any) -> str:
    if isinstance(addr, int):
        if addr > 0xFFFFFFFF:
            return str(ipaddress.IPv6Address(addr))
        return f"{addr >> 24 & 255}.{addr >> 16 & 255}.{addr >> 8 & 255}.{addr & 255}"
    return str(addr)


def _ip_int(addr: str | int) -> int:
    """An IPv4 or IPv6 address as an integer (an IPv4-mapped IPv6 address: the IPv4 one)."""
    if isinstance(addr, int):
        return addr
    try:
        a = ipaddress.ip_address(addr.strip("[]").split("%")[0])
    except ValueError:
        raise ValueError(f"not an IP address: {addr!r}") from None
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        return int(a.ipv4_mapped)
    return int(a)


def _key_addrs(handle: Any) -> tuple[tuple[str, int], tuple[str, int]]:
    """(sockname, peername) from a handle's four-tuple."""
    key = handle.key
    names = ("local_addr", "local_port", "remote_addr", "remote_port")
    if all(hasattr(key, n) for n in names):
        la, lp, ra, rp = (getattr(key, n) for n in names)
    else:  # a plain tuple in contract order (local addr, local port, remote addr, remote port)
        la, lp, ra, rp = key
    return (_ip_str(la), int(lp)), (_ip_str(ra), int(rp))


def _event_name(event: object) -> str:
    return type(event).__name__


class PytcpTransport(asyncio.Transport):
    """An ``asyncio.Transport`` over one pytcp connection handle.

    ``write`` hands the engine what its send buffer accepts and keeps the rest in a user-space
    backlog; above the high-water mark the protocol is paused (``pause_writing``) until the
    backlog drains under the low-water mark. ``pause_reading`` stops pulling from the engine, so
    the advertised window closes naturally.
    """

    # Slots: an idle keep-alive connection holds one of these (docs/robustness.md).
    _extra: dict[str, Any]  # (asyncio.BaseTransport's slot)
    __slots__ = ("_backlog", "_close_requested", "_closing", "_eof_delivered", "_eof_received",
                 "_eof_requested", "_eof_sent", "_handle", "_high_water", "_loop", "_lost",
                 "_lost_pending", "_low_water", "_made", "_more", "_protocol", "_protocol_paused",
                 "_reading_paused", "_runtime", "_waiter", "bytes_read", "bytes_written",
                 "tx_listener")

    def __init__(
        self,
        runtime: Runtime,
        handle: Any,
        protocol: asyncio.Protocol,
        *,
        waiter: asyncio.Future[None] | None = None,
        connected: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> None:
        # (one shared empty mapping unless extras are given: an idle connection stays small)
        super().__init__(dict(extra) if extra else _NO_EXTRA)
        self._runtime = runtime
        self._loop = runtime.loop
        self._handle = handle
        self._protocol = protocol
        self._waiter = waiter
        self._backlog = bytearray()
        self._high_water = DEFAULT_HIGH_WATER
        self._low_water = DEFAULT_HIGH_WATER // 4
        self._protocol_paused = False
        self._reading_paused = False
        self._made = False  # connection_made was called
        self._lost = False  # connection_lost was called or scheduled
        self._closing = False  # close()/abort() called, or the connection failed
        self._eof_requested = False  # write_eof() called (FIN after the backlog)
        self._eof_sent = False
        self._close_requested = False  # close() called (close after the backlog)
        self._eof_received = False  # EndOfStream seen from the engine
        self._eof_delivered = False
        # The connection ended (Closed) with bytes still unread while reading is paused: as
        # Linux keeps the receive queue for the socket, they are delivered (then EOF) before
        # connection_lost.
        self._lost_pending = False
        self._more = False  # the last write() said more data follows (MSG_MORE)
        self.bytes_written = 0
        self.bytes_read = 0
        # Sees every engine event first (the blocking Socket's error queue: TxProgress,
        # resets); None for plain transports.
        self.tx_listener: Callable[[object, float], None] | None = None
        handle.user_data = self
        if connected:
            self._connection_made()

    # -- asyncio.BaseTransport ---------------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """'peername', 'sockname' ((host, port) tuples), 'pytcp_handle' (the stack's
        TcpHandle), 'pytcp_runtime'; 'socket' is None (there is no kernel socket)."""
        extra = self._extra
        if name in extra:
            return extra[name]
        if name == "sockname":
            return _key_addrs(self._handle)[0]
        if name == "peername":
            return _key_addrs(self._handle)[1]
        if name == "pytcp_handle":
            return self._handle
        if name == "pytcp_runtime":
            return self._runtime
        if name == "socket":
            return None
        return default

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol  # type: ignore[assignment]

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Close after the pending data is handed to the engine: FIN (the engine's close()).
        If a backlog remains, the connection is an orphan from now on (the engine's
        ``set_orphan()``): nobody waits for it, so a peer that never takes the data cannot
        keep it beyond the orphan limits (``TcpConfig.orphan_retries``)."""
        if self._closing:
            return
        self._closing = True
        self._close_requested = True
        self._reading_paused = True
        self._try_send(self._runtime.now())
        if self._backlog and not self._lost:
            set_orphan = getattr(getattr(self._handle, "conn", None), "set_orphan", None)
            if set_orphan is not None:
                set_orphan()
        self._runtime.kick()

    def abort(self) -> None:
        """Close now with RST; pending data is dropped. The protocol sees connection_lost(None)."""
        if self._lost:
            return
        self._closing = True
        self._backlog.clear()
        try:
            self._handle.abort(self._runtime.now())
        except TcpUsageError:  # already closed in the engine: nothing to reset
            pass
        self._runtime.kick()
        self._connection_lost(None)

    # -- asyncio.ReadTransport ---------------------------------------------------------------

    def is_reading(self) -> bool:
        return not self._reading_paused and not self._closing

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        if self._closing or not self._reading_paused:
            return
        self._reading_paused = False
        # Pull what arrived while paused (from a fresh callback, as asyncio does).
        self._loop.call_soon(self._pull)

    # -- asyncio.WriteTransport --------------------------------------------------------------

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = DEFAULT_HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high_water = high
        self._low_water = low
        self._maybe_pause_protocol()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low_water, self._high_water)

    def get_write_buffer_size(self) -> int:
        """Bytes in the user-space backlog (not yet accepted by the engine's send buffer)."""
        return len(self._backlog)

    def write(self, data: bytes | bytearray | memoryview, *, more: bool = False) -> None:
        """Hand ``data`` to the engine (what it cannot take waits in the backlog).

        ``more=True`` is Linux's ``MSG_MORE``: more data follows at once, so a partial last
        segment is held until a write without it, the peer's next segment (then Nagle/cork
        decide, as Linux), or the 200 ms cork ceiling; it carries no PSH unless pushed."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__!r}")
        if self._eof_requested:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._closing or self._lost:
            return  # as asyncio: writing to a closing transport is silently ignored
        if not data:
            return
        now = self._runtime.now()
        self._more = more
        if self._backlog or not self._made:
            self._backlog += data
        else:
            n = self._send(now, data)
            if n < len(data):
                self._backlog += memoryview(data)[n:]
        self._maybe_pause_protocol()
        self._runtime.kick()

    def writelines(self, list_of_data: Any, *, more: bool = False) -> None:
        """A gathered write: the buffers go to the engine as one send, so headers and a
        body leave in the same segments (no Nagle wait between them)."""
        self.write(b"".join(list_of_data), more=more)

    # -- socket options (Linux names) ----------------------------------------------------------

    def set_nodelay(self, flag: bool = True) -> None:
        """TCP_NODELAY: Nagle's algorithm off (True) or on (MUST-17)."""
        if not self._lost:
            self._handle.set_nodelay(flag, self._runtime.now())
            self._runtime.kick()

    def set_cork(self, flag: bool = True) -> None:
        """TCP_CORK (Linux): while corked only full segments leave; a partial one waits for
        uncorking, more data, the FIN, or 200 ms. Uncork with ``set_cork(False)``."""
        if not self._lost:
            self._handle.set_cork(flag, self._runtime.now())
            self._runtime.kick()

    def write_eof(self) -> None:
        """Shut down the sending side: FIN after the pending data."""
        if self._eof_requested or self._closing:
            return
        self._eof_requested = True
        self._try_send(self._runtime.now())
        self._runtime.kick()

    def can_write_eof(self) -> bool:
        return True

    # -- engine side -------------------------------------------------------------------------

    def handle_event(self, event: object, now: float) -> None:
        """Called by the runtime for each engine event of this connection."""
        name = _event_name(event)
        if self.tx_listener is not None:
            self.tx_listener(event, now)
        if self._lost or name == "TxProgress":
            return
        if name == "Connected":
            self._connection_made()
        elif name == "DataAvailable":
            self._pull()
        elif name == "EndOfStream":
            self._eof_received = True
            self._pull()
        elif name == "ConnectionReset":
            self._fatal_error(ConnectionResetError("connection reset by peer"))
            return
        elif name == "ConnectionRefused":
            self._fatal_error(ConnectionRefusedError("connection refused"))
            return
        elif name == "ConnectionTimedOut":
            self._fatal_error(TimeoutError("connection timed out"))
            return
        elif name == "Closed":
            self._pull()
            if not self._made:
                self._fatal_error(ConnectionResetError("connection closed before established"))
            elif self._reading_paused and not self._closing and self._unread():
                self._lost_pending = True  # (_pull ends it once the bytes are delivered)
            else:
                self._connection_lost(None)
            return
        # SendSpaceAvailable and every other event: move the backlog on.
        self._try_send(now)

    def runtime_closing(self, now: float) -> None:
        """The runtime is shutting down: close (FIN after the backlog), as ``close()``."""
        if self._lost or not self._made:
            self._handle.close(now)
        else:
            self.close()

    def _connection_made(self) -> None:
        if self._made or self._lost:
            return
        self._made = True
        waiter = self._waiter
        self._waiter = None
        self._protocol.connection_made(self)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        # Catch up with what happened before we were attached (an accepted connection may
        # already hold data or the peer's FIN; write() may have queued data).
        self._try_send(self._runtime.now())
        self._pull()

    def _pull(self) -> None:
        """Deliver readable data (and then EOF) to the protocol unless reading is paused."""
        if not self._made or self._lost or self._reading_paused:
            return
        handle = self._handle
        conn = handle.conn
        now = self._runtime.now()
        got = False
        while not self._reading_paused and not self._lost:
            try:
                data = handle.receive(now)
            except TcpUsageError:  # not readable in this state
                break
            if not data:
                break
            got = True
            self.bytes_read += len(data)
            self._protocol.data_received(bytes(data))
        if got:
            self._runtime.kick()  # reading opened the window: let the engine announce it
        if self._reading_paused or self._lost:
            return
        if not self._eof_delivered and (self._eof_received or getattr(conn, "at_eof", False)):
            self._eof_received = True
            self._eof_delivered = True
            keep_open = self._protocol.eof_received()
            if not keep_open:
                self.close()
        if self._lost_pending and not self._unread():
            self._lost_pending = False
            self._connection_lost(None)

    def _unread(self) -> int:
        """Bytes the engine still holds for the application."""
        return int(getattr(self._handle.conn, "bytes_readable", 0) or 0)

    def _send(self, now: float, data: bytes | bytearray | memoryview) -> int:
        try:
            if self._more:
                n = int(self._handle.send(now, data, more=True))
            else:
                n = int(self._handle.send(now, data))
        except TcpUsageError as exc:  # e.g. sending after the peer reset
            self._fatal_error(ConnectionResetError(f"send failed: {exc}"))
            return len(data)
        self.bytes_written += n
        return n

    def _try_send(self, now: float) -> None:
        """Move the backlog into the engine; then FIN/close if requested and drained."""
        if self._lost or not self._made:
            return
        if self._backlog:
            n = self._send(now, memoryview(self._backlog))
            if self._lost:
                return
            if n:
                del self._backlog[:n]
                self._runtime.kick()
            self._maybe_resume_protocol()
        if self._backlog:
            return
        if self._close_requested:
            self._close_requested = False
            try:
                self._handle.close(now)
            except TcpUsageError:  # already closed by the engine
                pass
            self._runtime.kick()
            self._connection_lost(None)
        elif self._eof_requested and not self._eof_sent:
            self._eof_sent = True
            try:
                self._handle.shutdown(now)
            except TcpUsageError:  # already shut down
                pass
            self._runtime.kick()

    def _maybe_pause_protocol(self) -> None:
        if not self._protocol_paused and len(self._backlog) > self._high_water:
            self._protocol_paused = True
            try:
                self._protocol.pause_writing()
            except Exception as exc:  # noqa: BLE001 - as asyncio: report, go on
                self._loop.call_exception_handler(
                    {"message": "protocol.pause_writing() failed", "exception": exc,
                     "transport": self, "protocol": self._protocol})

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and len(self._backlog) <= self._low_water:
            self._protocol_paused = False
            try:
                self._protocol.resume_writing()
            except Exception as exc:  # noqa: BLE001
                self._loop.call_exception_handler(
                    {"message": "protocol.resume_writing() failed", "exception": exc,
                     "transport": self, "protocol": self._protocol})

    # -- the one failure path ----------------------------------------------------------------

    def _fatal_error(self, exc: Exception) -> None:
        """Every failure ends here: fail a pending connect, or connection_lost(exc)."""
        if self._lost:
            return
        self._closing = True
        self._backlog.clear()
        waiter = self._waiter
        self._waiter = None
        if waiter is not None and not waiter.done():
            self._lost = True
            self._handle.user_data = None
            waiter.set_exception(exc)
            return
        self._connection_lost(exc)

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        if self._made:
            self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: Exception | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._handle.user_data = None

    def __repr__(self) -> str:
        state = getattr(self._handle.conn, "state", "?")
        sock, peer = _key_addrs(self._handle)
        return f"<PytcpTransport {sock} -> {peer} {state}>"


class Server:
    """A listening port, like enough to ``asyncio.Server`` for our use."""

    def __init__(
        self,
        runtime: Runtime,
        listener: Any,
        client_connected_cb: ClientConnectedCb,
        *,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        self._runtime = runtime
        self._loop = runtime.loop
        self._listener = listener
        self._cb = client_connected_cb
        self._limit = limit
        self._serving = True
        self._closed_fut: asyncio.Future[None] = self._loop.create_future()
        self._serving_forever: asyncio.Future[None] | None = None
        self.port: int = int(getattr(listener, "port", 0))
        self.accepted = 0
        runtime.register_listener(listener, self)

    @property
    def sockets(self) -> tuple[()]:
        return ()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    def handle_event(self, event: object, now: float) -> None:
        if _event_name(event) == "AcceptReady":
            self._accept_all()

    def _accept_all(self) -> None:
        while self._serving:
            handle = self._listener.accept()
            if handle is None:
                return
            self.accepted += 1
            reader = asyncio.StreamReader(limit=self._limit, loop=self._loop)
            protocol = asyncio.StreamReaderProtocol(reader, self._cb, loop=self._loop)
            try:
                PytcpTransport(self._runtime, handle, protocol, connected=True)
            except Exception as exc:  # noqa: BLE001 - a failing callback must not stop accepting
                self._loop.call_exception_handler(
                    {"message": "pytcp: client_connected_cb failed", "exception": exc})
                try:
                    handle.abort(self._runtime.now())
                except TcpUsageError:
                    pass

    def close(self) -> None:
        """Stop listening (existing connections stay open, as asyncio.Server in 3.11)."""
        if not self._serving:
            return
        self._serving = False
        self._runtime.unregister_listener(self._listener)
        try:
            self._listener.close()
        except Exception:  # noqa: BLE001 - already closed by the runtime
            pass
        self._runtime.kick()
        if self._serving_forever is not None and not self._serving_forever.done():
            self._serving_forever.cancel()
        if not self._closed_fut.done():
            self._closed_fut.set_result(None)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed_fut)

    async def start_serving(self) -> None:
        return None

    async def serve_forever(self) -> None:
        if self._serving_forever is not None:
            raise RuntimeError("serve_forever is already being awaited")
        if not self._serving:
            raise RuntimeError("server is closed")
        self._serving_forever = self._loop.create_future()
        try:
            await self._serving_forever
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever = None

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()

    def __repr__(self) -> str:
        return f"<pytcp Server port={self.port} serving={self._serving}>"


async def start_server(
    client_connected_cb: ClientConnectedCb,
    port: int,
    *,
    runtime: Runtime,
    backlog: int = 128,
    limit: int = DEFAULT_LIMIT,
    fastopen: int = 0,
) -> Server:
    """Listen on ``port`` (0: a free ephemeral port, see ``Server.port``) of the runtime's
    stack; call ``client_connected_cb(reader, writer)``
    for each accepted connection (a coroutine result runs as a task, as in asyncio).
    ``fastopen``: accept TCP Fast Open SYN data (RFC 7413) for up to that many connections
    still in their handshake (Linux TCP_FASTOPEN); 0 = off."""
    if port == 0:
        listener = _listen_ephemeral(runtime.stack, backlog)
    else:
        listener = runtime.stack.listen(port, backlog)
    if fastopen:
        listener.set_fastopen(fastopen)
    return Server(runtime, listener, client_connected_cb, limit=limit)


def _listen_ephemeral(stack: Any, backlog: int) -> Any:
    """Port 0: the first free port of the stack's ephemeral range (as bind(0) would)."""
    config = getattr(stack, "config", None)
    lo, hi = getattr(config, "ephemeral_ports", (32768, 60999))
    for port in range(lo, hi + 1):
        try:
            return stack.listen(port, backlog)
        except OSError:
            continue
    raise OSError(99, "no free port to listen on")


async def create_connection(
    protocol_factory: Callable[[], asyncio.Protocol],
    host: str | int,
    port: int,
    *,
    runtime: Runtime,
    local_port: int | None = None,
    configure: Callable[[Any], None] | None = None,
    tos: int = 0,
    fastopen: bool = False,
    first_data: bytes = b"",
    md5_key: bytes | None = None,
) -> tuple[PytcpTransport, asyncio.Protocol]:
    """Actively open a connection; returns once established (``Connected``).

    Raises ``ConnectionRefusedError`` (RST to our SYN), ``TimeoutError`` (the engine gave up),
    ``ConnectionResetError``. Cancelling the wait aborts the half-open connection.
    ``configure(handle)`` runs right after the SYN is queued (socket options, retries);
    ``tos`` is the IP TOS byte from the SYN on (MUST-48). ``fastopen`` (RFC 7413, Linux
    MSG_FASTOPEN): the SYN carries the cached cookie and the start of ``first_data`` (all of
    which is queued: do not write it again), or a cookie request when none is cached.
    ``md5_key``: RFC 2385 TCP MD5 signatures with this key (Linux TCP_MD5SIG for ``host``;
    Fast Open is then off).
    """
    loop = runtime.loop
    protocol = protocol_factory()
    if fastopen and not md5_key:
        handle = runtime.stack.connect(runtime.now(), _ip_int(host), port, local_port,
                                       tos=tos, fastopen=True, data=first_data,
                                       syn_only=False)
    elif md5_key:
        handle = runtime.stack.connect(runtime.now(), _ip_int(host), port, local_port, tos=tos,
                                       md5_key=md5_key)
        if fastopen and first_data:
            # (Fast Open off for an MD5 connection: the data is queued all the same.)
            handle.send(runtime.now(), first_data)
    else:
        handle = runtime.stack.connect(runtime.now(), _ip_int(host), port, local_port, tos=tos)
    if configure is not None:
        try:
            configure(handle)
        except BaseException:
            handle.abort(runtime.now())
            runtime.kick()
            raise
    waiter: asyncio.Future[None] = loop.create_future()
    transport = PytcpTransport(runtime, handle, protocol, waiter=waiter)
    runtime.kick()
    try:
        await waiter
    except asyncio.CancelledError:
        transport.abort()
        raise
    return transport, protocol


async def open_connection(
    host: str | int,
    port: int,
    *,
    runtime: Runtime,
    limit: int = DEFAULT_LIMIT,
    local_port: int | None = None,
    configure: Callable[[Any], None] | None = None,
    tos: int = 0,
    fastopen: bool = False,
    first_data: bytes = b"",
    md5_key: bytes | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Like ``asyncio.open_connection`` over pytcp: asyncio's own reader and writer.
    ``md5_key``: RFC 2385 signatures (see ``create_connection``)."""
    loop = runtime.loop
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await create_connection(
        lambda: protocol, host, port, runtime=runtime, local_port=local_port,
        configure=configure, tos=tos, fastopen=fastopen, first_data=first_data,
        md5_key=md5_key)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return reader, writer
