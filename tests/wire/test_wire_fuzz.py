"""Fuzz: 200,000+ random and mutated packets through parse_ipv4 -> parse_tcp / parse_icmp.

The only exception allowed out of the parsers is MalformedPacket. Valid scapy-built packets
are mutated cheaply with a seeded random.Random (flip bytes, set boundary values, truncate,
extend, rewrite header nibbles and option lengths); half of the mutants get their checksums
repaired so that the option and length checks behind the checksum are reached too.
"""

from __future__ import annotations

import random
import struct
import time
from collections import Counter

from scapy.layers.inet import ICMP, IP, TCP, IPOption_NOP, IPOption_RR

from pytcp import native
from pytcp.drops import DropReason, MalformedPacket
from pytcp.wire.icmp import build_dest_unreachable, parse_icmp
from pytcp.wire.ipv4 import parse_ipv4
from pytcp.wire.tcp import TcpOptions, build_ipv4_tcp, parse_tcp

ITERATIONS = 200_000
TIME_LIMIT = 60.0

_OPTION_CHOICES = [
    ("NOP", None), ("EOL", None), ("MSS", 1460), ("WScale", 7), ("SAckOK", b""),
    ("Timestamp", (123, 456)), ("SAck", (1, 2)), ("SAck", (1, 2, 3, 4, 5, 6)), (99, b"ab"),
    (30, b""), (254, b"\x12\x34\x56"),
]


def _seed_packets(rng: random.Random) -> list[bytes]:
    pkts: list[bytes] = []
    for i in range(120):
        opts = [rng.choice(_OPTION_CHOICES) for _ in range(rng.randrange(0, 5))]
        ip_opts = [IPOption_NOP()] * rng.randrange(0, 3) + (
            [IPOption_RR(routers=["1.2.3.4"])] if rng.random() < 0.2 else [])
        payload = rng.randbytes(rng.choice([0, 0, 1, 7, 100, 1460]))
        pkt = IP(src="10.0.0.1", dst="10.0.0.2", options=ip_opts, flags=rng.randrange(4),
                 frag=rng.choice([0, 0, 0, 185])) / TCP(
            sport=rng.randrange(65536), dport=80, seq=rng.getrandbits(32),
            flags=rng.randrange(256), options=opts) / payload
        pkts.append(bytes(pkt))
        if i % 4 == 0:
            pkts.append(bytes(IP(src="10.0.0.3", dst="10.0.0.2")
                              / ICMP(type=rng.choice([0, 8]), id=i, seq=i) / payload[:64]))
        if i % 8 == 0:
            err = build_dest_unreachable(rng.randrange(16), pkts[-1])
            pkts.append(bytes(IP(src="10.0.0.9", dst="10.0.0.2", proto=1) / err))
    pkts.append(bytes(build_ipv4_tcp(
        src=1, dst=2, sport=3, dport=4, seq=5, ack=6, flags=0x12, window=7,
        options=TcpOptions(mss=1460, wscale=7, sack_permitted=True, timestamp=(1, 2)))))
    return pkts


def _fold(s: int) -> int:
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _repair_checksums(pkt: bytearray) -> None:
    """Recompute the IP header and TCP/ICMP checksums where the mutant's lengths allow it."""
    if len(pkt) < 20:
        return
    hlen = (pkt[0] & 0x0F) * 4
    if hlen < 20 or hlen > len(pkt):
        return
    pkt[10:12] = b"\x00\x00"
    pkt[10:12] = struct.pack("!H", native.checksum(pkt[:hlen]))
    total = struct.unpack_from("!H", pkt, 2)[0]
    end = min(total, len(pkt))
    if end <= hlen:
        return
    seg = pkt[hlen:end]
    if pkt[9] == 6 and len(seg) >= 18:
        seg[16:18] = b"\x00\x00"
        src, dst = struct.unpack_from("!II", pkt, 12)
        start = native.pseudo_header_sum(src, dst, 6, len(seg))
        seg[16:18] = struct.pack("!H", native.checksum(seg, start))
    elif pkt[9] == 1 and len(seg) >= 4:
        seg[2:4] = b"\x00\x00"
        seg[2:4] = struct.pack("!H", native.checksum(seg))
    else:
        return
    pkt[hlen:end] = seg


