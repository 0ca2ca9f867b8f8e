"""The SYN cookie codec (pytcp.tcp.syncookie): Linux's encoding round-trips every MSS-table
entry and option combination; forged, foreign, misaddressed and expired cookies are refused."""

from __future__ import annotations

import itertools
import random

import pytest

from pytcp.tcp.syncookie import (
    MSS_TABLE_IPV4,
    SynCookies,
    cookie_ts_offset,
    decode_tsecr,
    encode_tsval,
)

TUPLE = (0x0A4D0002, 80, 0x0A4D0009, 40000)  # local addr/port, remote addr/port
SECRET = b"k" * 16


@pytest.mark.parametrize("mss", MSS_TABLE_IPV4)
def test_round_trip_every_table_entry(mss: int) -> None:
    sc = SynCookies(SECRET)
    rng = random.Random(mss)
    for _ in range(200):
        now = rng.uniform(0, 1e6)
        isn = rng.getrandbits(32)
        cookie, encoded = sc.make(now, *TUPLE, isn, mss)
        assert encoded == mss
        # Valid at once and until the counter has moved on by less than MAX_AGE (2).
        assert sc.check(now, *TUPLE, isn, cookie) == mss
        assert sc.check(now + 60.0, *TUPLE, isn, cookie) == mss


@pytest.mark.parametrize(("announced", "encoded"), [
    (1, 536), (536, 536), (1299, 536), (1300, 1300), (1439, 1300), (1440, 1440),
    (1459, 1440), (1460, 1460), (9000, 1460), (65535, 1460)])
def test_the_mss_is_rounded_down_to_the_table(announced: int, encoded: int) -> None:
    sc = SynCookies(SECRET)
    cookie, got = sc.make(10.0, *TUPLE, 5, announced)
    assert got == encoded and sc.check(10.0, *TUPLE, 5, cookie) == encoded


def test_validity_is_bounded_by_the_counter() -> None:
    sc = SynCookies(SECRET)
    # Made at the very end of a period: still valid through the next one, not after.
    cookie, _ = sc.make(59.999, *TUPLE, 7, 1460)
    assert sc.check(119.999, *TUPLE, 7, cookie) == 1460
    assert sc.check(120.0, *TUPLE, 7, cookie) is None
    # Made at the start of a period: valid for 2 minutes (Linux: 60..120 s).
    cookie, _ = sc.make(120.0, *TUPLE, 7, 1460)
    assert sc.check(239.999, *TUPLE, 7, cookie) == 1460
    assert sc.check(240.0, *TUPLE, 7, cookie) is None
    assert sc.check(120.0 + 256 * 60.0, *TUPLE, 7, cookie) is None  # counter wrap: other key
    # A cookie from the future (clock went backwards far) is refused too.
    assert sc.check(0.0, *TUPLE, 7, cookie) is None


def test_wrong_secret_tuple_or_isn_is_refused() -> None:
    sc = SynCookies(SECRET)
    cookie, _ = sc.make(1000.0, *TUPLE, 12345, 1460)
    assert SynCookies(b"x" * 16).check(1000.0, *TUPLE, 12345, cookie) is None
    la, lp, ra, rp = TUPLE
    for other in ((la + 1, lp, ra, rp), (la, lp + 1, ra, rp), (la, lp, ra + 1, rp),
                  (la, lp, ra, rp + 1), (ra, rp, la, lp)):
        assert sc.check(1000.0, *other, 12345, cookie) is None
    # The ISN is added in, so a change of a few units only moves the MSS index (as in
    # Linux); any larger change lands outside the table or in another counter.
    for delta in (1 << 8, 1 << 16, 1 << 23, 1 << 24, 1 << 31):
        assert sc.check(1000.0, *TUPLE, 12345 + delta, cookie) is None
        assert sc.check(1000.0, *TUPLE, 12345, (cookie + delta) & 0xFFFFFFFF) is None


def test_forged_cookies_are_refused() -> None:
    sc = SynCookies(SECRET)
    rng = random.Random(99)
    accepted = sum(sc.check(500.0, *TUPLE, rng.getrandbits(32), rng.getrandbits(32)) is not None
                   for _ in range(20000))
    # Chance per guess: 2 counters * 4 entries / 2**32 of the low bits... ~2e-6: none here.
    assert accepted == 0


@pytest.mark.parametrize(("wscale", "sack", "ecn"), list(itertools.product(
    [None, *range(15)], [False, True], [False, True])))
def test_timestamp_round_trip_of_every_option(wscale: int | None, sack: bool, ecn: bool) -> None:
    rng = random.Random(f"{wscale}{sack}{ecn}")
    for ts_now in [0, 1, 63, 64, 0xFFFFFFFF, *(rng.getrandbits(32) for _ in range(50))]:
        ts = encode_tsval(ts_now, wscale, sack, ecn)
        assert decode_tsecr(ts) == (wscale, sack, ecn)
        behind = (ts_now - ts) & 0xFFFFFFFF
        assert 0 <= behind < 64  # never ahead of our clock, at most one 64-tick step behind


def test_window_scale_above_14_is_clamped() -> None:
    assert decode_tsecr(encode_tsval(1000, 15, False, False)) == (14, False, False)


def test_ts_offset_depends_on_the_cookie() -> None:
    assert cookie_ts_offset(1) != cookie_ts_offset(2)
    assert 0 <= cookie_ts_offset(0xFFFFFFFF) <= 0xFFFFFFFF


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        SynCookies(b"")
    with pytest.raises(ValueError):
        SynCookies(SECRET, period=0)
    with pytest.raises(ValueError):
        SynCookies(SECRET, mss_table=(1460, 536))
