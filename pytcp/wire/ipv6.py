"""IPv6 header (RFC 8200 3) and its extension-header chain (RFC 8200 4): parse, build.

This module owns the IPv6 wire format and nothing else (no reassembly, no state).
``parse_ipv6`` checks the fixed header (version, payload length against the buffer) and walks
the extension-header chain up to the upper-layer header or a Fragment header, with limits:

- at most ``MAX_EXT_HEADERS`` extension headers and ``MAX_EXT_BYTES`` bytes of them (RFC 8504
  5.3 lets a host bound them; Linux bounds options likewise), else ``BAD_IPV6_EXT``;
- Hop-by-Hop Options only right after the IPv6 header (RFC 8200 4.1), else a Parameter
  Problem code 1 (:class:`Ipv6ParamProblem`);
- options of Hop-by-Hop and Destination Options headers: Pad1/PadN skipped, an unknown
  option acted on by its two high-order bits (RFC 8200 4.2: skip, discard, discard and send
  Parameter Problem code 2, or the same unless the destination is multicast);
- a Routing header with Segments Left non-zero: pytcp is no router and knows no routing type,
  so it is refused with Parameter Problem code 0 pointing at the type field (RFC 8200 4.4;
  type 0 is deprecated by RFC 5095, counted ``ROUTING_HEADER``); with Segments Left zero it
  is skipped;
- the walk stops at a Fragment header (RFC 8200 4.5): ``frag_offset``/``frag_more``/
  ``frag_ident`` are set and ``proto``/``payload`` are the fragment's next header and data;
  the owner reassembles and then calls :func:`walk_extensions` on the whole payload.

``parse_ipv6`` raises only :class:`pytcp.drops.MalformedPacket` (or its subclass
:class:`Ipv6ParamProblem`, which says what ICMPv6 Parameter Problem to answer with).
Addresses are 128-bit ``int``s.
"""

from __future__ import annotations

import ipaddress
import struct

from pytcp import native
from pytcp.drops import DropReason, MalformedPacket

Buffer = bytes | bytearray | memoryview

HEADER_LEN = 40
MIN_MTU = 1280  # RFC 8200 5: every link carries 1280-byte packets

# Next Header values (IANA protocol numbers).
NH_HOPOPTS = 0
NH_TCP = 6
NH_UDP = 17
NH_ROUTING = 43
NH_FRAGMENT = 44
NH_ESP = 50
NH_AH = 51
NH_ICMPV6 = 58
NH_NONE = 59
NH_DSTOPTS = 60
NH_MOBILITY = 135

EXTENSION_HEADERS = frozenset({NH_HOPOPTS, NH_ROUTING, NH_FRAGMENT, NH_DSTOPTS})

MAX_EXT_HEADERS = 8
MAX_EXT_BYTES = 1024

_HDR = struct.Struct("!IHBB16s16s")  # version/class/flow, payload length, next, hop limit
_unpack_fixed = struct.Struct("!IHBB").unpack_from
_FRAG = struct.Struct("!BBHI")  # next header, reserved, offset/M, identification


class Ipv6ParamProblem(MalformedPacket):
    """A packet to discard *and* answer with ICMPv6 Parameter Problem (RFC 4443 3.4):
    ``code`` (0 erroneous header field, 1 unrecognized Next Header, 2 unrecognized option)
    and ``pointer`` (offset in the packet of the offending byte). ``send`` is False when the
    rules say discard quietly (an option of type 11xxxxxx to a multicast destination)."""

    def __init__(self, reason: DropReason, code: int, pointer: int, detail: str = "",
                 send: bool = True) -> None:
        super().__init__(reason, detail)
        self.code = code
        self.pointer = pointer
        self.send = send


class Ipv6Packet:
    """A parsed IPv6 packet; ``header`` and ``payload`` are views into the input buffer.

    ``proto`` is the upper-layer protocol (or the Next Header after a Fragment header, or
    ``NH_NONE``); ``payload`` starts at it. ``ext_len`` is the bytes of extension headers
    walked; ``frag_offset`` (bytes), ``frag_more`` and ``frag_ident`` describe the Fragment
    header (``is_fragment`` False when there was none); ``unfrag`` is the packet up to the
    Fragment header (IPv6 header + unfragmentable part)."""

    __slots__ = ("dst", "ext_len", "flow", "frag_ident", "frag_more", "frag_offset",
                 "has_frag", "header", "hop_limit", "next_header", "nh_ptr", "payload",
                 "payload_length", "proto", "src", "tclass", "unfrag")

    tclass: int
    flow: int
    payload_length: int
    next_header: int
    hop_limit: int
    src: int
    dst: int
    header: memoryview
    proto: int
    payload: memoryview
    ext_len: int
    has_frag: bool
    frag_offset: int
    frag_more: bool
    frag_ident: int
    unfrag: memoryview
    nh_ptr: int

    @property
    def is_fragment(self) -> bool:
        """A Fragment header that is not an atomic fragment (RFC 6946: offset 0 and M=0 is
        processed as a whole packet, never through reassembly)."""
        return self.has_frag and (self.frag_more or self.frag_offset != 0)

    def __repr__(self) -> str:
        return (f"Ipv6Packet({int_to_ip6(self.src)} -> {int_to_ip6(self.dst)} proto="
                f"{self.proto} len={self.payload_length} frag={self.frag_offset}"
                f"{'+' if self.frag_more else ''})")


