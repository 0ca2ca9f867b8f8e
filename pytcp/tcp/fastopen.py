"""TCP Fast Open (RFC 7413): cookies, the client's cookie cache, and the per-connection
requests the stack hands to the engine. Sans I/O: no clock (time is passed in), no randomness
(keys are given or derived from a given secret).

Server side: :class:`CookieJar` makes and checks cookies. A cookie is SipHash-2-4 of the
client's and the server's IPv4 addresses keyed with a 128-bit key, 8 bytes (RFC 7413 4.1.2: a
MAC of the client IP under a server secret; this is Linux's construction, so the cookies
equal the ones Linux computes for the same key). The jar holds a primary and a backup key: a
cookie made with either is valid, and one made with the backup key is answered with a fresh
cookie (Linux's key rotation). Keys rotate every ``lifetime`` seconds when derived from a
master secret (RFC 7413 4.1.2: "the server SHOULD periodically change its secret"); a key set
explicitly (``TCP_FASTOPEN_KEY``, the ``tcp_fastopen_key`` sysctl) stays until replaced.

Client side: :class:`CookieCache` remembers per server address the cookie, the server's MSS
and whether the experimental option worked, with Linux's fallbacks (RFC 7413 4.1.3): a
cookie request that got no answer retries with the other option format; repeated SYN-data
losses disable Fast Open towards that server for a while. Bounded (oldest entries go first).

Option formats (RFC 7413 4.1.1, RFC 6994): kind 34 ``<34, len, cookie>`` and the
experimental kind 254 ``<254, len, 0xF989, cookie>`` (wire in ``pytcp/wire/tcp.py``).
``TcpConfig.fastopen`` is Linux's ``tcp_fastopen`` bit mask (names below).
"""

from __future__ import annotations

import hashlib
import struct
from collections import OrderedDict
from dataclasses import dataclass

# Linux's tcp_fastopen bits (include/net/tcp.h).
TFO_CLIENT_ENABLE = 0x1
TFO_SERVER_ENABLE = 0x2
TFO_CLIENT_NO_COOKIE = 0x4          # data in the SYN without a cookie
TFO_SERVER_COOKIE_NOT_REQD = 0x200  # accept SYN data without a (valid) cookie
TFO_SERVER_WO_SOCKOPT1 = 0x400      # every listener does Fast Open (queue = mask >> 16)

COOKIE_SIZE = 8            # Linux TCP_FASTOPEN_COOKIE_SIZE
COOKIE_MIN = 4             # RFC 7413 4.1.1: 4 to 16 bytes
COOKIE_MAX = 16
# Linux reserves the whole option space in a SYN carrying data (MAX_TCP_OPTION_SPACE).
SYN_DATA_OPTION_RESERVE = 40
CACHE_ENTRIES = 1024
_M64 = (1 << 64) - 1


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _M64


def siphash24(key: bytes, data: bytes) -> int:
    """SipHash-2-4 (Aumasson and Bernstein) of ``data`` under a 16-byte ``key``."""
    k0, k1 = struct.unpack("<QQ", key)
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573

    def rounds(n: int) -> None:
        nonlocal v0, v1, v2, v3
        for _ in range(n):
            v0 = (v0 + v1) & _M64
            v1 = _rotl(v1, 13) ^ v0
            v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & _M64
            v3 = _rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & _M64
            v3 = _rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & _M64
            v1 = _rotl(v1, 17) ^ v2
            v2 = _rotl(v2, 32)

    n = len(data)
    end = n - n % 8
    for i in range(0, end, 8):
        m = struct.unpack_from("<Q", data, i)[0]
        v3 ^= m
        rounds(2)
        v0 ^= m
    b = (n & 0xFF) << 56
    for i, c in enumerate(data[end:]):
        b |= c << (8 * i)
    v3 ^= b
    rounds(2)
    v0 ^= b
    v2 ^= 0xFF
    rounds(4)
    return int(v0 ^ v1 ^ v2 ^ v3)


def parse_key(text: str) -> bytes:
    """Linux's ``tcp_fastopen_key`` notation ``aaaaaaaa-bbbbbbbb-cccccccc-dddddddd`` (four
    32-bit hex words, stored little-endian as the kernel does) -> 16 key bytes. A second key
    after a comma (the backup) is ignored here (see :func:`parse_keys`)."""
    return parse_keys(text)[0]


