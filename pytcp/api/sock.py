"""Blocking, socket-like API over pytcp: :class:`BackgroundRuntime` and :class:`Socket`.

Owns the thread boundary. :class:`BackgroundRuntime` owns one thread running one asyncio loop
with one :class:`pytcp.runtime.Runtime` on it; the stack is touched only from that thread.
:class:`Socket` methods block the calling thread and run their work on the loop through
``asyncio.run_coroutine_threadsafe`` (timeouts are applied inside the loop, with
``asyncio.wait_for``, so a timed-out ``recv`` loses no data). A socket is built on the asyncio
streams of :mod:`pytcp.api.aio`::

    with BackgroundRuntime(stack, link) as rt:
        s = rt.socket()
        s.connect(("10.77.0.2", 80))
        s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
        print(s.recv(65536))
        s.close()

Timeouts (``settimeout``) raise ``TimeoutError`` (``socket.timeout`` is the same class).
``settimeout(0)``/``setblocking(False)`` make calls that would wait raise ``BlockingIOError``.
"""

from __future__ import annotations

import asyncio
import socket as _socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeVar

from pytcp.api import aio
from pytcp.api import errqueue as eq
from pytcp.runtime import Runtime

__all__ = ["BackgroundRuntime", "Socket"]

T = TypeVar("T")

_UNSET = object()
_MSG_MORE = getattr(_socket, "MSG_MORE", 0x8000)
_SEND_FLAGS = _MSG_MORE | eq.MSG_ZEROCOPY
_MSG_CTRUNC = 0x8
ERRQUEUE_LIMIT = 131072  # Linux's default sk_rcvbuf (tcp_rmem[1]): the error queue's bound
_TCP_CORK = getattr(_socket, "TCP_CORK", 3)


