"""HTTP/1.1 server on h11: static files under a root directory, or pytcp's status page.

Owns request handling for one connection: h11 does the framing (keep-alive, pipelining in
order, chunked/Content-Length request bodies); this module maps a request target to a file
confined to the root, or to the status page, and streams the response with back-pressure.

Routing:
- methods: GET and HEAD; anything else gets 405 with ``Allow: GET, HEAD`` and the connection
  closes (we do not read request bodies we would throw away).
- with a root: the target's path is percent-decoded and split on ``/``; a ``..`` segment, a
  NUL, or a path that is not UTF-8 is a 400; empty and ``.`` segments are ignored, so ``//etc``
  is ``<root>/etc``. The file is resolved (symlinks followed) and must still lie inside the
  resolved root, else 404; only regular files are served (FIFOs, devices: 404).
  A directory is served as its ``index.html`` if it has one, else as an HTML listing; a
  directory URL without a trailing ``/`` is redirected (301) to the one with it.
- without a root: ``/`` is the status page (HTML) and ``/status.json`` its JSON; with a
  ``lab`` (``pytcp.apps.lab``), ``/lab`` and below are the patterns lab, which also takes
  POST (its body kept, up to MAX_REQUEST_BODY), streams (SSE) and WebSocket upgrades; else 404.
- files are streamed in ``chunk_size`` pieces, never loaded whole, with ``await drain()``;
  a single byte range is honoured (206/416, RFC 9110 14), so ``curl -C -`` resumes.
- a connection idle for ``idle_timeout`` seconds (no request bytes) is closed; a started
  request must be complete within ``request_timeout`` (slowloris) or gets 408;
- the send timeout (``send_timeout``, default: ``idle_timeout``): data queued anywhere below
  us (the transport's backlog, the kernel socket or pytcp's engine) must make progress at
  least that often (``streams.SendWatch``), else the connection is aborted with RST — a
  client that stops reading, or a silent peer behind a zero window, is cut off, a slow reader
  is not.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import html
import logging
import mimetypes
import os
import socket
import stat
import time
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import h11

import pytcp
from pytcp.apps.status import StatusProvider, render_html, render_json
from pytcp.apps.streams import SendWatch, close_writer, linger_close

if TYPE_CHECKING:
    from pytcp.apps.lab import Lab
log = logging.getLogger(__name__)

CHUNK_SIZE = 256 * 1024      # file bytes per write, then drain
IDLE_TIMEOUT = 30.0          # seconds without progress before we close a keep-alive connection
REQUEST_TIMEOUT = 60.0       # a started request must be complete within this (slowloris): 408
READ_SIZE = 65536
MAX_REQUEST_BODY = 1 << 20   # a GET/HEAD body larger than this: 413 and close
ALLOWED_METHODS = (b"GET", b"HEAD")
SERVER_NAME = f"pytcp/{pytcp.__version__}".encode()

_MIME = mimetypes.MimeTypes()  # Python's built-in table only: the same answer on every host


class _Reply(Exception):
    """Raised inside request routing to answer with an error status."""

    def __init__(self, status: int, detail: str = "", headers: list[tuple[bytes, bytes]] | None = None,
                 close: bool = False) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or []
        self.close = close


class _Timeout(Exception):
    """The peer made no progress for idle_timeout seconds."""


class _SendTimeout(Exception):
    """The peer took none of our queued data for send_timeout seconds."""


class _RequestTimeout(Exception):
    """A request was started but not completed within request_timeout seconds."""


_date_cache: tuple[int, bytes] = (0, b"")


def _http_date() -> bytes:
    """The Date header value (RFC 9110 6.6.1), formatted once per second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True).encode())
    return _date_cache[1]


@functools.lru_cache(maxsize=1024)
def content_type(name: str) -> str:
    """Content-Type by file extension; text gets ``charset=utf-8``; unknown is octet-stream."""
    ctype, encoding = _MIME.guess_type(name, strict=False)
    if ctype is None or encoding is not None:
        return "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
        return ctype + "; charset=utf-8"
    return ctype