def ip6_to_int(text: str) -> int:
    return int(ipaddress.IPv6Address(text))


def int_to_ip6(addr: int) -> str:
    return str(ipaddress.IPv6Address(addr))


def is_multicast(addr: int) -> bool:
    return addr >> 120 == 0xFF


def addr_sum(addr: int) -> int:
    """The one's-complement sum of a 128-bit address's eight 16-bit words (not folded)."""
    s = 0
    while addr:
        s += addr & 0xFFFF
        addr >>= 16
    return s


def fold(s: int) -> int:
    """Fold a sum to 16 bits (RFC 1071), keeping the one's-complement value."""
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def pseudo_header_sum6(src: int, dst: int, proto: int, length: int) -> int:
    """The RFC 8200 8.1 pseudo-header (source, destination, 32-bit upper-layer length, next
    header) partial sum, folded to 16 bits: pass it as ``start`` of ``native.csum_partial``."""
    return fold(addr_sum(src) + addr_sum(dst) + (length >> 16) + (length & 0xFFFF) + proto)


def _walk_options(mv: memoryview, start: int, end: int, base: int, dst: int) -> None:
    """RFC 8200 4.2: the TLV options of a Hop-by-Hop/Destination Options header."""
    i = start
    while i < end:
        t = mv[i]
        if t == 0:  # Pad1
            i += 1
            continue
        if i + 1 >= end:
            raise MalformedPacket(DropReason.BAD_IPV6_EXT, "option past its header")
        length = mv[i + 1]
        if i + 2 + length > end:
            raise MalformedPacket(DropReason.BAD_IPV6_EXT, "option past its header")
        if t != 1:  # not PadN: pytcp recognises no other option
            action = t >> 6
            if action == 1:
                raise MalformedPacket(DropReason.BAD_IPV6_EXT, f"unknown option {t}")
            if action >= 2:
                raise Ipv6ParamProblem(DropReason.BAD_IPV6_EXT, 2, base + i,
                                       f"unknown option {t}",
                                       send=not (action == 3 and is_multicast(dst)))
        i += 2 + length


def walk_extensions(mv: memoryview, off: int, nh: int, *, dst: int, nh_ptr: int = 6,
                    count: int = 0, ext_bytes: int = 0, first: bool = False
                    ) -> tuple[int, int, int]:
    """Walk extension headers of ``mv`` (the packet from its IPv6 header) from ``off``
    (Next Header ``nh``, a byte found at ``nh_ptr``) up to the upper-layer header or a
    Fragment header. Returns ``(nh, off, nh_ptr)``: ``nh_ptr`` is where the last Next Header
    byte is, for a Parameter Problem code 1 pointer. ``first``: ``off`` is right after the
    IPv6 header (Hop-by-Hop allowed there only). ``count``/``ext_bytes``: already walked."""
    n = len(mv)
    base = 0
    while nh in EXTENSION_HEADERS and nh != NH_FRAGMENT:
        if nh == NH_HOPOPTS and not first:
            # RFC 8200 4.1: Hop-by-Hop only right after the IPv6 header.
            raise Ipv6ParamProblem(DropReason.BAD_IPV6_EXT, 1, nh_ptr, "Hop-by-Hop not first")
        first = False
        if off + 8 > n:
            raise MalformedPacket(DropReason.BAD_IPV6_EXT, "extension header truncated")
        hlen = (mv[off + 1] + 1) * 8
        count += 1
        ext_bytes += hlen
        if count > MAX_EXT_HEADERS or ext_bytes > MAX_EXT_BYTES:
            raise MalformedPacket(DropReason.BAD_IPV6_EXT,
                                  f"{count} extension headers / {ext_bytes} bytes")
        if off + hlen > n:
            raise MalformedPacket(DropReason.BAD_IPV6_EXT, "extension header truncated")
        if nh == NH_ROUTING:
            rtype = mv[off + 2]
            segments_left = mv[off + 3]
            if segments_left:
                # RFC 8200 4.4: unrecognised Routing Type with Segments Left non-zero
                # (type 0 deprecated, RFC 5095 3): Parameter Problem code 0 -> the type field.
                raise Ipv6ParamProblem(DropReason.ROUTING_HEADER, 0, base + off + 2,
                                       f"routing type {rtype}, segments left {segments_left}")
        else:
            _walk_options(mv, off + 2, off + hlen, base, dst)
        nh = mv[off]
        nh_ptr = off
        off += hlen
    return nh, off, nh_ptr


