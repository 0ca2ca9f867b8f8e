"""The kernel talks to ``pytcp up --http 80 --echo 7 --discard 9`` across the TUN: curl downloads,
keep-alive, 100 concurrent connections, a 10 MB echo round trip, ping.

One namespace and one pytcp process serve the whole module (``served`` fixture).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import STACK_ADDR, Served, curl, file_sha256, sha256


def test_curl_downloads_10_mb_byte_identical(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "big"
    res = curl(served.ns, "-o", str(out), "-w", "%{http_code} %{size_download}",
               f"http://{STACK_ADDR}/big", timeout=60)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.decode() == f"200 {len(served.data.big)}"
    assert file_sha256(out) == sha256(served.data.big)


def test_fifty_files_over_one_keep_alive_connection(served: Served, tmp_path: Path) -> None:
    paths = sorted(served.data.small)
    args: list[str] = ["-w", "%{http_code} %{num_connects} %{size_download}\\n"]
    for i, path in enumerate(paths):
        args += [f"http://{STACK_ADDR}{path}", "-o", str(tmp_path / f"{i:02d}")]
    res = curl(served.ns, *args, timeout=60)
    assert res.returncode == 0, res.stderr.decode()
    lines = res.stdout.decode().split("\n")[:-1]
    assert len(lines) == len(paths)
    # num_connects is 1 for the request that opened the connection and 0 when it was reused.
    assert [line.split()[:2] for line in lines] == [["200", "1"]] + [["200", "0"]] * (
        len(paths) - 1), "curl did not reuse one connection for all files"
    for i, path in enumerate(paths):
        assert (tmp_path / f"{i:02d}").read_bytes() == served.data.small[path], path


async def _connect(served: Served) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = served.ns.socket()
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (STACK_ADDR, 80))
    return await asyncio.open_connection(sock=sock)


async def _fetch(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 path: str) -> tuple[int, bytes]:
    reader, writer = conn
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {STACK_ADDR}\r\nConnection: close\r\n\r\n"
                 .encode())
    await writer.drain()
    raw = await reader.read()  # until the server's FIN
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else -1
    return status, body


def test_hundred_concurrent_connections_all_served(served: Served) -> None:
    small = sorted(served.data.small)
    paths = [small[i % len(small)] for i in range(100)]

    async def main() -> list[tuple[int, bytes]]:
        # All 100 connections are open at once before the first request is sent.
        conns = await asyncio.wait_for(
            asyncio.gather(*[_connect(served) for _ in paths]), timeout=30)
        return list(await asyncio.wait_for(
            asyncio.gather(*[_fetch(c, p) for c, p in zip(conns, paths)]), timeout=60))

    results = asyncio.run(main())
    assert [status for status, _ in results] == [200] * 100
    for (_, body), path in zip(results, paths):
        assert body == served.data.small[path], path


def test_echo_round_trip_10_mb_sent_and_read_concurrently(served: Served) -> None:
    payload = served.data.big
    sock = served.ns.socket()
    sock.settimeout(60)
    sock.connect((STACK_ADDR, 7))
    sent_error: list[BaseException] = []

    def sender() -> None:
        try:
            view = memoryview(payload)
            for off in range(0, len(view), 256 * 1024):
                sock.sendall(view[off:off + 256 * 1024])
            sock.shutdown(socket.SHUT_WR)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            sent_error.append(exc)

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    received = bytearray()
    deadline = time.monotonic() + 60
    while len(received) < len(payload) and time.monotonic() < deadline:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        received += chunk
    thread.join(timeout=10)
    sock.close()
    assert not sent_error, sent_error
    assert len(received) == len(payload)
    assert sha256(bytes(received)) == sha256(payload)


def test_ping_from_the_kernel_is_answered(served: Served) -> None:
    res = served.ns.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "1000", STACK_ADDR],
                        timeout=20)
    out = res.stdout.decode()
    assert res.returncode == 0, out + res.stderr.decode()
    assert "3 received" in out, out


def test_wrk_hundred_keep_alive_connections_no_errors(served: Served) -> None:
    if served.ns.run(["sh", "-c", "command -v wrk"], timeout=10).returncode:
        pytest.skip("wrk is not installed")
    res = served.ns.run(["wrk", "-t", "2", "-c", "100", "-d", "3s", "--timeout", "5s",
                         f"http://{STACK_ADDR}/s/05.bin"], timeout=30)
    out = res.stdout.decode()
    assert res.returncode == 0, out + res.stderr.decode()
    assert "Socket errors" not in out, out
    assert "Non-2xx or 3xx responses" not in out, out
    requests = int(out.split(" requests in ")[0].split()[-1])
    assert requests >= 100, out
