"""TCP header and options (RFC 9293 3.1, RFC 7323, RFC 2018): parse from and build into buffers.

This module owns the TCP wire format: the flag bits, the option kinds, the :class:`TcpOptions`
value type, ``parse_tcp`` (a zero-copy view of a segment whose payload is a ``memoryview``
slice of the input), ``encode_options`` (Linux's option layout, byte for byte) and
``build_tcp`` / ``build_ipv4_tcp`` (headers written into a buffer with checksums filled in).
It holds no connection state: what an option *means* in a given state (MSS only on SYN,
RFC 7323 window-scale clamping, ...) is the engine's business.

Bad input raises only :class:`pytcp.drops.MalformedPacket`: ``TRUNCATED`` (under 20 bytes),
``BAD_DATA_OFFSET`` (data offset < 5 or past the segment), ``BAD_OPTION`` (an option length of
0 or 1, or one running past the header: RFC 9293 MUST-7), ``BAD_CHECKSUM`` (RFC 9293 MUST-3).
Unknown options are skipped by their length (MUST-6); a known option with a wrong length is
ignored, as Linux does; options may appear at any alignment (MUST-64).

``data_offset`` is the raw field (32-bit words); ``len(header)`` bytes of header precede the
payload, ``data_offset * 4`` of them.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from pytcp import native
from pytcp.drops import DropReason, MalformedPacket

Buffer = bytes | bytearray | memoryview

# Flag bits of the 13th/14th header octets (RFC 9293 3.1, RFC 3168).
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80

# Option kinds (RFC 9293 3.2, RFC 7323, RFC 2018).
OPT_EOL = 0
OPT_NOP = 1
OPT_MSS = 2
OPT_WSCALE = 3
OPT_SACK_PERMITTED = 4
OPT_SACK = 5
OPT_TIMESTAMP = 8
OPT_MD5SIG = 19            # RFC 2385 3.0: kind 19, length 18, a 16-byte MD5 digest
OPT_FASTOPEN = 34          # RFC 7413 4.1.1
OPT_EXPERIMENTAL = 254     # RFC 6994 (Fast Open's experimental form: magic 0xF989)
FASTOPEN_MAGIC = 0xF989
MD5SIG_LEN = 18            # the option's length octet (RFC 2385 3.0)
MD5SIG_SPACE = 20          # what it takes of the option space: nop nop + 18 (Linux
                           # TCPOLEN_MD5SIG_ALIGNED)
MD5_ZERO = bytes(16)       # the digest placeholder a segment is built with, then signed

HEADER_LEN = 20  # without options
MAX_OPTIONS_LEN = 40  # data offset is 4 bits: at most 60 header bytes

PROTO_TCP = 6


@dataclass(frozen=True, slots=True)
class TcpOptions:
    """The options of one segment, as values. ``None``/empty means absent."""

    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool = False
    sack_blocks: tuple[tuple[int, int], ...] = ()
    timestamp: tuple[int, int] | None = None  # (TSval, TSecr)
    # RFC 7413 Fast Open cookie: None = no option, b"" = a cookie request; fastopen_exp: it
    # came (or goes) as the experimental option 254/0xF989 instead of kind 34.
    fastopen: bytes | None = None
    fastopen_exp: bool = False
    # RFC 2385 MD5 signature: the 16-byte digest (only kind 19 with length 18 counts).
    md5: bytes | None = None


NO_OPTIONS = TcpOptions()

# sport, dport, seq, ack, data offset (high nibble), flags, window, checksum, urgent pointer.
_HDR = struct.Struct("!HHIIBBHHH")
_unpack_hdr = _HDR.unpack_from
_pack_hdr = _HDR.pack_into
_U16 = struct.Struct("!H")
_TS_VALUES = struct.Struct("!II")
_pack_csum = _U16.pack_into

# Linux's layouts (net/ipv4/tcp_output.c, tcp_options_write), as prefixes before the values.
_MSS = struct.Struct("!BBH")                      # 02 04 mss
_SACKOK_TS = struct.Struct("!BBBBII")             # 04 02 08 0a tsval tsecr
_NOP_NOP_TS = struct.Struct("!BBBBII")            # 01 01 08 0a tsval tsecr
_NOP_NOP_SACKOK = b"\x01\x01\x04\x02"
_NOP_WSCALE = struct.Struct("!BBBB")              # 01 03 03 ws
_TS_ONLY_PREFIX = b"\x01\x01\x08\x0a"
_TS_ONLY = struct.Struct("!4sII")                 # 01 01 08 0a tsval tsecr
# An option-less IPv4 header followed by a TCP header, packed in one call.
_pack_ip_tcp = struct.Struct("!BBHHHBBHII" "HHIIBBHHH").pack_into


class TcpHeader:
    """A parsed TCP segment; ``header`` and ``payload`` are views into the input buffer."""

    __slots__ = (
        "ack",
        "checksum",
        "data_offset",
        "dport",
        "flags",
        "header",
        "option_kinds",
        "options",
        "payload",
        "seq",
        "sport",
        "urg",
        "window",
    )

    sport: int
    dport: int
    seq: int
    ack: int
    data_offset: int
    flags: int
    window: int
    checksum: int
    urg: int
    options: TcpOptions
    option_kinds: tuple[int, ...]
    header: memoryview
    payload: memoryview

    def flags_str(self) -> str:
        """tcpdump-style flags, e.g. ``S.`` or ``FP.``."""
        return flags_to_str(self.flags)

    def __repr__(self) -> str:
        return (f"TcpHeader({self.sport} > {self.dport} [{self.flags_str()}] seq={self.seq} "
                f"ack={self.ack} win={self.window} urg={self.urg} len={len(self.payload)} "
                f"options={self.options} kinds={self.option_kinds})")


def flags_to_str(flags: int) -> str:
    """tcpdump's flag letters: S F R P U E W, then ``.`` for ACK."""
    s = ""
    for bit, ch in ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"), (URG, "U"), (ECE, "E"),
                    (CWR, "W")):
        if flags & bit:
            s += ch
    if flags & ACK:
        s += "."
    return s


