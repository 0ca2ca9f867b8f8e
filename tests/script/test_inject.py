"""Packets the script side injects, checked with scapy as the oracle."""

from __future__ import annotations

from scapy.all import ICMP, IP, TCP, IPerror, TCPerror  # test oracle only

from pytcp.script.inject import build_icmp_error, build_tcp_packet, encode_options
from pytcp.script.parser import ScriptOption
from pytcp.wire.tcp import ACK, PSH, SYN

A = 0xC0000201  # 192.0.2.1
B = 0xC0A80001  # 192.168.0.1


def test_tcp_packet_fields_and_checksums_verify_in_scapy() -> None:
    opts = encode_options((ScriptOption("mss", value=1460), ScriptOption("sackOK"),
                           ScriptOption("TS", ts=(100, 7)), ScriptOption("nop"),
                           ScriptOption("wscale", value=7)), lambda ecr: ecr + 1000, 0)
    raw = build_tcp_packet(src=A, dst=B, sport=46143, dport=8080, seq=0xFFFFFFFF, ack=5,
                           flags=SYN | ACK, win=65535, options=opts, payload=b"abc", ttl=9)
    p = IP(raw)
    assert (p.src, p.dst, p.ttl, p.proto) == ("192.0.2.1", "192.168.0.1", 9, 6)
    t = p[TCP]
    assert (t.sport, t.dport, t.seq, t.ack, t.window, str(t.flags)) == (
        46143, 8080, 0xFFFFFFFF, 5, 65535, "SA")
    # Options exactly in the written order; the ecr went through the mapping.
    assert t.options == [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (100, 1007)),
                         ("NOP", None), ("WScale", 7)]
    assert bytes(t.payload) == b"abc"
    ip_sum, tcp_sum = p.chksum, t.chksum
    del p.chksum, p[TCP].chksum
    again = IP(bytes(p))
    assert (again.chksum, again[TCP].chksum) == (ip_sum, tcp_sum)


def test_bad_checksum_and_ip_options() -> None:
    raw = build_tcp_packet(src=A, dst=B, sport=1, dport=2, seq=1, ack=0, flags=PSH, win=1,
                           payload=b"x", bad_csum=True, ip_options=b"\x01\x01\x01\x00")
    p = IP(raw)
    assert p.ihl == 6 and p.len == len(raw)
    good = p[TCP].chksum
    del p[TCP].chksum
    assert IP(bytes(p))[TCP].chksum != good  # wrong on purpose
    assert IP(bytes(p))[TCP].load == b"x"


def test_options_are_padded_with_zeros() -> None:
    assert encode_options((ScriptOption("mss", value=1000), ScriptOption("eol")),
                          lambda e: e, 0) == b"\x02\x04\x03\xe8\x00\x00\x00\x00"
    blocks = encode_options((ScriptOption("sack", blocks=((1, 2),)),), lambda e: e, 10)
    assert blocks == b"\x05\x0a" + (11).to_bytes(4, "big") + (12).to_bytes(4, "big") + b"\0\0"


def test_icmp_error_quotes_our_segment() -> None:
    raw = build_icmp_error(src=A, dst=B, icmp_type=3, code=4, mtu=1200, sport=8080,
                           dport=46143, seq=777)
    p = IP(raw)
    assert p.proto == 1 and (p[ICMP].type, p[ICMP].code, p[ICMP].nexthopmtu) == (3, 4, 1200)
    q = p[IPerror]
    assert (q.src, q.dst) == ("192.168.0.1", "192.0.2.1")
    assert (p[TCPerror].sport, p[TCPerror].dport, p[TCPerror].seq) == (8080, 46143, 777)
    chk = p[ICMP].chksum
    del p[ICMP].chksum
    assert IP(bytes(p))[ICMP].chksum == chk
