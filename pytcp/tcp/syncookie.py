"""SYN cookies (RFC 4987 3.6) with Linux's encoding (net/ipv4/syncookies.c).

Owns the stateless codec: the initial sequence number of a SYN-ACK that carries, instead of a
SYN-queue entry, what the listener must remember about the peer's SYN; and the check of the
ACK that returns it. No clock (``now`` is an argument), no randomness (the secret is injected).
The stack decides when cookies are used (its SYN queue is full) and builds the packets.

Sequence number (Linux ``secure_tcp_syn_cookie``), with ``count = int(now / PERIOD)``::

    cookie = H0(4-tuple) + peer_isn + (count << 24) + ((H1(4-tuple, count) + mss_index) % 2**24)

``H0`` and ``H1`` are BLAKE2s keyed with a key derived from the secret (Linux: SipHash). The
counter is an input of ``H1``, so every period has its own hash key: the keyed hash of each
60-second period acts as that period's secret (it rotates each period) and a cookie is accepted
only while its counter is at most ``MAX_AGE - 1`` periods old (Linux ``MAX_SYNCOOKIE_AGE``: 2,
so a cookie is valid for 60..120 s). ``mss_index`` indexes :data:`MSS_TABLE_IPV4` (Linux
``msstab``): the largest entry not above the peer's MSS.

Timestamp value (Linux ``cookie_init_timestamp``) when the peer's SYN had timestamps: the low
:data:`TS_BITS` bits of our TSval carry the peer's window-scale shift (``0xF`` = none),
SACK-permitted (bit 4) and ECN (bit 5); the value is rounded down so it never runs ahead of
our clock. The ACK echoes it in TSecr. Without timestamps only the MSS survives (the SYN-ACK
then offers no window scaling and no SACK, as Linux).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from pytcp.tcp.seq import MASK

MSS_TABLE_IPV4: tuple[int, ...] = (536, 1300, 1440, 1460)  # Linux msstab_ipv4
COOKIE_BITS = 24  # Linux COOKIEBITS: the counter lives in the top 8 bits
COOKIE_MASK = (1 << COOKIE_BITS) - 1
PERIOD = 60.0  # seconds per counter step (Linux TCP_SYNCOOKIE_PERIOD)
MAX_AGE = 2  # counter steps a cookie stays valid (Linux MAX_SYNCOOKIE_AGE)
TS_BITS = 6  # Linux TSBITS
TS_WSCALE_MASK = 0x0F  # Linux TS_OPT_WSCALE_MASK (all ones: no window scaling)
TS_SACK = 0x10  # Linux TS_OPT_SACK
TS_ECN = 0x20  # Linux TS_OPT_ECN

_TUPLE = struct.Struct("!IHIHQB")  # local addr/port, remote addr/port, counter, which hash


@dataclass(frozen=True, slots=True)
class CookieOptions:
    """What a cookie SYN-ACK promised about the peer's SYN, recovered from its ACK."""

    mss: int
    wscale: int | None = None  # the peer's window-scale shift, None: no scaling
    sack_permitted: bool = False
    ecn: bool = False