def target_path(target: bytes) -> tuple[str, list[str]]:
    """Split a request target into (decoded path, its safe segments); raise _Reply(400).

    Accepts origin-form (``/a/b?q``) and absolute-form (``http://host/a/b``).
    """
    try:
        text = target.decode("ascii")
    except UnicodeDecodeError:
        raise _Reply(400, "request target is not ASCII", close=True) from None
    if text.startswith(("http://", "https://")):
        text = urllib.parse.urlsplit(text).path or "/"
    if not text.startswith("/"):
        raise _Reply(400, "request target must start with /", close=True)
    raw = text.split("?", 1)[0].split("#", 1)[0]
    decoded = urllib.parse.unquote_to_bytes(raw)
    if b"\x00" in decoded:
        raise _Reply(400, "NUL in path", close=True)
    try:
        path = decoded.decode("utf-8")
    except UnicodeDecodeError:
        raise _Reply(400, "path is not UTF-8", close=True) from None
    segments = [s for s in path.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise _Reply(400, "'..' in path", close=True)
    return path, segments


def requested_range(headers: Sequence[tuple[bytes, bytes]],
                    size: int) -> tuple[int, int] | None:
    """The single byte range a request asks for, as (first, last) offsets, or None for the
    whole file; raise _Reply(416) when it cannot be satisfied (RFC 9110 14.1.2, 15.5.17).

    Only one range is honoured: a list of ranges, another unit, or an ``If-Range`` (we keep no
    validators to compare) makes us ignore Range and send 200, which RFC 9110 14.2 allows.
    """
    ranges = [v for k, v in headers if k == b"range"]
    if len(ranges) != 1 or any(k == b"if-range" for k, _ in headers):
        return None
    unit, _, spec = ranges[0].decode("latin-1").strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_s, dash, last_s = spec.strip().partition("-")
    first_s, last_s = first_s.strip(), last_s.strip()
    if not dash or not (first_s or last_s) or not all(
            s.isascii() and s.isdigit() for s in (first_s, last_s) if s):
        return None
    try:
        if not first_s:  # suffix: the last N bytes
            n = int(last_s)
            if n == 0 or size == 0:
                raise _Reply(416, headers=[(b"Content-Range", f"bytes */{size}".encode())])
            return max(0, size - n), size - 1
        first = int(first_s)
        last = int(last_s) if last_s else None
    except ValueError:
        return None
    if last is not None and last < first:
        return None  # syntactically invalid: ignore (RFC 9110 14.1.1)
    if last is None or last >= size:
        last = size - 1
    if first >= size:
        raise _Reply(416, headers=[(b"Content-Range", f"bytes */{size}".encode())])
    return first, min(last, size - 1)


class FileCache:
    """Small static files kept in memory, shared by the server's connections.

    Bounds: files of at most ``max_file`` bytes, at most ``max_entries`` files and
    ``max_bytes`` bytes in all; past either bound the least recently used file is evicted
    (``evictions``). An entry is used only while the file's ``stat`` (device, inode, size,
    mtime and ctime in ns) is the one it was read with: a file changed or replaced on disk is
    read again (``stale``). A file changed less than ``settle_ns`` ago is served but not
    kept (``racy``): timestamps are coarse (a few ms), so two writes of the same size in one
    tick would look unchanged; a file kept had been still for a second, and any later
    change moves its mtime/ctime. The request path still resolves and ``lstat``s every
    segment, so confinement to the root and 404s are exactly the uncached path's.
    """

    settle_ns = 1_000_000_000

    def __init__(self, max_entries: int = 256, max_file: int = 64 * 1024,
                 max_bytes: int = 8 * 1024 * 1024,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.clock = clock  # wall clock in ns, comparable with st_mtime_ns (tests move it)
        self.max_entries = max_entries
        self.max_file = max_file
        self.max_bytes = max_bytes
        self._entries: dict[str, tuple[tuple[int, int, int, int, int], bytes]] = {}
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.stale = 0
        self.evictions = 0
        self.racy = 0

    @staticmethod
    def _key(st: os.stat_result) -> tuple[int, int, int, int, int]:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def get(self, path: str, st: os.stat_result) -> bytes | None:
        """The cached body of ``path`` if it was read with this ``st``, else None."""
        entry = self._entries.get(path)
        if entry is None:
            self.misses += 1
            return None
        if entry[0] != self._key(st):
            self.stale += 1
            self._drop(path)
            return None
        self.hits += 1
        # Most recently used last (dicts keep insertion order).
        del self._entries[path]
        self._entries[path] = entry
        return entry[1]

    def put(self, path: str, st: os.stat_result, body: bytes) -> None:
        """Keep ``body`` (read with ``st``) if it fits the bounds, evicting the oldest."""
        if len(body) > self.max_file or len(body) > self.max_bytes or self.max_entries < 1:
            return
        if self.clock() - max(st.st_mtime_ns, st.st_ctime_ns) < self.settle_ns:
            self.racy += 1
            return
        self._drop(path)
        while self._entries and (len(self._entries) >= self.max_entries
                                 or self.bytes + len(body) > self.max_bytes):
            self._drop(next(iter(self._entries)))
            self.evictions += 1
        self._entries[path] = (self._key(st), body)
        self.bytes += len(body)

    def _drop(self, path: str) -> None:
        entry = self._entries.pop(path, None)
        if entry is not None:
            self.bytes -= len(entry[1])

    def __len__(self) -> int:
        return len(self._entries)


_FILE_CACHE = FileCache()  # the default, shared by every connection of the process


def _read_all(fd: int, size: int) -> bytes | None:
    """The whole file of ``size`` bytes, or None if it is not that size any more."""
    chunks: list[bytes] = []
    got = 0
    while got <= size:
        chunk = os.read(fd, size + 1 - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks) if got == size else None


class _HttpSession:
    """One HTTP connection: reads requests in order, answers each, keeps alive or closes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 root: Path | None, status_provider: StatusProvider | None,
                 idle_timeout: float, chunk_size: int, request_timeout: float,
                 send_timeout: float, lab: Lab | None = None,
                 cache: FileCache | None = None) -> None:
        self.lab = lab
        self.body = bytearray()  # a lab request's body (POST)
        self.cache = cache if cache is not None else _FILE_CACHE
        self.reader = reader
        self.writer = writer
        self.root = root
        self.status_provider = status_provider
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        self.send_timeout = send_timeout
        self.chunk_size = chunk_size
        self.conn = h11.Connection(h11.SERVER)
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "?"
        self.requests = 0
        self._root_str = str(root) if root is not None else ""
        # As nginx on keep-alive connections (tcp_nodelay on): a response's last partial
        # segment never waits for the ACK of the previous one (Nagle + delayed ACK: ~40 ms).
        self._set_option("set_nodelay", True)
        self.watch = SendWatch(writer, send_timeout, name=f"http {self.peer}")

    # --- input -----------------------------------------------------------------------------

    async def _next_request(self) -> h11.Request | None:
        """The next complete request (its body read and discarded), or None when closed.

        Waiting for a request's first byte is bounded by idle_timeout (quietly closed); once
        it has started, the whole request must arrive within request_timeout (408).
        """
        loop = asyncio.get_running_loop()
        started: float | None = loop.time() if self.conn.trailing_data[0] else None
        request: h11.Request | None = None
        body = 0
        keep = False
        self.body = bytearray()
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                if started is None:
                    timeout = self.idle_timeout
                else:
                    timeout = min(self.idle_timeout, started + self.request_timeout - loop.time())
                try:
                    # asyncio.timeout, not wait_for: no task per read on the keep-alive path.
                    async with asyncio.timeout(max(timeout, 0)):
                        data = await self.reader.read(READ_SIZE)
                except TimeoutError:
                    if started is None and self.watch.stalled_for() >= min(
                            self.send_timeout, self.idle_timeout):
                        # Not idle: our last response is stuck (e.g. a zero window nobody
                        # opens). A FIN would only wait behind it: reset.
                        raise _SendTimeout() from None
                    raise (_Timeout() if started is None else _RequestTimeout()) from None
                if self.watch.fired:
                    raise _SendTimeout()
                if data and started is None:
                    started = loop.time()
                self.conn.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
                keep = self.lab is not None and self.root is None and (
                    event.target == b"/lab" or event.target.startswith(b"/lab/"))
                if event.method not in ALLOWED_METHODS and not (keep and event.method == b"POST"):
                    return event  # answered 405 at once; its body is never read
            elif isinstance(event, h11.Data):
                body += len(event.data)
                if body > MAX_REQUEST_BODY:
                    raise _Reply(413, "request body too large", close=True)
                if keep:
                    self.body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return request
            else:  # ConnectionClosed, or PAUSED (cannot happen: we return at EndOfMessage)
                return None

    # --- output ----------------------------------------------------------------------------

    def _set_option(self, name: str, flag: bool) -> None:
        """TCP_NODELAY (``set_nodelay``) / TCP_CORK (``set_cork``) on a pytcp transport; on a
        kernel socket (tests, other transports) the same option through setsockopt."""
        transport = self.writer.transport
        fn = getattr(transport, name, None)
        if fn is not None:
            fn(flag)
            return
        sock = self.writer.get_extra_info("socket")
        opt = {"set_nodelay": "TCP_NODELAY", "set_cork": "TCP_CORK"}[name]
        if sock is not None and hasattr(socket, opt):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), int(flag))
            except OSError:
                pass

    async def _write(self, data: bytes | bytearray | memoryview) -> None:
        self.writer.write(data)
        self.watch.wrote(len(data))
        await self._drain()

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write raw bytes (already framed by ``self.conn``) with back-pressure (the lab)."""
        if data:
            await self._write(data)

    async def send_bytes(self, method: bytes, status: int, ctype: str, body: bytes,
                         extra: list[tuple[bytes, bytes]] | None = None) -> None:
        """One whole response (the lab)."""
        await self._send_bytes(method, status, ctype, body, extra)

    async def _drain(self) -> None:
        """Wait for back-pressure to ease; the send watch bounds the wait (it aborts the
        connection after send_timeout without progress, which ends drain())."""
        try:
            await self.writer.drain()
        except (ConnectionError, OSError):
            if self.watch.fired:
                raise _SendTimeout() from None
            raise

    def _headers(self, ctype: str, length: int,
                 extra: list[tuple[bytes, bytes]] | None = None) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"Server", SERVER_NAME),
            (b"Date", _http_date()),
            (b"Content-Type", ctype.encode()),
            (b"Content-Length", str(length).encode()),
        ]
        return headers + (extra or [])

    async def _send_bytes(self, method: bytes, status: int, ctype: str, body: bytes,
                          extra: list[tuple[bytes, bytes]] | None = None) -> None:
        headers = self._headers(ctype, len(body), extra)
        out = self.conn.send(h11.Response(status_code=status, headers=headers,
                                          reason=_REASONS.get(status, ""))) or b""
        if method != b"HEAD" and body:
            out += self.conn.send(h11.Data(data=body)) or b""
        out += self.conn.send(h11.EndOfMessage()) or b""
        await self._write(out)

    async def _send_error(self, method: bytes, status: int, detail: str,
                          extra: list[tuple[bytes, bytes]] | None = None, close: bool = False) -> None:
        reason = _REASONS.get(status, "Error")
        body = f"{status} {reason}\n{detail}\n".encode() if detail else f"{status} {reason}\n".encode()
        headers = list(extra or [])
        if close:
            headers.append((b"Connection", b"close"))
        await self._send_bytes(method, status, "text/plain; charset=utf-8", body, headers)

    async def _send_file(self, method: bytes, fd: int, size: int, ctype: str,
                         byte_range: tuple[int, int] | None) -> int:
        """Headers, then the file (or ``byte_range``, first and last offsets) in chunk_size
        pieces with back-pressure, never all at once. Returns the status sent (200 or 206)."""
        extra = [(b"Accept-Ranges", b"bytes")]
        status, reason, first, length = 200, b"OK", 0, size
        if byte_range is not None:
            first, last = byte_range
            status, reason, length = 206, b"Partial Content", last - first + 1
            extra.append((b"Content-Range", f"bytes {first}-{last}/{size}".encode()))
        head = self.conn.send(h11.Response(
            status_code=status, headers=self._headers(ctype, length, extra), reason=reason)) \
            or b""
        if method == b"GET" and length:
            if first:
                os.lseek(fd, first, os.SEEK_SET)
            # A body of several chunks is corked (as nginx's tcp_nopush): only full segments
            # leave between chunks; uncorking sends the tail at once (TCP_NODELAY is on).
            corked = length > self.chunk_size
            if corked:
                self._set_option("set_cork", True)
            try:
                left = length
                while left > 0:
                    chunk = os.read(fd, min(self.chunk_size, left))
                    if not chunk:  # the file shrank under us: we cannot keep Content-Length
                        raise ConnectionAbortedError("file shrank while being sent")
                    left -= len(chunk)
                    pieces = list(self.conn.send_with_data_passthrough(h11.Data(data=chunk))
                                  or ())
                    if head:  # headers and the first chunk in one gathered write
                        pieces.insert(0, head)
                        head = b""
                    self.writer.writelines(pieces)
                    self.watch.wrote(sum(len(p) for p in pieces))
                    await self._drain()
            finally:
                if corked:
                    self._set_option("set_cork", False)
        elif head:
            await self._write(head)
        await self._write(self.conn.send(h11.EndOfMessage()) or b"")
        return status

    async def _send_small(self, method: bytes, body: bytes, ctype: str) -> None:
        """A whole small file (200): headers and body in one write, as ``_send_file``'s
        headers (``Accept-Ranges``) for the same file."""
        out = self.conn.send(h11.Response(
            status_code=200, headers=self._headers(ctype, len(body),
                                                   [(b"Accept-Ranges", b"bytes")]),
            reason=b"OK")) or b""
        if method == b"GET" and body:
            out += self.conn.send(h11.Data(data=body)) or b""
        out += self.conn.send(h11.EndOfMessage()) or b""
        await self._write(out)

    # --- routing ---------------------------------------------------------------------------

    async def _respond(self, request: h11.Request) -> int:
        """Answer one request; returns the status sent."""
        method = request.method
        if self.lab is not None and self.root is None and (
                request.target == b"/lab" or request.target.startswith(b"/lab/")):
            return await self._respond_lab(request)
        if method not in ALLOWED_METHODS:
            raise _Reply(405, f"method {method.decode('latin-1')} not allowed",
                         [(b"Allow", b"GET, HEAD")], close=True)
        path, segments = target_path(request.target)
        if self.root is None:
            return await self._respond_status(method, segments)
        return await self._respond_file(request, path, segments)

    async def _respond_lab(self, request: h11.Request) -> int:
        from pytcp.apps.lab.http import LabReply, respond

        assert self.lab is not None
        path, _ = target_path(request.target)
        query = request.target.decode("ascii").partition("?")[2].partition("#")[0]
        try:
            return await respond(self, self.lab, request, path, query)
        except LabReply as reply:
            raise _Reply(reply.status, reply.detail, reply.headers,
                         close=request.method == b"POST" and self.conn.their_state
                         is not h11.DONE) from None

    async def _respond_status(self, method: bytes, segments: list[str]) -> int:
        if self.status_provider is None:
            raise _Reply(404)
        if segments not in ([], ["status.json"]):
            # More pages (a connection's graphs) when the provider has them (StatusSite).
            page = getattr(self.status_provider, "page", None)
            try:
                found = page(segments) if page is not None else None
            except Exception:
                log.exception("status page failed")
                raise _Reply(500) from None
            if found is None:
                raise _Reply(404)
            ctype, body = found
            await self._send_bytes(method, 200, ctype, body, [(b"Cache-Control", b"no-store")])
            return 200
        try:
            snapshot = self.status_provider()
        except Exception:
            log.exception("status provider failed")
            raise _Reply(500) from None
        if segments:
            await self._send_bytes(method, 200, "application/json", render_json(snapshot),
                                   [(b"Cache-Control", b"no-store")])
        else:
            await self._send_bytes(method, 200, "text/html; charset=utf-8", render_html(snapshot),
                                   [(b"Cache-Control", b"no-store")])
        return 200

    def _resolve(self, segments: list[str]) -> tuple[Path, os.stat_result]:
        """The real path for segments, confined to root (symlinks resolved), and its
        ``stat``; else 404.

        The root is already resolved: a walk of one ``lstat`` per segment that meets no
        symlink has found the real path (the common case, and cheap); any symlink on the way
        sends the request through the full ``Path.resolve`` and the confinement check."""
        assert self.root is not None
        cur = self._root_str
        if not segments:
            try:
                return self.root, os.stat(cur)
            except OSError:
                raise _Reply(403) from None
        for seg in segments:
            cur = f"{cur}/{seg}"
            try:
                st = os.lstat(cur)
            except OSError:
                raise _Reply(404) from None
            if stat.S_ISLNK(st.st_mode):
                break
        else:
            return Path(cur), st
        candidate = self.root.joinpath(*segments)
        try:
            real = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            raise _Reply(404) from None
        if real != self.root and self.root not in real.parents:
            log.info("http %s: %s resolves outside the root", self.peer, candidate)
            raise _Reply(404)
        try:
            return real, os.stat(real)
        except OSError:
            raise _Reply(403) from None

    async def _respond_file(self, request: h11.Request, path: str, segments: list[str]) -> int:
        method = request.method
        real, st = self._resolve(segments)
        if stat.S_ISDIR(st.st_mode):
            if not path.endswith("/"):
                location = urllib.parse.quote(path + "/", safe="/")
                raise _Reply(301, "", [(b"Location", location.encode())])
            index = real / "index.html"
            if os.path.isfile(index):
                real, st = self._resolve(segments + ["index.html"])
            else:
                await self._send_bytes(method, 200, "text/html; charset=utf-8",
                                       directory_listing(real, path))
                return 200
        if stat.S_ISREG(st.st_mode) and st.st_size <= self.cache.max_file:
            # A small regular file (the real path's own stat: no symlink left to follow):
            # from the cache when unchanged, else read once and cached.
            byte_range = requested_range(request.headers, st.st_size)
            if byte_range is None:
                body = self.cache.get(str(real), st)
                if body is not None:
                    await self._send_small(method, body, content_type(real.name))
                    return 200
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(real, flags)
        except PermissionError:
            raise _Reply(403) from None
        except OSError:
            raise _Reply(404) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise _Reply(404)
            byte_range = requested_range(request.headers, st.st_size)
            if byte_range is None and st.st_size <= self.cache.max_file:
                body = _read_all(fd, st.st_size)
                if body is not None:
                    self.cache.put(str(real), st, body)
                    await self._send_small(method, body, content_type(real.name))
                    return 200
                os.lseek(fd, 0, os.SEEK_SET)
            return await self._send_file(method, fd, st.st_size, content_type(real.name),
                                         byte_range)
        finally:
            os.close(fd)

    # --- the connection's life ---------------------------------------------------------------

    async def run(self) -> None:
        while True:
            try:
                request = await self._next_request()
                if request is None:
                    return
                self.requests += 1
                try:
                    status = await self._respond(request)
                except _Reply as reply:
                    status = reply.status
                    await self._send_error(request.method, reply.status, reply.detail,
                                           reply.headers, reply.close)
                log.info('http %s "%s %s" %d', self.peer, request.method.decode("latin-1"),
                         request.target.decode("latin-1"), status)
            except h11.RemoteProtocolError as exc:
                # RFC 9112: a malformed request gets 400 (431 for oversized headers), then close.
                log.info("http %s: bad request: %s", self.peer, exc)
                if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await self._send_error(b"GET", exc.error_status_hint, str(exc), close=True)
                return
            except _RequestTimeout:
                log.info("http %s: request not complete in %.0f s", self.peer,
                         self.request_timeout)
                if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await self._send_error(b"GET", 408, "", close=True)
                return
            except _Reply as reply:  # raised while reading (413)
                if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await self._send_error(b"GET", reply.status, reply.detail, reply.headers,
                                           close=True)
                return
            if self.conn.our_state is not h11.DONE or self.conn.their_state is not h11.DONE:
                return  # MUST_CLOSE (Connection: close, HTTP/1.0, 405) or an unread body
            self.conn.start_next_cycle()


