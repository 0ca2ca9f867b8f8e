"""packetdrill's grammar as the upstream corpora use it (google/packetdrill gtests/net/tcp and
freebsd-net/tcp-testsuite): each construct parses to the fields the runner needs."""

from __future__ import annotations

import pytest

from pytcp.script.parser import (
    CodeLine,
    CommandLine,
    IcmpLine,
    PacketLine,
    ScriptSyntaxError,
    SyscallLine,
    parse_script,
)
from pytcp.wire.tcp import ACK, FIN, PSH, SYN


def test_shell_and_option_lines() -> None:
    s = parse_script("""// header
--tolerance_usecs=10000
--strict_segments
`../common/defaults.sh
 sysctl -q net.ipv4.tcp_sack=0`
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 `sysctl -q net.ipv4.tcp_sack=1`
`/tmp/sysctl_restore_${PPID}.sh`
""", "o.pkt")
    assert s.options == [("tolerance_usecs", "10000"), ("strict_segments", None)]
    init, sock, timed, cleanup = s.lines
    assert isinstance(init, CommandLine) and init.timing is None and init.lineno == 4
    assert "tcp_sack=0" in init.command and isinstance(sock, SyscallLine) and sock.lineno == 6
    assert isinstance(timed, CommandLine) and timed.timing is not None
    assert isinstance(cleanup, CommandLine) and cleanup.timing is None


def test_code_block_spans_lines() -> None:
    s = parse_script("0 %{\nassert tcpi_snd_cwnd == 10, tcpi_snd_cwnd\n}%\n+0 close(3) = 0\n", "c")
    code, close = s.lines
    assert isinstance(code, CodeLine) and "assert tcpi_snd_cwnd == 10" in code.code
    assert isinstance(close, SyscallLine) and close.lineno == 4


def test_multi_line_call_hex_return_and_notes() -> None:
    s = parse_script("""0 sendmsg(4, {msg_name(...)=...,
               msg_iov(1)=[{..., 100}],
               msg_flags=0}, MSG_MORE) = 100
+0 fcntl(3, F_GETFL) = 0x2 (flags O_RDWR)
+0 setsockopt(3, SOL_TCP, TCP_MAXSEG, [0], 4) = -1
+0 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNRESET], [4]) = 0
+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0 setsockopt(3, SOL_TCP, TCP_MAXSEG, [0], 4) = -1 (Invalid Argument)
""", "m")
    send, fc, any_err, so, conn, note = s.lines
    assert isinstance(send, SyscallLine) and send.ret == 100 and len(send.args) == 3
    assert send.args[1] == "{msg_name(...)=..., msg_iov(1)=[{..., 100}], msg_flags=0}"
    assert isinstance(fc, SyscallLine) and fc.ret == 2 and fc.note == "flags O_RDWR"
    assert isinstance(any_err, SyscallLine) and any_err.ret == -1 and any_err.errno_name is None
    assert isinstance(so, SyscallLine) and so.args[3] == "[ECONNRESET]"
    assert isinstance(conn, SyscallLine) and conn.errno_name == "EINPROGRESS"
    assert isinstance(note, SyscallLine) and note.errno_name is None and note.lineno == 8


def test_timing_forms() -> None:
    s = parse_script("0 close(3) = 0\n+.002 ... 0.004 read(4, ..., 10) = 10\n"
                     "+.1~+.105 > P. 1:2(1) ack 1\n+ 0.00 close(4) = 0\n", "t")
    _, rd, rng, sp = s.lines
    assert rd.timing.start == 0.002 and rd.timing.block_end == 0.004
    assert (rng.timing.start, rng.timing.end, rng.timing.end_relative) == (0.1, 0.105, True)
    assert sp.timing.start == 0.0 and sp.timing.start_relative


def test_ip_info_ecn_and_tos() -> None:
    s = parse_script("0 < [ect0] S 0:0(0) win 100\n0 > [ce] . 1:1(0) ack 1\n"
                     "0 > (tos 0x20) R. 0:0(0) ack 2 win 0\n0 > [ect01] . 1:1(0) ack 1\n", "e")
    a, b, c, d = s.lines
    assert isinstance(a, PacketLine) and a.ecn == "ect0" and a.flags == SYN
    assert isinstance(b, PacketLine) and b.ecn == "ce"
    assert isinstance(c, PacketLine) and c.tos == 0x20
    assert isinstance(d, PacketLine) and d.ecn == "ect01"
    with pytest.raises(ScriptSyntaxError):
        parse_script("0 < [ect01] S 0:0(0) win 1\n", "e")


