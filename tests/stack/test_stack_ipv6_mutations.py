"""Mutated IPv6, ICMPv6, UDP and fragment packets never raise past the stack: each is a
counted drop with a reason or a normal answer, never a STACK_ERROR (seeded, bounded)."""

from __future__ import annotations

import random

import pytest
from scapy.layers.inet import IP, TCP, UDP  # type: ignore[import-untyped]
from scapy.layers.inet6 import (  # type: ignore[import-untyped]
    ICMPv6DestUnreach,
    ICMPv6EchoRequest,
    ICMPv6PacketTooBig,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrRouting,
)

from pytcp.drops import DropReason
from pytcp.stack import Stack, StackConfig

US6, P6 = "fd00:77::2", "fd00:77::1"


def _seeds() -> list[bytes]:
    quoted_udp = bytes(IPv6(src=US6, dst=P6) / UDP(sport=7, dport=9))
    quoted_tcp = bytes(IPv6(src=US6, dst=P6) / TCP(sport=80, dport=9))
    return [bytes(p) for p in (
        IPv6(src=P6, dst=US6) / ICMPv6EchoRequest(data=b"x" * 100),
        IPv6(src=P6, dst=US6) / IPv6ExtHdrFragment(id=1, m=1) / UDP(dport=7) / (b"a" * 64),
        IPv6(src=P6, dst=US6) / IPv6ExtHdrFragment(id=1, offset=9) / (b"a" * 64),
        IPv6(src=P6, dst=US6) / IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting(addresses=[])
        / TCP(dport=80, flags="S"),
        IPv6(src=P6, dst=US6) / UDP(dport=7) / b"hello",
        IPv6(src=P6, dst=US6) / ICMPv6DestUnreach() / quoted_udp,
        IPv6(src=P6, dst=US6) / ICMPv6PacketTooBig(mtu=1300) / quoted_tcp,
        IP(src="10.0.0.1", dst="10.0.0.2") / UDP(dport=7) / b"x",
        IP(src="10.0.0.1", dst="10.0.0.2", flags="MF") / UDP(dport=7) / (b"x" * 32),
    )]


@pytest.mark.parametrize("verify", [True, False])
def test_mutated_packets_are_counted_never_raised(verify: bool) -> None:
    rng = random.Random(12)
    seeds = _seeds()
    s = Stack("10.0.0.2", addr6=US6, now=0.0, secret=b"k",
              config=StackConfig(icmp_errors_per_sec=1_000_000, verify_checksums=verify))
    s.listen(80)
    ep = s.udp_bind(7)
    for i in range(4000):
        b = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            if op < 0.6 and b:
                b[rng.randrange(len(b))] = rng.randrange(256)
            elif op < 0.8:
                b = b[:rng.randrange(len(b) + 1)]
            else:
                b += rng.randbytes(rng.randint(1, 20))
        if len(b) >= 40 and b[0] >> 4 == 6 and rng.random() < 0.7:
            b[4:6] = (len(b) - 40).to_bytes(2, "big")  # past the first length check
        s.receive_packet(i * 0.001, bytes(b))
        s.pending_packets()
        s.pending_events()
        while ep.recvfrom() is not None:
            pass
        if i % 500 == 0:
            s.handle_timers(i * 0.001)
    drops = s.drops
    assert drops[DropReason.STACK_ERROR] == 0
    assert drops[DropReason.BAD_IPV6_EXT] > 0 and drops[DropReason.FRAGMENT_INVALID] > 0
