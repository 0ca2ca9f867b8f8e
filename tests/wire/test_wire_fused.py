"""parse_ipv4_tcp (the receive fast path) against parse_ipv4 then parse_tcp: on valid and
mutated packets it gives the same TcpHeader, or None exactly where the general path either
raises or has a case the fast path leaves to it (IP options, fragments, other protocols)."""

from __future__ import annotations

import random

import pytest

from pytcp.drops import MalformedPacket
from pytcp.wire.ipv4 import PROTO_TCP, parse_ipv4
from pytcp.wire.tcp import ACK, TcpHeader, TcpOptions, build_ipv4_tcp, parse_ipv4_tcp, parse_tcp
from tests.wire.test_wire_fuzz import _mutate, _repair_checksums, _seed_packets

FIELDS = ("sport", "dport", "seq", "ack", "data_offset", "flags", "window", "checksum", "urg",
          "options", "option_kinds")


def _two_step(pkt: bytes | bytearray, verify: bool) -> tuple[str, object]:
    try:
        ip = parse_ipv4(pkt, verify_checksum=verify)
    except MalformedPacket as e:
        return "ip-error", e.reason
    if ip.proto != PROTO_TCP or ip.mf or ip.frag_offset or ip.ihl != 5:
        return "general", None
    try:
        th = parse_tcp(ip.payload, ip.src, ip.dst, verify_checksum=verify)
    except MalformedPacket as e:
        return "tcp-error", e.reason
    return "ok", (ip.src, ip.dst, th)


def _same(a: TcpHeader, b: TcpHeader) -> None:
    for f in FIELDS:
        assert getattr(a, f) == getattr(b, f), f
    assert bytes(a.header) == bytes(b.header)
    assert bytes(a.payload) == bytes(b.payload)


def _check(pkt: bytes | bytearray, verify: bool) -> str:
    kind, want = _two_step(pkt, verify)
    try:
        got = parse_ipv4_tcp(pkt, verify)
    except MalformedPacket as e:
        # Only for an option area the general path rejects too.
        assert kind == "tcp-error" and want == e.reason
        return "raised"
    if got is None:
        assert kind != "ok" or len(pkt) < 40
        return "none"
    assert kind == "ok", kind
    src, dst, th = got
    wsrc, wdst, wth = want  # type: ignore[misc]
    assert (src, dst) == (wsrc, wdst)
    _same(th, wth)
    return "ok"


def test_valid_segments_parse_identically() -> None:
    for payload in (b"", b"x", bytes(1448)):
        for opts in (TcpOptions(), TcpOptions(timestamp=(1, 2)),
                     TcpOptions(mss=1460, wscale=7, sack_permitted=True, timestamp=(3, 4)),
                     TcpOptions(timestamp=(5, 6), sack_blocks=((10, 20), (30, 40)))):
            pkt = bytes(build_ipv4_tcp(src=0x0A000001, dst=0x0A000002, sport=1234, dport=80,
                                       seq=7, ack=9, flags=ACK, window=512, options=opts,
                                       payload=payload))
            assert _check(pkt, True) == "ok"
            assert _check(pkt + b"\0\0", True) == "ok"  # link padding after total length
            assert _check(bytearray(pkt), True) == "ok"
            assert _check(memoryview(pkt), False) == "ok"


@pytest.mark.parametrize("seed", [1, 2])
def test_mutants_agree_with_the_general_path(seed: int) -> None:
    rng = random.Random(seed)
    seeds = _seed_packets(rng)
    outcomes: dict[str, int] = {}
    for i in range(15_000):
        pkt = _mutate(rng, seeds[rng.randrange(len(seeds))])
        if i & 1:
            _repair_checksums(pkt)
        r = _check(bytes(pkt), (i & 3) != 3)
        outcomes[r] = outcomes.get(r, 0) + 1
    # Each kind of outcome was exercised.
    assert outcomes.get("ok", 0) > 100 and outcomes.get("none", 0) > 100
    assert outcomes.get("raised", 0) > 0
