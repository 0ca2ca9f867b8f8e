"""Seed corpora for the fuzz targets, generated at run time (nothing binary is committed):

- wire: every datagram of a real exchange between two stacks in virtual time (handshakes with
  each option profile, data both ways, FIN, RST, ICMP errors and fragments the targets craft),
  each with the "verify checksums" byte both ways;
- stack: structured inputs for each configuration profile (random event streams from a
  seeded generator) and the captured datagrams replayed as raw-bytes events;
- script: the repository's own packetdrill scripts (tests/scripts).
"""

from __future__ import annotations

import random
from pathlib import Path

from tests.fuzz.targets import Input, World

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def captured_datagrams() -> list[bytes]:
    """Datagrams both stacks of a World exchanged, for each profile, plus crafted ones."""
    out: list[bytes] = []
    for choice in range(4):
        world = World(choice)
        captured: list[bytes] = []
        real_a, real_b = world.a.pending_packets, world.b.pending_packets

        def tap(fn):  # type: ignore[no-untyped-def]
            def wrapped():  # type: ignore[no-untyped-def]
                pkts = fn()
                captured.extend(bytes(p) for p in pkts)
                return pkts
            return wrapped

        world.a.pending_packets = tap(real_a)  # type: ignore[method-assign]
        world.b.pending_packets = tap(real_b)  # type: ignore[method-assign]
        for h in world.a_handles:
            world.app(lambda: h.receive(world.now))
            world.app(lambda: h.close(world.now))
        world.shuttle(6)
        for h in world.b_handles:
            world.app(lambda: h.receive(world.now))
            world.app(lambda: h.abort(world.now))
        world.shuttle(6)
        rng = random.Random(choice)
        inp = Input(rng.randbytes(400))
        world2 = World(choice)
        captured += [world2.crafted_tcp(inp) for _ in range(4)]
        captured += [world2.crafted_fragment(inp), world2.crafted_icmp(inp)]
        out += captured
    return out


def wire_seeds() -> list[bytes]:
    return [bytes([v]) + p for p in captured_datagrams() for v in (0, 1)]


def stack_seeds() -> list[bytes]:
    rng = random.Random(7)
    seeds = [bytes([choice]) + rng.randbytes(rng.randrange(20, 400))
             for choice in range(8) for _ in range(3)]
    for i, pkt in enumerate(captured_datagrams()[:40]):
        # op 0 (raw datagram): below(8) reads one byte; then a 2-byte length, then the bytes
        seeds.append(bytes([i % 8, 0]) + len(pkt).to_bytes(2, "big") + pkt)
    return seeds


def script_seeds(limit: int | None = None) -> list[bytes]:
    files = sorted(SCRIPTS.rglob("*.pkt"))
    if limit is not None:
        files = files[:limit]
    return [f.read_bytes() for f in files]


SEEDS = {"wire": wire_seeds, "stack": stack_seeds, "script": script_seeds}


def write_seeds(target: str, directory: Path) -> int:
    """Write the target's seeds as files into ``directory``; returns how many."""
    directory.mkdir(parents=True, exist_ok=True)
    seeds = SEEDS[target]()
    for i, data in enumerate(seeds):
        (directory / f"seed-{i:04d}").write_bytes(data)
    return len(seeds)