# Parsed option areas, memoized by their bytes: a bulk transfer repeats the same few option
# areas (the timestamp changes once per clock tick), and building a frozen TcpOptions costs
# more than hashing 12 bytes. Bounded; cleared when full. A pure function's memo: no state
# visible to callers.
_OPTIONS_CACHE: dict[bytes, tuple[TcpOptions, tuple[int, ...]]] = {}
_OPTIONS_CACHE_MAX = 512
_TS_ONLY_KINDS = (OPT_NOP, OPT_NOP, OPT_TIMESTAMP)
# Header length -> unpack_from for its option area as one bytes object.
_OPTION_AREA = {hlen: struct.Struct(f"{hlen - HEADER_LEN}s").unpack_from
                for hlen in range(HEADER_LEN + 4, HEADER_LEN + MAX_OPTIONS_LEN + 1, 4)}


def parse_options(area: Buffer) -> tuple[TcpOptions, tuple[int, ...]]:
    """Parse an option area (the header bytes after the fixed 20) into values and the kinds in
    wire order. Raises :class:`MalformedPacket` (``BAD_OPTION``) for a length byte of 0 or 1,
    a missing length byte, or an option running past the area."""
    return _parse_option_bytes(bytes(area))


def _parse_option_bytes(key: bytes) -> tuple[TcpOptions, tuple[int, ...]]:
    hit = _OPTIONS_CACHE.get(key)
    if hit is not None:
        return hit
    result: tuple[TcpOptions, tuple[int, ...]]
    if len(key) == 12 and key[:4] == _TS_ONLY_PREFIX:
        # The common data-segment layout: nop nop TS.
        result = (TcpOptions(timestamp=_TS_VALUES.unpack_from(key, 4)), _TS_ONLY_KINDS)
    else:
        result = _parse_options_slow(key)
    if len(_OPTIONS_CACHE) >= _OPTIONS_CACHE_MAX:
        _OPTIONS_CACHE.clear()
    _OPTIONS_CACHE[key] = result
    return result


