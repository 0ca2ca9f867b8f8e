"""Hostile input through the script layer: random inbound segments (odd flags, sequence and ACK
numbers around and far from the window, garbage options) after a handshake must never raise out
of the stack, and every packet the stack sends back must parse with a valid checksum from the
right address (the runner checks that in lenient mode, where replies are not matched)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytcp.script.parser import parse_script
from pytcp.script.runner import Runner, ScriptFailure

PREFIX = """\
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 4) = 0
+0 < S 0:0(0) win 65535 <mss 1000,sackOK,TS val 100 ecr 0,nop,wscale 7>
+0 > S. 0:0(0) ack 1 <...>
+0.1 < . 1:1(0) ack 1 win 100 <nop,nop,TS val 200 ecr 1>
+0 accept(3, ..., ...) = 4
+0 write(4, ..., 3000) = 3000
"""

_FLAGS = st.sets(st.sampled_from("SFRP.UEW"), min_size=0, max_size=5).map(
    lambda f: "".join(sorted(f, key="SFRPUEW.".index)) or "P")
_OPTS = st.lists(st.one_of(
    st.just("nop"), st.just("sackOK"), st.just("eol"),
    st.integers(0, 65535).map(lambda v: f"mss {v}"),
    st.integers(0, 255).map(lambda v: f"wscale {v}"),
    st.integers(0, 2**32 - 1).map(lambda v: f"TS val {v} ecr 1"),
    st.tuples(st.integers(-5000, 10000), st.integers(-5000, 10000)).map(
        lambda t: f"sack {t[0] % 2**32}:{t[1] % 2**32}"),
    st.binary(min_size=1, max_size=8).map(lambda b: f"raw 0x{b.hex()}"),
), max_size=4)
_NUM = st.one_of(st.integers(-3000, 6000), st.integers(0, 2**32 - 1)).map(lambda v: v % 2**32)


@st.composite
def _segment(draw: st.DrawFn) -> str:
    flags = draw(_FLAGS)
    seq = draw(_NUM)
    ln = draw(st.sampled_from([0, 0, 1, 100, 1000]))
    line = f"+{draw(st.sampled_from(['0', '0.01', '0.3']))} < {flags} {seq}:{seq + ln}({ln})"
    if "." in flags:
        line += f" ack {draw(_NUM)}"
    line += f" win {draw(st.integers(0, 65535))}"
    if "U" in flags:
        line += f" urg {draw(st.integers(0, 65535))}"
    opts = draw(_OPTS)
    if opts:
        line += " <" + ",".join(opts) + ">"
    return line


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_segment(), min_size=1, max_size=12))
def test_random_segments_never_break_the_stack(lines: list[str]) -> None:
    text = PREFIX + "\n".join(lines) + "\n"
    runner = Runner(parse_script(text, "fuzz.pkt"), strict=False)
    try:
        runner.run()
    except ScriptFailure as f:
        # Only the scripted prefix may legitimately fail this way, never the fuzzed part.
        raise AssertionError(f.long("fuzz.pkt") + "\n" + text) from None
