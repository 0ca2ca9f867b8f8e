"""HTTP/1.1 GET client on h11: the download behind ``pytcp get``.

Owns one request/response exchange over any ``open_connection(host, port)`` returning
asyncio's ``StreamReader``/``StreamWriter`` (the kernel's, or pytcp's). Follows no redirects
(a 3xx is an error naming the Location), handles Content-Length, chunked and close-delimited
bodies, and raises :class:`FetchError` with one clear line for every failure: refusal,
timeout, reset, truncated body, HTTP status >= 400.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import BinaryIO, TextIO

import h11

import pytcp
from pytcp.apps.streams import close_writer

# open_connection(host, port[, first_data=bytes]): first_data only with request_in_syn.
OpenConnection = Callable[..., Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
Progress = Callable[[int, "int | None"], None]  # (bytes received so far, Content-Length or None)

READ_SIZE = 256 * 1024
DEFAULT_TIMEOUT = 30.0
USER_AGENT = f"pytcp/{pytcp.__version__}".encode()


class FetchError(Exception):
    """A download failed; ``str()`` is one line meant for the user."""


@dataclass(frozen=True)
class FetchResult:
    status: int
    reason: str
    content_length: int | None   # from the response header, when there was one
    received: int                # body bytes written to out_file


@dataclass(frozen=True)
class Url:
    host: str
    port: int
    target: str     # origin-form: path and query
    authority: str  # for the Host header


def parse_url(url: str) -> Url:
    """Split an ``http://host[:port]/path?query`` URL; raise FetchError for anything else."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError(f"invalid URL {url!r}: {exc}") from None
    if parts.scheme != "http":
        raise FetchError(f"unsupported URL scheme in {url!r}: only http:// is supported")
    if not parts.hostname:
        raise FetchError(f"invalid URL {url!r}: no host")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    authority = parts.netloc.rsplit("@", 1)[-1]
    return Url(parts.hostname, port if port is not None else 80, target, authority)


async def fetch(
    url: str,
    out_file: BinaryIO,
    *,
    open_connection: OpenConnection,
    progress: Progress | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    request_in_syn: bool = False,
) -> FetchResult:
    """GET ``url`` and write the body to ``out_file``; return what was received.

    ``timeout`` bounds the connect and every wait for data. ``request_in_syn``: hand the
    request to ``open_connection`` as ``first_data`` (TCP Fast Open, RFC 7413: it goes in
    the SYN when a cookie is cached, else right after the handshake). Raises FetchError.
    """
    u = parse_url(url)
    where = f"{u.host}:{u.port}"
    conn = h11.Connection(h11.CLIENT)
    request = h11.Request(method=b"GET", target=u.target.encode(), headers=[
        (b"Host", u.authority.encode("idna") if not u.authority.isascii()
         else u.authority.encode()),
        (b"User-Agent", USER_AGENT), (b"Accept", b"*/*"), (b"Connection", b"close"),
    ])
    head = (conn.send(request) or b"") + (conn.send(h11.EndOfMessage()) or b"")
    try:
        opening = (open_connection(u.host, u.port, first_data=head) if request_in_syn
                   else open_connection(u.host, u.port))
        reader, writer = await asyncio.wait_for(opening, timeout)
    except TimeoutError:
        raise FetchError(f"timed out after {timeout:g} s connecting to {where}") from None
    except ConnectionRefusedError:
        raise FetchError(f"connection refused by {where}") from None
    except OSError as exc:
        raise FetchError(f"cannot connect to {where}: {exc.strerror or exc}") from None
    try:
        if not request_in_syn:
            writer.write(head)
            await asyncio.wait_for(writer.drain(), timeout)
        return await _exchange(u, conn, where, reader, out_file, progress, timeout)
    except TimeoutError:
        writer.transport.abort()
        raise FetchError(f"timed out after {timeout:g} s waiting for data from {where}") from None
    except ConnectionResetError:
        raise FetchError(f"connection reset by {where}") from None
    except h11.RemoteProtocolError as exc:
        writer.transport.abort()
        raise FetchError(f"bad response from {where}: {exc}") from None
    except FetchError:
        writer.transport.abort()
        raise
    except OSError as exc:
        raise FetchError(f"connection to {where} failed: {exc.strerror or exc}") from None
    finally:
        await close_writer(writer)