class SynCookies:
    """The codec, keyed by ``secret`` (random bytes; a key is derived from them).

    ``period`` and ``max_age`` set the validity (defaults: Linux's 60 s and 2 periods);
    ``mss_table`` must be sorted ascending and hold at most 2**24 entries.
    """

    __slots__ = ("_hasher", "period", "max_age", "mss_table")

    def __init__(self, secret: bytes, *, period: float = PERIOD, max_age: int = MAX_AGE,
                 mss_table: tuple[int, ...] = MSS_TABLE_IPV4) -> None:
        if not secret:
            raise ValueError("the SYN cookie secret must not be empty")
        if period <= 0 or not 1 <= max_age <= 255:
            raise ValueError("period must be > 0 and max_age in 1..255")
        if not mss_table or list(mss_table) != sorted(mss_table):
            raise ValueError("mss_table must be non-empty and sorted")
        # Domain separation from the ISN key (RFC 6528) that the stack derives from the same
        # secret: a different BLAKE2s personalisation.
        key = hashlib.blake2s(secret, digest_size=32, person=b"syncooki").digest()
        # Keyed once; each hash copies it (keying BLAKE2s costs more than hashing 21 bytes).
        self._hasher = hashlib.blake2s(key=key, digest_size=4)
        self.period = period
        self.max_age = max_age
        self.mss_table = tuple(mss_table)

    def counter(self, now: float) -> int:
        """The period counter at ``now`` (Linux ``tcp_cookie_time``), 32 bits."""
        return int(now // self.period) & MASK

    def _hash(self, la: int, lp: int, ra: int, rp: int, count: int, which: int) -> int:
        h = self._hasher.copy()
        if la > MASK or ra > MASK:  # IPv6: the whole addresses (Linux cookie_v6_hash)
            h.update(la.to_bytes(16, "big") + ra.to_bytes(16, "big"))
        h.update(_TUPLE.pack(la & MASK, lp & 0xFFFF, ra & MASK, rp & 0xFFFF, count & MASK,
                             which))
        return int.from_bytes(h.digest(), "big")

    def mss_index(self, mss: int) -> int:
        """Index of the largest table entry not above ``mss`` (0 when all are above)."""
        table = self.mss_table
        for i in range(len(table) - 1, 0, -1):
            if mss >= table[i]:
                return i
        return 0

    def make(self, now: float, local_addr: int, local_port: int, remote_addr: int,
             remote_port: int, peer_isn: int, mss: int) -> tuple[int, int]:
        """The cookie ISN for a SYN with sequence number ``peer_isn`` announcing ``mss``, and
        the MSS the cookie encodes (the table entry): ``(cookie, encoded_mss)``."""
        index = self.mss_index(mss)
        count = self.counter(now)
        tup = (local_addr, local_port, remote_addr, remote_port)
        cookie = (self._hash(*tup, 0, 0) + peer_isn + (count << COOKIE_BITS)
                  + ((self._hash(*tup, count, 1) + index) & COOKIE_MASK)) & MASK
        return cookie, self.mss_table[index]

    def check(self, now: float, local_addr: int, local_port: int, remote_addr: int,
              remote_port: int, peer_isn: int, cookie: int) -> int | None:
        """The MSS encoded in ``cookie`` (the ACK's SEG.ACK - 1 for the peer's SEG.SEQ - 1 =
        ``peer_isn``), or ``None``: forged, for another 4-tuple or secret, or expired."""
        count = self.counter(now)
        tup = (local_addr, local_port, remote_addr, remote_port)
        c = (cookie - self._hash(*tup, 0, 0) - peer_isn) & MASK
        diff = (count - (c >> COOKIE_BITS)) & (MASK >> COOKIE_BITS)
        if diff >= self.max_age:
            return None
        index = (c - self._hash(*tup, (count - diff) & MASK, 1)) & COOKIE_MASK
        if index >= len(self.mss_table):
            return None
        return self.mss_table[index]


def encode_tsval(ts_now: int, wscale: int | None, sack_permitted: bool, ecn: bool) -> int:
    """Our TSval for a cookie SYN-ACK (Linux ``cookie_init_timestamp``): ``ts_now`` (our
    32-bit timestamp clock) with the options in its low :data:`TS_BITS` bits, moved back one
    step when that would put it ahead of the clock."""
    options = TS_WSCALE_MASK if wscale is None else min(max(wscale, 0), 14)
    if sack_permitted:
        options |= TS_SACK
    if ecn:
        options |= TS_ECN
    ts = (ts_now & ~((1 << TS_BITS) - 1) & MASK) | options
    if options > ts_now & ((1 << TS_BITS) - 1):
        ts = (ts - (1 << TS_BITS)) & MASK
    return ts


def decode_tsecr(tsecr: int) -> tuple[int | None, bool, bool]:
    """``(wscale, sack_permitted, ecn)`` from the TSecr of the ACK (Linux
    ``cookie_timestamp_decode``); ``wscale`` is None when the SYN had no window scaling."""
    ws = tsecr & TS_WSCALE_MASK
    return (None if ws == TS_WSCALE_MASK else ws), bool(tsecr & TS_SACK), bool(tsecr & TS_ECN)


def cookie_ts_offset(cookie: int) -> int:
    """The per-connection timestamp offset (RFC 7323 7.1) of a cookie connection: derived
    from the (secret-keyed) cookie, so it is the same when the SYN-ACK is built and when the
    ACK creates the connection. The engine derives its default offset from the ISS the same
    way (``Connection.ts_offset``)."""
    return (cookie * 2654435761) & MASK