def _parse_options_slow(area: bytes) -> tuple[TcpOptions, tuple[int, ...]]:
    end = len(area)
    kinds: list[int] = []
    mss: int | None = None
    wscale: int | None = None
    sack_permitted = False
    sack_blocks: tuple[tuple[int, int], ...] = ()
    timestamp: tuple[int, int] | None = None
    fastopen: bytes | None = None
    fastopen_exp = False
    md5: bytes | None = None
    i = 0
    while i < end:
        kind = area[i]
        if kind == OPT_EOL:
            # RFC 9293 3.2: End of Option List; what follows is padding.
            kinds.append(OPT_EOL)
            break
        if kind == OPT_NOP:
            kinds.append(OPT_NOP)
            i += 1
            continue
        # RFC 9293 MUST-68: every other option has a length octet (counting kind and length).
        if i + 1 >= end:
            raise MalformedPacket(DropReason.BAD_OPTION, f"option {kind} has no length byte")
        length = area[i + 1]
        if length < 2:
            raise MalformedPacket(DropReason.BAD_OPTION, f"option {kind} with length {length}")
        if i + length > end:
            raise MalformedPacket(DropReason.BAD_OPTION,
                                  f"option {kind} of length {length} runs past the header")
        kinds.append(kind)
        # A known option with the wrong length is ignored (Linux tcp_parse_options does so).
        if kind == OPT_MSS and length == 4:
            mss = (area[i + 2] << 8) | area[i + 3]
        elif kind == OPT_WSCALE and length == 3:
            wscale = area[i + 2]
        elif kind == OPT_SACK_PERMITTED and length == 2:
            sack_permitted = True
        elif kind == OPT_FASTOPEN and length <= 2 + 16:
            fastopen = bytes(area[i + 2:i + length])
            fastopen_exp = False
        elif (kind == OPT_EXPERIMENTAL and 4 <= length <= 4 + 16
              and (area[i + 2] << 8 | area[i + 3]) == FASTOPEN_MAGIC):
            if fastopen is None:
                fastopen = bytes(area[i + 4:i + length])
                fastopen_exp = True
        elif kind == OPT_TIMESTAMP and length == 10:
            timestamp = _TS_VALUES.unpack_from(area, i + 2)
        elif kind == OPT_MD5SIG and length == MD5SIG_LEN:
            md5 = bytes(area[i + 2:i + MD5SIG_LEN])
        elif kind == OPT_SACK and length >= 10 and (length - 2) % 8 == 0:
            sack_blocks = tuple(
                _TS_VALUES.unpack_from(area, j) for j in range(i + 2, i + length, 8)
            )
        # else: unknown kind, skipped by its length (RFC 9293 MUST-6).
        i += length
    if mss is None and wscale is None and not sack_permitted and not sack_blocks \
            and timestamp is None and fastopen is None and md5 is None:
        return NO_OPTIONS, tuple(kinds)
    return TcpOptions(mss, wscale, sack_permitted, sack_blocks, timestamp, fastopen,
                      fastopen_exp, md5), tuple(kinds)


