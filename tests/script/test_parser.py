"""The packet-script parser: timing, packets, options, syscalls, comments, settings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytcp.script.parser import (
    IcmpLine,
    PacketLine,
    ScriptSyntaxError,
    SyscallLine,
    parse_script,
    parse_timing,
)
from pytcp.wire.tcp import ACK, FIN, PSH, RST, SYN


def test_handshake_lines_parse_to_fields() -> None:
    s = parse_script("""
// RFC 9293 3.5: passive open
// pytcp: tolerance=0.02 profile=rfc config.sack=0
0   socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0  < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>
+0  > S. 0:0(0) ack 1 <...>
+.1 < . 1:1(0) ack 1 win 257
""", "t.pkt")
    assert s.settings == {"tolerance": "0.02", "profile": "rfc", "config.sack": "0"}
    assert s.first_comment == "RFC 9293 3.5: passive open"
    sock, syn, synack, ack = s.lines
    assert isinstance(sock, SyscallLine) and sock.name == "socket" and sock.ret == 3
    assert sock.args == ["...", "SOCK_STREAM", "IPPROTO_TCP"]
    assert isinstance(syn, PacketLine) and syn.lineno == 5
    assert syn.direction == "<" and syn.flags == SYN and syn.win == 65535 and syn.ack is None
    assert syn.options is not None
    assert [str(o) for o in syn.options] == ["mss 1460", "sackOK", "TS val 100 ecr 0", "nop",
                                             "wscale 7"]
    assert isinstance(synack, PacketLine) and synack.flags == SYN | ACK and synack.ack == 1
    assert synack.options is None  # <...>: any options
    assert isinstance(ack, PacketLine) and ack.options == () and ack.timing.start == 0.1
    assert ack.timing.start_relative


def test_flags_combinations() -> None:
    s = parse_script("0 > F. 1:1(0) ack 1\n0 > R 5:5(0)\n0 < P. 1:11(10) ack 1\n", "f")
    assert [ln.flags for ln in s.lines if isinstance(ln, PacketLine)] == [
        FIN | ACK, RST, PSH | ACK]


def test_timing_forms() -> None:
    assert parse_timing("*", "p", 1).any_time
    t = parse_timing("0.250", "p", 1)
    assert (t.start, t.start_relative) == (0.25, False)
    t = parse_timing("+.5", "p", 1)
    assert (t.start, t.start_relative) == (0.5, True)
    t = parse_timing("0.1~0.2", "p", 1)
    assert (t.start, t.end, t.end_relative) == (0.1, 0.2, False)
    t = parse_timing("+1~+3", "p", 1)
    assert (t.start, t.end, t.start_relative, t.end_relative) == (1.0, 3.0, True, True)


def test_syscall_errno_and_brackets() -> None:
    s = parse_script("""
