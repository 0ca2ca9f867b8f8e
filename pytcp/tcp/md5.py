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
    seg = bytes(th.header) + bytes(th.payload)
    if not hmac.compare_digest(md5_digest(key, src, dst, seg, v6), got):
        return DropReason.MD5_FAILURE
    return None
