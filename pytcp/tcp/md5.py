"""TCP MD5 signature keys and the inbound rule (RFC 2385, as Linux runs it).

A socket (a listener or a connecting socket) holds a :class:`Md5Keys` table: keys per peer
address, optionally per prefix (Linux ``TCP_MD5SIG`` / ``TCP_MD5SIG_EXT`` with
``TCP_MD5SIG_FLAG_PREFIX``). A connection takes the key its peer's address selects when it is
created (Linux ``tcp_v4_syn_recv_sock`` copies the listener's key to the child; ``connect``
looks it up for the destination) and keeps it: from then on every segment it sends is signed
(RFC 2385 4.0) and every one it receives must be.

:func:`inbound_verdict` is Linux's ``tcp_inbound_md5_hash``: no key and no option -> accept;
a key and no option -> drop (``MD5_NOT_FOUND``); an option and no key -> drop
(``MD5_UNEXPECTED``); a digest that does not match -> drop (``MD5_FAILURE``). RFC 2385 2.0
asks for the silent discard of the first and third; the second is Linux's choice (an
unknown option would otherwise be ignored, RFC 9293 MUST-6).

Bounds: at most :data:`MAX_KEYS` keys per socket (Linux bounds them by ``optmem_max``); a key
is 1..80 bytes (``TCP_MD5SIG_MAXKEYLEN``). A key of length 0 deletes the entry (Linux).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from pytcp.drops import DropReason
from pytcp.wire.tcp import TcpHeader, md5_digest

MAX_KEY_LEN = 80   # Linux TCP_MD5SIG_MAXKEYLEN
MAX_KEYS = 64      # per socket; beyond it add() raises (Linux: ENOMEM past optmem_max)


@dataclass(frozen=True, slots=True)
class Md5Key:
    """One key: for the peers whose address matches ``addr`` in its first ``prefix`` bits."""

    addr: int
    prefix: int
    v6: bool
    key: bytes


class Md5Keys:
    """The keys of one socket, looked up by the peer's address (longest prefix wins)."""

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: list[Md5Key] = []

    def __len__(self) -> int:
        return len(self._keys)

    def set(self, addr: int, key: bytes, *, v6: bool = False, prefix: int | None = None) -> None:
        """Add or replace the key for ``addr``/``prefix`` (None: the whole address); an empty
        ``key`` deletes it (Linux ``tcp_v4_parse_md5_keys`` with tcpm_keylen 0).
        Raises ValueError for a key over 80 bytes, a bad prefix, or a full table."""
        bits = 128 if v6 else 32
        plen = bits if prefix is None else prefix
        if not 0 <= plen <= bits:
            raise ValueError(f"prefix length {plen} out of 0..{bits}")
        if len(key) > MAX_KEY_LEN:
            raise ValueError(f"an MD5 key is at most {MAX_KEY_LEN} bytes, got {len(key)}")
        mask = ((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1)
        addr &= mask
        keep = [k for k in self._keys if (k.addr, k.prefix, k.v6) != (addr, plen, v6)]
        if key:
            if len(keep) >= MAX_KEYS:
                raise ValueError(f"at most {MAX_KEYS} MD5 keys per socket")
            keep.append(Md5Key(addr, plen, v6, bytes(key)))
        elif len(keep) == len(self._keys):
            raise KeyError("no such MD5 key")  # Linux: ENOENT
        self._keys = keep

    def lookup(self, addr: int, v6: bool = False) -> bytes | None:
        """The key for peer ``addr`` (Linux ``tcp_md5_do_lookup``: the longest prefix)."""
        bits = 128 if v6 else 32
        best: Md5Key | None = None
        for k in self._keys:
            if k.v6 == v6 and (addr >> (bits - k.prefix) if k.prefix < bits else addr) == (
                    k.addr >> (bits - k.prefix) if k.prefix < bits else k.addr) and (
                    best is None or k.prefix > best.prefix):
                best = k
        return best.key if best is not None else None


def inbound_verdict(key: bytes | None, th: TcpHeader, src: int, dst: int,
                    v6: bool) -> DropReason | None:
    """Linux ``tcp_inbound_md5_hash`` for a segment ``th`` from ``src`` to ``dst``, given the
    key the receiving socket holds for ``src`` (None: none). None: accept."""
    got = th.options.md5
    if key is None:
        return None if got is None else DropReason.MD5_UNEXPECTED
    if got is None:
        return DropReason.MD5_NOT_FOUND  # RFC 2385 2.0: unsigned where a key applies
    if not hmac.compare_digest(md5_digest(key, src, dst, th.header, v6, th.payload), got):
        return DropReason.MD5_FAILURE
    return None


# Linux's socket option (include/uapi/linux/tcp.h).
TCP_MD5SIG = 14
TCP_MD5SIG_EXT = 32
TCP_MD5SIG_FLAG_PREFIX = 0x1
TCP_MD5SIG_FLAG_IFINDEX = 0x2
MD5SIG_STRUCT_LEN = 216  # struct tcp_md5sig: sockaddr_storage (128) + 4 + 4 + key[80]
_AF_INET, _AF_INET6 = 2, 10


def parse_tcp_md5sig(value: bytes, ext: bool) -> tuple[int, bool, int | None, bytes]:
    """Linux's ``struct tcp_md5sig`` (TCP_MD5SIG; TCP_MD5SIG_EXT also reads ``tcpm_flags`` /
    ``tcpm_prefixlen``) -> (address, is IPv6, prefix or None, key). An IPv4-mapped IPv6
    address is the IPv4 one (Linux tcp_v6_parse_md5_keys). Raises ValueError (EINVAL) for a
    short buffer, another family, a key over 80 bytes or an ifindex binding (not kept)."""
    if len(value) < MD5SIG_STRUCT_LEN:
        raise ValueError(f"struct tcp_md5sig is {MD5SIG_STRUCT_LEN} bytes, got {len(value)}")
    family = int.from_bytes(value[0:2], "little")
    if family == _AF_INET:
        addr, v6 = int.from_bytes(value[4:8], "big"), False
    elif family == _AF_INET6:
        addr, v6 = int.from_bytes(value[8:24], "big"), True
        if addr >> 32 == 0xFFFF:
            addr, v6 = addr & 0xFFFFFFFF, False
    else:
        raise ValueError(f"address family {family} (AF_INET or AF_INET6)")
    flags, prefixlen = value[128], value[129]
    keylen = int.from_bytes(value[130:132], "little")
    if keylen > MAX_KEY_LEN:
        raise ValueError(f"tcpm_keylen {keylen} > {MAX_KEY_LEN}")
    prefix: int | None = None
    if ext:
        if flags & TCP_MD5SIG_FLAG_IFINDEX and int.from_bytes(value[132:136], "little"):
            raise ValueError("TCP_MD5SIG_FLAG_IFINDEX: pytcp has one interface")
        if flags & TCP_MD5SIG_FLAG_PREFIX:
            prefix = prefixlen
    return addr, v6, prefix, bytes(value[136:136 + keylen])


def build_tcp_md5sig(addr: str, key: bytes, prefix: int | None = None) -> bytes:
    """The ``struct tcp_md5sig`` for ``addr`` and ``key`` (for TCP_MD5SIG_EXT with a
    prefix), as a kernel socket takes it."""
    import ipaddress

    a = ipaddress.ip_address(addr)
    buf = bytearray(MD5SIG_STRUCT_LEN)
    if a.version == 4:
        buf[0:2] = _AF_INET.to_bytes(2, "little")
        buf[4:8] = a.packed
    else:
        buf[0:2] = _AF_INET6.to_bytes(2, "little")
        buf[8:24] = a.packed
    if prefix is not None:
        buf[128] = TCP_MD5SIG_FLAG_PREFIX
        buf[129] = prefix
    buf[130:132] = len(key).to_bytes(2, "little")
    buf[136:136 + len(key)] = key
    return bytes(buf)