async def _exchange(u: Url, conn: h11.Connection, where: str, reader: asyncio.StreamReader,
                    out_file: BinaryIO, progress: Progress | None,
                    timeout: float) -> FetchResult:
    """The response to the request already sent on ``conn``."""
    status, reason, length, received = 0, "", None, 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            async with asyncio.timeout(timeout):  # (no task per read, unlike wait_for)
                data = await reader.read(READ_SIZE)
            if not data and conn.their_state is h11.SEND_RESPONSE:
                raise FetchError(f"{where} closed the connection without a response")
            conn.receive_data(data)
        elif isinstance(event, h11.InformationalResponse):
            continue  # 1xx: the final response follows
        elif isinstance(event, h11.Response):
            status, reason = event.status_code, event.reason.decode("latin-1")
            headers = dict(event.headers)
            if 300 <= status < 400:
                location = headers.get(b"location", b"").decode("latin-1")
                raise FetchError(f"HTTP {status} {reason}: redirect to {location or '?'} "
                                 "(redirects are not followed)")
            if status >= 400:
                raise FetchError(f"HTTP {status} {reason} for {u.target}")
            if b"content-length" in headers:
                length = int(headers[b"content-length"])
            if progress is not None:
                progress(0, length)
            if (length is not None and b"transfer-encoding" not in headers
                    and status not in (204, 205)):
                # A Content-Length body: h11 framed the head; the body bytes go straight from
                # the stream to the file (two copies of every byte fewer than h11's buffer).
                received = await _copy_body(conn, reader, out_file, length, progress, timeout)
                return FetchResult(status, reason, length, received)
        elif isinstance(event, h11.Data):
            try:
                out_file.write(event.data)
            except OSError as exc:  # disk full, closed pipe: not the network's fault
                raise FetchError(f"cannot write the body: {exc.strerror or exc}") from None
            received += len(event.data)
            if progress is not None:
                progress(received, length)
        elif isinstance(event, h11.EndOfMessage):
            return FetchResult(status, reason, length, received)
        else:  # ConnectionClosed before EndOfMessage: h11 raises for a short body first
            raise FetchError(f"{where} closed the connection after {received} body bytes")


async def _copy_body(conn: h11.Connection, reader: asyncio.StreamReader, out_file: BinaryIO,
                     length: int, progress: Progress | None, timeout: float) -> int:
    """Copy a ``length``-byte body (what h11 buffered past the head, then the stream) to
    ``out_file``; a short body raises h11's RemoteProtocolError, as h11 itself would."""
    received = 0

    def take(data: bytes) -> None:
        nonlocal received
        if len(data) > length - received:
            data = data[:length - received]  # (bytes past the body are not ours)
        try:
            out_file.write(data)
        except OSError as exc:  # disk full, closed pipe: not the network's fault
            raise FetchError(f"cannot write the body: {exc.strerror or exc}") from None
        received += len(data)
        if progress is not None:
            progress(received, length)

    buffered, _ = conn.trailing_data
    if buffered:
        take(buffered)
    while received < length:
        async with asyncio.timeout(timeout):
            data = await reader.read(READ_SIZE)
        if not data:
            raise h11.RemoteProtocolError(
                "peer closed connection without sending complete message body: received "
                f"{received} bytes, expected {length}")
        take(data)
    return received


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


class ProgressBar:
    """A one-line progress bar on ``stream`` (only when it is a TTY), redrawn at most 10x/s,
    and a final summary line (always), e.g. ``20971520 bytes in 0.84 s (199.7 Mbit/s)``.
    """

    def __init__(self, stream: TextIO, *, clock: Callable[[], float] = time.monotonic,
                 interval: float = 0.1, width: int = 30) -> None:
        self.stream = stream
        self.clock = clock
        self.interval = interval
        self.width = width
        self.tty = stream.isatty()
        self.start = clock()
        self._last_draw = -1e9
        self._drawn = False

    def __call__(self, received: int, total: int | None) -> None:
        if not self.tty:
            return
        now = self.clock()
        if now - self._last_draw < self.interval and received != total:
            return
        self._last_draw = now
        elapsed = max(now - self.start, 1e-9)
        rate = _human(received / elapsed) + "/s"
        if total:
            frac = min(received / total, 1.0)
            fill = int(frac * self.width)
            bar = "#" * fill + "." * (self.width - fill)
            line = f"[{bar}] {frac * 100:5.1f}% {_human(received)} of {_human(total)} {rate}"
        else:
            line = f"{_human(received)} {rate}"
        self.stream.write("\r" + line + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def summary(self, received: int) -> str:
        elapsed = max(self.clock() - self.start, 1e-9)
        mbit = received * 8 / elapsed / 1e6
        return f"{received} bytes in {elapsed:.2f} s ({mbit:.1f} Mbit/s)"

    def finish(self, received: int | None = None) -> None:
        """End the bar's line; with ``received``, print the summary line."""
        if self._drawn:
            self.stream.write("\n")
        if received is not None:
            self.stream.write(self.summary(received) + "\n")
        self.stream.flush()