def parse_tcp(buf: Buffer, src: int, dst: int, verify_checksum: bool = True) -> TcpHeader:
    """Parse a TCP segment (the IPv4 payload) sent from ``src`` to ``dst`` (integers).

    ``verify_checksum=False`` skips the checksum (e.g. a TUN packet flagged NEEDS_CSUM).
    """
    n = len(buf)
    if n < HEADER_LEN:
        raise MalformedPacket(DropReason.TRUNCATED, f"{n} bytes, TCP header needs 20")
    sport, dport, seq, ack, off_byte, flags, window, csum, urg = _unpack_hdr(buf, 0)
    doff = off_byte >> 4
    hlen = doff << 2
    if hlen < HEADER_LEN or hlen > n:
        raise MalformedPacket(DropReason.BAD_DATA_OFFSET, f"data offset {doff} with {n} bytes")
    mv = buf if type(buf) is memoryview else memoryview(buf)
    if verify_checksum:
        # RFC 9293 3.1: the checksum covers the pseudo-header, the header and the data.
        start = ((src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + PROTO_TCP + n)
        if native.csum_partial(mv, start) != 0xFFFF:
            raise MalformedPacket(DropReason.BAD_CHECKSUM, f"TCP checksum {csum:#06x}")
    h = TcpHeader()
    if hlen > HEADER_LEN:
        # One struct call copies the option area out as bytes (the memo's key).
        h.options, h.option_kinds = _parse_option_bytes(_OPTION_AREA[hlen](mv, HEADER_LEN)[0])
    else:
        h.options = NO_OPTIONS
        h.option_kinds = ()
    h.sport = sport
    h.dport = dport
    h.seq = seq
    h.ack = ack
    h.data_offset = doff
    h.flags = flags
    h.window = window
    h.checksum = csum
    h.urg = urg
    h.header = mv[:hlen]
    h.payload = mv[hlen:]
    return h


# An option-less IPv4 header and a TCP header, unpacked in one call (the receive fast path).
_unpack_ip_tcp = struct.Struct("!BBHHHBBHII" "HHIIBBHHH").unpack_from


def parse_ipv4_tcp(buf: bytes | bytearray | memoryview,
                   verify_checksum: bool = True) -> tuple[int, int, TcpHeader] | None:
    """The common case of ``parse_ipv4`` then ``parse_tcp`` in one step: an IPv4 datagram
    with a 20-byte header, not a fragment, carrying a TCP segment, both checksums right.
    Returns ``(src, dst, TcpHeader)`` with the same TcpHeader ``parse_tcp`` gives, or
    ``None`` for anything else (IP options, fragments, other protocols, bad lengths or
    checksums, malformed TCP): the caller then takes the general path, which parses again
    and names the reason of a drop. Raises ``MalformedPacket`` only for a bad option area,
    as ``parse_tcp`` does."""
    n = len(buf)
    if n < 40:
        return None
    (vihl, tos, total, ident, frag, ttl, proto, ipsum, src, dst,
     sport, dport, seq, ack, off_byte, flags, window, csum, urg) = _unpack_ip_tcp(buf, 0)
    if vihl != 0x45 or proto != PROTO_TCP or frag & 0x3FFF or total > n or total < 40:
        return None
    hlen = (off_byte >> 4) << 2
    if hlen < HEADER_LEN or hlen > total - 20:
        return None
    mv = buf if type(buf) is memoryview else memoryview(buf)
    seg = mv[20:total] if total != n else mv[20:]
    if verify_checksum:
        # RFC 1071 over the IPv4 header from its integers; RFC 9293 3.1 over the segment.
        sa = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF)
        s = (0x4500 + tos + total + ident + frag + (ttl << 8) + PROTO_TCP + ipsum + sa)
        s = (s & 0xFFFF) + (s >> 16)
        if (s & 0xFFFF) + (s >> 16) != 0xFFFF:
            return None
        if native.csum_partial(seg, sa + PROTO_TCP + total - 20) != 0xFFFF:
            return None
    h = TcpHeader()
    if hlen > HEADER_LEN:
        h.options, h.option_kinds = _parse_option_bytes(_OPTION_AREA[hlen](mv, 40)[0])
    else:
        h.options = NO_OPTIONS
        h.option_kinds = ()
    h.sport = sport
    h.dport = dport
    h.seq = seq
    h.ack = ack
    h.data_offset = off_byte >> 4
    h.flags = flags
    h.window = window
    h.checksum = csum
    h.urg = urg
    h.header = seg[:hlen]
    h.payload = seg[hlen:]
    return src, dst, h


