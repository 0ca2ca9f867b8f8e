"""Impairment stage: spec parsing, determinism for a seed, approximate rates, reordering."""

from __future__ import annotations

import itertools
import random

import pytest

from pytcp.link.impair import REORDER_MAX_HOLD, Impairment, ImpairSpec


def test_parse_full_spec() -> None:
    spec = ImpairSpec.parse("loss=0.1,reorder=0.2,dup=0.05,corrupt=1%,delay=20,jitter=5")
    assert spec == ImpairSpec(loss=0.1, reorder=0.2, dup=0.05, corrupt=0.01, delay=20.0,
                              jitter=5.0)
    assert ImpairSpec.parse("") == ImpairSpec()
    assert ImpairSpec.parse("") .is_noop
    assert ImpairSpec.parse(" loss = 0.5 , ") == ImpairSpec(loss=0.5)
    assert str(ImpairSpec.parse("loss=0.5,delay=10")) == "loss=0.5,delay=10"


@pytest.mark.parametrize("bad, needle", [
    ("lose=0.1", "unknown key 'lose'"),
    ("loss=abc", "'abc' is not a number"),
    ("loss=1.5", "loss=1.5"),
    ("loss=-0.1", "loss=-0.1"),
    ("delay=-3", "delay=-3"),
    ("loss", "expected key=value"),
    ("loss=", "expected key=value"),
    ("loss=0.1,loss=0.2", "given twice"),
    ("jitter=nan", "finite"),
    ("dup=inf", "finite"),
])
def test_parse_errors_name_the_bad_part(bad: str, needle: str) -> None:
    with pytest.raises(ValueError) as ei:
        ImpairSpec.parse(bad)
    msg = str(ei.value)
    assert needle in msg
    assert "\n" not in msg


def test_noop_passes_everything_in_order() -> None:
    imp = Impairment(ImpairSpec(), random.Random(1))
    for i in range(100):
        imp.submit(0.0, bytes([i]))
    assert imp.release(0.0) == [bytes([i]) for i in range(100)]
    assert imp.next_deadline() is None
    assert len(imp) == 0


def _run(seed: int, spec: str, n: int = 2000) -> tuple[list[tuple[float, bytes]], dict[str, int]]:
    imp = Impairment(ImpairSpec.parse(spec), random.Random(seed))
    out: list[tuple[float, bytes]] = []
    t = 0.0
    for i in range(n):
        t += 0.001
        imp.submit(t, i.to_bytes(4, "big") * 4)
        out += [(t, p) for p in imp.release(t)]
    for _ in range(10_000):  # drain, bounded
        d = imp.next_deadline()
        if d is None:
            break
        t = max(t, d)
        out += [(t, p) for p in imp.release(t)]
    assert imp.next_deadline() is None
    return out, dict(imp.stats)


def test_deterministic_for_a_seed() -> None:
    spec = "loss=0.1,reorder=0.1,dup=0.1,corrupt=0.1,delay=5,jitter=2"
    a = _run(7, spec)
    b = _run(7, spec)
    c = _run(8, spec)
    assert a == b
    assert a != c


def test_approximate_rates() -> None:
    n = 5000
    out, st = _run(3, "loss=0.1,dup=0.05,corrupt=0.02", n)
    assert st["submitted"] == n
    assert 0.08 * n < st["lost"] < 0.12 * n
    kept = n - st["lost"]
    assert 0.035 * kept < st["duplicated"] < 0.065 * kept
    assert 0.01 * kept < st["corrupted"] < 0.03 * kept
    assert len(out) == kept + st["duplicated"] == st["released"]
    # Corrupted packets differ from every original in exactly one byte.
    originals = {i.to_bytes(4, "big") * 4 for i in range(n)}
    bad = [p for _, p in out if p not in originals]
    assert len(bad) >= st["corrupted"] - st["duplicated"]  # a corrupted dup counts twice
    for p in bad:
        i = int.from_bytes(p[4:8], "big")  # first word may be the corrupted one
        cands = [j.to_bytes(4, "big") * 4 for j in (i, int.from_bytes(p[:4], "big"))]
        assert any(sum(x != y for x, y in zip(p, c)) == 1 for c in cands)


def test_loss_one_drops_all() -> None:
    out, st = _run(1, "loss=1", 100)
    assert out == [] and st["lost"] == 100


def test_delay_and_jitter_hold_packets() -> None:
    imp = Impairment(ImpairSpec.parse("delay=20"), random.Random(1))
    imp.submit(1.0, b"a")
    assert imp.release(1.0) == []
    assert imp.next_deadline() == pytest.approx(1.02)
    assert imp.release(1.019) == []
    assert imp.release(1.02) == [b"a"]
    imp = Impairment(ImpairSpec.parse("delay=20,jitter=10"), random.Random(1))
    for i in range(200):
        imp.submit(0.0, bytes([i % 256]))
    assert imp.release(0.0099) == []
    assert len(imp.release(0.0301)) == 200


def test_reordered_packet_comes_after_the_next_one() -> None:
    imp = Impairment(ImpairSpec.parse("reorder=1"), random.Random(1))
    imp.submit(0.0, b"1")  # held back
    assert imp.release(0.0) == []
    imp.submit(0.0, b"2")  # only one packet is held at a time: 2 passes, then 1
    assert imp.release(0.0) == [b"2", b"1"]
    imp.submit(1.0, b"3")  # held, nothing follows: released after REORDER_MAX_HOLD
    assert imp.release(1.0) == []
    assert imp.next_deadline() == pytest.approx(1.0 + REORDER_MAX_HOLD)
    assert imp.release(1.0 + REORDER_MAX_HOLD) == [b"3"]
    assert imp.stats["reordered"] == 2


def test_reorder_rate_approximate() -> None:
    n = 4000
    out, st = _run(11, "reorder=0.1", n)
    assert len(out) == n
    seqs = [int.from_bytes(p[:4], "big") for _, p in out]
    assert sorted(seqs) == list(range(n))
    inversions = sum(1 for a, b in itertools.pairwise(seqs) if a > b)
    assert inversions == st["reordered"]
    assert 0.07 * n < st["reordered"] < 0.11 * n


def test_gso_packets_keep_their_segment_size() -> None:
    from pytcp.stack import GsoPacket

    pkt = GsoPacket(b"x" * 3000)
    pkt.gso_size = 1448
    imp = Impairment(ImpairSpec.parse("dup=1,corrupt=1"), random.Random(2))
    imp.submit(0.0, pkt)
    out = imp.release(0.0)
    assert len(out) == 2
    for p in out:
        assert isinstance(p, GsoPacket) and p.gso_size == 1448 and p is not pkt
        assert sum(a != b for a, b in zip(p, pkt)) == 1


def test_flush_returns_everything_held_in_release_order() -> None:
    imp = Impairment(ImpairSpec(delay=1000.0, reorder=1.0), random.Random(3))
    imp.submit(0.0, b"a")  # held back for reordering
    imp.submit(0.1, b"b")  # due at 1.1, then "a" right after it
    imp.submit(0.2, b"c")  # held back
    assert imp.release(0.5) == []
    assert imp.flush() == [b"b", b"a", b"c"]
    assert len(imp) == 0 and imp.next_deadline() is None and imp.stats["flushed"] == 3
    assert imp.flush() == []
