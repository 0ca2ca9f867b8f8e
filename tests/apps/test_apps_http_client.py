"""The HTTP client (``fetch``) against Python's ``http.server`` and against our own server, over
the kernel's TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import http.server
import io
import itertools
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from apps_helpers import run, serving

from pytcp.apps.http_client import FetchError, ProgressBar, fetch, parse_url
from pytcp.apps.http_server import serve_http

BODY = bytes(range(256)) * 4000  # 1,024,000 bytes


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        if self.path == "/fixed":
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(BODY), 70_000):
                piece = BODY[i:i + 70_000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/until-close":  # no length, no chunking: the body ends at our FIN
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(BODY)
            self.close_connection = True
        elif self.path == "/short":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.close_connection = True
        elif self.path == "/moved":
            self.send_response(301)
            self.send_header("Location", "/fixed")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/echo-host":
            body = self.headers["Host"].encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def kernel_fetch(url: str, out: io.BytesIO, **kw: object) -> object:
    return run(fetch(url, out, open_connection=asyncio.open_connection, **kw))  # type: ignore[arg-type]


def test_content_length_body_is_written_whole_with_progress(server: int) -> None:
    out = io.BytesIO()
    seen: list[tuple[int, int | None]] = []
    result = kernel_fetch(f"http://127.0.0.1:{server}/fixed", out,
                          progress=lambda n, total: seen.append((n, total)))
    assert out.getvalue() == BODY
    assert (result.status, result.content_length, result.received) == (200, len(BODY), len(BODY))  # type: ignore[attr-defined]
    assert seen[0] == (0, len(BODY)) and seen[-1] == (len(BODY), len(BODY))
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(seen))


def test_chunked_body_is_decoded(server: int) -> None:
    out = io.BytesIO()
    result = kernel_fetch(f"http://127.0.0.1:{server}/chunked", out)
    assert out.getvalue() == BODY
    assert (result.content_length, result.received) == (None, len(BODY))  # type: ignore[attr-defined]


def test_close_delimited_body_is_read_to_the_fin(server: int) -> None:
    out = io.BytesIO()
    result = kernel_fetch(f"http://127.0.0.1:{server}/until-close", out)
    assert out.getvalue() == BODY
    assert (result.content_length, result.received) == (None, len(BODY))  # type: ignore[attr-defined]


def test_host_header_carries_the_port(server: int) -> None:
    out = io.BytesIO()
    kernel_fetch(f"http://127.0.0.1:{server}/echo-host", out)
    assert out.getvalue() == f"127.0.0.1:{server}".encode()


@pytest.mark.parametrize(("path", "message"), [
    ("/missing", "HTTP 404 Not Found for /missing"),
    ("/moved", "HTTP 301 Moved Permanently: redirect to /fixed (redirects are not followed)"),
])
def test_error_and_redirect_statuses_raise_one_line(server: int, path: str, message: str) -> None:
    with pytest.raises(FetchError) as info:
        kernel_fetch(f"http://127.0.0.1:{server}{path}", io.BytesIO())
    assert str(info.value) == message


def test_truncated_body_is_an_error(server: int) -> None:
    out = io.BytesIO()
    with pytest.raises(FetchError, match="bad response from 127.0.0.1:.*complete message body"):
        kernel_fetch(f"http://127.0.0.1:{server}/short", out)
    assert out.getvalue() == b"x" * 10


def test_refused_connection_is_one_clear_error() -> None:
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(FetchError) as info:
            kernel_fetch(f"http://127.0.0.1:{port}/", io.BytesIO())
    assert str(info.value) == f"connection refused by 127.0.0.1:{port}"


def test_a_silent_server_times_out() -> None:
    async def body() -> None:
        async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await asyncio.sleep(5)
            w.close()

        async with serving(silent) as port:
            with pytest.raises(FetchError, match="timed out after 0.3 s waiting for data"):
                await fetch(f"http://127.0.0.1:{port}/", io.BytesIO(),
                            open_connection=asyncio.open_connection, timeout=0.3)

    run(body())


@pytest.mark.parametrize(("url", "message"), [
    ("https://127.0.0.1/", "unsupported URL scheme"),
    ("ftp://x/", "unsupported URL scheme"),
    ("http:///path", "no host"),
    ("http://h:99999/", "invalid URL"),
])
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(FetchError, match=message):
        parse_url(url)


def test_parse_url_parts() -> None:
    u = parse_url("http://user@10.77.0.1:8080/a/b?x=1#frag")
    assert (u.host, u.port, u.target, u.authority) == ("10.77.0.1", 8080, "/a/b?x=1",
                                                       "10.77.0.1:8080")
    assert parse_url("http://10.77.0.1").target == "/"
    assert parse_url("http://10.77.0.1").port == 80


def test_fetch_from_our_own_server(tmp_path: Path) -> None:
    data = hashlib.sha256(b"seed").digest() * 100_000  # 3.2 MB
    (tmp_path / "f.bin").write_bytes(data)

    async def body() -> None:
        async with serving(functools.partial(serve_http, root=tmp_path,
                                             status_provider=None)) as port:
            out = io.BytesIO()
            result = await fetch(f"http://127.0.0.1:{port}/f.bin", out,
                                 open_connection=asyncio.open_connection)
            assert result.received == len(data)
            assert out.getvalue() == data

    run(body())


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_only_on_a_tty_and_always_summarises() -> None:
    t = [0.0]
    tty = FakeTty()
    bar = ProgressBar(tty, clock=lambda: t[0])
    bar(0, 1000)
    t[0] = 0.5
    bar(500, 1000)
    t[0] = 0.55
    bar(600, 1000)  # within 0.1 s of the last draw: not drawn
    t[0] = 1.0
    bar(1000, 1000)
    bar.finish(1000)
    text = tty.getvalue()
    assert text.count("\r") == 3
    assert " 50.0% " in text and "100.0%" in text and " 60.0%" not in text
    assert text.endswith("\n1000 bytes in 1.00 s (0.0 Mbit/s)\n")

    plain = io.StringIO()
    bar = ProgressBar(plain, clock=lambda: t[0])
    bar(10, None)
    t[0] = 3.0
    bar.finish(2_000_000)
    assert plain.getvalue() == "2000000 bytes in 2.00 s (8.0 Mbit/s)\n"


class FullDisk(io.BytesIO):
    def write(self, data: object) -> int:
        raise OSError(28, "No space left on device")


def test_an_output_that_cannot_be_written_is_named_as_such(server: int) -> None:
    with pytest.raises(FetchError, match="^cannot write the body: No space left on device$"):
        kernel_fetch(f"http://127.0.0.1:{server}/fixed", FullDisk())
