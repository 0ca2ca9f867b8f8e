"""Initial sequence numbers (RFC 6528, RFC 9293 3.4.1 MUST-8, MUST-9).

Owns ISN selection: ISN = M + F(localip, localport, remoteip, remoteport, secretkey) mod 2**32,
where M is a timer ticking every 4 microseconds (derived from ``now``) and F is BLAKE2s keyed
with the stack's secret, so the ISN cannot be computed from outside (MUST-9).
"""

from __future__ import annotations

import hashlib

from pytcp.tcp.seq import MASK

TICKS_PER_SECOND = 250_000  # RFC 6528 / RFC 9293 3.4.1: one tick every 4 microseconds


class IsnGenerator:
    """Per-stack ISN generator. ``secret`` should be random bytes (1..32 of them are used as
    the BLAKE2s key; a longer secret is hashed down first)."""

    __slots__ = ("_key",)

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("the ISN secret must not be empty")
        if len(secret) > 32:
            secret = hashlib.blake2s(secret).digest()
        self._key = bytes(secret)

    def offset(self, local_addr: int, local_port: int, remote_addr: int, remote_port: int) -> int:
        """F(): the keyed hash of the connection identifiers, a 32-bit integer."""
        msg = (
            (local_addr & 0xFFFFFFFF).to_bytes(4, "big")
            + (local_port & 0xFFFF).to_bytes(2, "big")
            + (remote_addr & 0xFFFFFFFF).to_bytes(4, "big")
            + (remote_port & 0xFFFF).to_bytes(2, "big")
        )
        digest = hashlib.blake2s(msg, key=self._key, digest_size=4).digest()
        return int.from_bytes(digest, "big")

    def iss(
        self, now: float, local_addr: int, local_port: int, remote_addr: int, remote_port: int
    ) -> int:
        """RFC 6528 3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey)."""
        m = int(now * TICKS_PER_SECOND)
        return (m + self.offset(local_addr, local_port, remote_addr, remote_port)) & MASK
