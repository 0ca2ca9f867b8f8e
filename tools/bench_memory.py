#!/usr/bin/env python3
"""Memory per connection: pytcp's engine in-process (tracemalloc), and ``pytcp up`` end to end.

Engine figures (always): a server :class:`pytcp.stack.Stack` with a listener gets N
connections from a hand-driven peer whose state is two integer arrays (so only the server's
memory is measured), in virtual time, and tracemalloc counts the bytes still allocated per
connection (the stack's tables and timers, the handle, the engine), in four situations:

- ``idle``: established and accepted, nothing sent;
- ``keep-alive``: after a 100-byte request (read by the application) and a 4 KB response
  (acknowledged): an idle HTTP keep-alive connection as the engine sees it;
- ``unread 64 KB``: 64 KB received and not read (what the receive side holds);
- ``TIME-WAIT``: the server closed first; the compact TIME-WAIT entry.

End to end (``--e2e``, root): ``pytcp up --http`` in a throw-away network namespace serves
a 4 KB file; this process opens N keep-alive HTTP/1.1 connections through the kernel (one
GET each, response read, connection kept open) and reads pytcp's resident set size
(``VmRSS``) before and after: process RSS per idle keep-alive connection, everything
included (engine, asyncio streams, the HTTP session, the interpreter's allocator).

    python3 tools/bench_memory.py                 # engine figures, N = 2,000
    python3 tools/bench_memory.py --e2e           # plus RSS of pytcp up (root)
    python3 tools/bench_memory.py --markdown      # the table for docs/robustness.md

Exit status 2 for a bad flag. The figures are medians of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import array
import gc
import random
import statistics
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytcp.stack import Stack, StackConfig  # noqa: E402
from pytcp.wire.ipv4 import ip_to_int, parse_ipv4  # noqa: E402
from pytcp.wire.tcp import (  # noqa: E402
    ACK,
    FIN,
    PSH,
    SYN,
    TcpOptions,
    build_ipv4_tcp,
    parse_tcp,
)

SERVER = "10.9.0.2"
PEER = ip_to_int("10.9.0.1")
REQUEST = b"GET /4k HTTP/1.1\r\nHost: x\r\nUser-Agent: bench\r\nAccept: */*\r\n" + b"x" * 40
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n" + bytes(4096)


class Peer:
    """N client connections as plain integers (no per-connection objects of pytcp's)."""

    def __init__(self, stack: Stack, n: int) -> None:
        self.stack = stack
        self.n = n
        self.seq = array.array("Q", bytes(8 * n))  # next sequence number of client i
        self.ack = array.array("Q", bytes(8 * n))  # what client i acknowledges
        self.now = 0.0

    def _send(self, i: int, flags: int, payload: bytes = b"") -> None:
        pkt = build_ipv4_tcp(src=PEER, dst=self.stack.addr, sport=20000 + i, dport=80,
                             seq=self.seq[i], ack=self.ack[i], flags=flags, window=65535,
                             options=TcpOptions(mss=1460) if flags & SYN else TcpOptions(),
                             payload=payload)
        self.stack.receive_packet(self.now, pkt)
        self.seq[i] = (self.seq[i] + len(payload) + (1 if flags & (SYN | FIN) else 0)) % 2**32

    def _absorb(self) -> None:
        """Read the server's packets: acknowledge whatever it sent (data, SYN, FIN)."""
        for p in self.stack.pending_packets():
            ip = parse_ipv4(p)
            th = parse_tcp(ip.payload, ip.src, ip.dst)
            i = th.dport - 20000
            end = (th.seq + len(th.payload) + (1 if th.flags & (SYN | FIN) else 0)) % 2**32
            if th.flags & SYN or (end - self.ack[i]) % 2**32 < 2**31:
                self.ack[i] = end

    def tick(self, dt: float = 0.05) -> None:
        self.now += dt
        self.stack.handle_timers(self.now)
        self._absorb()

    def connect_all(self) -> list:  # type: ignore[type-arg]
        lst = self.stack._listeners[80]
        handles = []
        for i in range(self.n):
            self.seq[i] = 1000 + i * 100_000
            self._send(i, SYN)
            self._absorb()
            self._send(i, ACK)
            self._absorb()
            h = lst.accept()
            assert h is not None
            handles.append(h)
        self.stack.pending_events()
        return handles

    def each(self, flags: int, payload: bytes = b"") -> None:
        for i in range(self.n):
            self._send(i, flags, payload)
            self._absorb()

    def ack_all(self) -> None:
        self.each(ACK)


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def engine_figures(n: int) -> dict[str, float]:
    """Bytes per connection traced in the server stack for each situation."""
    out: dict[str, float] = {}
    tracemalloc.start(1)
    try:
        # idle + keep-alive + unread (a stack-wide cap above what N x 64 KB needs)
        stack = Stack(SERVER, now=0.0, config=StackConfig(recv_memory_limit=n << 17),
                      secret=b"b" * 16, rng=random.Random(1))
        stack.listen(80, backlog=n + 1)
        peer = Peer(stack, n)
        base = _traced()
        handles = peer.connect_all()
        peer.tick()
        out["idle (established)"] = (_traced() - base) / n
        peer.each(ACK | PSH, REQUEST)
        for h in handles:
            assert h.receive(peer.now) == REQUEST
            assert h.send(peer.now, RESPONSE) == len(RESPONSE)
        peer._absorb()
        peer.ack_all()
        for _ in range(4):  # delayed ACKs and timers run out
            peer.tick(0.25)
        stack.pending_events()
        out["keep-alive (after a 4 KB response)"] = (_traced() - base) / n
        for _ in range(64):
            peer.each(ACK, bytes(1024))
        peer.tick()
        stack.pending_events()
        out["64 KB received, unread"] = (_traced() - base) / n
        assert all(h.conn.bytes_readable == 65536 for h in handles)
        del handles, peer, stack, h
        gc.collect()
        # TIME-WAIT: the server closes first, the peer ACKs and closes
        stack = Stack(SERVER, now=0.0, config=StackConfig(), secret=b"c" * 16,
                      rng=random.Random(2))
        stack.listen(80, backlog=n + 1)
        peer = Peer(stack, n)
        base = _traced()
        handles = peer.connect_all()
        peer.tick()
        for h in handles:
            h.close(peer.now)
        peer._absorb()
        peer.each(ACK | FIN)
        peer.tick()
        assert stack.time_wait_count == n and not stack.connections()
        del handles, h
        stack.pending_events()
        out["TIME-WAIT (compact entry)"] = (_traced() - base) / n
    finally:
        tracemalloc.stop()
    return out


def _rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _open_keepalive(ns: object, n: int, addr: str, path: str, size: int,
                    batch: int = 200) -> list:  # type: ignore[type-arg]
    """``n`` kernel sockets in ``ns``, each after one complete GET of ``path`` (``size``
    bytes of body) on a kept-alive HTTP/1.1 connection."""
    import socket

    request = f"GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n".encode()
    socks: list[socket.socket] = []
    while len(socks) < n:
        group = []
        with ns.entered():  # type: ignore[attr-defined]
            for _ in range(min(batch, n - len(socks))):
                s = socket.socket()
                s.settimeout(20.0)
                group.append(s)
        for s in group:
            s.connect((addr, 80))
        for s in group:
            s.sendall(request)
        for s in group:
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError("connection closed before the response headers")
                buf += chunk
            head, _, body = buf.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"unexpected response: {head[:80]!r}")
            while len(body) < size:
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError("connection closed in the response body")
                body += chunk
        socks.extend(group)
    return socks


