"""The runner against the real stack: passing traces pass, and each kind of deviation fails
at the right line with the expected and actual packet named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytcp.script.parser import parse_script
from pytcp.script.runner import main, run_script

HANDSHAKE = """\
0.000 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3  // pytcp: strict=1
+0    bind(3, ..., ...) = 0
+0    listen(3, 1) = 0
+0    < S 0:0(0) win 65535 <mss 1460,nop,nop,TS val 100 ecr 0>
+0    > S. 0:0(0) ack 1 win 65160 <mss 1460,nop,nop,TS val 1 ecr 100>
+0.1  < . 1:1(0) ack 1 win 65535 <nop,nop,TS val 200 ecr 1>
+0    accept(3, ..., ...) = 4
"""


def run(text: str):  # type: ignore[no-untyped-def]
    return run_script(parse_script(text, "t.pkt"))


def test_passing_trace_passes() -> None:
    res = run(HANDSHAKE + "+0 write(4, ..., 10) = 10\n"
              "+0 > P. 1:11(10) ack 1 <nop,nop,TS val 101 ecr 200>\n")
    assert res.passed, res.failure and res.failure.long("t.pkt")


def test_wrong_field_names_line_expected_and_actual() -> None:
    res = run(HANDSHAKE + "+0 write(4, ..., 10) = 10\n"
              "+0 > P. 1:11(10) ack 2 <nop,nop,TS val 1 ecr 200>\n")
    f = res.failure
    assert not res.passed and f is not None
    assert f.lineno == 9 and f.reason == "ack expected 2 got 1"
    assert f.expected == "> P. 1:11(10) ack 2 <nop,nop,TS val 1 ecr 200>"
    assert f.actual.startswith("> P. 1:11(10) ack 1 win ")
    assert res.summary().startswith("FAIL t.pkt:9: expected > P. 1:11(10) ack 2")
    assert "ESTABLISHED" in f.long("t.pkt")  # the connection trace is part of the report


def test_ts_val_follows_our_clock_after_the_first() -> None:
    # The SYN-ACK's "TS val 1" at t=0 fixes the offset; 100 ms later our clock (1 kHz) says 101.
    res = run(HANDSHAKE + "+0 write(4, ..., 10) = 10\n"
              "+0 > P. 1:11(10) ack 1 <nop,nop,TS val 150 ecr 200>\n")
    f = res.failure
    assert f is not None and f.reason.startswith("TS val expected 150 got 101")


def test_ts_ecr_is_checked_on_outbound() -> None:
    res = run(HANDSHAKE + "+0 write(4, ..., 10) = 10\n"
              "+0 > P. 1:11(10) ack 1 <nop,nop,TS val 1 ecr 199>\n")
    assert res.failure is not None and res.failure.reason == "TS ecr expected 199 got 200"


def test_unexpected_packet_fails() -> None:
    res = run(HANDSHAKE + "+0 write(4, ..., 10) = 10\n+0.1 < . 1:1(0) ack 11 win 100\n")
    f = res.failure
    assert f is not None and f.lineno == 9 and "unexpected outbound packet" in f.reason
    assert f.actual.startswith("> P. 1:11(10) ack 1")


def test_missing_packet_fails() -> None:
    res = run(HANDSHAKE + "+0.5 > . 1:1(0) ack 1\n")
    f = res.failure
    assert f is not None and f.lineno == 8 and f.reason.startswith("no packet by t=0.610")


def test_packet_at_wrong_time_fails() -> None:
    res = run(HANDSHAKE + "+0 write(4, ..., 10) = 10\n"
              "+0.05 > P. 1:11(10) ack 1 <...>\n")
    f = res.failure
    assert f is not None and "packet at t=0.100, expected at t=0.150" in f.reason


def test_time_range_and_any_time() -> None:
    base = HANDSHAKE + "+0 write(4, ..., 10) = 10\n+0 > P. 1:11(10) ack 1 <...>\n"
    # Linux-like RTO after a 100 ms RTT sample is 0.3 s: a range and '*' both accept it.
    assert run(base + "+0.2~+0.4 > P. 1:11(10) ack 1 <...>\n").passed
    assert run(base + "* > P. 1:11(10) ack 1 <...>\n").passed
    assert not run(base + "+0.35~+0.4 > P. 1:11(10) ack 1 <...>\n").passed


def test_wrong_syscall_return_fails() -> None:
    res = run(HANDSHAKE + "+0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n"
              "+0 read(4, ..., 10) = 10\n")
    f = res.failure
    assert f is not None and f.lineno == 9
    assert (f.expected, f.actual) == ("= 10", "= -1 EAGAIN")


def test_blocking_read_completes_when_data_arrives() -> None:
    ok = HANDSHAKE + ("+0 read(4, ..., 10) = 10\n"
                      "+0.1 < P. 1:11(10) ack 1 win 100 <nop,nop,TS val 300 ecr 1>\n"
                      "+0 > . 1:1(0) ack 11 <nop,nop,TS val 201 ecr 300>\n")
    assert run(ok).passed
    never = HANDSHAKE + "+0 read(4, ..., 10) = 10\n"
    f = run(never).failure
    assert f is not None and f.lineno == 8 and "still blocked" in f.reason


def test_unsupported_call_is_reported() -> None:
    f = run(HANDSHAKE + "+0 splice(4, NULL, 5, NULL, 10, 0) = 10\n").failure
    assert f is not None and "splice() is not supported" in f.reason
    assert f.unsupported == "system call splice() is not supported"


def test_recv_msg_oob_is_reported_and_send_msg_oob_sends_urgent_data() -> None:
    f = run(HANDSHAKE + "+0 recv(4, ..., 1, MSG_OOB) = 1\n").failure
    assert f is not None and "MSG_OOB" in f.reason and "inline" in f.reason
    # MUST-62: the pointer is to the first non-urgent octet (a wrong urg value fails).
    urgent = HANDSHAKE + "+0 send(4, ..., 5, MSG_OOB) = 5\n"
    assert run(urgent + "+0 > P.U 1:6(5) ack 1 urg 5 <nop,nop,TS val 101 ecr 200>\n").passed
    f = run(urgent + "+0 > P.U 1:6(5) ack 1 urg 4 <nop,nop,TS val 101 ecr 200>\n").failure
    assert f is not None and "urg expected 4 got 5" in f.reason


def test_syntax_error_is_a_failure_with_line() -> None:
    res = run_script(parse_script("// x\n", "ok.pkt"))
    assert res.passed  # an empty script passes trivially
    p = Path(os.environ.get("TMPDIR", "/tmp")) / "pytcp-bad-syntax.pkt"
    p.write_text("0 < S 0:1(0)\n")
    r = run_script(str(p))
    assert not r.passed and r.failure is not None and r.failure.lineno == 1
    assert "syntax error" in r.failure.reason


def test_main_prints_one_line_per_script_and_summary(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.pkt"
    good.write_text("0 < S 0:0(0) win 100\n+0 > R. 0:0(0) ack 1\n")
    bad = tmp_path / "bad.pkt"
    bad.write_text("0 < S 0:0(0) win 100\n+0 > R. 0:0(0) ack 2\n")
    xf = tmp_path / "xf.pkt"
    xf.write_text("// pytcp: xfail=known bug\n0 < S 0:0(0) win 100 // pytcp: strict=1\n")
    stale = tmp_path / "zz-stale.pkt"
    stale.write_text("// pytcp: xfail=was a bug\n0 < S 0:0(0) win 100\n+0 > R. 0:0(0) ack 1\n")
    assert main([str(good)]) == 0
    assert main([str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"PASS {good}"
    assert out[1] == "1 passed, 0 failed"
    assert out[2].startswith(f"FAIL {bad}:2: expected > R. 0:0(0) ack 2 got > R. 0:0(0) ack 1")
    assert out[3] == f"PASS {good}"
    assert out[4].startswith(f"XFAIL {xf}:2:") and out[4].endswith("[xfail: known bug]")
    assert out[5] == (f"FAIL {stale}: passed but is marked xfail (was a bug): drop the marker")
    assert out[6] == "1 passed, 2 failed, 1 xfailed"


def test_pytest_plugin_reports_script_line(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "rst.pkt").write_text("0 < S 0:0(0) win 100\n+0 > R. 0:0(0) ack 7\n")
    (tmp_path / "a" / "xf.pkt").write_text("// pytcp: xfail=engine bug 12\n"
                                           "0 < S 0:0(0) win 100 // pytcp: strict=1\n")
    (tmp_path / "a" / "xpass.pkt").write_text("// pytcp: xfail=fixed long ago\n"
                                              "0 < S 0:0(0) win 100\n+0 > R. 0:0(0) ack 1\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "pytcp.script.plugin", "-q",
                           "-rx", "-p", "no:cacheprovider", str(tmp_path / "a")],
                          check=False, capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path)
    out = proc.stdout
    assert proc.returncode == 1, out
    assert "a/rst.pkt:2: ack expected 7 got 1" in out
    assert "script line: +0 > R. 0:0(0) ack 7" in out
    assert "XFAIL" in out and "engine bug 12" in out
    assert "[XPASS(strict)] fixed long ago" in out
    assert "2 failed, 1 xfailed" in out


def test_closed_descriptor_gives_ebadf() -> None:
    assert run(HANDSHAKE + "+0 close(4) = 0\n+0 > F. 1:1(0) ack 1 <...>\n"
               "+0 read(4, ..., 10) = -1 EBADF (Bad file descriptor)\n").passed


def test_exception_from_the_stack_is_reported_at_its_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from pytcp.stack import Stack

    def boom(self: Stack, port: int, backlog: int = 128) -> None:
        raise RuntimeError("listener exploded")

    monkeypatch.setattr(Stack, "listen", boom)
    res = run(HANDSHAKE)
    f = res.failure
    assert f is not None and f.lineno == 3
    assert f.reason == "exception from the stack: RuntimeError: listener exploded"


def test_tcp_info_fields_are_checked() -> None:
    ok = HANDSHAKE + ("+0 getsockopt(4, SOL_TCP, TCP_INFO, {tcpi_state=1, tcpi_snd_cwnd=10}, "
                      "[...]) = 0\n")
    assert run(ok).passed
    f = run(HANDSHAKE + "+0 getsockopt(4, SOL_TCP, TCP_INFO, {tcpi_state=6}, [...]) = 0\n").failure
    assert f is not None and f.reason == "TCP_INFO tcpi_state is 1, the script expects 6"
    f = run(HANDSHAKE + "+0 getsockopt(4, SOL_TCP, TCP_INFO, {tcpi_bogus=1}, [...]) = 0\n").failure
    assert f is not None and "unknown field 'tcpi_bogus'" in f.reason


def test_verbose_trace_and_pcap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from scapy.all import TCP, rdpcap  # test oracle only

    script = tmp_path / "rst.pkt"
    script.write_text("0 < S 0:0(0) win 100\n+0 > R. 0:0(0) ack 1\n")
    assert main(["-v", "--pcap", str(tmp_path / "one.pcapng"), str(script)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["  t=0.000 < S 0:0(0) win 100", "  t=0.000 > R. 0:0(0) ack 1 win 0"]
    pkts = rdpcap(str(tmp_path / "one.pcapng"))
    assert [p[TCP].flags for p in pkts] == ["S", "RA"]
    # Several scripts: one file per script in the directory.
    assert main(["--pcap", str(tmp_path / "caps"), str(script), str(script)]) == 0
    assert sorted(os.listdir(tmp_path / "caps")) == [f"{tmp_path.name}-rst.pcapng"]


def test_usage_errors() -> None:
    assert main([]) == 2
    assert main(["--bogus", "x.pkt"]) == 2
    assert main(["--pcap"]) == 2
    assert main(["--help"]) == 0


def test_record_prints_a_script_that_replays(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.pkt"
    src.write_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 bind(3, ..., ...) = 0\n"
                   "+0 listen(3, 1) = 0\n+0 < S 0:0(0) win 65535 <mss 1460>\n"
                   "+.1 < . 1:1(0) ack 1 win 65535\n+0 accept(3, ..., ...) = 9\n"
                   "+0 write(4, ..., 10) = 0\n")
    assert main(["--record", str(src)]) == 0
    out = capsys.readouterr().out
    assert "0.000 > S. 0:0(0) ack 1 <mss 1460>" in out
    assert "0.100 accept(3, ..., ...) = 4" in out       # the actual value, not the script's
    assert "0.100 > P. 1:11(10) ack 1" in out
    replay = tmp_path / "replay.pkt"
    replay.write_text(out)
    assert run_script(str(replay)).passed


def test_set_overrides_script_settings(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    # Linux profile: quick ACK for the first segment; RFC profile: the 200 ms delayed ACK.
    script = tmp_path / "ack.pkt"
    script.write_text(HANDSHAKE.replace(" <mss 1460,nop,nop,TS val 100 ecr 0>", " <mss 1460>")
                      .replace(" win 65160 <mss 1460,nop,nop,TS val 1 ecr 100>", " <mss 1460>")
                      .replace(" <nop,nop,TS val 200 ecr 1>", "")
                      + "+0.1 < P. 1:11(10) ack 1 win 100\n+0 > . 1:1(0) ack 11\n")
    assert main([str(script)]) == 0
    assert main(["--set", "profile=rfc", str(script)]) == 1
    assert main(["--set", "nonsense"]) == 2
    out = capsys.readouterr().out
    assert "no packet by t=0.210" in out
