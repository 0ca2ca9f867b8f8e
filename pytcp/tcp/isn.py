"""Initial sequence numbers (RFC 6528, RFC 9293 3.4.1 MUST-8, MUST-9).

Owns ISN selection: ISN = M + F(localip, localport, remoteip, remoteport, secretkey) mod 2**32,
where M is a timer ticking every 4 microseconds (derived from ``now``) and F is BLAKE2s keyed
with the stack's secret, so the ISN cannot be computed from outside (MUST-9).
"""

from __future__ import annotations

import hashlib
import struct

from pytcp.tcp.seq import MASK

_IDS = struct.Struct("!IHIH")

TICKS_PER_SECOND = 250_000  # RFC 6528 / RFC 9293 3.4.1: one tick every 4 microseconds


class IsnGenerator:
    """Per-stack ISN generator. ``secret`` should be random bytes (1..32 of them are used as
    the BLAKE2s key; a longer secret is hashed down first)."""

    __slots__ = ("_hasher", "_key")

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("the ISN secret must not be empty")
        if len(secret) > 32:
            secret = hashlib.blake2s(secret).digest()
        self._key = bytes(secret)
        # Keying BLAKE2s costs more than hashing 12 bytes: key it once, copy it per ISN.
        self._hasher = hashlib.blake2s(key=self._key, digest_size=4)

    def offset(self, local_addr: int, local_port: int, remote_addr: int, remote_port: int) -> int:
        """F(): the keyed hash of the connection identifiers, a 32-bit integer."""
        h = self._hasher.copy()
        if local_addr > 0xFFFFFFFF or remote_addr > 0xFFFFFFFF:
            # IPv6: the whole 128-bit addresses go into F() (RFC 6528 3).
            h.update(local_addr.to_bytes(16, "big") + local_port.to_bytes(2, "big")
                     + remote_addr.to_bytes(16, "big") + remote_port.to_bytes(2, "big"))
        else:
            h.update(_IDS.pack(local_addr & 0xFFFFFFFF, local_port & 0xFFFF,
                               remote_addr & 0xFFFFFFFF, remote_port & 0xFFFF))
        return int.from_bytes(h.digest(), "big")

    def iss(
        self, now: float, local_addr: int, local_port: int, remote_addr: int, remote_port: int
    ) -> int:
        """RFC 6528 3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey)."""
        m = int(now * TICKS_PER_SECOND)
        return (m + self.offset(local_addr, local_port, remote_addr, remote_port)) & MASK