def encode_options(opts: TcpOptions) -> bytes:
    """The option bytes for ``opts`` in Linux's layout (``tcp_options_write``).

    An MD5 signature (RFC 2385) comes first, as ``nop nop md5`` (20), as Linux writes it.
    SYN options (any of MSS, window scale, SACK-permitted present):
    ``mss(4)``, then ``sackOK TS`` (12) or ``nop nop TS`` (12) or ``nop nop sackOK`` (4), then
    ``nop wscale`` (4). Data segments: ``nop nop TS`` (12), then ``nop nop SACK`` (4 + 8n).
    The result is a multiple of 4 bytes. SACK blocks that do not fit the 40-byte option space
    are left off, keeping the first ones (the most recent, RFC 2018 4), as Linux does.
    Raises ``ValueError`` for a value that does not fit its field.
    """
    if opts is NO_OPTIONS:
        return b""
    ts = opts.timestamp
    try:
        if (opts.mss is None and opts.wscale is None and not opts.sack_permitted
                and not opts.sack_blocks and opts.fastopen is None and opts.md5 is None):
            # The common data-segment case: nop nop TS (or nothing).
            return b"" if ts is None else _TS_ONLY.pack(_TS_ONLY_PREFIX, ts[0], ts[1])
        return _encode_options_general(opts)
    except struct.error as err:
        raise ValueError(f"TCP option value out of range: {err}") from None


def _encode_options_general(opts: TcpOptions) -> bytes:
    out = bytearray()
    ts = opts.timestamp
    if opts.md5 is not None:
        if len(opts.md5) != 16:
            raise ValueError(f"an MD5 digest is 16 bytes, got {len(opts.md5)}")
        out += bytes((OPT_NOP, OPT_NOP, OPT_MD5SIG, MD5SIG_LEN)) + opts.md5
    if opts.mss is not None:
        out += _MSS.pack(OPT_MSS, 4, opts.mss)
    if ts is not None:
        if opts.sack_permitted:
            out += _SACKOK_TS.pack(OPT_SACK_PERMITTED, 2, OPT_TIMESTAMP, 10, ts[0], ts[1])
        else:
            out += _NOP_NOP_TS.pack(OPT_NOP, OPT_NOP, OPT_TIMESTAMP, 10, ts[0], ts[1])
    elif opts.sack_permitted:
        out += _NOP_NOP_SACKOK
    if opts.wscale is not None:
        out += _NOP_WSCALE.pack(OPT_NOP, OPT_WSCALE, 3, opts.wscale)
    fo = opts.fastopen
    if fo is not None:
        # RFC 7413 4.1.1 / RFC 6994, after the SYN options as Linux writes them; a length
        # of 2 modulo 4 is padded with nop nop (Linux tcp_options_write).
        if opts.fastopen_exp:
            n = 4 + len(fo)
            out += bytes((OPT_EXPERIMENTAL, n)) + FASTOPEN_MAGIC.to_bytes(2, "big") + fo
        else:
            n = 2 + len(fo)
            out += bytes((OPT_FASTOPEN, n)) + fo
        if n & 3 == 2:
            out += b"\x01\x01"
        while len(out) & 3:
            out += b"\x00"
    blocks = opts.sack_blocks
    if blocks:
        room = (MAX_OPTIONS_LEN - len(out) - 4) // 8
        if room > 0:
            blocks = blocks[:room]
            out += bytes((OPT_NOP, OPT_NOP, OPT_SACK, 2 + 8 * len(blocks)))
            for left, right in blocks:
                out += _TS_VALUES.pack(left, right)
    return bytes(out)


