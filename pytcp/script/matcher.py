"""Compare an outbound packet the stack sent with the script line that expects it.

This module owns packetdrill's matching rules as pytcp applies them (docs/conformance.md,
"Writing scripts"): sequence numbers are shown and compared relative to the ISNs, ``win``,
``ack``, ``urg`` and ``tos`` (the IP TOS byte) are checked only where written, ``<...>`` accepts any options, a written
option list must match the sent options in order and value with NOP/EOL padding ignored, TS val
is not compared here (the runner checks it against the clock offset it learned) while TS ecr
is, SACK blocks are relative to the script side's ISN, and payload bytes must be the bytes the
application wrote (the runner writes and injects a known pattern, see :func:`stream_bytes`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pytcp.script.parser import PacketLine, ScriptOption
from pytcp.wire.tcp import (
    ACK,
    OPT_EOL,
    OPT_EXPERIMENTAL,
    OPT_FASTOPEN,
    OPT_MD5SIG,
    OPT_MSS,
    OPT_NOP,
    OPT_SACK,
    OPT_SACK_PERMITTED,
    OPT_TIMESTAMP,
    OPT_WSCALE,
    SYN,
    URG,
    TcpOptions,
    flags_to_str,
)

MASK = 0xFFFFFFFF

_PERIOD = 251  # a prime, so the pattern does not line up with segment sizes
_BASE = bytes(range(_PERIOD))


def stream_bytes(offset: int, n: int) -> bytes:
    """The pattern byte string for stream offsets [offset, offset+n) (offset 0 is the first
    data octet after the SYN). Both directions use it: the runner writes it and injects it."""
    start = offset % _PERIOD
    reps = (start + n) // _PERIOD + 1
    return (_BASE * reps)[start:start + n]


@dataclass(slots=True)
class Observed:
    """One TCP segment the stack sent, with absolute numbers as on the wire."""

    time: float
    flags: int
    seq: int
    ack: int
    win: int
    urg: int
    payload: bytes
    options: TcpOptions
    option_kinds: tuple[int, ...]
    sport: int = 0
    dport: int = 0
    tos: int = 0  # the IP header's TOS byte
    md5_ok: bool | None = None  # its MD5 digest checked with the script's key (None: not)


def flags_text(flags: int) -> str:
    """Flags in the script's notation ('S', 'S.', 'P.', 'F.', 'R.'): tcpdump's letters."""
    return flags_to_str(flags)


def _rel(x: int, base: int | None) -> int:
    return (x - (base or 0)) & MASK


def format_observed_options(obs: Observed, remote_isn: int) -> str:
    parts: list[str] = []
    o = obs.options
    for k in obs.option_kinds:
        if k == OPT_NOP:
            parts.append("nop")
        elif k == OPT_EOL:
            parts.append("eol")
        elif k == OPT_MSS:
            parts.append(f"mss {o.mss}")
        elif k == OPT_WSCALE:
            parts.append(f"wscale {o.wscale}")
        elif k == OPT_SACK_PERMITTED:
            parts.append("sackOK")
        elif k == OPT_TIMESTAMP and o.timestamp is not None:
            parts.append(f"TS val {o.timestamp[0]} ecr {o.timestamp[1]}")
        elif k in (OPT_FASTOPEN, OPT_EXPERIMENTAL) and o.fastopen is not None:
            name = "FOEXP" if o.fastopen_exp else "FO"
            parts.append(f"{name} {o.fastopen.hex()}" if o.fastopen else name)
        elif k == OPT_MD5SIG and o.md5 is not None:
            parts.append(f"md5 {o.md5.hex()}")
        elif k == OPT_SACK:
            parts.append("sack " + " ".join(f"{_rel(a, remote_isn)}:{_rel(b, remote_isn)}"
                                            for a, b in o.sack_blocks))
        else:
            parts.append(f"opt{k}")
    return "<" + ",".join(parts) + ">" if parts else ""


def format_observed(obs: Observed, local_isn: int | None, remote_isn: int) -> str:
    """The observed packet in script notation, sequence numbers relative to the ISNs."""
    seq = _rel(obs.seq, local_isn)
    n = len(obs.payload)
    s = f"> {flags_text(obs.flags)} {seq}:{(seq + n) & MASK}({n})"
    if obs.flags & ACK:
        s += f" ack {_rel(obs.ack, remote_isn)}"
    s += f" win {obs.win}"
    if obs.flags & URG:
        s += f" urg {obs.urg}"
    if obs.tos:
        s += f" tos {obs.tos:#04x}"
    opts = format_observed_options(obs, remote_isn)
    return s + (" " + opts if opts else "")


def format_expected(line: PacketLine) -> str:
    s = f"{line.direction} {line.flags_text} {line.seq}:{line.end}({line.length})"
    if line.ack is not None:
        s += f" ack {line.ack}"
    if line.win is not None:
        s += f" win {line.win}"
    if line.urg is not None:
        s += f" urg {line.urg}"
    if line.tos is not None:
        s += f" tos {line.tos:#04x}"
    if line.options is None:
        s += " <...>"
    elif line.options:
        s += " <" + ",".join(str(o) for o in line.options) + ">"
    return s


_KIND_OF = {"mss": OPT_MSS, "wscale": OPT_WSCALE, "sackOK": OPT_SACK_PERMITTED,
            "TS": OPT_TIMESTAMP, "sack": OPT_SACK, "FO": OPT_FASTOPEN,
            "FOEXP": OPT_EXPERIMENTAL, "md5": OPT_MD5SIG}


def compare_options(want: tuple[ScriptOption, ...], obs: Observed, remote_isn: int) -> str | None:
    """None when the options match; else a short description of the first difference."""
    want_kinds = [_KIND_OF[o.kind] for o in want if o.kind in _KIND_OF]
    got_kinds = [k for k in obs.option_kinds if k not in (OPT_NOP, OPT_EOL)]
    if want_kinds != got_kinds:
        names = {v: k for k, v in _KIND_OF.items()}
        return ("options differ: expected [" + ",".join(names.get(k, str(k)) for k in want_kinds)
                + "] got [" + ",".join(names.get(k, f"opt{k}") for k in got_kinds) + "]")
    o = obs.options
    for w in want:
        if w.kind == "mss" and w.value != o.mss:
            return f"mss expected {w.value} got {o.mss}"
        if w.kind == "wscale" and w.value != o.wscale:
            return f"wscale expected {w.value} got {o.wscale}"
        if w.kind == "TS":
            assert w.ts is not None and o.timestamp is not None
            if w.ts[1] != o.timestamp[1]:
                return f"TS ecr expected {w.ts[1]} got {o.timestamp[1]}"
        if w.kind in ("FO", "FOEXP"):
            # RFC 7413: the cookie (none written: a cookie request, an empty cookie).
            if w.symbol:
                return f"{w.kind} {w.symbol}: the name has no value (--define)"
            if o.fastopen is None or (o.fastopen_exp != (w.kind == "FOEXP")):
                return f"{w.kind} expected, got none"
            if o.fastopen != w.raw:
                return (f"{w.kind} cookie expected {w.raw.hex() or '(request)'} got "
                        f"{o.fastopen.hex() or '(request)'}")
        if w.kind == "md5":
            # RFC 2385: ``md5 valid`` -- signed with the script's key; a digest as written
            # must be the one sent (packetdrill compares the option's bytes).
            if o.md5 is None:
                return "md5 expected, got none"
            if w.symbol == "valid" and not obs.md5_ok:
                return "md5 digest does not verify with --tcp_md5_secret"
            if w.symbol != "valid" and o.md5 != w.raw:
                return f"md5 expected {w.raw.hex()} got {o.md5.hex()}"
        if w.kind == "sack":
            got = tuple((_rel(a, remote_isn), _rel(b, remote_isn)) for a, b in o.sack_blocks)
            want_b = tuple((a & MASK, b & MASK) for a, b in w.blocks)
            if got != want_b:
                return (f"sack blocks expected {' '.join(f'{a}:{b}' for a, b in want_b)} got "
                        f"{' '.join(f'{a}:{b}' for a, b in got)}")
    return None


def compare(line: PacketLine, obs: Observed, local_isn: int | None, remote_isn: int,
            check_payload: bool = True,
            payload_of: Callable[[int, int], bytes] | None = None) -> str | None:
    """Compare one expected outbound line with one observed segment. ``payload_of(offset,
    n)``: the bytes the application wrote at those stream offsets (default: the pattern,
    :func:`stream_bytes`; a connection that sent a file's bytes has its own).

    Returns None on a match, else the first field that differs."""
    if line.flags != obs.flags:
        return f"flags expected {line.flags_text} got {flags_text(obs.flags)}"
    seq = _rel(obs.seq, local_isn)
    if seq != line.seq & MASK:
        return f"seq expected {line.seq} got {seq}"
    if len(obs.payload) != line.length:
        return f"length expected {line.length} got {len(obs.payload)}"
    if line.ack is not None:
        ack = _rel(obs.ack, remote_isn)
        if ack != line.ack & MASK:
            return f"ack expected {line.ack} got {ack}"
    if line.win is not None and line.win != obs.win:
        return f"win expected {line.win} got {obs.win}"
    if line.urg is not None and line.urg != obs.urg:
        return f"urg expected {line.urg} got {obs.urg}"
    if line.tos is not None and line.tos != obs.tos:
        return f"tos expected {line.tos:#04x} got {obs.tos:#04x}"
    ecn = getattr(line, "ecn", None)
    if ecn is not None:
        # RFC 3168 5: the IP ECN field ([noecn] [ect0] [ect1] [ce]; [ect01] either ECT)
        allowed = {"noecn": (0,), "ect1": (1,), "ect0": (2,), "ce": (3,),
                   "ect01": (1, 2)}[ecn]
        if obs.tos & 3 not in allowed:
            names = {0: "noecn", 1: "ect1", 2: "ect0", 3: "ce"}
            return f"ECN field expected [{ecn}] got [{names[obs.tos & 3]}]"
    if line.options is not None:
        diff = compare_options(line.options, obs, remote_isn)
        if diff:
            return diff
    if check_payload and obs.payload and local_isn is not None:
        first = seq + (1 if obs.flags & SYN else 0)
        want = (payload_of or stream_bytes)((first - 1) & MASK, len(obs.payload))
        if want != obs.payload:
            k = next(i for i in range(len(want)) if want[i] != obs.payload[i])
            return (f"payload differs from the bytes the application wrote, first at "
                    f"stream offset {((first - 1) + k) & MASK}")
    return None
