#!/usr/bin/env python3
"""Microbenchmark of pytcp's per-segment work, in process and in virtual time.

Two :class:`pytcp.stack.Stack` objects (10.0.0.1 sends, 10.0.0.2 receives) exchange IPv4
packets through lists: no TUN, no event loop, no clock but a virtual one, so the figures
measure only the stack's Python work and are much less noisy than an end-to-end run.

- **receive path**: the receiver's ``receive_batch`` of the data packets (in read batches of
  ``--batch`` packets, as the runtime reads a TUN), its ``pending_packets`` (the ACKs) and the
  application's ``receive``; divided by the data packets received.
- **send path**: the sender's application ``send`` calls, its ``receive_batch`` of the ACKs
  (which releases the send buffer and sends more) and its ``pending_packets``; divided by the
  data packets sent.
- **connection**: a whole short connection (SYN .. request .. response .. FIN, accept and
  close, both ends' work), per connection, measured twice: with few and with many
  connections already in TIME-WAIT (their cost must not grow with the count).

Each figure is the median of ``--runs`` runs. ``--gso`` measures 64 KB super-segments
(``StackConfig(gso=True)``, ``max_segment_payload=65000``) instead of 1,460-byte ones.

    python3 tools/bench_segment.py [--mb 16] [--runs 5] [--batch 64] [--gso] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pytcp import native
from pytcp.stack import Stack, StackConfig
from pytcp.tcp.config import TcpConfig

try:  # offloads as the TUN does them (absent before issue 8's offload work)
    from pytcp.stack import GsoPacket as _GsoPacket
    from pytcp.wire.offload import RxPacket as _RxPacket
except ImportError:  # pragma: no cover - older trees, for before/after comparisons
    _RxPacket = _GsoPacket = None  # type: ignore[assignment,misc]

A_ADDR = "10.0.0.1"
B_ADDR = "10.0.0.2"
PORT = 5001
STEP = 0.0002  # virtual seconds per exchange round (a 200 µs RTT link)
MAX_ROUNDS = 2_000_000  # bounds every loop


def _stacks(gso: bool, seed: int = 1) -> tuple[Stack, Stack]:
    cfg = StackConfig(gso=gso)
    tcfg = TcpConfig.linux()
    if gso:
        tcfg = tcfg.replace(max_segment_payload=65000)
    a = Stack(A_ADDR, now=0.0, config=cfg, tcp_config=tcfg, secret=b"a" * 16)
    b = Stack(B_ADDR, now=0.0, config=cfg, tcp_config=tcfg, secret=b"b" * 16)
    return a, b


def _rx(p: bytes | bytearray) -> bytes:
    """What the other side's link would hand over: an immutable copy, as os.read gives. A
    super-packet carries only a partial TCP checksum for the device to finish (TSO); the
    receiving TUN then marks it as checked by the kernel (an RxPacket), so it is passed on
    as one here, without the checksum pass."""
    if _RxPacket is not None and _GsoPacket is not None and isinstance(p, _GsoPacket):
        rx = _RxPacket(p)  # as TunLink reads a NEEDS_CSUM super-packet
        rx.csum_partial = True
        rx.gso_size = p.gso_size
        return rx
    return bytes(p)


def _batches(packets: list[bytes | bytearray], size: int) -> list[list[bytes]]:
    return [[_rx(p) for p in packets[i:i + size]] for i in range(0, len(packets), size)]


def bulk(total: int, batch: int, gso: bool) -> tuple[float, float, int, int]:
    """One bulk transfer of ``total`` bytes; returns (receive µs/packet, send µs/packet,
    data packets, ACK packets)."""
    a, b = _stacks(gso)
    now = 0.0
    lst = b.listen(PORT)
    ha = a.connect(now, B_ADDR, PORT)
    hb = None
    chunk = bytes(range(256)) * 256  # 64 KiB of application data per send()
    sent = received = 0
    rx_time = tx_time = 0.0
    data_pkts = ack_pkts = 0
    clock = time.process_time  # CPU time: other processes on a shared VM do not count
    for _ in range(MAX_ROUNDS):
        if received >= total:
            break
        now += STEP
        # Sender: the application fills the send buffer, then its packets leave.
        t0 = clock()
        if ha.conn.state.synchronized:
            while sent < total:
                n = ha.send(now, chunk[:min(len(chunk), total - sent)])
                sent += n
                if n < len(chunk) and sent < total:
                    break
        out = a.pending_packets()
        tx_time += clock() - t0
        # Receiver: read batches, ACKs, the application reads.
        t1 = clock()
        for bat in _batches(out, batch):
            b.receive_batch(now, bat)
        if hb is None:
            hb = lst.accept()
        if hb is not None:
            received += len(hb.receive(now))
        back = b.pending_packets()
        rx_time += clock() - t1
        for p in out:
            if len(p) > 100:
                data_pkts += 1
        ack_pkts += len(back)
        # Sender: the ACKs.
        t2 = clock()
        for bat in _batches(back, batch):
            a.receive_batch(now, bat)
        tx_time += clock() - t2
        for s in (a, b):
            d = s.next_deadline()
            if d is not None and d <= now:
                s.handle_timers(now)
    else:
        raise RuntimeError("bulk transfer did not finish")
    if received != total:
        raise RuntimeError(f"received {received} of {total} bytes")
    return rx_time / data_pkts * 1e6, tx_time / data_pkts * 1e6, data_pkts, ack_pkts


def connections(count: int, prefill: int) -> float:
    """µs of both stacks' work per short connection (SYN, 100-byte request, 1 KB response,
    close by the server first, as an HTTP/1.0 server), after ``prefill`` such connections
    left TIME-WAIT entries behind on the server."""
    a, b = _stacks(False)
    lst = b.listen(80)
    now = 0.0
    req = b"G" * 100
    resp = b"R" * 1000
    clock = time.process_time  # CPU time: other processes on a shared VM do not count
    spent = 0.0

    ports = iter(range(20000, 65536))  # a fresh 4-tuple each (no TIME-WAIT reuse)

    def one(measure: bool) -> None:
        nonlocal now, spent
        t0 = clock()
        ha = a.connect(now, B_ADDR, 80, next(ports))
        hb = None
        done_a = False
        for _ in range(50):
            now += STEP
            for bat in _batches(a.pending_packets(), 64):
                b.receive_batch(now, bat)
            if hb is None:
                hb = lst.accept()
            if hb is not None and hb.open and hb.conn.bytes_readable >= len(req):
                hb.receive(now)
                hb.send(now, resp)
                hb.close(now)
            for bat in _batches(b.pending_packets(), 64):
                a.receive_batch(now, bat)
            if ha.conn.state.synchronized and ha.conn.bytes_out == 0 and \
                    ha.conn.unsent_bytes == 0 and not done_a:
                ha.send(now, req)
            if not done_a and ha.open and ha.conn.readable:
                ha.receive(now)
            if not done_a and ha.open and ha.conn.at_eof:
                ha.close(now)
                done_a = True
            a.pending_events()
            b.pending_events()
            if done_a and not ha.open:  # the client's LAST-ACK got its ACK: CLOSED
                break
        else:
            raise RuntimeError("a connection did not finish")
        if measure:
            spent += clock() - t0

    for _ in range(prefill):
        one(False)
    for _ in range(count):
        one(True)
    return spent / count * 1e6


def median_of(runs: int, fn: Callable[[], tuple[float, ...]]) -> tuple[list[tuple[float, ...]],
                                                                         tuple[float, ...]]:
    results = [fn() for _ in range(runs)]
    cols = list(zip(*results))
    return results, tuple(statistics.median(c) for c in cols)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=16.0, help="MiB per bulk transfer (16)")
    ap.add_argument("--runs", type=int, default=5, help="runs per figure; the median (5)")
    ap.add_argument("--batch", type=int, default=64, help="packets per read batch (64)")
    ap.add_argument("--gso", action="store_true", help="64 KB super-segments (offload)")
    ap.add_argument("--conns", type=int, default=300, help="connections measured (300)")
    ap.add_argument("--prefill", type=int, default=3000,
                    help="TIME-WAIT entries left first for the second figure (3000)")
    ap.add_argument("--skip-conns", action="store_true", help="only the bulk figures")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()
    if args.runs < 1 or args.batch < 1 or args.mb <= 0:
        print("bench_segment: --runs, --batch and --mb must be positive", file=sys.stderr)
        return 2
    total = int(args.mb * 1024 * 1024)
    mode = "gso 64 KB" if args.gso else "1,460 B"
    runs, (rx, tx, pkts, acks) = median_of(
        args.runs, lambda: bulk(total, args.batch, args.gso))
    rows = [
        (f"receive path ({mode} segments)", rx, "µs/packet",
         ", ".join(f"{r[0]:.2f}" for r in runs)),
        (f"send path ({mode} segments)", tx, "µs/packet",
         ", ".join(f"{r[1]:.2f}" for r in runs)),
    ]
    if not args.skip_conns:
        cruns, (few,) = median_of(args.runs, lambda: (connections(args.conns, 0),))
        mruns, (many,) = median_of(args.runs, lambda: (connections(args.conns, args.prefill),))
        rows.append(("connection, both ends", few, "µs/conn",
                     ", ".join(f"{r[0]:.1f}" for r in cruns)))
        rows.append((f"connection, after {args.prefill} in TIME-WAIT", many, "µs/conn",
                     ", ".join(f"{r[0]:.1f}" for r in mruns)))
    native_note = "C extension" if native.HAVE_NATIVE else "pure-Python fallback"
    print(f"# {args.mb:g} MiB bulk, read batch {args.batch}, {native_note}; "
          f"{int(pkts)} data packets, {int(acks)} ACKs (median run)")
    if args.markdown:
        print("| path | median | unit | runs |")
        print("|---|---:|---|---|")
        for name, val, unit, all_runs in rows:
            print(f"| {name} | {val:.2f} | {unit} | {all_runs} |")
    else:
        for name, val, unit, all_runs in rows:
            print(f"{name:45s} {val:9.2f} {unit:10s} ({all_runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