def write_tcp(buf: bytearray | memoryview, offset: int, opt_bytes: bytes, *, src: int,
              dst: int, sport: int, dport: int, seq: int, ack: int, flags: int, window: int,
              payload: Buffer = b"", urg: int = 0, partial_csum: bool = False) -> int:
    """Like :func:`build_tcp` with the options already encoded (``encode_options``).

    Returns the number of bytes written (header + payload)."""
    olen = len(opt_bytes)
    if olen > MAX_OPTIONS_LEN or olen & 3:
        raise ValueError(f"option bytes must be a multiple of 4 up to 40, got {olen}")
    hlen = HEADER_LEN + olen
    seg_len = hlen + len(payload)
    if offset < 0 or offset + seg_len > len(buf):
        raise ValueError(f"buffer of {len(buf)} bytes has no room for {seg_len} bytes at "
                         f"{offset}")
    start = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + PROTO_TCP + seg_len
    if partial_csum:
        start = (start & 0xFFFF) + (start >> 16)
        start = (start & 0xFFFF) + (start >> 16)
    try:
        _pack_hdr(buf, offset, sport, dport, seq, ack, hlen << 2, flags, window,
                  start if partial_csum else 0, urg)
    except struct.error as err:
        raise ValueError(f"TCP header field out of range: {err}") from None
    if olen:
        buf[offset + HEADER_LEN:offset + hlen] = opt_bytes
    if payload:
        buf[offset + hlen:offset + seg_len] = payload
    if not partial_csum:
        _pack_csum(buf, offset + 16,
                   native.checksum(memoryview(buf)[offset:offset + seg_len], start))
    return seg_len


def build_tcp(buf: bytearray | memoryview, offset: int, *, src: int, dst: int, sport: int,
              dport: int, seq: int, ack: int, flags: int, window: int,
              options: TcpOptions = NO_OPTIONS, payload: Buffer = b"", urg: int = 0,
              partial_csum: bool = False) -> int:
    """Write a TCP segment (header, options, payload) at ``buf[offset:]`` with its checksum
    (pseudo-header of ``src``/``dst``). Returns the number of bytes written.

    ``partial_csum=True`` writes only the folded pseudo-header sum into the checksum field,
    for a device that completes it (TUN ``IFF_VNET_HDR`` with ``VIRTIO_NET_HDR_F_NEEDS_CSUM``,
    csum_start = the TCP header, csum_offset = 16), as Linux's ``tcp_v4_send_check`` does.
    Raises ``ValueError`` when the buffer is too small or a field is out of range."""
    return write_tcp(buf, offset, encode_options(options), src=src, dst=dst, sport=sport,
                     dport=dport, seq=seq, ack=ack, flags=flags, window=window,
                     payload=payload, urg=urg, partial_csum=partial_csum)


def build_ipv4_tcp(*, src: int, dst: int, sport: int, dport: int, seq: int, ack: int,
                   flags: int, window: int, options: TcpOptions = NO_OPTIONS,
                   payload: Buffer = b"", urg: int = 0, ttl: int = 64, ident: int = 0,
                   df: bool = True, tos: int = 0, partial_csum: bool = False) -> bytearray:
    """A whole IPv4 datagram carrying one TCP segment, both checksums filled in (the TCP one
    only partially with ``partial_csum=True``, see :func:`build_tcp`)."""
    opt_bytes = encode_options(options)
    hlen = HEADER_LEN + len(opt_bytes)
    seg_len = hlen + len(payload)
    total = 20 + seg_len
    if total > 0xFFFF:
        raise ValueError(f"segment of {seg_len} bytes does not fit an IPv4 datagram")
    frag = 0x4000 if df else 0
    ip_sum = ((0x45 << 8) + tos + total + ident + frag + (ttl << 8) + PROTO_TCP
              + (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF))
    ip_sum = (ip_sum & 0xFFFF) + (ip_sum >> 16)
    ip_sum = (ip_sum & 0xFFFF) + (ip_sum >> 16)
    start = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + PROTO_TCP + seg_len
    if partial_csum:
        start = (start & 0xFFFF) + (start >> 16)
        start = (start & 0xFFFF) + (start >> 16)
    pkt = bytearray(total)
    try:
        _pack_ip_tcp(pkt, 0, 0x45, tos, total, ident, frag, ttl, PROTO_TCP, ~ip_sum & 0xFFFF,
                     src, dst, sport, dport, seq, ack, hlen << 2, flags, window,
                     start if partial_csum else 0, urg)
    except struct.error as err:
        raise ValueError(f"IPv4/TCP header field out of range: {err}") from None
    if hlen > HEADER_LEN:
        pkt[40:20 + hlen] = opt_bytes
    if payload:
        pkt[20 + hlen:] = payload
    if not partial_csum:
        _pack_csum(pkt, 36, native.checksum(memoryview(pkt)[20:], start))
    return pkt


