"""TCP wire format: scapy is the oracle in both directions; every malformed case has its
DropReason; encode_options matches Linux's layouts byte for byte."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, IPOption_EOL, IPOption_NOP, TCPOptions

from pytcp import native
from pytcp.drops import DropReason, MalformedPacket
from pytcp.wire.ipv4 import parse_ipv4
from pytcp.wire.tcp import (
    ACK,
    CWR,
    ECE,
    FIN,
    NO_OPTIONS,
    OPT_EOL,
    OPT_NOP,
    PSH,
    RST,
    SYN,
    URG,
    TcpOptions,
    build_ipv4_tcp,
    build_tcp,
    encode_options,
    parse_tcp,
)

SRC = 0x0A4D0001  # 10.77.0.1
DST = 0x0A4D0002  # 10.77.0.2
SCAPY_KIND = TCPOptions[1]  # option name -> kind
# Kinds scapy does not decode, so it keeps them as (kind, raw bytes) like an unknown option.
UNKNOWN_KINDS = [k for k in range(6, 254) if k not in TCPOptions[0]]


def u32() -> st.SearchStrategy[int]:
    return st.integers(0, 2**32 - 1)


def scapy_option() -> st.SearchStrategy[tuple[object, object]]:
    return st.one_of(
        st.just(("NOP", None)),
        st.tuples(st.just("MSS"), st.integers(0, 0xFFFF)),
        st.tuples(st.just("WScale"), st.integers(0, 255)),
        st.just(("SAckOK", b"")),
        st.tuples(st.just("Timestamp"), st.tuples(u32(), u32())),
        st.tuples(st.just("SAck"), st.lists(u32(), min_size=2, max_size=6).map(
            lambda v: tuple(v[: len(v) // 2 * 2]))),
        st.tuples(st.sampled_from(UNKNOWN_KINDS), st.binary(max_size=6)),
    )


def _opt_len(opt: tuple[object, object]) -> int:
    name, value = opt
    fixed = {"NOP": 1, "EOL": 1, "MSS": 4, "WScale": 3, "SAckOK": 2, "Timestamp": 10}
    if name in fixed:
        return fixed[name]  # type: ignore[index]
    return 2 + (4 * len(value) if name == "SAck" else len(value))  # type: ignore[arg-type]


@st.composite
def option_lists(draw: st.DrawFn) -> list[tuple[object, object]]:
    """Random option lists that fit in 40 bytes, sometimes ending in EOL."""
    opts: list[tuple[object, object]] = []
    size = 0
    for opt in draw(st.lists(scapy_option(), max_size=12)):
        n = _opt_len(opt)
        if size + n > 39:
            break
        opts.append(opt)
        size += n
    if draw(st.booleans()):
        opts.append(("EOL", None))
    return opts


def expected_from_scapy(opts: list[tuple[object, object]]) -> tuple[TcpOptions, tuple[int, ...]]:
    """TcpOptions and kinds from scapy's own decoding (last occurrence wins, like Linux)."""
    mss = wscale = timestamp = None
    sack_ok = False
    blocks: tuple[tuple[int, int], ...] = ()
    kinds = []
    for name, value in opts:
        kinds.append(SCAPY_KIND[name] if isinstance(name, str) else name)
        if name == "MSS":
            mss = value
        elif name == "WScale":
            wscale = value
        elif name == "SAckOK":
            sack_ok = True
        elif name == "Timestamp":
            timestamp = tuple(value)  # type: ignore[arg-type]
        elif name == "SAck":
            blocks = tuple(zip(value[0::2], value[1::2]))  # type: ignore[index]
        if name == "EOL":
            break
    return TcpOptions(mss, wscale, sack_ok, blocks, timestamp), tuple(kinds)  # type: ignore


def _segment(pkt: bytes) -> memoryview:
    return parse_ipv4(pkt).payload