def _mutate(rng: random.Random, base: bytes) -> bytearray:
    pkt = bytearray(base)
    op = rng.randrange(9)
    n = len(pkt)
    if op == 0:  # flip a few bytes
        for _ in range(rng.randrange(1, 5)):
            pkt[rng.randrange(n)] = rng.randrange(256)
    elif op == 1:  # boundary values somewhere in the headers
        i = rng.randrange(min(n, 80))
        pkt[i] = rng.choice([0, 1, 2, 3, 4, 5, 0x0F, 0x10, 0x40, 0x45, 0x4F, 0x7F, 0x80, 0xFF])
    elif op == 2:  # truncate
        del pkt[rng.randrange(n):]
    elif op == 3:  # extend
        pkt += rng.randbytes(rng.randrange(1, 64))
    elif op == 4:  # IHL nibble
        pkt[0] = 0x40 | rng.randrange(16)
    elif op == 5:  # total length
        pkt[2:4] = struct.pack("!H", rng.choice([0, 19, 20, n - 1, n, n + 1, 65535,
                                                 rng.randrange(65536)]))
    elif op == 6:  # TCP data offset nibble
        hlen = (pkt[0] & 0x0F) * 4
        if hlen + 12 < n:
            pkt[hlen + 12] = rng.randrange(16) << 4
    elif op == 7:  # an option byte (kind or length) inside the TCP option area
        hlen = (pkt[0] & 0x0F) * 4
        if hlen + 20 < n:
            doff = (pkt[hlen + 12] >> 4) * 4
            if doff > 20 and hlen + doff <= n:
                pkt[hlen + rng.randrange(20, doff)] = rng.choice([0, 1, 2, 3, 8, 10, 40, 255,
                                                                 rng.randrange(256)])
    else:  # random garbage, sometimes with a plausible first byte
        pkt = bytearray(rng.randbytes(rng.randrange(0, 90)))
        if pkt and rng.random() < 0.7:
            pkt[0] = 0x45
    return pkt


def test_fuzz_parsers_raise_only_malformed_packet() -> None:
    rng = random.Random(20261127)
    seeds = _seed_packets(rng)
    reasons: Counter[DropReason] = Counter()
    parsed_ok = Counter[str]()
    began = time.monotonic()
    for i in range(ITERATIONS):
        pkt = _mutate(rng, seeds[rng.randrange(len(seeds))])
        if i & 1:
            _repair_checksums(pkt)
        verify = (i & 3) != 3  # a quarter skip checksum verification altogether
        try:
            ip = parse_ipv4(pkt, verify_checksum=verify)
            assert len(ip.payload) == ip.total_length - ip.ihl * 4 <= len(pkt) - ip.ihl * 4
            if ip.proto == 6:
                seg = parse_tcp(ip.payload, ip.src, ip.dst, verify_checksum=verify)
                assert len(seg.header) + len(seg.payload) == len(ip.payload)
                assert len(seg.header) == seg.data_offset * 4
                parsed_ok["tcp"] += 1
            elif ip.proto == 1:
                msg = parse_icmp(ip.payload, verify_checksum=verify)
                assert len(msg.payload) == len(ip.payload) - 8
                parsed_ok["icmp"] += 1
        except MalformedPacket as exc:
            assert isinstance(exc.reason, DropReason)
            reasons[exc.reason] += 1
        except Exception as exc:
            raise AssertionError(f"iteration {i}: {exc!r} on packet {bytes(pkt).hex()}") from exc
        if i % 10_000 == 0:
            assert time.monotonic() - began < TIME_LIMIT, f"fuzz too slow at iteration {i}"
    elapsed = time.monotonic() - began
    assert elapsed < TIME_LIMIT
    # The fuzz reached every check, and enough mutants got all the way through.
    for reason in (DropReason.TRUNCATED, DropReason.BAD_IP_VERSION, DropReason.BAD_IHL,
                   DropReason.BAD_TOTAL_LENGTH, DropReason.BAD_IP_CHECKSUM,
                   DropReason.BAD_CHECKSUM, DropReason.BAD_DATA_OFFSET, DropReason.BAD_OPTION,
                   DropReason.BAD_ICMP):
        assert reasons[reason] > 0, (reason, reasons)
    assert parsed_ok["tcp"] > ITERATIONS // 10 and parsed_ok["icmp"] > 100, parsed_ok
    print(f"fuzz: {ITERATIONS} packets in {elapsed:.1f} s; ok={dict(parsed_ok)}; "
          f"drops={ {r.value: c for r, c in reasons.items()} }")
