"""Build the packets the script side sends: inbound TCP segments and ICMP errors.

This module owns the wire image of what a script injects. packetdrill sends options exactly
as written, so TCP options are encoded here in the written order (not ``pytcp.wire``'s Linux
layout), and pytcp's script extensions (a wrong checksum, IP options, other addresses and
TTL, raw option bytes) are applied here. IPv4 headers come from ``pytcp.wire.ipv4`` and
checksums from ``pytcp.native``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from pytcp.native import checksum, pseudo_header_sum
from pytcp.script.parser import ScriptOption
from pytcp.wire.ipv4 import PROTO_ICMP, PROTO_TCP, build_ipv4_header
from pytcp.wire.ipv6 import build_ipv6, pseudo_header_sum6
from pytcp.wire.tcp import md5_digest, md5_option_offset

MASK = 0xFFFFFFFF


def _cookie(o: ScriptOption, defines: dict[str, str]) -> bytes:
    if not o.symbol:
        return o.raw
    h = defines.get(o.symbol, "")
    h = h[2:] if h.lower().startswith("0x") else h
    return bytes.fromhex(h if len(h) % 2 == 0 else "0" + h)


def encode_options(opts: tuple[ScriptOption, ...], ecr_map: Callable[[int], int],
                   local_isn: int, defines: dict[str, str] | None = None) -> bytes:
    """Inbound options exactly in the written order (packetdrill sends what is written),
    padded with zeros (EOL) to a 4-octet boundary (RFC 9293 3.1, MUST-69). ``FO`` is the
    RFC 7413 Fast Open option (kind 34), ``FOEXP`` its experimental form (kind 254, magic
    0xF989, RFC 6994); a name in place of a value comes from ``defines``."""
    out = bytearray()
    defs = defines or {}
    for o in opts:
        if o.symbol and o.kind in ("mss", "wscale"):
            o = ScriptOption(o.kind, value=int(defs.get(o.symbol, "0"), 0))
        if o.kind == "nop":
            out += b"\x01"
        elif o.kind == "eol":
            out += b"\x00"
        elif o.kind == "mss":
            out += struct.pack("!BBH", 2, 4, o.value or 0)
        elif o.kind == "wscale":
            out += struct.pack("!BBB", 3, 3, o.value or 0)
        elif o.kind == "sackOK":
            out += b"\x04\x02"
        elif o.kind == "TS":
            assert o.ts is not None
            out += struct.pack("!BBII", 8, 10, o.ts[0] & MASK, ecr_map(o.ts[1]))
        elif o.kind == "sack":
            out += struct.pack("!BB", 5, 2 + 8 * len(o.blocks))
            for a, b in o.blocks:
                out += struct.pack("!II", (a + local_isn) & MASK, (b + local_isn) & MASK)
        elif o.kind == "raw":
            out += o.raw
        elif o.kind == "FO":
            c = _cookie(o, defs)
            out += struct.pack("!BB", 34, 2 + len(c)) + c
        elif o.kind == "FOEXP":
            c = _cookie(o, defs)
            out += struct.pack("!BBH", 254, 4 + len(c), 0xF989) + c
        elif o.kind == "md5":
            # RFC 2385 (kind 19): the digest as written, or ``md5 valid``: a placeholder
            # that build_tcp_packet(md5_key=) signs.
            d = bytes(16) if o.symbol == "valid" else o.raw
            out += struct.pack("!BB", 19, 2 + len(d)) + d
    while len(out) % 4:
        out += b"\x00"
    return bytes(out)


def build_tcp_packet(*, src: int, dst: int, sport: int, dport: int, seq: int, ack: int,
                     flags: int, win: int, urg: int = 0, options: bytes = b"",
                     payload: bytes = b"", bad_csum: bool = False, ttl: int = 64,
                     ip_options: bytes = b"", tos: int = 0,
                     md5_key: bytes | None = None) -> bytes:
    """A whole IPv4 datagram carrying one TCP segment (checksums filled, or the TCP one made
    wrong on purpose with ``bad_csum``). ``md5_key``: the MD5 option's digest is computed
    with it (RFC 2385 2.0)."""
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & MASK, ack & MASK,
                      (20 + len(options)) // 4 << 4, flags, win, 0, urg)
    tcp = bytearray(hdr + options + payload)
    v6 = src > 0xFFFFFFFF
    if md5_key is not None:
        at = md5_option_offset(tcp)
        if at is not None:
            tcp[at:at + 16] = md5_digest(md5_key, src, dst, tcp, v6)
    csum = checksum(tcp, pseudo_header_sum6(src, dst, PROTO_TCP, len(tcp)) if v6
                    else pseudo_header_sum(src, dst, PROTO_TCP, len(tcp)))
    if bad_csum:
        csum ^= 0x5A5A  # pytcp extension: a checksum that cannot verify (MUST-3)
    struct.pack_into("!H", tcp, 16, csum)
    if v6:  # --ip_version=ipv6: an IPv6 packet (TOS is the traffic class)
        return bytes(build_ipv6(src=src, dst=dst, next_header=PROTO_TCP, payload=tcp,
                                hop_limit=ttl, tclass=tos))
    pkt = bytearray(20 + len(tcp))
    build_ipv4_header(pkt, 0, src=src, dst=dst, proto=PROTO_TCP, payload_len=len(tcp), ttl=ttl,
                      tos=tos)
    pkt[20:] = tcp
    if ip_options:
        pkt = with_ip_options(pkt, ip_options)
    return bytes(pkt)


def build_icmp_error(*, src: int, dst: int, icmp_type: int, code: int, mtu: int, sport: int,
                     dport: int, seq: int) -> bytes:
    """An ICMP error from ``src`` to ``dst`` quoting the IPv4 header and first 8 TCP octets of
    a segment we (``dst``) sent from ``sport`` to ``dport`` with sequence number ``seq``
    (RFC 792; RFC 1191's next-hop MTU for "fragmentation needed")."""
    quoted = bytearray(28)
    build_ipv4_header(quoted, 0, src=dst, dst=src, proto=PROTO_TCP, payload_len=20)
    struct.pack_into("!HHI", quoted, 20, sport, dport, seq & MASK)
    rest = mtu if icmp_type == 3 and code == 4 else 0
    icmp = bytearray(struct.pack("!BBHI", icmp_type, code, 0, rest) + quoted)
    struct.pack_into("!H", icmp, 2, checksum(icmp))
    pkt = bytearray(20 + len(icmp))
    build_ipv4_header(pkt, 0, src=src, dst=dst, proto=PROTO_ICMP, payload_len=len(icmp))
    pkt[20:] = icmp
    return bytes(pkt)


def with_ip_options(pkt: bytearray, opts: bytes) -> bytearray:
    """Insert IPv4 options after the 20-byte header, fixing IHL, total length and checksum."""
    hdr = bytearray(pkt[:20]) + opts
    hdr[0] = 0x40 | (len(hdr) // 4)
    struct.pack_into("!H", hdr, 2, len(hdr) + len(pkt) - 20)
    struct.pack_into("!H", hdr, 10, 0)
    struct.pack_into("!H", hdr, 10, checksum(hdr))
    return hdr + pkt[20:]


