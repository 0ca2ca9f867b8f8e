"""The HTTP server's small-file cache: bounds, invalidation on change, and the same answers
as the uncached path (kernel TCP on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import functools
import os
import time
from pathlib import Path

from apps_helpers import read_response, run, serving

from pytcp.apps.http_server import FileCache, serve_http


def _later() -> int:
    """A clock a minute ahead: files written by the test count as settled (ctime cannot be
    dated back)."""
    return time.time_ns() + 60_000_000_000


def _settled(path: Path, data: bytes, age: float = 10.0) -> os.stat_result:
    """Write ``data`` and date its mtime ``age`` seconds back."""
    path.write_bytes(data)
    then = time.time() - age
    os.utime(path, (then, then))
    return os.stat(path)


def test_bounds_evict_the_least_recently_used(tmp_path: Path) -> None:
    cache = FileCache(max_entries=2, max_file=10, max_bytes=15, clock=_later)
    stats = {n: _settled(tmp_path / n, n.encode() * 5) for n in ("a", "b", "c")}
    cache.put("a", stats["a"], b"a" * 5)
    cache.put("b", stats["b"], b"b" * 5)
    assert cache.get("a", stats["a"]) == b"a" * 5   # a is now the most recent
    cache.put("c", stats["c"], b"c" * 5)             # 2 entries at most: b goes
    assert (len(cache), cache.evictions) == (2, 1)
    assert cache.get("b", stats["b"]) is None
    assert cache.get("a", stats["a"]) == b"a" * 5
    big = _settled(tmp_path / "big", b"x" * 11)
    cache.put("big", big, b"x" * 11)                 # over max_file: never kept
    assert cache.get("big", big) is None
    ten = _settled(tmp_path / "ten", b"t" * 10)
    cache.put("ten", ten, b"t" * 10)    # 15 bytes at most: the least recently used (c) goes
    assert (len(cache), cache.bytes, cache.evictions) == (2, 15, 2)
    assert cache.get("c", stats["c"]) is None and cache.get("a", stats["a"]) == b"a" * 5


def test_a_changed_or_fresh_file_is_not_served_from_the_cache(tmp_path: Path) -> None:
    cache = FileCache(clock=_later)
    path = tmp_path / "f"
    st = _settled(path, b"one")
    cache.put(str(path), st, b"one")
    st2 = _settled(path, b"two", age=5.0)            # same size and inode, other mtime
    assert cache.get(str(path), st2) is None and cache.stale == 1
    assert cache.get(str(path), st2) is None and cache.misses == 1
    fresh = FileCache()                               # the real clock
    path.write_bytes(b"new")                          # just written: not kept
    fresh.put(str(path), os.stat(path), b"new")
    assert (len(fresh), fresh.racy) == (0, 1)


def test_served_bytes_follow_the_file_and_ranges_still_work(tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    page = www / "p.txt"
    _settled(page, b"first version\n")
    cache = FileCache(clock=_later)
    handler = functools.partial(serve_http, root=www, status_provider=None, file_cache=cache)

    async def get(port: int, headers: str = "") -> tuple[int, dict[str, str], bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /p.txt HTTP/1.1\r\nHost: t\r\n{headers}"
                     "Connection: close\r\n\r\n".encode())
        answer = await read_response(reader)
        writer.close()
        return answer

    async def body() -> None:
        async with serving(handler) as port:
            first = await get(port)
            assert first[0] == 200 and first[2] == b"first version\n"
            assert (cache.misses, cache.hits, len(cache)) == (1, 0, 1)
            again = await get(port)
            assert again == first and cache.hits == 1   # same headers, same bytes
            assert again[1]["content-length"] == "14"
            assert again[1]["accept-ranges"] == "bytes"
            part = await get(port, "Range: bytes=6-12\r\n")
            assert (part[0], part[2]) == (206, b"version")
            assert part[1]["content-range"] == "bytes 6-12/14"
            _settled(page, b"other version\n", age=5.0)  # same size: the stat tells
            changed = await get(port)
            assert changed[2] == b"other version\n" and cache.stale == 1
            head_reader, head_writer = await asyncio.open_connection("127.0.0.1", port)
            head_writer.write(b"HEAD /p.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            status, hdrs, data = await read_response(head_reader, head=True)
            assert (status, hdrs["content-length"], data) == (200, "14", b"")
            assert await head_reader.read() == b""
            head_writer.close()
    run(body())
