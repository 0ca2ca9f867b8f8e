"""Impairment stage: seeded loss, duplication, corruption, reordering, delay and jitter.

This module owns pytcp's own fault injector (there is no ``tc netem`` on the test machines).
It sits between a link and the stack in either direction: packets go in with
:meth:`Impairment.submit` and come out, when due, from :meth:`Impairment.release`. It never
reads a clock; ``now`` is always passed in. Given the same spec, seed and input it does exactly
the same thing.

What the stage did to a packet is returned by :meth:`Impairment.submit` as a note
(``"impairment: delayed 20 ms"``); a packet it changed, delayed or duplicated comes out as a
``pytcp.stack.NotedPacket`` carrying that note (after any note it had, e.g. the engine's
reason), so a capture can say so.

Spec syntax (``ImpairSpec.parse``): ``loss=P,reorder=P,dup=P,corrupt=P,ce=P,delay=MS,jitter=MS``
(``ce``: ECN-capable packets are marked Congestion Experienced instead of dropped, RFC 3168);
probabilities in 0..1 (a ``%`` suffix is accepted: ``loss=5%``), milliseconds >= 0. Every key
is optional; an empty spec impairs nothing.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter
from dataclasses import dataclass, fields
from typing import Any

# A packet held back for reordering is normally released right after the next packet; if no
# next packet comes, it is released this long (seconds) after it would have been due.
REORDER_MAX_HOLD = 0.05

_PROBABILITIES = ("loss", "reorder", "dup", "corrupt", "ce")
_DURATIONS_MS = ("delay", "jitter")


@dataclass(frozen=True, slots=True)
class ImpairSpec:
    """What to do to packets: probabilities in 0..1 and times in milliseconds."""

    loss: float = 0.0
    reorder: float = 0.0
    dup: float = 0.0
    corrupt: float = 0.0
    # RFC 3168 5 (an AQM router): with this probability an ECN-capable (ECT) IPv4 packet is
    # marked CE instead of being dropped; a Not-ECT one is dropped.
    ce: float = 0.0
    delay: float = 0.0  # ms
    jitter: float = 0.0  # ms: due time is delay +/- uniform(jitter)

    def __post_init__(self) -> None:
        for name in _PROBABILITIES:
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and 0.0 <= v <= 1.0):
                raise ValueError(f"impairment {name}={v!r}: a probability must be in 0..1")
        for name in _DURATIONS_MS:
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0.0):
                raise ValueError(f"impairment {name}={v!r}: milliseconds must be >= 0")

    @classmethod
    def parse(cls, spec: str) -> ImpairSpec:
        """Parse ``"loss=0.01,delay=20"``; raise ``ValueError`` naming the bad part."""
        values: dict[str, float] = {}
        known = {f.name for f in fields(cls)}
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            key, sep, raw = part.partition("=")
            key = key.strip().lower()
            raw = raw.strip()
            if not sep or not key or not raw:
                raise ValueError(f"impairment {part!r}: expected key=value")
            if key not in known:
                raise ValueError(
                    f"impairment {part!r}: unknown key {key!r} "
                    f"(known: {', '.join(sorted(known))})"
                )
            if key in values:
                raise ValueError(f"impairment {part!r}: {key} given twice")
            percent = key in _PROBABILITIES and raw.endswith("%")
            try:
                v = float(raw[:-1] if percent else raw)
            except ValueError:
                raise ValueError(f"impairment {part!r}: {raw!r} is not a number") from None
            if percent:
                v /= 100.0
            if not math.isfinite(v):
                raise ValueError(f"impairment {part!r}: {raw!r} is not a finite number")
            if key in _PROBABILITIES and not 0.0 <= v <= 1.0:
                raise ValueError(f"impairment {part!r}: a probability must be in 0..1")
            if key in _DURATIONS_MS and v < 0.0:
                raise ValueError(f"impairment {part!r}: milliseconds must be >= 0")
            values[key] = v
        return cls(**values)

    @property
    def is_noop(self) -> bool:
        return not (self.loss or self.reorder or self.dup or self.corrupt or self.delay
                    or self.jitter or self.ce)

    def __str__(self) -> str:
        parts = [f"{f.name}={getattr(self, f.name):g}" for f in fields(self)
                 if getattr(self, f.name)]
        return ",".join(parts) or "none"


def mark_ce(packet: bytes) -> bytes:
    """The IPv4 packet with its ECN field set to CE (RFC 3168 5, 0b11), the header checksum
    updated incrementally (RFC 1624)."""
    buf = bytearray(packet)
    old = (buf[0] << 8) | buf[1]
    buf[1] |= 3
    new = (buf[0] << 8) | buf[1]
    csum = (buf[10] << 8) | buf[11]
    # RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')
    s = (~csum & 0xFFFF) + (~old & 0xFFFF) + new
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    c = ~s & 0xFFFF
    buf[10] = c >> 8
    buf[11] = c & 0xFF
    return bytes(buf)


class Impairment:
    """Applies an :class:`ImpairSpec` to a packet stream, deterministically for a seeded rng.

    ``stats`` counts ``submitted``, ``lost``, ``duplicated``, ``corrupted``, ``reordered``,
    ``delayed`` and ``released`` packets.
    """

    def __init__(self, spec: ImpairSpec | str, rng: random.Random | None = None) -> None:
        self.spec = ImpairSpec.parse(spec) if isinstance(spec, str) else spec
        self.rng = rng if rng is not None else random.Random(0)
        self.stats: Counter[str] = Counter()
        # (due, order, packet): order keeps release FIFO among equal due times.
        self._queue: list[tuple[float, int, bytes]] = []
        self._order = 0
        # A packet held back for reordering: (packet, due if nothing follows it).
        self._held: tuple[bytes, float] | None = None

    def __len__(self) -> int:
        """Packets inside the stage (queued or held)."""
        return len(self._queue) + (self._held is not None)

    def _due(self, now: float, acts: list[str]) -> float:
        spec = self.spec
        due = now + spec.delay / 1000.0
        if spec.jitter:
            due += self.rng.uniform(-spec.jitter, spec.jitter) / 1000.0
        due = max(due, now)
        if due > now:
            self.stats["delayed"] += 1
            acts.append(f"delayed {(due - now) * 1000.0:.1f} ms")
        return due

    def _push(self, due: float, packet: bytes) -> None:
        self._order += 1
        heapq.heappush(self._queue, (due, self._order, packet))

    def submit(self, now: float, packet: bytes | bytearray | memoryview) -> str | None:
        """Take one packet in: it may be lost, corrupted, duplicated, held back or delayed.
        Returns what was done to it (``"impairment: lost"``, ``"impairment: corrupted byte
        33; delayed 20.0 ms"``), or None when it passes untouched."""
        spec = self.spec
        rng = self.rng
        self.stats["submitted"] += 1
        if spec.loss and rng.random() < spec.loss:
            self.stats["lost"] += 1
            return "impairment: lost"
        acts: list[str] = []
        data = bytes(packet)
        if spec.ce and len(data) >= 20 and data[0] >> 4 == 4 and rng.random() < spec.ce:
            if data[1] & 3 == 0:
                self.stats["lost"] += 1  # Not-ECT: an AQM drops it
                return "impairment: lost (not ECN-capable, would have been marked CE)"
            data = mark_ce(data)
            self.stats["ce_marked"] += 1
            acts.append("marked CE (ECN)")
        if spec.corrupt and data and rng.random() < spec.corrupt:
            buf = bytearray(data)
            i = rng.randrange(len(buf))
            buf[i] ^= rng.randrange(1, 256)
            data = bytes(buf)
            self.stats["corrupted"] += 1
            acts.append(f"corrupted byte {i}")
        gso = getattr(packet, "gso_size", 0)
        if gso:
            # Keep a GSO super-packet's segment size (pytcp.stack.GsoPacket) for the link.
            kept = type(packet)(data)
            kept.gso_size = gso  # type: ignore[union-attr]
            data = kept  # type: ignore[assignment]
        copies = 1
        if spec.dup and rng.random() < spec.dup:
            copies = 2
            self.stats["duplicated"] += 1
            acts.append("duplicated")
        held_back = bool(spec.reorder and self._held is None and rng.random() < spec.reorder)
        if held_back:
            self.stats["reordered"] += 1
            acts.append("held back (reordered)")
        due = self._due(now, acts)
        note = getattr(packet, "note", None)
        if acts or note is not None:
            data = self._noted(packet, data, note, acts)
        if held_back:
            # Held back: released right after the next packet (or after REORDER_MAX_HOLD).
            self._held = (data, due + REORDER_MAX_HOLD)
            for _ in range(copies - 1):
                self._push(due, data)
        else:
            for _ in range(copies):
                self._push(due, data)
            if self._held is not None:
                held, _ = self._held
                self._held = None
                self._push(due, held)  # same due, later order: right after this packet
        return "impairment: " + "; ".join(acts) if acts else None

    @staticmethod
    def _noted(packet: bytes | bytearray | memoryview, data: bytes, note: str | None,
               acts: list[str]) -> bytes:
        """``data`` as a packet carrying ``note`` plus what the stage did (``acts``)."""
        from pytcp.stack import NotedBytes

        out: Any = data if isinstance(data, bytearray) else NotedBytes(data)
        parts = [note] if note else []
        if acts:
            parts.append("impairment: " + "; ".join(acts))
        out.note = "; ".join(parts)
        out.origin = packet
        return out  # type: ignore[no-any-return]

    def release(self, now: float) -> list[bytes]:
        """Packets due at ``now``, in release order."""
        out: list[bytes] = []
        if self._held is not None and self._held[1] <= now:
            self._push(self._held[1], self._held[0])
            self._held = None
        q = self._queue
        while q and q[0][0] <= now:
            out.append(heapq.heappop(q)[2])
        self.stats["released"] += len(out)
        return out

    def flush(self) -> list[bytes]:
        """Everything the stage holds, in release order, whatever its due time (the stage is
        empty afterwards). For shutdown: nothing already accepted is silently lost."""
        out = [heapq.heappop(self._queue)[2] for _ in range(len(self._queue))]
        if self._held is not None:
            out.append(self._held[0])
            self._held = None
        self.stats["flushed"] += len(out)
        return out

    def next_deadline(self) -> float | None:
        """When the next packet is due, or ``None`` when the stage is empty."""
        d: float | None = self._queue[0][0] if self._queue else None
        if self._held is not None and (d is None or self._held[1] < d):
            d = self._held[1]
        return d