# --- scapy builds, pytcp parses ------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(
    sport=st.integers(0, 0xFFFF), dport=st.integers(0, 0xFFFF), seq=u32(), ack=u32(),
    flags=st.integers(0, 0xFF), window=st.integers(0, 0xFFFF), urg=st.integers(0, 0xFFFF),
    opts=option_lists(), payload=st.binary(max_size=300), padding=st.binary(max_size=6),
    ip_nops=st.integers(0, 8),
)
def test_scapy_built_segments_parse_to_the_same_fields(
    sport: int, dport: int, seq: int, ack: int, flags: int, window: int, urg: int,
    opts: list[tuple[object, object]], payload: bytes, padding: bytes, ip_nops: int,
) -> None:
    ip_options = [IPOption_NOP()] * ip_nops + ([IPOption_EOL()] if ip_nops else [])
    pkt = IP(src="10.77.0.1", dst="10.77.0.2", options=ip_options) / TCP(
        sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, window=window, urgptr=urg,
        options=opts) / payload
    wire = bytes(pkt) + padding  # link padding past the IP total length is ignored
    theirs = IP(wire)[TCP]
    seg = parse_tcp(_segment(wire), SRC, DST)
    assert (seg.sport, seg.dport, seg.seq, seg.ack) == (sport, dport, seq, ack)
    assert (seg.flags, seg.window, seg.urg) == (flags, window, urg)
    assert seg.checksum == theirs.chksum
    assert seg.data_offset == theirs.dataofs
    assert len(seg.header) == theirs.dataofs * 4
    assert bytes(seg.payload) == payload
    want_opts, want_kinds = expected_from_scapy(theirs.options)
    assert seg.options == want_opts
    assert seg.option_kinds == want_kinds


def test_payload_is_a_view_not_a_copy() -> None:
    wire = bytearray(build_ipv4_tcp(src=SRC, dst=DST, sport=1, dport=2, seq=3, ack=4,
                                    flags=ACK, window=5, payload=b"hello"))
    seg = parse_tcp(parse_ipv4(wire).payload, SRC, DST)
    assert isinstance(seg.payload, memoryview)
    wire[-5:] = b"HELLO"
    assert bytes(seg.payload) == b"HELLO"