# ----- RFC 2385 TCP MD5 signatures (the digest; which keys apply is pytcp.tcp.md5's business)

def md5_digest(key: Buffer, src: int, dst: int, segment: Buffer, v6: bool = False,
               payload: Buffer | None = None) -> bytes:
    """The RFC 2385 2.0 digest of a whole TCP segment (header with options, then data) sent
    from ``src`` to ``dst``: MD5 over

    1. the pseudo-header: IPv4 source, destination, a zero octet, the protocol (6) and the
       segment length (Linux ``tcp4_pseudohdr``); over IPv6 the RFC 2460 8.1 pseudo-header
       (source, destination, 32-bit length, 3 zero octets, next header 6: ``tcp6_pseudohdr``),
    2. the TCP header without options and with a zero checksum,
    3. the segment data,
    4. the key.

    The options (and so the digest's own bytes) are not covered. ``payload``: the data
    apart (``segment`` is then the header alone, as a parsed TcpHeader holds them: no copy)."""
    seg = segment if type(segment) is memoryview else memoryview(segment)
    n = len(seg) + (len(payload) if payload is not None else 0)
    if len(seg) < HEADER_LEN:
        raise ValueError(f"a TCP segment of {n} bytes")
    hlen = (seg[12] >> 4) << 2
    h = hashlib.md5(usedforsecurity=False)
    if v6:
        h.update(src.to_bytes(16, "big") + dst.to_bytes(16, "big")
                 + struct.pack("!I3xB", n, PROTO_TCP))
    else:
        h.update(struct.pack("!IIxBH", src, dst, PROTO_TCP, n))
    h.update(seg[:16])
    h.update(b"\x00\x00")  # the checksum, as zero
    h.update(seg[18:20])
    h.update(seg[hlen:] if payload is None else payload)
    h.update(key)
    return h.digest()


def md5_option_offset(segment: Buffer) -> int | None:
    """Where in ``segment`` (a TCP segment) the digest of its MD5 option starts, or None."""
    n = len(segment)
    if n < HEADER_LEN:
        return None
    end = min(n, (segment[12] >> 4) << 2)
    i = HEADER_LEN
    while i < end:
        kind = segment[i]
        if kind == OPT_EOL:
            return None
        if kind == OPT_NOP:
            i += 1
            continue
        if i + 1 >= end or segment[i + 1] < 2:
            return None
        length = segment[i + 1]
        if kind == OPT_MD5SIG and length == MD5SIG_LEN and i + length <= end:
            return i + 2
        i += length
    return None


def sign_packet(pkt: bytearray, key: Buffer) -> bool:
    """Fill the MD5 option of the IPv4 or IPv6 datagram ``pkt`` (one TCP segment, no IPv6
    extension headers, built with ``MD5_ZERO`` in the option) with its digest under ``key``
    and recompute the TCP checksum (RFC 9293 3.1) over the result. False: no MD5 option."""
    if pkt[0] >> 4 == 6:
        off = 40
        src = int.from_bytes(pkt[8:24], "big")
        dst = int.from_bytes(pkt[24:40], "big")
        v6 = True
    else:
        off = (pkt[0] & 15) << 2
        src = int.from_bytes(pkt[12:16], "big")
        dst = int.from_bytes(pkt[16:20], "big")
        v6 = False
    seg = memoryview(pkt)[off:]
    at = md5_option_offset(seg)
    if at is None:
        return False
    seg[at:at + 16] = md5_digest(key, src, dst, seg, v6)
    seg[16:18] = b"\x00\x00"
    start = PROTO_TCP + len(seg)
    for a in (src, dst):
        while a:
            start += a & 0xFFFF
            a >>= 16
    while start >> 16:
        start = (start & 0xFFFF) + (start >> 16)
    _pack_csum(seg, 16, native.checksum(seg, start))
    return True
