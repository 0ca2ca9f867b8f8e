"""A TCP checksum the link's kernel vouched for (``RxPacket``: virtio-net NEEDS_CSUM or
DATA_VALID) is trusted, not recomputed; any other packet's checksum is verified."""

from __future__ import annotations

import random

from scapy.layers.inet import IP, TCP

from pytcp.drops import DropReason
from pytcp.stack import Stack
from pytcp.wire.offload import RxPacket

US, PEER = "10.77.0.2", "10.77.0.1"


def _syn_with_partial_checksum() -> bytes:
    raw = bytearray(bytes(IP(src=PEER, dst=US) / TCP(sport=40000, dport=80, seq=5,
                                                      flags="S")))
    raw[36:38] = b"\x12\x34"  # the pseudo-header sum only, as the kernel leaves it
    return bytes(raw)


def _stack() -> Stack:
    s = Stack(US, now=0.0, secret=b"t" * 16, rng=random.Random(3))
    s.listen(80)
    return s


def test_untrusted_bad_checksum_is_dropped() -> None:
    s = _stack()
    s.receive_batch(0.0, [_syn_with_partial_checksum()])
    assert s.pending_packets() == []
    assert s.drops[DropReason.BAD_CHECKSUM] == 1


def test_trusted_checksum_is_not_recomputed() -> None:
    s = _stack()
    pkt = RxPacket(_syn_with_partial_checksum())
    pkt.csum_partial = True
    s.receive_batch(0.0, [pkt])
    [synack] = s.pending_packets()
    assert str(IP(bytes(synack))[TCP].flags) == "SA"
    assert s.drops[DropReason.BAD_CHECKSUM] == 0
