"""RFC 6528 ISNs: keyed hash of the 4-tuple plus a 4 microsecond clock."""

from __future__ import annotations

import pytest

from pytcp.tcp.isn import IsnGenerator

A = 0x0A4D0001
B = 0x0A4D0002


def test_deterministic_for_same_inputs() -> None:
    g = IsnGenerator(b"k" * 16)
    assert g.iss(12.5, A, 80, B, 40000) == g.iss(12.5, A, 80, B, 40000)
    assert IsnGenerator(b"k" * 16).iss(12.5, A, 80, B, 40000) == g.iss(12.5, A, 80, B, 40000)


def test_different_tuples_differ() -> None:
    g = IsnGenerator(b"secret-secret")
    seen = {
        g.iss(1.0, A, 80, B, 40000),
        g.iss(1.0, A, 80, B, 40001),
        g.iss(1.0, A, 81, B, 40000),
        g.iss(1.0, B, 80, A, 40000),
        g.iss(1.0, A, 80, B + 1, 40000),
    }
    assert len(seen) == 5


def test_advances_250_ticks_per_ms() -> None:
    g = IsnGenerator(b"x" * 32)
    a = g.iss(100.0, A, 80, B, 5555)
    b = g.iss(100.001, A, 80, B, 5555)
    c = g.iss(100.000004, A, 80, B, 5555)
    assert (b - a) % 2**32 == 250
    assert (c - a) % 2**32 == 1


def test_wraps_mod_2_32() -> None:
    g = IsnGenerator(b"x")
    base = g.offset(A, 80, B, 5555)
    # After 2**32 ticks (about 4.77 hours) the clock part wraps back.
    t = 2**32 / 250_000
    assert g.iss(t, A, 80, B, 5555) == base
    assert 0 <= g.iss(1e9, A, 80, B, 5555) < 2**32


def test_different_secret_differs() -> None:
    a = IsnGenerator(b"one").iss(1.0, A, 80, B, 40000)
    b = IsnGenerator(b"two").iss(1.0, A, 80, B, 40000)
    assert a != b


def test_long_secret_accepted_empty_rejected() -> None:
    IsnGenerator(b"z" * 100).iss(0.0, A, 1, B, 2)
    with pytest.raises(ValueError):
        IsnGenerator(b"")


def test_offset_is_blake2s_keyed_with_the_secret_over_the_four_tuple() -> None:
    """F() of RFC 6528 is exactly BLAKE2s(key=secret, digest 4) over the packed 4-tuple, on
    every call (the generator keys one hasher and copies it per ISN)."""
    import hashlib

    secret = b"s" * 16
    gen = IsnGenerator(secret)
    for ids in [(1, 2, 3, 4), (0x0A000001, 80, 0xC0A80101, 65535), (0xFFFFFFFF, 0, 0, 0xFFFF)]:
        for _ in range(2):
            msg = (ids[0].to_bytes(4, "big") + ids[1].to_bytes(2, "big")
                   + ids[2].to_bytes(4, "big") + ids[3].to_bytes(2, "big"))
            want = int.from_bytes(hashlib.blake2s(msg, key=secret, digest_size=4).digest(), "big")
            assert gen.offset(*ids) == want