class BackgroundRuntime:
    """A thread running an asyncio loop with a :class:`Runtime` over ``stack`` and ``link``.

    ``start()`` (or the context manager) launches it; ``close(graceful_timeout)`` closes the
    connections gracefully (see :meth:`Runtime.close`), stops the loop and joins the thread.
    The link and pcap are closed too when ``close_link=True`` (the default) was given.
    """

    def __init__(
        self,
        stack: Any,
        link: Any,
        *,
        pcap: Any | None = None,
        impair_in: Any | None = None,
        impair_out: Any | None = None,
        close_link: bool = True,
        name: str = "pytcp-runtime",
    ) -> None:
        self.stack = stack
        self.link = link
        self.pcap = pcap
        self._impair_in = impair_in
        self._impair_out = impair_out
        self._close_link = close_link
        self._name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self.runtime: Runtime | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._closed = False

    @classmethod
    def on_tun(
        cls,
        addr: str = "10.77.0.2",
        *,
        ifname: str = "pytcp0",
        host_addr: str = "10.77.0.1/24",
        mtu: int = 1500,
        pcap_path: str | None = None,
        impair: str | None = None,
        seed: int | None = None,
        tcp_config: Any | None = None,
        addr6: str | None = None,
        host_addr6: str | None = None,
    ) -> BackgroundRuntime:
        """A (not yet started) runtime for a stack at ``addr`` on a new TUN interface whose
        kernel side is ``host_addr``; optional pcapng capture and inbound+outbound impairment
        (an ``ImpairSpec`` string). Needs root. Closing it removes the interface.
        ``addr6``/``host_addr6`` (e.g. ``fd00:77::2`` / ``fd00:77::1/64``): IPv6 too."""
        import ipaddress
        import os
        import random
        import time

        from pytcp.link.impair import Impairment
        from pytcp.link.tun import TunLink
        from pytcp.pcap import PcapWriter
        from pytcp.stack import Stack, StackConfig

        link = TunLink.open(ifname, host_addr=host_addr, mtu=mtu, host_addr6=host_addr6)
        try:
            rng = random.Random(seed)
            secret = os.urandom(16) if seed is None else rng.randbytes(16)
            prefixlen = ipaddress.IPv4Interface(host_addr).network.prefixlen
            stack = Stack(addr, now=time.monotonic(),
                          config=StackConfig(mtu=mtu, prefixlen=prefixlen),
                          tcp_config=tcp_config, secret=secret, rng=rng, addr6=addr6)
            imp_in = Impairment(impair, random.Random(rng.random())) if impair else None
            imp_out = Impairment(impair, random.Random(rng.random())) if impair else None
            pcap = PcapWriter(pcap_path, ifname=ifname, ipv4=f"{addr}/{prefixlen}",
                              description=f"pytcp at {addr} (kernel side {host_addr})") \
                if pcap_path else None
        except BaseException:
            link.close()
            raise
        return cls(stack, link, pcap=pcap, impair_in=imp_in, impair_out=imp_out,
                   close_link=True)

    def start(self) -> BackgroundRuntime:
        if self._thread is not None:
            raise RuntimeError("BackgroundRuntime already started")
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(10.0):
            raise RuntimeError("pytcp runtime thread did not start")
        if self._start_error is not None:
            raise RuntimeError("pytcp runtime failed to start") from self._start_error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            self.runtime = Runtime(
                self.stack, self.link, loop=loop, pcap=self.pcap,
                impair_in=self._impair_in, impair_out=self._impair_out,
            )
            self.runtime.start()
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._start_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in pending:
                    t.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            finally:
                loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result from this (other) thread."""
        loop = self._require_loop()
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("blocking pytcp call from the runtime's own thread")
        fut = asyncio.run_coroutine_threadsafe(coro, loop)
        return fut.result(timeout)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self._require_loop().call_soon_threadsafe(fn, *args)

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self.loop is None or self._closed:
            raise RuntimeError("BackgroundRuntime is not running")
        return self.loop

    def socket(self) -> Socket:
        """A new, unconnected :class:`Socket` on this runtime."""
        return Socket(self)

    def datagram_socket(self) -> Any:
        """A new UDP socket (:class:`pytcp.api.dgram.DatagramSocket`) on this runtime."""
        from pytcp.api.dgram import DatagramSocket

        return DatagramSocket(self)

    def close(self, graceful_timeout: float = 2.0) -> None:
        if self._closed or self._thread is None:
            self._closed = True
            return
        loop = self._require_loop()
        runtime = self.runtime
        if runtime is not None:
            try:
                asyncio.run_coroutine_threadsafe(
                    runtime.close(graceful_timeout), loop
                ).result(graceful_timeout + 10.0)
            except Exception:  # noqa: BLE001 - stop the thread anyway
                pass
        self._closed = True
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10.0)
        if self._close_link:
            self.link.close()
            if self.pcap is not None:
                self.pcap.close()

    def __enter__(self) -> BackgroundRuntime:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Socket:
    """A blocking TCP socket over a :class:`BackgroundRuntime` (stream sockets only).

    Create with ``runtime.socket()`` or ``Socket.create(runtime=...)``. Server side:
    ``listen(port, backlog)`` then ``accept() -> (Socket, (host, port))``. Client side:
    ``connect((host, port))``. Then ``send``/``sendall``/``recv``/``shutdown``/``close``.
    """

    def __init__(self, runtime: BackgroundRuntime, *, _streams: Any = None) -> None:
        self._rt = runtime
        self._timeout: float | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._server: aio.Server | None = None
        self._accept_q: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] | None = None
        self._bound_port: int | None = None
        self._shut_rd = False
        self._closed = False
        self._options: dict[str, int] = {}  # socket options, applied at connect()
        # RFC 2385 keys (TCP_MD5SIG): (peer address, key, prefix), applied at listen/connect.
        self._md5: list[tuple[int, bytes, int | None]] = []
        # The error queue (MSG_ZEROCOPY completions, SO_TIMESTAMPING TX timestamps); touched
        # on the loop thread only. ``_written``: stream offset of the next byte sent.
        self._tx = eq.TxNotifier(eq.ErrorQueue(ERRQUEUE_LIMIT))
        self._written = 0
        if _streams is not None:
            self._reader, self._writer = _streams

    @classmethod
    def create(cls, *, runtime: BackgroundRuntime) -> Socket:
        return cls(runtime)

    # -- options -----------------------------------------------------------------------------

    def settimeout(self, timeout: float | None) -> None:
        if timeout is not None and timeout < 0:
            raise ValueError("Timeout value out of range")
        self._timeout = timeout

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    # -- running work on the loop ------------------------------------------------------------

    def _run(self, make: Callable[[], Awaitable[T]], timeout: Any = _UNSET) -> T:
        t = self._timeout if timeout is _UNSET else timeout

        async def bounded() -> T:
            if t is None:
                return await make()
            try:
                return await asyncio.wait_for(make(), max(t, 0.0))
            except TimeoutError:
                if t == 0:
                    raise BlockingIOError("operation would block") from None
                raise TimeoutError("timed out") from None

        return self._rt.run(bounded())

    def _require_stream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._closed:
            raise OSError(9, "Bad file descriptor")
        if self._reader is None or self._writer is None:
            raise OSError(107, "Transport endpoint is not connected")
        return self._reader, self._writer

    # -- server side -------------------------------------------------------------------------

    def bind(self, address: tuple[str, int]) -> None:
        self._bound_port = int(address[1])

    def listen(self, port: int | None = None, backlog: int = 128) -> None:
        if port is None:
            port = self._bound_port
        if port is None:
            raise OSError(22, "listen() needs a port (bind or listen(port))")
        runtime = self._rt.runtime
        assert runtime is not None

        async def setup() -> tuple[aio.Server, asyncio.Queue[Any]]:
            queue: asyncio.Queue[Any] = asyncio.Queue()

            def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                queue.put_nowait((r, w))

            server = await aio.start_server(on_client, port, runtime=runtime, backlog=backlog)
            return server, queue

        self._server, self._accept_q = self._rt.run(setup())
        self._bound_port = port
        for addr, key, prefix in self._md5:
            self._listener_md5(addr, key, prefix)
        if self._options.get("tos"):
            self._set_listener_tos(self._options["tos"])

    def set_md5_key(self, addr: str, key: bytes, prefix: int | None = None) -> None:
        """RFC 2385 TCP MD5 signatures with the peer ``addr`` (its first ``prefix`` bits),
        as Linux ``setsockopt(IPPROTO_TCP, TCP_MD5SIG[_EXT], struct tcp_md5sig)`` (which
        :meth:`setsockopt` takes too): before ``connect()`` (the connection to ``addr`` is
        signed; Fast Open off) or on a listening socket (connections from ``addr`` are).
        An empty key removes it. ``OSError(EINVAL)`` on a connected socket or a bad key."""
        from pytcp.stack import _to_addr

        try:
            a = _to_addr(addr)
        except ValueError:
            raise OSError(22, f"Invalid argument (address {addr!r})") from None
        self._set_md5(a, key, prefix)

    def _set_md5(self, addr: int, key: bytes, prefix: int | None) -> None:
        from pytcp.tcp.md5 import Md5Keys

        if self._writer is not None:
            raise OSError(22, "Invalid argument (TCP_MD5SIG after connect: pytcp signs "
                              "from the SYN on only)")
        try:
            Md5Keys().set(addr, key or b"x", v6=addr > 0xFFFFFFFF, prefix=prefix)
        except ValueError as e:
            raise OSError(22, f"Invalid argument ({e})") from None
        self._md5 = [e for e in self._md5 if (e[0], e[2]) != (addr, prefix)]
        if key:
            self._md5.append((addr, bytes(key), prefix))
        if self._server is not None:
            self._listener_md5(addr, key, prefix)

    def _listener_md5(self, addr: int, key: bytes, prefix: int | None) -> None:
        listener = getattr(self._server, "_listener", None)
        if listener is None:
            return

        async def apply() -> None:
            try:
                listener.set_md5_key(addr, key, prefix)
            except KeyError:
                pass  # (removing a key the listener does not have)

        self._rt.run(apply())

    def _md5_key_for(self, host: str) -> bytes | None:
        if not self._md5:
            return None
        from pytcp.stack import _to_addr
        from pytcp.tcp.md5 import Md5Keys

        keys = Md5Keys()
        for addr, key, prefix in self._md5:
            keys.set(addr, key, v6=addr > 0xFFFFFFFF, prefix=prefix)
        a = _to_addr(host)
        return keys.lookup(a, a > 0xFFFFFFFF)

    def _set_listener_tos(self, tos: int) -> None:
        """MUST-48: connections accepted from now on use this IP TOS byte (the stack's
        ``Listener.set_tos``)."""
        listener = getattr(self._server, "_listener", None)
        if listener is None:
            return

        async def apply() -> None:
            listener.set_tos(tos)

        self._rt.run(apply())

    def accept(self) -> tuple[Socket, tuple[str, int]]:
        if self._closed:
            raise OSError(9, "Bad file descriptor")
        queue = self._accept_q
        if queue is None:
            raise OSError(22, "accept() on a socket that is not listening")
        reader, writer = self._run(queue.get)
        conn = Socket(self._rt, _streams=(reader, writer))
        conn._timeout = self._timeout
        # Linux sk_clone_lock: SO_ZEROCOPY and SO_TIMESTAMPING are inherited.
        conn._tx.zerocopy, conn._tx.tsflags = self._tx.zerocopy, self._tx.tsflags
        conn._tx.queue.limit = self._tx.queue.limit
        conn._track()
        return conn, writer.get_extra_info("peername")

    # -- client side -------------------------------------------------------------------------

    def connect(self, address: tuple[str, int]) -> None:
        if self._closed:
            raise OSError(9, "Bad file descriptor")
        if self._writer is not None:
            raise OSError(106, "Transport endpoint is already connected")
        runtime = self._rt.runtime
        assert runtime is not None
        host, port = address
        local_port = self._bound_port
        opts = dict(self._options)
        bg = self._rt
        md5_key = self._md5_key_for(host)
        self._reader, self._writer = self._run(
            lambda: aio.open_connection(
                host, port, runtime=runtime, local_port=local_port,
                configure=lambda handle: _apply_options(handle, opts, bg),
                tos=int(opts.get("tos", 0)), md5_key=md5_key)
        )
        self._track()

    # -- data --------------------------------------------------------------------------------

    def sendall(self, data: bytes | bytearray | memoryview, flags: int = 0) -> None:
        """Send all of ``data``. ``flags``: ``socket.MSG_MORE`` (Linux: more data follows,
        a partial last segment waits for the next send or the peer's next segment, at most
        200 ms) and ``MSG_ZEROCOPY``
        (with SO_ZEROCOPY: a completion in the error queue once every byte is acknowledged,
        ``ENOBUFS`` past the outstanding bound); others raise ``OSError(EOPNOTSUPP)``."""
        _, writer = self._require_stream()
        if flags & ~_SEND_FLAGS:
            raise OSError(95, "Operation not supported (pytcp send flags: MSG_MORE, "
                              "MSG_ZEROCOPY)")
        payload = bytes(data)
        more = bool(flags & _MSG_MORE)
        # MSG_ZEROCOPY with SO_ZEROCOPY on: pytcp copies anyway, and queues the completion
        # notification when every byte is acknowledged (see recvmsg, pytcp.api.errqueue).
        zc = bool(flags & eq.MSG_ZEROCOPY) and self._tx.zerocopy and bool(payload)

        async def send() -> None:
            transport = writer.transport
            tx = self._tx
            start = self._written
            tail_unsent = False
            handle = writer.get_extra_info("pytcp_handle")
            conn = getattr(handle, "conn", None)
            if zc or tx.tsflags:
                if zc and not tx.zerocopy_admit():
                    raise OSError(105, "No buffer space available (zerocopy notifications)")
                if conn is not None:
                    tail_unsent = int(conn.tx_progress()[0]) < start
            if more and isinstance(transport, aio.PytcpTransport):
                transport.write(payload, more=True)
            else:
                writer.write(payload)
            self._written += len(payload)
            if (zc or tx.tsflags) and payload:
                tx.on_send(start, len(payload), zerocopy=zc, tail_unsent=tail_unsent,
                           data=payload, mss=int(getattr(conn, "snd_mss", 1460) or 1460))
            await writer.drain()

        self._run(send)

    SENDFILE_CHUNK = 64 * 1024  # bytes read from the file per sendall

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """As :meth:`socket.socket.sendfile`: send ``file`` (opened in binary mode) from
        ``offset`` until EOF or ``count`` bytes, in chunks of ``SENDFILE_CHUNK`` (the memory
        bound: one chunk read at a time); returns the bytes sent and leaves the file
        position after the last one sent. ``ValueError`` for a text file, a negative
        ``offset`` or a ``count`` that is not positive."""
        if "b" not in getattr(file, "mode", "b"):
            raise ValueError("file should be opened in binary mode")
        if offset < 0:
            raise ValueError(f"negative offset: {offset}")
        if count is not None and count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
        file.seek(offset)
        sent = 0
        try:
            while count is None or sent < count:
                want = self.SENDFILE_CHUNK if count is None else min(self.SENDFILE_CHUNK,
                                                                     count - sent)
                chunk = file.read(want)
                if not chunk:
                    break
                self.sendall(chunk)
                sent += len(chunk)
        finally:
            if sent > 0:
                file.seek(offset + sent)
        return sent

    def send(self, data: bytes | bytearray | memoryview, flags: int = 0) -> int:
        """Queue all of ``data`` and wait until the transport's backlog is under its
        high-water mark; returns ``len(data)``. ``flags`` as :meth:`sendall`."""
        self.sendall(data, flags)
        return len(data)

    def recv(self, bufsize: int) -> bytes:
        reader, _ = self._require_stream()
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        if self._shut_rd or bufsize == 0:
            return b""
        return self._run(lambda: reader.read(bufsize))

    def recvmsg(self, bufsize: int, ancbufsize: int = 0,
                flags: int = 0) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]:
        """As ``socket.recvmsg``: ``(data, ancdata, msg_flags, address)``. With
        ``MSG_ERRQUEUE`` (Linux ``ip_recv_error``): the oldest error-queue notification, or
        ``BlockingIOError`` (EAGAIN) when there is none, blocking or not. Its ancillary data
        is ``(SOL_SOCKET, SCM_TIMESTAMPING, struct scm_timestamping)`` (TX timestamps with
        SOF_TIMESTAMPING_SOFTWARE; the time is ``time.time()``'s clock) then ``(SOL_IP,
        IP_RECVERR, struct sock_extended_err + sockaddr_in)`` (``IPV6_RECVERR`` for IPv6),
        cut at ``ancbufsize`` (MSG_CTRUNC); ``msg_flags`` has MSG_ERRQUEUE, and MSG_TRUNC
        when the notification's data is longer than ``bufsize``. Without MSG_ERRQUEUE it is
        ``recv(bufsize)`` with no ancillary data."""
        if not flags & eq.MSG_ERRQUEUE:
            if flags:
                raise OSError(95, "Operation not supported (pytcp recvmsg flags: MSG_ERRQUEUE)")
            return self.recv(bufsize), [], 0, None
        if self._closed:
            raise OSError(9, "Bad file descriptor")
        handle = self._writer.get_extra_info("pytcp_handle") if self._writer else None
        v6 = handle is not None and max(handle.key[0], handle.key[2]) > 0xFFFFFFFF

        async def pop() -> eq.ErrEntry | None:
            return self._tx.queue.pop()

        entry = self._rt.run(pop())
        if entry is None:
            raise BlockingIOError(11, "Resource temporarily unavailable (error queue empty)")
        msg_flags = eq.MSG_ERRQUEUE | (eq.MSG_TRUNC if len(entry.payload) > bufsize else 0)
        anc: list[tuple[int, int, bytes]] = []
        room = ancbufsize
        for level, typ, data in entry.cmsgs(v6):
            space = 16 + ((len(data) + 7) & ~7)  # CMSG_SPACE on 64-bit Linux
            if space > room:
                msg_flags |= _MSG_CTRUNC
                break
            anc.append((level, typ, data))
            room -= space
        return entry.payload[:max(bufsize, 0)], anc, msg_flags, None

    def _track(self) -> None:
        """Feed the error queue from the connection's events once it needs them."""
        if self._writer is None or not self._tx.tracking:
            return
        transport = self._writer.transport
        handle = self._writer.get_extra_info("pytcp_handle")
        tx = self._tx
        rt = self._rt

        def on_event(event: object, now: float) -> None:
            name = type(event).__name__
            runtime = rt.runtime
            wall = time.time() - ((runtime.now() - now) if runtime is not None else 0.0)
            if name == "TxProgress":
                tx.on_progress(wall, int(getattr(event, "sent", 0)),
                               int(getattr(event, "acked", 0)))
            elif name in ("ConnectionReset", "ConnectionTimedOut"):
                tx.on_purge(wall)  # Linux tcp_write_queue_purge: buffers freed

        async def install() -> None:
            if isinstance(transport, aio.PytcpTransport) and transport.tx_listener is None:
                transport.tx_listener = on_event
            if handle is not None and hasattr(handle.conn, "track_tx"):
                handle.conn.track_tx(True)
                if rt.runtime is not None:
                    rt.runtime.kick()

        self._rt.run(install())

    def shutdown(self, how: int) -> None:
        _, writer = self._require_stream()
        if how in (_socket.SHUT_RD, _socket.SHUT_RDWR):
            self._shut_rd = True
        if how in (_socket.SHUT_WR, _socket.SHUT_RDWR):
            async def eof() -> None:
                writer.write_eof()

            self._rt.run(eof())

    def close(self) -> None:
        """Close (FIN after queued data). As Linux does, closing with received data still
        unread resets the connection instead (RFC 9293 3.10.4 allows either; RST tells the
        peer its data was lost)."""
        if self._closed:
            return
        self._closed = True
        self._rt.call_soon(self._tx.close)  # no more notifications (Linux SOCK_DEAD)
        writer, server, reader = self._writer, self._server, self._reader
        if writer is not None:
            def close_now() -> None:
                if reader is not None and len(getattr(reader, "_buffer", b"")) > 0:
                    writer.transport.abort()
                else:
                    writer.close()

            self._rt.call_soon(close_now)
        if server is not None:
            queue = self._accept_q

            def stop_listening() -> None:
                server.close()
                # Connections that arrived but were never accepted are reset, as Linux does
                # when a listening socket is closed.
                while queue is not None and not queue.empty():
                    _r, w = queue.get_nowait()
                    w.transport.abort()

            self._rt.call_soon(stop_listening)

    # -- options -----------------------------------------------------------------------------

    _OPTS = {
        (_socket.IPPROTO_TCP, _socket.TCP_NODELAY): "nodelay",
        (_socket.IPPROTO_TCP, _TCP_CORK): "cork",
        (_socket.SOL_SOCKET, _socket.SO_KEEPALIVE): "keepalive",
        (_socket.IPPROTO_TCP, getattr(_socket, "TCP_SYNCNT", 7)): "syn_retries",
        (_socket.IPPROTO_IP, _socket.IP_TOS): "tos",
        (_socket.IPPROTO_TCP, getattr(_socket, "TCP_QUICKACK", 12)): "quickack",
    }

    def _error_queue_option(self, option: int, value: int) -> None:
        """SO_ZEROCOPY (0 or 1) and SO_TIMESTAMPING (SOF_TIMESTAMPING_* flags; OPT_ID needs
        a connection, as Linux refuses it in CLOSE/LISTEN)."""
        if option == eq.SO_ZEROCOPY:
            if not 0 <= value <= 1:
                raise OSError(22, "Invalid argument (SO_ZEROCOPY is 0 or 1)")
            self._tx.zerocopy = bool(value)
        else:
            handle = self._writer.get_extra_info("pytcp_handle") if self._writer else None

            async def apply() -> int:
                acked = int(handle.conn.tx_progress()[1]) if handle is not None else 0
                return self._tx.set_timestamping(value, acked=acked, written=self._written,
                                                 can_key=handle is not None)

            err = self._rt.run(apply())
            if err:
                raise OSError(err, "Invalid argument (SO_TIMESTAMPING)")
        self._track()

    def setsockopt(self, level: int, option: int, value: int | bool | bytes) -> None:
        """TCP_NODELAY, TCP_CORK (Linux: only full segments leave while corked; a partial one
        waits for uncorking, more data or 200 ms), SO_KEEPALIVE, TCP_SYNCNT (SYN
        retransmissions before giving up), IP_TOS (the IP TOS / Diffserv byte, MUST-48) and
        TCP_QUICKACK (Linux: 0 delays ACKs for a reply, 1 ends that and sends a pending ACK;
        not permanent, ``pytcp/tcp/delack.py``). Set before ``connect()`` they apply from
        the start, the SYN included; IP_TOS on a listening socket is
        inherited by the connections it accepts, as on Linux. SO_ZEROCOPY and
        SO_TIMESTAMPING feed the error queue (:meth:`recvmsg` with MSG_ERRQUEUE). Others
        raise ``OSError(ENOPROTOOPT)``. TCP_MD5SIG / TCP_MD5SIG_EXT take Linux's ``struct
        tcp_md5sig`` as bytes (``pytcp.tcp.md5.build_tcp_md5sig``; see :meth:`set_md5_key`)."""
        from pytcp.tcp import md5 as _md5

        if level == _socket.IPPROTO_TCP and option in (_md5.TCP_MD5SIG, _md5.TCP_MD5SIG_EXT):
            if not isinstance(value, (bytes, bytearray)):
                raise OSError(22, "Invalid argument (TCP_MD5SIG takes struct tcp_md5sig)")
            try:
                addr, _v6, prefix, key = _md5.parse_tcp_md5sig(
                    bytes(value), option == _md5.TCP_MD5SIG_EXT)
            except ValueError as e:
                raise OSError(22, f"Invalid argument ({e})") from None
            self._set_md5(addr, key, prefix)
            return
        if isinstance(value, (bytes, bytearray)):
            raise OSError(22, "Invalid argument (an integer option)")
        if level == eq.SOL_SOCKET and option in (eq.SO_ZEROCOPY, eq.SO_TIMESTAMPING):
            self._error_queue_option(option, int(value))
            return
        name = self._OPTS.get((level, option))
        if name is None:
            raise OSError(92, "Protocol not available (pytcp: TCP_NODELAY, TCP_CORK, "
                              "SO_KEEPALIVE, TCP_SYNCNT, IP_TOS, TCP_QUICKACK)")
        if name == "tos" and not 0 <= int(value) <= 0xFF:
            raise OSError(22, "Invalid argument (IP_TOS is 0..255)")
        self._options[name] = int(value)
        if name == "tos" and self._server is not None:
            self._set_listener_tos(int(value))
        if self._writer is not None:
            handle = self._writer.get_extra_info("pytcp_handle")
            opts = {name: int(value)}

            async def apply() -> None:
                _apply_options(handle, opts, self._rt)

            self._rt.run(apply())

    def getsockopt(self, level: int, option: int) -> int:
        if level == eq.SOL_SOCKET and option == eq.SO_ZEROCOPY:
            return int(self._tx.zerocopy)
        if level == eq.SOL_SOCKET and option == eq.SO_TIMESTAMPING:
            return self._tx.tsflags
        name = self._OPTS.get((level, option))
        if name is None:
            raise OSError(92, "Protocol not available (pytcp: TCP_NODELAY, TCP_CORK, "
                              "SO_KEEPALIVE, TCP_SYNCNT, IP_TOS, TCP_QUICKACK)")
        if self._writer is not None and name == "tos":
            return int(self._writer.get_extra_info("pytcp_handle").tos)
        if self._writer is not None and name != "syn_retries":
            conn = self._writer.get_extra_info("pytcp_handle").conn
            return int(bool(getattr(conn, name, False)))
        return self._options.get(name, 1 if name == "quickack" else 0)

    def set_retries(self, retries2: int | None = None, syn_retries: int | None = None) -> None:
        """R2 for this connection (RFC 9293 3.8.3, MUST-21): how many retransmissions of
        data/FIN (``retries2``) or of the SYN (``syn_retries``) before the connection times
        out. Before ``connect()`` the values are kept and applied at connect."""
        if retries2 is not None:
            self._options["retries2"] = retries2
        if syn_retries is not None:
            self._options["syn_retries"] = syn_retries
        if self._writer is not None:
            handle = self._writer.get_extra_info("pytcp_handle")
            opts = {"retries2": retries2, "syn_retries": syn_retries}

            async def apply() -> None:
                _apply_options(handle, opts, self._rt)

            self._rt.run(apply())

    def info(self) -> Any:
        """The engine's ``ConnInfo`` (state, bytes, retransmits, srtt, rto, cwnd, ...)."""
        _, writer = self._require_stream()
        handle = writer.get_extra_info("pytcp_handle")

        async def get() -> Any:
            return handle.conn.info()

        return self._rt.run(get())

    # -- names -------------------------------------------------------------------------------

    def getpeername(self) -> tuple[str, int]:
        _, writer = self._require_stream()
        return writer.get_extra_info("peername")  # type: ignore[no-any-return]

    def getsockname(self) -> tuple[str, int]:
        if self._writer is None and self._server is not None:
            runtime = self._rt.runtime
            addr = getattr(runtime.stack, "addr", "0.0.0.0") if runtime else "0.0.0.0"
            return (aio._ip_str(addr), self._server.port)
        _, writer = self._require_stream()
        return writer.get_extra_info("sockname")  # type: ignore[no-any-return]

    def fileno(self) -> int:
        return -1

    def __enter__(self) -> Socket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._writer is not None:
            return f"<pytcp Socket {self._writer.get_extra_info('sockname')} -> " \
                   f"{self._writer.get_extra_info('peername')}>"
        if self._server is not None:
            return f"<pytcp Socket listening port={self._server.port}>"
        return "<pytcp Socket unconnected>"


def _apply_options(handle: Any, opts: Mapping[str, int | None], bg: BackgroundRuntime) -> None:
    """Apply socket options to a connection (on the loop thread)."""
    now = bg.runtime.now() if bg.runtime is not None else None
    if opts.get("nodelay") is not None:
        handle.set_nodelay(bool(opts["nodelay"]), now)
    if opts.get("cork") is not None:
        handle.set_cork(bool(opts["cork"]), now)
    if opts.get("quickack") is not None:
        handle.set_quickack(bool(opts["quickack"]), now)
    if opts.get("keepalive") is not None:
        handle.set_keepalive(bool(opts["keepalive"]), now=now)
    tos = opts.get("tos")
    if tos is not None:
        handle.set_tos(tos)  # MUST-48
    retries2, syn_retries = opts.get("retries2"), opts.get("syn_retries")
    if retries2 is not None or syn_retries is not None:
        handle.conn.set_retries(retries2=retries2, syn_retries=syn_retries)
