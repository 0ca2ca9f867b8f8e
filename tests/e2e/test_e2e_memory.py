"""Memory that follows use, end to end (issue 7): the process RSS of ``pytcp up`` with 2,000
idle keep-alive HTTP connections, and 10,000 connection cycles that leave nothing behind once
TIME-WAIT (shortened to 1 s with ``--time-wait``) has expired. The kernel is the client."""

from __future__ import annotations

import json
import resource
import select
import socket
import time
from pathlib import Path

from tests.e2e.conftest import STACK_ADDR, StartPytcp, curl
from tools.bench_memory import _rss, keepalive_rss
from tools.netns import Netns

RSS_PER_CONNECTION = 16 * 1024  # issue 7: an idle keep-alive HTTP connection, in total


def test_2000_idle_keepalive_connections_cost_at_most_16_kb_each(tmp_path: Path) -> None:
    got = keepalive_rss(2000, tmp_path, warmup=100)
    per = got["per_connection"]
    print(f"RSS {got['rss_before'] / 2**20:.1f} MiB -> {got['rss_after'] / 2**20:.1f} MiB "
          f"with 2,000 idle keep-alive connections: {per:,.0f} B each")
    assert per <= RSS_PER_CONNECTION, f"{per:,.0f} B per connection"


def _cycles(ns: Netns, n: int, batch: int = 200) -> None:
    """``n`` HTTP/1.1 requests with ``Connection: close``: pytcp closes first (and holds
    TIME-WAIT); each response is read to its end, then the client closes. Connects of a
    batch are started together (non-blocking), so pytcp sees them in read batches."""
    request = f"GET /missing HTTP/1.1\r\nHost: {STACK_ADDR}\r\nConnection: close\r\n\r\n".encode()
    done = 0
    while done < n:
        with ns.entered():
            group = [socket.socket() for _ in range(min(batch, n - done))]
        try:
            for s in group:
                s.setblocking(False)
                s.connect_ex((STACK_ADDR, 80))
            deadline = time.monotonic() + 20.0
            pending = set(group)
            while pending:
                assert time.monotonic() < deadline, "connects did not complete"
                _, ready, _ = select.select([], list(pending), [], 1.0)
                for s in ready:
                    assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                    s.setblocking(True)
                    s.settimeout(20.0)
                    s.sendall(request)
                    pending.discard(s)
            for s in group:
                got = b""
                while chunk := s.recv(65536):
                    got += chunk
                assert got.startswith(b"HTTP/1.1 404"), got[:60]
        finally:
            for s in group:
                s.close()
        done += len(group)


def _status(ns: Netns) -> dict:  # type: ignore[type-arg]
    res = curl(ns, f"http://{STACK_ADDR}/status.json", timeout=10)
    assert res.returncode == 0, res.stderr.decode()
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def _wait_time_wait_gone(ns: Netns, limit: float = 10.0) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + limit
    while True:
        st = _status(ns)
        if st["memory"]["time_wait"] == 0 or time.monotonic() > deadline:
            return st
        time.sleep(0.3)


def test_10000_connection_cycles_leave_nothing_once_time_wait_expired(
        netns: Netns, start_pytcp: StartPytcp) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1024:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    up = start_pytcp(netns, "--http", "80", "--time-wait", "1")
    pid = up.proc.pid
    _cycles(netns, 2000)  # warm-up: caches, allocator arenas, the timer heap
    st = _wait_time_wait_gone(netns)
    assert st["memory"]["time_wait"] == 0
    before = _rss(pid)
    t0 = time.monotonic()
    _cycles(netns, 8000)
    took = time.monotonic() - t0
    mid = _status(netns)
    st = _wait_time_wait_gone(netns)
    after = _rss(pid)
    c = st["counters"]
    print(f"8,000 cycles in {took:.1f} s; TIME-WAIT entries right after: "
          f"{mid['memory']['time_wait']}; RSS {before / 2**20:.1f} -> {after / 2**20:.1f} MiB")
    assert mid["memory"]["time_wait"] > 0  # pytcp closed first: TIME-WAIT was held
    assert st["memory"]["time_wait"] == 0  # and it all expired
    assert c["time_wait_entered"] >= 10_000 - 5
    assert c["time_wait_expired"] + c.get("time_wait_reused", 0) == c["time_wait_entered"]
    assert len(st["connections"]) <= 1  # (the status request itself)
    assert st["memory"]["rmem_used"] == 0
    # No growth: a leak of even 200 bytes a cycle would be 1.6 MB (30,000 cycles measured
    # flat: 46.3 -> 46.5 MiB).
    assert after - before < 1.5 * 2**20, f"RSS grew by {(after - before) / 1024:.0f} KiB"
