"""Hostile packets straight onto the TUN (an AF_PACKET socket, so even malformed IP headers
arrive byte for byte): every one is dropped and counted under its reason, nothing escapes the
event loop, and the stack keeps answering ping, echo and its status page.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Iterator

import pytest
from scapy.layers.inet import ICMP, IP, TCP

from tests.e2e.conftest import STACK_ADDR, StartPytcp, curl
from tests.e2e.rawpeer import PEER_ADDR, RawPeer
from tools.netns import Netns, PytcpUp

ECHO = 7


@pytest.fixture(params=[("--no-offload",), ()], ids=["plain", "offload"])
def hostile(request: pytest.FixtureRequest, netns: Netns,
            start_pytcp: StartPytcp) -> Iterator[tuple[Netns, PytcpUp, RawPeer]]:
    # No --root: port 80 serves the status page, whose JSON has the drop counters.
    up = start_pytcp(netns, "--echo", str(ECHO), "--http", "80", *request.param)
    peer = RawPeer(netns)
    try:
        yield netns, up, peer
    finally:
        peer.close()


def status(ns: Netns) -> dict:  # type: ignore[type-arg]
    res = curl(ns, f"http://{STACK_ADDR}/status.json", timeout=10)
    assert res.returncode == 0, res.stderr.decode()
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def ip_bytes(pkt: IP) -> bytearray:
    return bytearray(bytes(pkt))


def _fix_ip_checksum(buf: bytearray) -> bytearray:
    ihl = (buf[0] & 0x0F) * 4
    buf[10:12] = b"\0\0"
    total = sum(struct.unpack(f"!{ihl // 2}H", bytes(buf[:ihl])))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    buf[10:12] = struct.pack("!H", ~total & 0xFFFF)
    return buf


def malformed_packets() -> dict[str, list[bytes]]:
    """Packets by the drop reason each must be counted under (``*``: any reason)."""
    src, dst = PEER_ADDR, STACK_ADDR
    syn = IP(src=src, dst=dst) / TCP(sport=42000, dport=ECHO, seq=1, flags="S")
    out: dict[str, list[bytes]] = {}

    bad_sum = ip_bytes(syn)
    bad_sum[10] ^= 0x5A
    out["bad_ip_checksum"] = [bytes(bad_sum)]

    v6 = ip_bytes(syn)
    v6[0] = 0x65
    out["bad_ip_version"] = [bytes(_fix_ip_checksum(v6))]

    ihl4 = ip_bytes(syn)
    ihl4[0] = 0x44
    ihl15 = ip_bytes(IP(src=src, dst=dst, proto=6))  # 20 bytes claiming a 60-byte header
    ihl15[0] = 0x4F
    out["bad_ihl"] = [bytes(ihl4), bytes(ihl15)]

    too_long = ip_bytes(syn)
    too_long[2:4] = struct.pack("!H", 1000)
    too_short = ip_bytes(syn)
    too_short[2:4] = struct.pack("!H", 10)
    out["bad_total_length"] = [bytes(_fix_ip_checksum(too_long)),
                               bytes(_fix_ip_checksum(too_short))]

    out["truncated"] = [bytes(IP(src=src, dst=dst, proto=6) / bytes(10)), b"\x45"]

    tcp_sum = bytes(IP(src=src, dst=dst) /
                    TCP(sport=42001, dport=ECHO, seq=1, flags="S", chksum=0x1234))
    out["bad_checksum"] = [tcp_sum,
                           bytes(IP(src=src, dst=dst) / ICMP(type=8, chksum=0x4321) / b"ping")]

    out["bad_data_offset"] = [
        bytes(IP(src=src, dst=dst) / TCP(sport=42002, dport=ECHO, flags="S", dataofs=4)),
        bytes(IP(src=src, dst=dst) / TCP(sport=42003, dport=ECHO, flags="S", dataofs=15)),
    ]

    out["unsupported_protocol"] = [bytes(IP(src=src, dst=dst, proto=99) / b"hello")]

    out["bad_source"] = [
        bytes(IP(src="255.255.255.255", dst=dst) / TCP(sport=42004, dport=ECHO, flags="S")),
        bytes(IP(src="224.0.0.1", dst=dst) / TCP(sport=42005, dport=ECHO, flags="S")),
        bytes(IP(src="0.0.0.0", dst=dst) / TCP(sport=42006, dport=ECHO, flags="S")),
    ]

    # Option lengths of 0 and past the header (RFC 9293 MUST-7: be prepared for them).
    zero_len = bytearray(bytes(IP(src=src, dst=dst) /
                               TCP(sport=42007, dport=ECHO, flags="S", options=[("MSS", 1460)])))
    zero_len[20 + 21] = 0  # the MSS option's length byte
    past = bytearray(zero_len)
    past[20 + 21] = 40
    out["bad_option"] = [bytes(_fix_tcp(zero_len)), bytes(_fix_tcp(past))]

    # Seeded mutations of valid packets: flipped bytes anywhere (reason depends on where).
    rng = random.Random(7)
    templates = [bytes(syn), bytes(IP(src=src, dst=dst) / ICMP(type=8) / (b"x" * 32)),
                 bytes(IP(src=src, dst=dst) / TCP(sport=42008, dport=ECHO, seq=5, ack=9,
                                                  flags="PA", options=[("Timestamp", (1, 2))])
                       / b"data")]
    fuzz = []
    for _ in range(300):
        buf = bytearray(rng.choice(templates))
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        if rng.random() < 0.3:
            buf = buf[: rng.randint(1, len(buf))]
        fuzz.append(bytes(buf))
    out["*"] = fuzz
    return out


def _fix_tcp(buf: bytearray) -> bytearray:
    """Recompute the TCP checksum of an IPv4/TCP packet (so only the option is wrong)."""
    seg = bytearray(buf[20:])
    seg[16:18] = b"\0\0"
    pseudo = bytes(buf[12:20]) + struct.pack("!BBH", 0, 6, len(seg))
    data = pseudo + bytes(seg) + (b"\0" if len(seg) % 2 else b"")
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    buf[20 + 16:20 + 18] = struct.pack("!H", ~total & 0xFFFF)
    return buf


def test_malformed_packets_are_counted_drops_and_the_stack_keeps_serving(
        hostile: tuple[Netns, PytcpUp, RawPeer]) -> None:
    ns, up, peer = hostile
    before = status(ns)
    packets = malformed_packets()
    for group in packets.values():
        for pkt in group:
            peer.send_link(pkt)

    # Still alive: ping, echo and the status page all answer.
    res = ns.run(["ping", "-c", "2", "-i", "0.2", "-W", "2", STACK_ADDR], timeout=15)
    assert res.returncode == 0, res.stdout.decode()
    sock = ns.socket()
    sock.settimeout(10)
    sock.connect((STACK_ADDR, ECHO))
    sock.sendall(b"still here")
    assert sock.recv(100) == b"still here"
    sock.close()
    assert up.proc.poll() is None, up.stderr()

    after = status(ns)
    drops = {k: after["drops"].get(k, 0) - before["drops"].get(k, 0) for k in after["drops"]}
    for reason, group in packets.items():
        if reason == "*":
            continue
        assert drops.get(reason, 0) >= len(group), (reason, drops)
    hostile_total = sum(len(g) for g in packets.values())
    counted = sum(drops.values())
    # Some fuzzed packets stay valid (a flipped byte in the payload of an ICMP echo with
    # the checksum also flipped...), but nearly all must be counted drops.
    assert counted >= hostile_total - len(packets["*"]) // 4, (counted, hostile_total, drops)
    print("drops:", drops, "counted", counted, "of", hostile_total)
    assert after["runtime"]["callback_errors"] == 0, after["runtime"]
    assert "Traceback" not in up.stderr(), up.stderr()