def test_unknown_options_are_skipped_by_length_and_listed_in_wire_order() -> None:
    area = bytes([1, 99, 4, 0xAA, 0xBB, 2, 4, 0x05, 0xB4, 77, 2, 8, 10]) + struct.pack("!II", 7, 9)
    area += b"\x00" * (-len(area) % 4)
    seg = bytearray(20) + area
    struct.pack_into("!HHIIBBHHH", seg, 0, 1, 2, 0, 0, (len(seg) // 4) << 4, SYN, 0, 0, 0)
    parsed = parse_tcp(seg, SRC, DST, verify_checksum=False)
    assert parsed.option_kinds == (1, 99, 2, 77, 8, 0)
    assert parsed.options == TcpOptions(mss=1460, timestamp=(7, 9))


def test_known_option_with_wrong_length_is_ignored() -> None:
    area = bytes([2, 3, 0x05, 3, 4, 7, 7, 1])  # MSS of length 3, wscale of length 4, NOP
    seg = bytearray(20) + area
    struct.pack_into("!HHIIBBHHH", seg, 0, 1, 2, 0, 0, 7 << 4, SYN, 0, 0, 0)
    parsed = parse_tcp(seg, SRC, DST, verify_checksum=False)
    assert parsed.options == NO_OPTIONS
    assert parsed.option_kinds == (2, 3, 1)


def test_checksum_may_be_left_unverified() -> None:
    wire = bytearray(build_ipv4_tcp(src=SRC, dst=DST, sport=1, dport=2, seq=3, ack=4,
                                    flags=ACK, window=5, payload=b"x"))
    wire[-1] ^= 0xFF
    seg_view = parse_ipv4(wire).payload
    with pytest.raises(MalformedPacket) as exc:
        parse_tcp(seg_view, SRC, DST)
    assert exc.value.reason is DropReason.BAD_CHECKSUM
    assert bytes(parse_tcp(seg_view, SRC, DST, verify_checksum=False).payload) == b"\x87"


# --- pytcp builds, scapy parses ------------------------------------------------------------

@st.composite
def linux_options(draw: st.DrawFn) -> TcpOptions:
    ts = draw(st.none() | st.tuples(u32(), u32()))
    if draw(st.booleans()):  # SYN-style
        return TcpOptions(
            mss=draw(st.integers(0, 0xFFFF)),
            wscale=draw(st.none() | st.integers(0, 14)),
            sack_permitted=draw(st.booleans()),
            timestamp=ts,
        )
    blocks = draw(st.lists(st.tuples(u32(), u32()), max_size=4))
    return TcpOptions(sack_blocks=tuple(blocks), timestamp=ts)


@settings(max_examples=300, deadline=None)
@given(
    sport=st.integers(0, 0xFFFF), dport=st.integers(0, 0xFFFF), seq=u32(), ack=u32(),
    flags=st.integers(0, 0xFF), window=st.integers(0, 0xFFFF), urg=st.integers(0, 0xFFFF),
    opts=linux_options(), payload=st.binary(max_size=2000), ttl=st.integers(1, 255),
    ident=st.integers(0, 0xFFFF), src=u32(), dst=u32(),
)
def test_pytcp_built_segments_decode_in_scapy(
    sport: int, dport: int, seq: int, ack: int, flags: int, window: int, urg: int,
    opts: TcpOptions, payload: bytes, ttl: int, ident: int, src: int, dst: int,
) -> None:
    wire = bytes(build_ipv4_tcp(src=src, dst=dst, sport=sport, dport=dport, seq=seq, ack=ack,
                                flags=flags, window=window, options=opts, payload=payload,
                                urg=urg, ttl=ttl, ident=ident))
    ip = IP(wire)
    tcp = ip[TCP]
    assert (ip.src, ip.dst) == (_dotted(src), _dotted(dst))
    assert (ip.ttl, ip.id, ip.proto, ip.len, int(ip.flags)) == (ttl, ident, 6, len(wire), 2)
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack) == (sport, dport, seq, ack)
    assert (int(tcp.flags), tcp.window, tcp.urgptr) == (flags, window, urg)
    assert bytes(tcp.payload) == payload
    got, _kinds = expected_from_scapy(tcp.options)
    room = (40 - len(encode_options(TcpOptions(timestamp=opts.timestamp))) - 4) // 8
    assert got == TcpOptions(opts.mss, opts.wscale, opts.sack_permitted,
                             opts.sack_blocks[:room], opts.timestamp)
    assert tcp.dataofs * 4 == 20 + len(encode_options(opts))
    # Checksums: scapy recomputes both from scratch and must get what we wrote.
    del ip.chksum
    del ip[TCP].chksum
    again = IP(bytes(ip))
    assert (again.chksum, again[TCP].chksum) == (IP(wire).chksum, IP(wire)[TCP].chksum)


def _dotted(addr: int) -> str:
    return ".".join(str(b) for b in addr.to_bytes(4, "big"))


def test_build_tcp_into_a_preallocated_buffer_at_an_offset() -> None:
    buf = bytearray(b"\xee" * 100)
    n = build_tcp(buf, 7, src=SRC, dst=DST, sport=80, dport=4000, seq=1, ack=2, flags=ACK | PSH,
                  window=512, options=TcpOptions(timestamp=(10, 20)), payload=b"data")
    assert n == 20 + 12 + 4
    assert buf[:7] == b"\xee" * 7 and buf[7 + n:] == b"\xee" * (100 - 7 - n)
    seg = parse_tcp(memoryview(buf)[7:7 + n], SRC, DST)  # checksum verified
    assert (seg.sport, seg.dport, seg.flags, bytes(seg.payload)) == (80, 4000, ACK | PSH, b"data")
    assert seg.options == TcpOptions(timestamp=(10, 20))


def test_build_tcp_refuses_a_buffer_too_small() -> None:
    buf = bytearray(30)
    with pytest.raises(ValueError):
        build_tcp(buf, 0, src=SRC, dst=DST, sport=1, dport=2, seq=0, ack=0, flags=SYN,
                  window=0, payload=b"0123456789abc")
    assert buf == bytearray(30)  # a bytearray was not silently extended


# --- Linux option layouts --------------------------------------------------------------------

TS = struct.pack("!II", 0x01020304, 0x05060708)


@pytest.mark.parametrize(
    ("opts", "wire"),
    [
        (NO_OPTIONS, b""),
        # SYN with TS and SACK: mss(4) sackOK(2) TS(10) nop wscale(3) = 20 bytes
        (TcpOptions(mss=1460, wscale=7, sack_permitted=True, timestamp=(0x01020304, 0x05060708)),
         bytes.fromhex("020405b4" "0402080a") + TS + bytes.fromhex("01030307")),
        # SYN with SACK, no TS: mss nop nop sackOK nop wscale
        (TcpOptions(mss=1460, wscale=7, sack_permitted=True),
         bytes.fromhex("020405b4" "01010402" "01030307")),
        # SYN with TS, no SACK: mss nop nop TS nop wscale
        (TcpOptions(mss=536, wscale=0, timestamp=(0x01020304, 0x05060708)),
         bytes.fromhex("02040218" "0101080a") + TS + bytes.fromhex("01030300")),
        # SYN with MSS only
        (TcpOptions(mss=1460), bytes.fromhex("020405b4")),
        # data: nop nop TS
        (TcpOptions(timestamp=(0x01020304, 0x05060708)), bytes.fromhex("0101080a") + TS),
        # data: nop nop TS, then nop nop SACK n*8
        (TcpOptions(timestamp=(0x01020304, 0x05060708), sack_blocks=((1, 2), (3, 4))),
         bytes.fromhex("0101080a") + TS + bytes.fromhex("01010512") + struct.pack("!IIII", 1, 2, 3, 4)),
        # data without TS: nop nop SACK
        (TcpOptions(sack_blocks=((5, 6),)), bytes.fromhex("0101050a") + struct.pack("!II", 5, 6)),
    ],
    ids=["none", "syn-ts-sack", "syn-sack", "syn-ts", "syn-mss", "ts", "ts-sack", "sack"],
)
def test_encode_options_linux_layout(opts: TcpOptions, wire: bytes) -> None:
    assert encode_options(opts) == wire
    assert len(wire) % 4 == 0
    if wire:
        seg = bytearray(20) + wire
        struct.pack_into("!HHIIBBHHH", seg, 0, 1, 2, 0, 0, (len(seg) // 4) << 4, 0, 0, 0, 0)
        assert parse_tcp(seg, SRC, DST, verify_checksum=False).options == opts


def test_encode_options_drops_sack_blocks_that_do_not_fit() -> None:
    blocks = tuple((i, i + 1) for i in range(5))
    # With timestamps: 12 + 4 + 3*8 = 40 bytes, three blocks (the first, most recent, ones).
    wire = encode_options(TcpOptions(timestamp=(1, 2), sack_blocks=blocks))
    assert len(wire) == 40 and wire[12:16] == bytes([1, 1, 5, 26])
    # Without: 4 + 4*8 = 36 bytes, four blocks.
    wire = encode_options(TcpOptions(sack_blocks=blocks))
    assert len(wire) == 36 and wire[:4] == bytes([1, 1, 5, 34])


# --- malformed segments ----------------------------------------------------------------------

def _raw_segment(doff: int, area: bytes = b"", total: int | None = None) -> bytearray:
    seg = bytearray(20) + area
    if total is not None:
        seg = seg[:total] + bytes(max(0, total - len(seg)))
    struct.pack_into("!HHIIBBHHH", seg, 0, 1, 2, 3, 4, doff << 4, ACK, 100, 0, 0)
    return seg


@pytest.mark.parametrize(
    ("segment", "reason"),
    [
        (b"", DropReason.TRUNCATED),
        (bytes(19), DropReason.TRUNCATED),
        (_raw_segment(4), DropReason.BAD_DATA_OFFSET),
        (_raw_segment(0), DropReason.BAD_DATA_OFFSET),
        (_raw_segment(6), DropReason.BAD_DATA_OFFSET),  # header past the 20-byte segment
        (_raw_segment(15, bytes([1] * 36)), DropReason.BAD_DATA_OFFSET),  # 60 > 56
        (_raw_segment(6, bytes([2, 0, 0, 0])), DropReason.BAD_OPTION),  # length 0
        (_raw_segment(6, bytes([8, 1, 0, 0])), DropReason.BAD_OPTION),  # length 1
        (_raw_segment(6, bytes([1, 8, 10, 0])), DropReason.BAD_OPTION),  # TS runs past header
        (_raw_segment(6, bytes([1, 1, 1, 99])), DropReason.BAD_OPTION),  # no length byte
        (_raw_segment(6, bytes([99, 5, 0, 0]) + b"payload"), DropReason.BAD_OPTION),  # past hdr
    ],
    ids=["empty", "19-bytes", "doff-4", "doff-0", "doff-past", "doff-15-past", "optlen-0",
         "optlen-1", "ts-past", "no-length-byte", "unknown-past"],
)
def test_malformed_segment(segment: bytes, reason: DropReason) -> None:
    with pytest.raises(MalformedPacket) as exc:
        parse_tcp(segment, SRC, DST, verify_checksum=False)
    assert exc.value.reason is reason


def test_bad_checksum() -> None:
    wire = bytearray(build_ipv4_tcp(src=SRC, dst=DST, sport=1, dport=2, seq=3, ack=4, flags=ACK,
                                    window=5))
    with pytest.raises(MalformedPacket) as exc:
        parse_tcp(parse_ipv4(wire).payload, SRC, DST + 1)  # wrong pseudo-header
    assert exc.value.reason is DropReason.BAD_CHECKSUM
    wire[20 + 14] ^= 0x01  # the window field
    with pytest.raises(MalformedPacket) as exc:
        parse_tcp(parse_ipv4(wire).payload, SRC, DST)
    assert exc.value.reason is DropReason.BAD_CHECKSUM


def test_flag_constants_match_scapy() -> None:
    for name, bit in (("F", FIN), ("S", SYN), ("R", RST), ("P", PSH), ("A", ACK), ("U", URG),
                      ("E", ECE), ("C", CWR)):
        assert int(TCP(flags=name).flags) == bit


def test_option_cache_does_not_mix_up_segments() -> None:
    rng = random.Random(7)
    for _ in range(2000):  # more distinct option areas than the memo holds
        ts = (rng.getrandbits(32), rng.getrandbits(32))
        wire = build_ipv4_tcp(src=SRC, dst=DST, sport=1, dport=2, seq=0, ack=0, flags=ACK,
                              window=0, options=TcpOptions(timestamp=ts))
        seg = parse_tcp(parse_ipv4(wire).payload, SRC, DST)
        assert seg.options.timestamp == ts
        assert seg.option_kinds == (OPT_NOP, OPT_NOP, 8)
    assert OPT_EOL == 0


@pytest.mark.parametrize("size", [0, 1, 1460, 65000])
def test_partial_csum_is_completed_like_a_virtio_device(size: int) -> None:
    payload = random.Random(size).randbytes(size)
    opts = TcpOptions(timestamp=(1, 2))
    wire = build_ipv4_tcp(src=SRC, dst=DST, sport=1, dport=2, seq=3, ack=4, flags=ACK,
                          window=5, options=opts, payload=payload, partial_csum=True)
    field = struct.unpack_from("!H", wire, 36)[0]
    assert field == native.pseudo_header_sum(SRC, DST, 6, len(wire) - 20)
    with pytest.raises(MalformedPacket):
        parse_tcp(parse_ipv4(wire).payload, SRC, DST)
    # The device: checksum from csum_start (20) to the end, stored at csum_start + 16.
    struct.pack_into("!H", wire, 36, native.checksum(memoryview(wire)[20:]))
    full = build_ipv4_tcp(src=SRC, dst=DST, sport=1, dport=2, seq=3, ack=4, flags=ACK,
                          window=5, options=opts, payload=payload)
    assert wire == full
    buf = bytearray(len(wire))
    build_tcp(buf, 20, src=SRC, dst=DST, sport=1, dport=2, seq=3, ack=4, flags=ACK, window=5,
              options=opts, payload=payload, partial_csum=True)
    assert struct.unpack_from("!H", buf, 36)[0] == field


def test_build_ipv4_tcp_header_fields() -> None:
    wire = build_ipv4_tcp(src=SRC, dst=DST, sport=1, dport=2, seq=3, ack=4, flags=ACK,
                          window=5, ttl=7, ident=0xBEEF, df=False, tos=0x10)
    ip = IP(bytes(wire))
    assert (ip.ttl, ip.id, int(ip.flags), ip.tos, ip.len) == (7, 0xBEEF, 0, 0x10, 40)
    p = parse_ipv4(wire)  # header checksum verified
    assert (p.df, p.ttl, p.ident) == (False, 7, 0xBEEF)
    with pytest.raises(ValueError):
        build_ipv4_tcp(src=SRC, dst=DST, sport=1, dport=2, seq=3, ack=4, flags=ACK, window=5,
                       payload=bytes(65536 - 40))
    with pytest.raises(ValueError):
        build_ipv4_tcp(src=SRC, dst=DST, sport=70000, dport=2, seq=3, ack=4, flags=ACK,
                       window=5)
    with pytest.raises(ValueError):
        encode_options(TcpOptions(mss=70000))


@settings(max_examples=300, deadline=None)
@given(opts=linux_options(), payload=st.binary(max_size=100), seq=u32(), ack=u32(),
       flags=st.integers(0, 0xFF))
def test_build_then_parse_round_trip(opts: TcpOptions, payload: bytes, seq: int, ack: int,
                                     flags: int) -> None:
    wire = build_ipv4_tcp(src=SRC, dst=DST, sport=443, dport=50000, seq=seq, ack=ack,
                          flags=flags, window=1234, options=opts, payload=payload)
    ip = parse_ipv4(wire)
    seg = parse_tcp(ip.payload, ip.src, ip.dst)
    encoded = encode_options(opts)
    room = (40 - len(encode_options(TcpOptions(timestamp=opts.timestamp))) - 4) // 8
    expect = TcpOptions(opts.mss, opts.wscale, opts.sack_permitted, opts.sack_blocks[:room],
                        opts.timestamp)
    assert seg.options == (expect if encoded else NO_OPTIONS)
    assert (seg.seq, seg.ack, seg.flags, bytes(seg.payload)) == (seq, ack, flags, payload)
    assert bytes(seg.header[20:]) == encoded
    assert encode_options(seg.options) == encoded  # re-encoding is stable