def parse_keys(text: str) -> list[bytes]:
    """Every key of a ``tcp_fastopen_key`` value (primary first, then the backup)."""
    keys = []
    for part in text.strip().split(","):
        words = part.strip().split("-")
        if len(words) != 4:
            raise ValueError(f"fastopen key {part!r}: expected 4 hex words a-b-c-d")
        try:
            keys.append(struct.pack("<4I", *(int(w, 16) for w in words)))
        except (ValueError, struct.error):
            raise ValueError(f"fastopen key {part!r}: not 32-bit hex words") from None
    return keys


def make_cookie(key: bytes, client: int, server: int) -> bytes:
    """The 8-byte cookie for ``client`` (the SYN's source) and ``server`` addresses (IPv6
    addresses, above 32 bits, as 16 bytes each, as Linux hashes saddr and daddr)."""
    n = 16 if client > 0xFFFFFFFF or server > 0xFFFFFFFF else 4
    data = client.to_bytes(n, "big") + server.to_bytes(n, "big")
    return struct.pack("<Q", siphash24(key, data))


class CookieJar:
    """The server's cookie keys: a primary and an optional backup (RFC 7413 4.1.2)."""

    __slots__ = ("_epoch", "_secret", "backup", "lifetime", "primary")

    def __init__(self, key: bytes | None = None, backup: bytes | None = None, *,
                 secret: bytes | None = None, lifetime: float = 0.0) -> None:
        if key is None and secret is None:
            raise ValueError("a key or a secret to derive keys from is needed")
        self._secret = secret
        self.lifetime = lifetime
        self._epoch: int | None = None
        self.primary = key if key is not None else self._derive(0)
        self.backup = backup

    def _derive(self, epoch: int) -> bytes:
        assert self._secret is not None
        return hashlib.blake2s(epoch.to_bytes(8, "big", signed=True), key=self._secret[:32],
                               digest_size=16, person=b"pytcpTFO").digest()

    def set_keys(self, primary: bytes, backup: bytes | None = None) -> None:
        """An explicit key (TCP_FASTOPEN_KEY / the sysctl): no more automatic rotation; the
        old primary stays valid as the backup unless one is given."""
        if len(primary) != 16 or (backup is not None and len(backup) != 16):
            raise ValueError("fastopen keys are 16 bytes")
        self.backup = backup if backup is not None else (
            self.primary if primary != self.primary else self.backup)
        self.primary = primary
        self._secret = None

    def rotate(self, now: float) -> None:
        """With a master secret and a lifetime: the key of the current period is primary and
        the previous one backup, so a cookie stays valid for one to two lifetimes."""
        if self._secret is None or self.lifetime <= 0:
            return
        epoch = int(now // self.lifetime)
        if epoch != self._epoch:
            self._epoch = epoch
            self.primary = self._derive(epoch)
            self.backup = self._derive(epoch - 1)

    def make(self, now: float, client: int, server: int) -> bytes:
        self.rotate(now)
        return make_cookie(self.primary, client, server)

    def check(self, now: float, cookie: bytes, client: int, server: int) -> int:
        """1 when ``cookie`` is valid under the primary key, 2 under the backup (valid, but
        the SYN-ACK should carry a fresh cookie), 0 when invalid."""
        self.rotate(now)
        if len(cookie) != COOKIE_SIZE:
            return 0
        if cookie == make_cookie(self.primary, client, server):
            return 1
        if self.backup is not None and cookie == make_cookie(self.backup, client, server):
            return 2
        return 0


@dataclass(frozen=True, slots=True)
class ServerDecision:
    """What the stack decided for a SYN to a Fast Open listener (passed to the engine)."""

    accept_data: bool            # a TFO child: the SYN's data is accepted (RFC 7413 4.2.2)
    reply_cookie: bytes | None   # a cookie to put in the SYN-ACK (None: no FO option)
    exp: bool = False            # answer in the experimental option format


def server_decide(mask: int, listener_qlen: int, pending: int, *, cookie: bytes | None,
                  exp: bool, syn_data: bool, jar: CookieJar, now: float, client: int,
                  server: int) -> ServerDecision | None:
    """Linux's tcp_try_fastopen for one SYN. ``cookie``: None when the SYN has no Fast Open
    option, ``b""`` for a cookie request. ``listener_qlen``: the listener's TCP_FASTOPEN
    queue limit (0: not a Fast Open listener), ``pending``: its TFO children not yet
    established (RFC 7413 5.1: bounded). None: nothing Fast Open about this SYN."""
    if mask & TFO_SERVER_WO_SOCKOPT1 and listener_qlen <= 0:
        listener_qlen = (mask >> 16) & 0xFFFF or 0
    if not (mask & TFO_SERVER_ENABLE) or listener_qlen <= 0:
        return None
    if cookie is None and not syn_data:
        return None
    if pending >= listener_qlen:
        return ServerDecision(False, None, exp)  # RFC 7413 5.1: queue full, plain 3WHS
    if mask & TFO_SERVER_COOKIE_NOT_REQD and syn_data:
        return ServerDecision(True, None, exp)
    valid = make_cookie_for(jar, now, client, server)
    if cookie is None:
        return ServerDecision(False, None, exp)
    if not cookie:
        return ServerDecision(False, valid, exp)  # a cookie request (4.1.3)
    ok = jar.check(now, cookie, client, server)
    if ok == 1:
        return ServerDecision(True, None, exp)
    if ok == 2:
        return ServerDecision(True, valid, exp)  # old key: accept, hand out a fresh one
    return ServerDecision(False, valid, exp)      # invalid: 3WHS, and a valid cookie


def make_cookie_for(jar: CookieJar, now: float, client: int, server: int) -> bytes:
    return jar.make(now, client, server)


@dataclass(frozen=True, slots=True)
class ClientRequest:
    """What the engine puts in an active open's first SYN: ``cookie`` (``b""``: a cookie
    request; None: no option, data without a cookie), the option format, and how many data
    bytes the SYN may carry."""

    cookie: bytes | None
    exp: bool
    space: int


@dataclass(slots=True)
class CacheEntry:
    mss: int = 0
    cookie: bytes = b""
    exp: bool = False           # the server answered the experimental option
    try_exp: int = 0            # 1: next request uses kind 254; 2: back to kind 34
    syn_loss: int = 0
    last_syn_loss: float = 0.0


class CookieCache:
    """The client's Fast Open cache per server address (Linux's tcp_metrics part)."""

    __slots__ = ("_entries", "max_entries")

    def __init__(self, max_entries: int = CACHE_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[int, CacheEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, addr: int) -> CacheEntry | None:
        return self._entries.get(addr)

    def clear(self) -> None:
        self._entries.clear()

    def request(self, now: float, addr: int, mask: int, mtu_mss: int) -> ClientRequest | None:
        """The Fast Open request for a new connection to ``addr`` (Linux
        tcp_fastopen_cookie_check), or None when Fast Open must not be tried: disabled, or
        recent SYN-data losses to this server (RFC 7413 4.1.3 / Linux: more than one loss,
        then 60 s << losses)."""
        if not mask & TFO_CLIENT_ENABLE:
            return None
        e = self._entries.get(addr)
        if e is not None and e.syn_loss > 1 and now < e.last_syn_loss + (60.0 * (1 << min(
                e.syn_loss, 16))):
            return None
        mss = e.mss if e is not None and e.mss else mtu_mss
        space = max(min(mss, mtu_mss) - SYN_DATA_OPTION_RESERVE, 0)
        if mask & TFO_CLIENT_NO_COOKIE:
            # Data without a cookie (0x4), and no option even with one cached (Linux
            # tcp_fastopen_cookie_check: the no-cookie mode wins).
            return ClientRequest(None, False, space)
        if e is not None and e.cookie:
            return ClientRequest(e.cookie, e.exp, space)
        return ClientRequest(b"", e is not None and e.try_exp == 1, 0)

    def update(self, now: float, addr: int, *, mss: int, cookie: bytes | None, exp: bool,
               syn_lost: bool, try_exp: int) -> None:
        """After a SYN-ACK (Linux tcp_fastopen_cache_set): remember the MSS and a cookie the
        server gave (``None``: none), note a lost SYN-data, or switch the option format."""
        e = self._entries.get(addr)
        if e is None:
            e = self._entries[addr] = CacheEntry()
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(addr)
        if mss:
            e.mss = mss
        if cookie:
            e.cookie = bytes(cookie)
            e.exp = exp
            e.try_exp = 0
        elif try_exp > e.try_exp and not e.cookie and not e.exp:
            # Linux: only forward (1: try kind 254 once, then 2: kind 34 for good), so a
            # server that answers neither format is not asked in kind 254 again and again.
            e.try_exp = try_exp
        if syn_lost:
            e.syn_loss += 1
            e.last_syn_loss = now
        else:
            e.syn_loss = 0