def parse_ipv6(buf: Buffer) -> Ipv6Packet:
    """Parse an IPv6 packet (RFC 8200) and walk its extension headers (see the module)."""
    n = len(buf)
    if n < HEADER_LEN:
        raise MalformedPacket(DropReason.TRUNCATED, f"{n} bytes, IPv6 header needs 40")
    mv = buf if type(buf) is memoryview else memoryview(buf)
    vcf, plen, nh, hop = _unpack_fixed(mv, 0)
    if vcf >> 28 != 6:
        raise MalformedPacket(DropReason.BAD_IP_VERSION, f"version {vcf >> 28}")
    if plen == 0 and nh == NH_HOPOPTS:
        raise MalformedPacket(DropReason.BAD_TOTAL_LENGTH, "jumbogram (RFC 2675) unsupported")
    if HEADER_LEN + plen > n:
        raise MalformedPacket(DropReason.BAD_TOTAL_LENGTH,
                              f"payload length {plen} past {n - HEADER_LEN} bytes")
    if HEADER_LEN + plen < n:
        mv = mv[:HEADER_LEN + plen]  # link padding
    p = Ipv6Packet()
    p.tclass = (vcf >> 20) & 0xFF
    p.flow = vcf & 0xFFFFF
    p.payload_length = plen
    p.next_header = nh
    p.hop_limit = hop
    p.src = int.from_bytes(mv[8:24], "big")
    p.dst = dst = int.from_bytes(mv[24:40], "big")
    p.header = mv[:HEADER_LEN]
    nh2, off, nh_ptr = walk_extensions(mv, HEADER_LEN, nh, dst=dst, first=True)
    p.has_frag = False
    p.frag_offset = 0
    p.frag_more = False
    p.frag_ident = 0
    p.unfrag = mv[:off]
    if nh2 == NH_FRAGMENT:
        if off + 8 > len(mv):
            raise MalformedPacket(DropReason.BAD_IPV6_EXT, "fragment header truncated")
        fnh, _res, offm, ident = _FRAG.unpack_from(mv, off)
        p.has_frag = True
        p.frag_offset = offm & 0xFFF8
        p.frag_more = bool(offm & 1)
        p.frag_ident = ident
        nh2 = fnh
        nh_ptr = off
        off += 8
    p.ext_len = off - HEADER_LEN
    p.nh_ptr = nh_ptr
    p.proto = nh2
    p.payload = mv[off:]
    return p


def build_ipv6_header(buf: bytearray | memoryview, offset: int, *, src: int, dst: int,
                      next_header: int, payload_len: int, hop_limit: int = 64,
                      tclass: int = 0, flow: int = 0) -> int:
    """Write a 40-byte IPv6 header at ``offset``; return 40."""
    try:
        _HDR.pack_into(buf, offset, (6 << 28) | (tclass << 20) | flow, payload_len,
                       next_header, hop_limit, src.to_bytes(16, "big"), dst.to_bytes(16, "big"))
    except (struct.error, OverflowError) as err:
        raise ValueError(f"IPv6 header field out of range: {err}") from None
    return HEADER_LEN


def build_ipv6(*, src: int, dst: int, next_header: int, payload: Buffer,
               hop_limit: int = 64, tclass: int = 0, flow: int = 0) -> bytearray:
    """A whole IPv6 packet: header + ``payload`` (extension headers included by the caller)."""
    pkt = bytearray(HEADER_LEN)
    build_ipv6_header(pkt, 0, src=src, dst=dst, next_header=next_header,
                      payload_len=len(payload), hop_limit=hop_limit, tclass=tclass, flow=flow)
    pkt += payload
    return pkt


def build_fragment_header(next_header: int, offset: int, more: bool, ident: int) -> bytes:
    """An 8-byte Fragment header (RFC 8200 4.5); ``offset`` in bytes, a multiple of 8."""
    if offset % 8 or not 0 <= offset <= 0xFFF8:
        raise ValueError(f"fragment offset {offset}: a multiple of 8 up to 65528")
    return _FRAG.pack(next_header, 0, offset | (1 if more else 0), ident & 0xFFFFFFFF)


def upper_checksum_ok(payload: Buffer, src: int, dst: int, proto: int) -> bool:
    """Whether an upper-layer message's checksum (RFC 8200 8.1 pseudo-header) verifies."""
    return native.csum_partial(payload, pseudo_header_sum6(src, dst, proto,
                                                           len(payload))) == 0xFFFF