def test_fastopen_md5_options_and_symbols() -> None:
    s = parse_script("0 < S 0:10(10) win 1 <mss 1460,FO 0102030405060708,nop,nop>\n"
                     "0 > S. 0:0(0) ack 11 <mss MSS,FOEXP TFO_COOKIE,FO,md5 valid>\n", "f")
    a, b = s.lines
    assert isinstance(a, PacketLine) and a.options is not None
    assert a.options[1].kind == "FO" and a.options[1].raw == bytes(range(1, 9))
    assert isinstance(b, PacketLine) and b.options is not None
    assert [(o.kind, o.symbol) for o in b.options] == [
        ("mss", "MSS"), ("FOEXP", "TFO_COOKIE"), ("FO", ""), ("md5", "valid")]


def test_no_flags_ack_without_flag_and_split_ack_flag() -> None:
    s = parse_script("0 < - 1:1(0) win 5\n0 < S 0:0(0) ack 7 win 5\n0 < F . 1:1(0) ack 1 win 5\n",
                     "n")
    a, b, c = s.lines
    assert isinstance(a, PacketLine) and a.flags == 0
    assert isinstance(b, PacketLine) and b.flags == SYN and b.ack == 7
    assert isinstance(c, PacketLine) and c.flags == FIN | ACK


def test_icmp_forms() -> None:
    s = parse_script("0 < icmp unreachable net_prohibited [1:1(0)]\n"
                     "0 < icmp parameter_problem code_3 [0:0(0)]\n"
                     "0 < icmp unreachable [1:1(0)]\n"
                     "0 < icmp unreachable frag_needed mtu 1200 [1:1461(1460)/udp(9811 > 1)]\n"
                     "0 < icmp time_exceeded exceeded_hop_limit [0:0(0)]\n", "i")
    a, b, c, d, e = s.lines
    assert isinstance(a, IcmpLine) and (a.icmp_type, a.icmp_code) == (3, 9)
    assert isinstance(b, IcmpLine) and (b.icmp_type, b.icmp_code) == (12, 3)
    assert isinstance(c, IcmpLine) and (c.icmp_type, c.icmp_code, c.seq) == (3, 0, 1)
    assert isinstance(d, IcmpLine) and d.mtu == 1200 and d.udp == (9811, 1) and d.end == 1461
    assert isinstance(e, IcmpLine) and e.unknown == "exceeded_hop_limit"


def test_freebsd_ifdef_udp_and_unchecked_seq() -> None:
    text = """0 close(3) = 0
#ifdef STANDARD
+0 > . 2:2(0) ack 2 win 65535
#endif
#ifdef FreeBSD
+0 > R. 2:2(0) ack 2 win 65535
#else
+0 > F. 2:2(0) ack 2 win 1/udp(9811 > 1)
#endif
+0 > R. 0:0(0)! ack 2 win 0
+0 > S. ...(0) ack 4 win 65535 <mss 1452>/udp(9811 > 2)
"""
    s = parse_script(text, "b")
    _, std, fin, rst, syn = s.lines
    assert isinstance(std, PacketLine) and std.lineno == 3 and std.flags == ACK
    assert isinstance(fin, PacketLine) and fin.lineno == 8 and fin.udp == (9811, 1)
    assert isinstance(rst, PacketLine) and rst.seq_any and not std.seq_any
    assert isinstance(syn, PacketLine) and syn.seq_any and syn.length == 0
    s2 = parse_script("--define=FreeBSD\n" + text.replace("#ifdef STANDARD", "#ifdef NONE"), "b")
    assert [ln.lineno for ln in s2.lines] == [2, 7, 11, 12]
    with pytest.raises(ScriptSyntaxError, match="without #endif"):
        parse_script("#ifdef X\n0 close(3) = 0\n", "b")


def test_check_collects_every_error() -> None:
    errors: list[ScriptSyntaxError] = []
    parse_script("0 close(3) = 0\n0 < Q 0:0(0)\n0 bogus\n0 < P. 1:2(1) ack 1 win 1\n", "x", errors)
    assert [e.line for e in errors] == [2, 3]


def test_psh_ack_still_parse() -> None:
    (p,) = parse_script("0 < P. 1:11(10) ack 1 win 5\n", "p").lines
    assert isinstance(p, PacketLine) and p.flags == PSH | ACK