0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
0 setsockopt(3, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0
0 getsockopt(3, SOL_SOCKET, SO_ERROR, [0], [4]) = 0
0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
""", "s")
    c, lg, g, f = s.lines
    assert isinstance(c, SyscallLine) and c.ret == -1 and c.errno_name == "EINPROGRESS"
    assert isinstance(lg, SyscallLine) and lg.args[3] == "{onoff=1, linger=0}"
    assert isinstance(g, SyscallLine) and g.args == ["3", "SOL_SOCKET", "SO_ERROR", "[0]", "[4]"]
    assert isinstance(f, SyscallLine) and f.args[2] == "O_RDWR|O_NONBLOCK"


def test_block_comments_keep_line_numbers() -> None:
    s = parse_script("/* a\n b\n*/ 0 < S 0:0(0) win 10\n0 close(3) = 0 // done\n", "c")
    assert [ln.lineno for ln in s.lines] == [3, 4]


def test_sack_raw_and_icmp() -> None:
    s = parse_script("0 < . 1:1(0) ack 1 <nop,nop,sack 1001:2001 3001:4001,raw 0xfe04abcd>\n"
                     "0 < icmp unreachable frag_needed mtu 1200 [1:1461(1460)]\n", "x")
    p, i = s.lines
    assert isinstance(p, PacketLine) and p.options is not None
    assert p.options[2].blocks == ((1001, 2001), (3001, 4001))
    assert p.options[3].raw == bytes.fromhex("fe04abcd")
    assert isinstance(i, IcmpLine) and (i.icmp_type, i.icmp_code, i.mtu) == (3, 4, 1200)
    assert (i.seq, i.end) == (1, 1461)


def test_xfail_reason_keeps_spaces() -> None:
    s = parse_script("// pytcp: xfail=engine has no urgent send\n0 close(3) = 0\n", "x")
    assert s.settings["xfail"] == "engine has no urgent send"


@pytest.mark.parametrize("bad, msg", [
    ("0 < S 0:1(0) win 1", "end - seq"),
    ("0 < Q 0:0(0)", "bad flag"),
    ("0 < S 0:0(0) <mss>", "unknown option"),
    ("0 < S 0:0(0) bogus 3", "unexpected 'bogus'"),
    ("0 < S 0:0(0) <...>", "outbound"),
    ("0 read(3, ..., 10)", "expected '= VALUE"),
    ("0 read(3, ..., 10) = 5 EAGAIN", "only with"),
    ("x < S 0:0(0)", "bad time"),
    ("* read(3, ..., 10) = 1", "outbound"),
    ("0 > S 0:0(0) <raw 0x01>", "inbound"),
])
def test_syntax_errors_name_the_line(bad: str, msg: str) -> None:
    with pytest.raises(ScriptSyntaxError) as ei:
        parse_script("// header\n" + bad + "\n", "bad.pkt")
    assert ei.value.line == 2 and msg in ei.value.msg
    assert str(ei.value).startswith("bad.pkt:2:")


@given(st.integers(0, 2**31), st.integers(0, 65535), st.integers(0, 2**32 - 1),
       st.integers(0, 65535), st.sampled_from(["S", "S.", ".", "P.", "F.", "R.", "R", "FP."]))
def test_packet_line_roundtrip(seq: int, ln: int, ack: int, win: int, flags: str) -> None:
    txt = f"+0 > {flags} {seq}:{seq + ln}({ln}) ack {ack} win {win}" if "." in flags else \
        f"+0 > {flags} {seq}:{seq + ln}({ln}) win {win}"
    (p,) = parse_script(txt, "h").lines
    assert isinstance(p, PacketLine)
    assert (p.seq, p.end, p.length, p.win) == (seq, seq + ln, ln, win)
    assert p.ack == (ack if "." in flags else None)
    assert p.flags_text == flags


def test_inbound_extensions() -> None:
    (p,) = parse_script("0 < S 0:0(0) win 5 bad_csum src 224.0.0.1 ttl 1 ip_opts 0x8601\n",
                        "e").lines
    assert isinstance(p, PacketLine)
    assert p.bad_csum and p.src == "224.0.0.1" and p.ttl == 1
    assert p.ip_options == b"\x86\x01\x00\x00"
    with pytest.raises(ScriptSyntaxError):
        parse_script("0 > S 0:0(0) bad_csum\n", "e")


def test_blocking_call_timing_uses_the_start() -> None:
    t = parse_timing("+.1...0.200", "p", 1)
    assert (t.start, t.start_relative, t.end) == (0.1, True, None)
    with pytest.raises(ScriptSyntaxError):
        parse_timing("+.1...x", "p", 1)


def test_port_extension_both_directions() -> None:
    a, b = parse_script("0 < S 0:0(0) win 5 port 40001\n0 > S. 0:0(0) ack 1 port 40001 <...>\n",
                        "p").lines
    assert isinstance(a, PacketLine) and isinstance(b, PacketLine)
    assert a.port == b.port == 40001
    with pytest.raises(ScriptSyntaxError):
        parse_script("0 < S 0:0(0) port 70000\n", "p")


_OPTION = st.one_of(
    st.just("nop"), st.just("sackOK"), st.just("eol"),
    st.integers(0, 65535).map(lambda v: f"mss {v}"),
    st.integers(0, 14).map(lambda v: f"wscale {v}"),
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)).map(
        lambda t: f"TS val {t[0]} ecr {t[1]}"),
    st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 2**31)), min_size=1,
             max_size=4).map(lambda bl: "sack " + " ".join(f"{a}:{b}" for a, b in bl)),
)


@given(st.sampled_from(["<", ">"]), st.sampled_from(["S", "S.", ".", "P.", "F.", "R.", "FP."]),
       st.integers(0, 2**31), st.integers(0, 3000), st.integers(0, 2**32 - 1),
       st.integers(0, 65535), st.lists(_OPTION, max_size=6))
def test_expected_packet_text_round_trips(direction: str, flags: str, seq: int, ln: int,
                                          ack: int, win: int, opts: list[str]) -> None:
    """parse(line) then format_expected() gives the same line back (the matcher's failure
    messages quote exactly what the script says)."""
    from pytcp.script.matcher import format_expected

    text = f"{direction} {flags} {seq}:{seq + ln}({ln})"
    if "." in flags:
        text += f" ack {ack}"
    text += f" win {win}"
    if opts:
        text += " <" + ",".join(opts) + ">"
    (p,) = parse_script("0 " + text + "\n", "rt").lines
    assert isinstance(p, PacketLine)
    assert format_expected(p) == text


def test_batch_extension_must_be_at_plus_zero() -> None:
    a, b = parse_script("0 < . 1:11(10) ack 1 win 5\n+0 < . 11:21(10) ack 1 win 5 batch\n",
                        "b").lines
    assert isinstance(b, PacketLine) and b.batch and isinstance(a, PacketLine) and not a.batch
    with pytest.raises(ScriptSyntaxError):
        parse_script("0 < . 1:11(10) ack 1 win 5\n+0.1 < . 11:21(10) ack 1 win 5 batch\n", "b")
