"""The HTTP/1.1 server (h11) over the kernel's TCP on 127.0.0.1: files, errors, confinement,
keep-alive, pipelining, streaming, the status page, idle timeout."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import random
import tracemalloc
from pathlib import Path

import pytest
from apps_helpers import read_response, run, serving

from tests.streamtools import read_to_eof

from pytcp.apps.http_server import content_type, requested_range, serve_http, target_path

SECRET = b"TOP-SECRET-OUTSIDE-ROOT"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """www/ with files, a subdir with index.html, an empty dir, symlinks in and out of it."""
    outside = tmp_path / "outside.txt"
    outside.write_bytes(SECRET)
    www = tmp_path / "www"
    www.mkdir()
    (www / "hello.txt").write_bytes(b"hello world\n")
    (www / "page.html").write_bytes(b"<p>hi</p>")
    (www / "data.bin").write_bytes(bytes(range(256)))
    (www / "sp ace.txt").write_bytes(b"space")
    (www / "sub").mkdir()
    (www / "sub" / "index.html").write_bytes(b"<h1>sub index</h1>")
    (www / "empty").mkdir()
    (www / "empty" / "a<b>.txt").write_bytes(b"")
    (www / "escape.txt").symlink_to(outside)
    (www / "escape-dir").symlink_to(tmp_path)
    (www / "inside-link.txt").symlink_to(www / "hello.txt")
    os.mkfifo(www / "fifo")
    return www


def files(root: Path) -> functools.partial[object]:
    return functools.partial(serve_http, root=root, status_provider=None)


async def request(port: int, raw: bytes) -> bytes:
    """Send raw bytes, read the whole answer until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await read_to_eof(reader)
    writer.close()
    return data


async def get(port: int, target: str, method: str = "GET"
              ) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    answer = await read_response(reader, head=(method == "HEAD"))
    assert await read_to_eof(reader) == b""  # Connection: close -> the server closes
    writer.close()
    return answer


# --- GET / HEAD / errors -----------------------------------------------------------------------

def test_get_a_file_has_its_bytes_length_and_type(root: Path) -> None:
    async def body() -> None:
        async with serving(files(root)) as port:
            status, headers, data = await get(port, "/hello.txt")
            assert (status, data) == (200, b"hello world\n")
            assert headers["content-length"] == "12"
            assert headers["content-type"] == "text/plain; charset=utf-8"
            assert headers["server"].startswith("pytcp/")
            assert "date" in headers
            status, headers, data = await get(port, "/data.bin")
            assert (status, data) == (200, bytes(range(256)))
            assert headers["content-type"] == "application/octet-stream"
            status, _, data = await get(port, "/sp%20ace.txt?x=1")
            assert (status, data) == (200, b"space")
            status, _, data = await get(port, "http://example/hello.txt")  # absolute-form
            assert (status, data) == (200, b"hello world\n")
            status, _, data = await get(port, "/inside-link.txt")
            assert (status, data) == (200, b"hello world\n")

    run(body())


def test_head_sends_the_headers_of_get_and_no_body(root: Path) -> None:
    async def body() -> None:
        async with serving(files(root)) as port:
            raw = await request(port, b"HEAD /hello.txt HTTP/1.1\r\nHost: t\r\n"
                                      b"Connection: close\r\n\r\n")
            head, _, rest = raw.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ")
            assert b"\r\nContent-Length: 12" in head
            assert rest == b""

    run(body())


def test_missing_file_is_404_and_other_methods_are_405_with_allow(root: Path) -> None:
    async def body() -> None:
        async with serving(files(root)) as port:
            status, _, _ = await get(port, "/nope.txt")
            assert status == 404
            for method in ("POST", "PUT", "DELETE", "OPTIONS"):
                raw = await request(port, f"{method} /hello.txt HTTP/1.1\r\nHost: t\r\n"
                                          "Content-Length: 5\r\n\r\nabcde".encode())
                assert raw.startswith(b"HTTP/1.1 405 "), raw
                assert b"\r\nAllow: GET, HEAD\r\n" in raw

    run(body())