def directory_listing(directory: Path, url_path: str) -> bytes:
    """An HTML index of ``directory`` (sorted; subdirectories end with ``/``)."""
    entries: list[str] = []
    try:
        with os.scandir(directory) as it:
            for entry in it:
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                entries.append(entry.name + ("/" if is_dir else ""))
    except OSError:
        raise _Reply(403) from None
    title = html.escape(f"Index of {url_path}")
    lines = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">",
             f"<title>{title}</title></head><body>", f"<h1>{title}</h1>", "<ul>"]
    if url_path != "/":
        lines.append('<li><a href="../">../</a></li>')
    for name in sorted(entries):
        href = urllib.parse.quote(name, safe="/")
        lines.append(f'<li><a href="{href}">{html.escape(name)}</a></li>')
    lines += ["</ul>", "</body></html>"]
    return ("\n".join(lines) + "\n").encode()


_REASONS: dict[int, str] = {
    200: "OK", 202: "Accepted", 301: "Moved Permanently", 400: "Bad Request", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    413: "Content Too Large", 414: "URI Too Long", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 503: "Service Unavailable",
}


_ROOTS: dict[Path, tuple[float, Path]] = {}  # root -> (when resolved, real path); at most 16


def _resolved_root(root: Path) -> Path:
    """``root.resolve()``, resolved again at most once a second (a server's connections share
    one root: a new connection costs no ``realpath`` walk, and a root whose symlink is
    repointed is followed within a second)."""
    now = time.monotonic()
    entry = _ROOTS.get(root)
    if entry is not None and now - entry[0] < 1.0:
        return entry[1]
    real = root.resolve()
    if len(_ROOTS) >= 16:
        _ROOTS.clear()
    _ROOTS[root] = (now, real)
    return real