def keepalive_rss(n: int, workdir: Path, *, size: int = 4096, warmup: int = 200,
                  settle: float = 1.0) -> dict[str, float]:
    """``pytcp up --http`` in a throw-away namespace; ``n`` idle keep-alive connections after
    one ``size``-byte response each. Returns RSS before/after and the bytes per connection."""
    import resource
    import time

    from tools.netns import Netns, PytcpUp

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + warmup + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    root = workdir / "www"
    root.mkdir(parents=True, exist_ok=True)
    (root / "f.bin").write_bytes(random.Random(7).randbytes(size))
    ns = Netns("pytcp-mem")
    try:
        up = PytcpUp(ns, ["--http", "80", "--root", str(root), "--idle-timeout", "3600"],
                     workdir)
        try:
            up.wait_ready(30.0)
            pid = up.proc.pid
            warm = _open_keepalive(ns, warmup, "10.77.0.2", "/f.bin", size)
            for s in warm:
                s.close()
            time.sleep(settle)
            before = _rss(pid)
            t0 = time.monotonic()
            socks = _open_keepalive(ns, n, "10.77.0.2", "/f.bin", size)
            opened = time.monotonic() - t0
            time.sleep(settle)
            after = _rss(pid)
            alive = up.proc.poll() is None
            for s in socks:
                s.close()
        finally:
            up.stop()
    finally:
        ns.close()
    if not alive:
        raise RuntimeError("pytcp up exited during the measurement")
    return {"rss_before": before, "rss_after": after, "per_connection": (after - before) / n,
            "open_seconds": opened}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--connections", type=int, default=2000, help="connections (2000)")
    ap.add_argument("--runs", type=int, default=3, help="runs; medians are printed (3)")
    ap.add_argument("--e2e", action="store_true", help="also pytcp up's RSS (root)")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = ap.parse_args(argv)
    if args.connections < 1 or args.runs < 1:
        ap.error("--connections and --runs must be positive")
    runs = [engine_figures(args.connections) for _ in range(args.runs)]
    rows = [(f"engine: {k}", statistics.median(r[k] for r in runs)) for k in runs[0]]
    e2e: list[dict[str, float]] = []
    if args.e2e:
        import tempfile

        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                e2e.append(keepalive_rss(args.connections, Path(tmp)))
        rows.append(("pytcp up --http: process RSS per idle keep-alive connection "
                     "(after a 4 KB response)",
                     statistics.median(r["per_connection"] for r in e2e)))
    n = args.connections
    if args.markdown:
        print(f"| bytes per connection ({n:,} connections, median of {args.runs}) | bytes |")
        print("|---|---:|")
        for k, v in rows:
            print(f"| {k} | {v:,.0f} |")
    else:
        for k, v in rows:
            print(f"{k:70s} {v:10,.0f} B")
    for r in e2e:
        print(f"  e2e run: RSS {r['rss_before'] / 2**20:.1f} MiB -> {r['rss_after'] / 2**20:.1f} "
              f"MiB with {n:,} connections ({r['per_connection']:,.0f} B each; opened in "
              f"{r['open_seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