def test_malformed_requests_get_400_then_close(root: Path) -> None:
    async def body() -> None:
        async with serving(files(root)) as port:
            for raw in (b"GARBAGE\r\n\r\n",
                        b"GET /hello.txt HTTP/1.1\r\n\r\n",             # no Host
                        b"GET /hello.txt HTTP/1.1\r\nHost: a\r\nbad header\r\n\r\n",
                        b"GET hello.txt HTTP/1.1\r\nHost: a\r\n\r\n",   # not origin-form
                        b"GET /%00 HTTP/1.1\r\nHost: a\r\n\r\n",        # NUL
                        b"GET /%ff%fe HTTP/1.1\r\nHost: a\r\n\r\n"):    # not UTF-8
                answer = await request(port, raw)
                assert answer.startswith(b"HTTP/1.1 400 "), (raw, answer)
            # Oversized headers: 431 from h11's hint.
            answer = await request(port, b"GET / HTTP/1.1\r\nHost: a\r\nX: "
                                   + b"a" * 70000 + b"\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]

    run(body())


# --- confinement to the root -------------------------------------------------------------------

@pytest.mark.parametrize("target", [
    "/../outside.txt", "/../../../../etc/passwd", "/%2e%2e/outside.txt", "/%2E%2E%2Foutside.txt",
    "/sub/../../outside.txt", "/..%2f..%2fetc%2fpasswd", "//etc/passwd", "/etc/passwd",
    "/escape.txt", "/escape-dir/outside.txt", "/escape-dir/", "http://h/../outside.txt",
])
def test_traversal_never_leaks_outside_the_root(root: Path, target: str) -> None:
    async def body() -> None:
        async with serving(files(root)) as port:
            raw = await request(port, f"GET {target} HTTP/1.1\r\nHost: t\r\n"
                                      "Connection: close\r\n\r\n".encode())
            status = int(raw.split(b" ", 2)[1])
            assert status in (400, 404), raw[:200]
            assert SECRET not in raw
            assert b"root:" not in raw

    run(body())


def test_special_files_are_not_served(root: Path) -> None:
    async def body() -> None:
        async with serving(files(root)) as port:
            status, _, _ = await get(port, "/fifo")  # would block forever if opened
            assert status == 404

    run(body())


def test_target_path_segments() -> None:
    assert target_path(b"/a/./b//c?q#f") == ("/a/./b//c", ["a", "b", "c"])
    assert target_path(b"/%61%2Fb") == ("/a/b", ["a", "b"])
    assert content_type("x.html") == "text/html; charset=utf-8"
    assert content_type("x.tar.gz") == "application/octet-stream"


# --- directories -------------------------------------------------------------------------------

def test_directories_redirect_serve_index_or_list(root: Path) -> None:
    async def body() -> None:
        async with serving(files(root)) as port:
            status, headers, _ = await get(port, "/sub")
            assert (status, headers["location"]) == (301, "/sub/")
            status, _, data = await get(port, "/sub/")
            assert (status, data) == (200, b"<h1>sub index</h1>")
            status, headers, data = await get(port, "/empty/")
            assert status == 200 and headers["content-type"].startswith("text/html")
            assert b'<a href="a%3Cb%3E.txt">a&lt;b&gt;.txt</a>' in data
            status, _, data = await get(port, "/")
            assert status == 200
            for name in (b"hello.txt", b"sub/", b"empty/"):
                assert name in data

    run(body())


# --- keep-alive, pipelining, streaming ---------------------------------------------------------

def test_fifty_requests_on_one_keep_alive_connection(root: Path) -> None:
    async def body() -> None:
        accepted = 0

        async def counting(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            nonlocal accepted
            accepted += 1
            await serve_http(r, w, root, None)

        async with serving(counting) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for i in range(50):
                target = "/hello.txt" if i % 2 == 0 else "/data.bin"
                writer.write(f"GET {target} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
                status, _, data = await read_response(reader)
                assert status == 200
                assert data == (b"hello world\n" if i % 2 == 0 else bytes(range(256)))
            writer.write(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            assert (await read_response(reader))[0] == 200
            assert await read_to_eof(reader) == b""
            writer.close()
            assert accepted == 1

    run(body())


def test_pipelined_requests_are_answered_in_order(root: Path) -> None:
    async def body() -> None:
        async with serving(files(root)) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /data.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                         b"HEAD /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                         b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
                         b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            status, _, data = await read_response(reader)
            assert (status, data) == (200, bytes(range(256)))
            status, headers, data = await read_response(reader, head=True)
            assert (status, headers["content-length"], data) == (200, "12", b"")
            status, _, _ = await read_response(reader)
            assert status == 404
            status, _, data = await read_response(reader)
            assert (status, data) == (200, b"hello world\n")
            assert await read_to_eof(reader) == b""
            writer.close()

    run(body())


def test_a_20_mb_file_streams_with_equal_sha256_and_bounded_memory(root: Path) -> None:
    size = 20 * 1024 * 1024
    rng = random.Random(20)
    expected = hashlib.sha256()
    with open(root / "big.bin", "wb") as f:
        for _ in range(size // (1 << 20)):
            block = rng.randbytes(1 << 20)
            expected.update(block)
            f.write(block)

    async def body() -> None:
        async with serving(files(root)) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ")
            assert f"\r\nContent-Length: {size}\r\n".encode() in head
            got = hashlib.sha256()
            n = 0
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    break
                n += len(data)
                got.update(data)
            writer.close()
            assert n == size
            assert got.hexdigest() == expected.hexdigest()

    tracemalloc.start()
    try:
        run(body())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Both ends live in this process; streaming keeps them to a few chunks, far below 20 MB.
    assert peak < 4 * 1024 * 1024, peak


def test_a_keep_alive_connection_idle_past_the_timeout_is_closed(root: Path) -> None:
    async def body() -> None:
        handler = functools.partial(serve_http, root=root, status_provider=None,
                                    idle_timeout=0.3)
        async with serving(handler) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            assert (await read_response(reader))[0] == 200
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            assert await asyncio.wait_for(read_to_eof(reader), 5) == b""
            assert 0.2 < loop.time() - t0 < 3
            writer.close()

    run(body())


# --- the status page -----------------------------------------------------------------------------

SNAPSHOT = {
    "pytcp": "0.1.0", "addr": "10.77.0.2",
    "connections": [{"local": "10.77.0.2:80", "remote": "10.77.0.1:40000",
                     "state": "ESTABLISHED", "bytes_in": 77, "bytes_out": 1234,
                     "retransmits": 3, "srtt_ms": 1.5, "rto_ms": 201.0, "cwnd": 14600,
                     "ssthresh": 65535, "snd_wnd": 65535, "rcv_wnd": 65535}],
    "counters": {"rx_packets": 10, "tx_packets": 9},
    "drops": {"bad_checksum": 2},
}


def test_status_page_html_and_json_without_root() -> None:
    async def body() -> None:
        handler = functools.partial(serve_http, root=None, status_provider=lambda: SNAPSHOT)
        async with serving(handler) as port:
            status, headers, data = await get(port, "/")
            assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
            # (human units: 1234 B = 1.21 KiB, 14600 B = 14.3 KiB, 1.5 ms)
            for text in (b"10.77.0.1:40000", b"ESTABLISHED", b"1.21 KiB", b"14.3 KiB",
                         b"1.50 ms", b"bad_checksum", b"rx_packets"):
                assert text in data, text
            status, headers, data = await get(port, "/status.json")
            assert status == 200 and headers["content-type"] == "application/json"
            assert json.loads(data) == SNAPSHOT
            status, _, _ = await get(port, "/hello.txt")
            assert status == 404
            status, _, data = await get(port, "/", method="HEAD")
            assert (status, data) == (200, b"")

    run(body())


def test_http_1_0_gets_its_answer_and_a_close(root: Path) -> None:
    async def body() -> None:
        async with serving(files(root)) as port:
            raw = await request(port, b"GET /hello.txt HTTP/1.0\r\n\r\n")
            head, _, data = raw.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"\r\nConnection: close" in head
            assert data == b"hello world\n"

    run(body())


def test_a_request_dribbled_too_slowly_gets_408_and_a_close(root: Path) -> None:
    async def body() -> None:
        handler = functools.partial(serve_http, root=root, status_provider=None,
                                    idle_timeout=5.0, request_timeout=0.4)
        async with serving(handler) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            loop = asyncio.get_running_loop()
            t0 = loop.time()

            async def dribble() -> None:  # one byte every 50 ms, never finishing the head
                for ch in b"GET /hello.txt HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 200:
                    writer.write(bytes([ch]))
                    await asyncio.sleep(0.05)

            slow = asyncio.create_task(dribble())
            answer = await read_to_eof(reader)
            slow.cancel()
            assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer[:100]
            assert 0.3 < loop.time() - t0 < 3
            writer.close()

    run(body())


def test_a_client_that_stops_reading_is_cut_off_after_the_timeout(root: Path) -> None:
    (root / "big.bin").write_bytes(bytes(32 * 1024 * 1024))

    async def body() -> None:
        handler = functools.partial(serve_http, root=root, status_provider=None,
                                    idle_timeout=0.5)
        async with serving(handler) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 16)
            writer.write(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            await asyncio.sleep(2.0)  # read nothing: the server's drain times out
            got = 0
            try:  # what the kernel buffered, then the end (asyncio's abort() is a FIN here)
                while data := await reader.read(1 << 20):
                    got += len(data)
            except ConnectionResetError:
                pass
            assert 0 < got < 32 * 1024 * 1024
            writer.close()

    run(body())


def test_a_failing_status_provider_is_a_500_not_a_dead_server() -> None:
    def broken() -> dict[str, object]:
        raise RuntimeError("boom")

    async def body() -> None:
        handler = functools.partial(serve_http, root=None, status_provider=broken)
        async with serving(handler) as port:
            status, _, data = await get(port, "/status.json")
            assert status == 500 and b"boom" not in data

    run(body())


# --- byte ranges (RFC 9110 14) -------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    (b"bytes=0-9", (0, 9)), (b"bytes=5-", (5, 99)), (b"bytes=-3", (97, 99)),
    (b"bytes=-500", (0, 99)), (b"bytes=90-200", (90, 99)), (b"bytes=99-99", (99, 99)),
    (b"bytes= 3 - 4", (3, 4)),
    (b"bytes=0-0,5-6", None), (b"items=0-1", None), (b"bytes=9-2", None), (b"bytes=x-2", None),
    (b"bytes=-", None), (b"bytes=\xb2-3", None),
])
def test_requested_range(value: bytes, expected: tuple[int, int] | None) -> None:
    assert requested_range([(b"range", value)], 100) == expected


@pytest.mark.parametrize("value", [b"bytes=100-", b"bytes=-0", b"bytes=500-600"])
def test_unsatisfiable_ranges_are_416(value: bytes) -> None:
    with pytest.raises(Exception) as info:
        requested_range([(b"range", value)], 100)
    assert getattr(info.value, "status", None) == 416


def test_if_range_or_two_range_headers_mean_the_whole_file() -> None:
    assert requested_range([(b"range", b"bytes=0-1"), (b"if-range", b"x")], 100) is None
    assert requested_range([(b"range", b"bytes=0-1"), (b"range", b"bytes=2-3")], 100) is None


def test_range_requests_get_206_with_content_range_or_416(root: Path) -> None:
    async def body() -> None:
        async with serving(files(root)) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=10-19\r\n\r\n"
                         b"GET /data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=-6\r\n\r\n"
                         b"HEAD /data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=250-\r\n\r\n"
                         b"GET /data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=256-\r\n\r\n"
                         b"GET /data.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            status, headers, data = await read_response(reader)
            assert (status, headers["content-range"], data) == (206, "bytes 10-19/256",
                                                                bytes(range(10, 20)))
            status, headers, data = await read_response(reader)
            assert (status, headers["content-range"], data) == (206, "bytes 250-255/256",
                                                                bytes(range(250, 256)))
            status, headers, data = await read_response(reader, head=True)
            assert (status, headers["content-length"], data) == (206, "6", b"")
            status, headers, _ = await read_response(reader)
            assert (status, headers["content-range"]) == (416, "bytes */256")
            status, headers, data = await read_response(reader)  # the connection survived
            assert (status, headers["accept-ranges"], data) == (200, "bytes", bytes(range(256)))
            assert await read_to_eof(reader) == b""
            writer.close()

    run(body())
