"""The matcher: relative seq/ack, written-only fields, options, payload pattern."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pytcp.script.matcher import (
    Observed,
    compare,
    format_observed,
    stream_bytes,
)
from pytcp.script.parser import PacketLine, parse_script
from pytcp.wire.tcp import ACK, PSH, SYN, TcpOptions

LISN = 0xFFFFFF00  # our ISN close to the wrap, so relative arithmetic must wrap
RISN = 1000


def line(text: str) -> PacketLine:
    (p,) = parse_script(text, "m").lines
    assert isinstance(p, PacketLine)
    return p


def synack(**kw: object) -> Observed:
    opts = TcpOptions(mss=1460, wscale=7, sack_permitted=True, timestamp=(555, 100))
    base: dict[str, object] = {
        "time": 0.0, "flags": SYN | ACK, "seq": LISN, "ack": RISN + 1, "win": 65535, "urg": 0,
        "payload": b"", "options": opts, "option_kinds": (2, 4, 8, 1, 3)}
    base.update(kw)
    return Observed(**base)  # type: ignore[arg-type]


def test_synack_matches_with_options_in_order() -> None:
    want = line("0 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 1 ecr 100,nop,wscale 7>")
    assert compare(want, synack(), LISN, RISN) is None


def test_ts_val_is_not_compared_but_ecr_is() -> None:
    want = line("0 > S. 0:0(0) ack 1 <mss 1460,sackOK,TS val 99999 ecr 101,nop,wscale 7>")
    assert compare(want, synack(), LISN, RISN) == "TS ecr expected 101 got 100"


def test_unwritten_fields_are_not_checked_and_any_options() -> None:
    assert compare(line("0 > S. 0:0(0) <...>"), synack(win=1), LISN, RISN) is None


def test_each_field_difference_is_named() -> None:
    o = synack()
    assert compare(line("0 > S 0:0(0) <...>"), o, LISN, RISN) == "flags expected S got S."
    assert compare(line("0 > S. 1:1(0) <...>"), o, LISN, RISN) == "seq expected 1 got 0"
    assert compare(line("0 > S. 0:0(0) ack 2 <...>"), o, LISN, RISN) == "ack expected 2 got 1"
    assert compare(line("0 > S. 0:0(0) win 5 <...>"), o, LISN, RISN) == "win expected 5 got 65535"
    assert compare(line("0 > S. 0:0(0) <mss 1400,sackOK,TS val 1 ecr 100,nop,wscale 7>"), o,
                   LISN, RISN) == "mss expected 1400 got 1460"
    d = compare(line("0 > S. 0:0(0) <mss 1460,nop,wscale 7>"), o, LISN, RISN)
    assert d is not None and d.startswith("options differ")
    # No option list written: the packet must carry none (packetdrill's rule).
    d = compare(line("0 > S. 0:0(0)"), o, LISN, RISN)
    assert d == "options differ: expected [] got [mss,sackOK,TS,wscale]"


def test_payload_must_be_the_written_pattern_across_the_wrap() -> None:
    data = stream_bytes(1000, 500)
    o = synack(flags=PSH | ACK, seq=(LISN + 1001) & 0xFFFFFFFF, payload=data,
               options=TcpOptions(), option_kinds=())
    assert compare(line("0 > P. 1001:1501(500) ack 1"), o, LISN, RISN) is None
    bad = synack(flags=PSH | ACK, seq=(LISN + 1001) & 0xFFFFFFFF,
                 payload=data[:10] + b"\xff" + data[11:], options=TcpOptions(), option_kinds=())
    assert compare(line("0 > P. 1001:1501(500) ack 1"), bad, LISN, RISN) == (
        "payload differs from the bytes the application wrote, first at stream offset 1010")


def test_sack_blocks_relative_to_script_isn() -> None:
    o = synack(flags=ACK, seq=(LISN + 1) & 0xFFFFFFFF,
               options=TcpOptions(sack_blocks=((RISN + 2001, RISN + 3001),)),
               option_kinds=(1, 1, 5))
    assert compare(line("0 > . 1:1(0) ack 1 <nop,nop,sack 2001:3001>"), o, LISN, RISN) is None
    assert compare(line("0 > . 1:1(0) ack 1 <nop,nop,sack 2001:3002>"), o, LISN, RISN) == (
        "sack blocks expected 2001:3002 got 2001:3001")


def test_format_observed_is_script_notation() -> None:
    assert format_observed(synack(), LISN, RISN) == (
        "> S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 555 ecr 100,nop,wscale 7>")


@given(st.integers(0, 2**32 - 1), st.integers(0, 3000))
def test_stream_bytes_is_a_consistent_window(off: int, n: int) -> None:
    whole = stream_bytes(off, n + 7)
    assert len(whole) == n + 7
    assert whole[3:3 + n] == stream_bytes(off + 3, n)


def test_tos_is_checked_only_where_written() -> None:
    """MUST-48: ``tos N`` on an outbound line checks the IP TOS byte; inbound lines reject it."""
    import pytest

    from pytcp.script.parser import ScriptSyntaxError

    marked = synack(tos=0x10)
    assert compare(line("0 > S. 0:0(0) ack 1 tos 0x10 <...>"), marked, LISN, RISN) is None
    assert compare(line("0 > S. 0:0(0) ack 1 <...>"), marked, LISN, RISN) is None
    assert compare(line("0 > S. 0:0(0) tos 0 <...>"), marked, LISN, RISN) == (
        "tos expected 0x00 got 0x10")
    assert compare(line("0 > S. 0:0(0) tos 0xb8 <...>"), synack(), LISN, RISN) == (
        "tos expected 0xb8 got 0x00")
    assert format_observed(marked, LISN, RISN).startswith("> S. 0:0(0) ack 1 win 65535 tos 0x10 <")
    assert line("0 < S 0:0(0) tos 0x10").tos == 0x10  # inbound: sent in the IP header
    assert line("0 < (tos 0x20) S 0:0(0)").tos == 0x20  # packetdrill's own form
    with pytest.raises(ScriptSyntaxError):
        line("0 > S 0:0(0) tos 256")