async def serve_http(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    root: Path | None = None,
    status_provider: StatusProvider | None = None,
    *,
    idle_timeout: float = IDLE_TIMEOUT,
    chunk_size: int = CHUNK_SIZE,
    request_timeout: float = REQUEST_TIMEOUT,
    send_timeout: float | None = None,
    lab: Lab | None = None,
    file_cache: FileCache | None = None,
) -> None:
    """Serve HTTP/1.1 on one connection until the peer closes, errs, or idles out.

    ``root``: serve files under it; ``None``: serve the status page from ``status_provider``.
    ``send_timeout`` (default: ``idle_timeout``): seconds queued response data may go without
    progress before the connection is aborted. ``lab``: without a root, ``/lab`` and below
    are the patterns lab (``pytcp.apps.lab``). ``file_cache``: where small files are kept
    (default: one cache shared by the process, see ``FileCache``). Never raises for anything
    the peer does.
    """
    send_timeout = idle_timeout if send_timeout is None else send_timeout
    session = _HttpSession(reader, writer, _resolved_root(root) if root is not None else None,
                           status_provider, idle_timeout, chunk_size, request_timeout,
                           send_timeout, lab, file_cache)
    linger = False
    try:
        await session.run()
        linger = session.conn.our_state is h11.MUST_CLOSE or session.conn.their_state not in (
            h11.DONE, h11.CLOSED, h11.IDLE)
        if session.watch.fired:
            linger = False
    except _Timeout:
        log.info("http %s: idle for %.0f s, closing", session.peer, idle_timeout)
    except _SendTimeout:
        # The peer stopped reading: a FIN would wait behind data it never takes. Reset.
        log.info("http %s: peer took nothing for %.0f s, aborting", session.peer, send_timeout)
        writer.transport.abort()
    except (ConnectionError, OSError, h11.LocalProtocolError) as exc:
        log.info("http %s: connection ended: %r", session.peer, exc)
        writer.transport.abort()
    except Exception:  # a bug of ours must not take the whole server down
        log.exception("http %s: internal error", session.peer)
        writer.transport.abort()
    finally:
        try:
            if linger:
                await linger_close(reader, writer)
            else:
                await close_writer(writer)
        finally:
            session.watch.stop()


__all__ = ["FileCache", "content_type", "directory_listing", "serve_http", "target_path"]
