"""Parse packetdrill-syntax scripts into a list of events.

This module owns the script *language*: timing columns, inbound/outbound TCP packet lines,
inbound ICMP error lines, system-call lines, comments, and pytcp's ``// pytcp: key=value``
header settings. It knows nothing about the stack; ``pytcp.script.runner`` executes what this
module produces and ``pytcp.script.matcher`` compares packets.

Grammar (one statement per line; ``//`` and ``/* ... */`` comments anywhere)::

    time  := '*' | t | t '~' t | t '...' t   t := ['+'] float
    line  := time ('<' | '>') FLAGS SEQ ':' END '(' LEN ')' [ack N] [win N] [urg N] [EXT] [OPTS]
           | time '<' 'icmp' TYPE [CODE] ['[' SEQ ':' END '(' LEN ')' ']']
           | time NAME '(' args ')' '=' RET [ERRNO ['(' text ')']]
    FLAGS := one or more of S F R P . E W U    ('.' is ACK)
    OPTS  := '<' '...' '>' | '<' option (',' option)* '>'
    option := nop | eol | mss N | wscale N | sackOK | TS val N ecr N | sack L:R (L:R)*
            | raw HEX     (pytcp extension, inbound only: bytes sent verbatim)
    EXT   := port N (both directions) | tos N (outbound only: the IP TOS byte) | bad_csum | src A.B.C.D | dst A.B.C.D | ttl N
           | ip_opts HEX | batch  (pytcp extensions; all but port inbound only)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pytcp.wire.tcp import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG

FLAG_CHARS: dict[str, int] = {
    "S": SYN, "F": FIN, "R": RST, "P": PSH, ".": ACK, "E": ECE, "W": CWR, "U": URG,
}


class ScriptSyntaxError(ValueError):
    """A script line that cannot be parsed; names the file and line."""

    def __init__(self, path: str, line: int, msg: str) -> None:
        super().__init__(f"{path}:{line}: {msg}")
        self.path = path
        self.line = line
        self.msg = msg


@dataclass(frozen=True, slots=True)
class Timing:
    """When a line happens. ``start``/``end`` are values as written; ``relative`` means
    each is an offset from the previous event's time. ``any_time`` is packetdrill's ``*``."""

    any_time: bool = False
    start: float = 0.0
    end: float | None = None  # a range 'a~b'; None for a point
    start_relative: bool = True
    end_relative: bool = False


@dataclass(frozen=True, slots=True)
class ScriptOption:
    """One TCP option as written. ``kind`` is 'nop', 'eol', 'mss', 'wscale', 'sackOK', 'TS',
    'sack' or 'raw'."""

    kind: str
    value: int | None = None          # mss, wscale
    ts: tuple[int, int] | None = None  # TS (val, ecr)
    blocks: tuple[tuple[int, int], ...] = ()  # sack (relative L, R)
    raw: bytes = b""

    def __str__(self) -> str:
        if self.kind in ("mss", "wscale"):
            return f"{self.kind} {self.value}"
        if self.kind == "TS":
            assert self.ts is not None
            return f"TS val {self.ts[0]} ecr {self.ts[1]}"
        if self.kind == "sack":
            return "sack " + " ".join(f"{a}:{b}" for a, b in self.blocks)
        if self.kind == "raw":
            return "raw 0x" + self.raw.hex()
        return self.kind


@dataclass(slots=True)
class PacketLine:
    """An inbound ('<') or outbound ('>') TCP packet line."""

    lineno: int
    timing: Timing
    direction: str  # '<' inbound (to the stack) or '>' outbound (from the stack)
    flags: int
    flags_text: str
    seq: int        # relative, as written
    end: int
    length: int
    ack: int | None = None
    win: int | None = None
    urg: int | None = None
    options: tuple[ScriptOption, ...] | None = ()  # None: '<...>' (any options)
    text: str = ""
    # pytcp extensions for inbound packets (not in packetdrill): a wrong TCP checksum, other
    # IP addresses, IP options (raw bytes, padded to 4), and the TTL.
    bad_csum: bool = False
    src: str | None = None
    dst: str | None = None
    ip_options: bytes = b""
    ttl: int | None = None
    port: int | None = None  # the script side's port for this packet (pytcp extension)
    tos: int | None = None  # outbound: the IP TOS byte our packet must carry (MUST-48)
    batch: bool = False  # delivered in one read batch with the inbound line before it


@dataclass(slots=True)
class IcmpLine:
    """An inbound ICMP error quoting our last segment (or the one written in brackets)."""

    lineno: int
    timing: Timing
    icmp_type: int
    icmp_code: int
    seq: int | None = None
    end: int | None = None
    length: int | None = None
    mtu: int | None = None
    text: str = ""


@dataclass(slots=True)
class SyscallLine:
    lineno: int
    timing: Timing
    name: str
    args: list[str]
    ret: int
    errno_name: str | None = None
    text: str = ""


Line = PacketLine | IcmpLine | SyscallLine


@dataclass(slots=True)
class Script:
    path: str
    lines: list[Line]
    settings: dict[str, str] = field(default_factory=dict)
    first_comment: str = ""


_TIME_RE = re.compile(r"^(\+)?(\d+(?:\.\d*)?|\.\d+)$")

ICMP_TYPES: dict[str, int] = {
    "unreachable": 3, "source_quench": 4, "time_exceeded": 11, "parameter_problem": 12,
}
ICMP_CODES: dict[str, int] = {
    "net_unreachable": 0, "host_unreachable": 1, "protocol_unreachable": 2,
    "port_unreachable": 3, "frag_needed": 4, "source_route_failed": 5,
    "net_unknown": 6, "host_unknown": 7, "net_prohibited": 9, "host_prohibited": 10,
    "ttl_exceeded": 0, "frag_reassembly_exceeded": 1,
}


def strip_comments(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """Return (code lines, comment texts), each as (line number, text), removing ``//`` and
    ``/* */`` comments. Line numbers are 1-based and kept for multi-line block comments."""
    code: list[tuple[int, str]] = []
    comments: list[tuple[int, str]] = []
    in_block = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        out: list[str] = []
        i = 0
        n = len(raw)
        while i < n:
            if in_block:
                j = raw.find("*/", i)
                if j < 0:
                    comments.append((lineno, raw[i:]))
                    i = n
                else:
                    comments.append((lineno, raw[i:j]))
                    in_block = False
                    i = j + 2
                continue
            if raw.startswith("//", i):
                comments.append((lineno, raw[i + 2:]))
                break
            if raw.startswith("/*", i):
                in_block = True
                i += 2
                continue
            out.append(raw[i])
            i += 1
        s = "".join(out).strip()
        if s:
            code.append((lineno, s))
    return code, comments


def _parse_time_value(tok: str, path: str, lineno: int) -> tuple[float, bool]:
    m = _TIME_RE.match(tok)
    if not m:
        raise ScriptSyntaxError(path, lineno, f"bad time {tok!r}")
    return float(m.group(2)), m.group(1) == "+"


def parse_timing(tok: str, path: str, lineno: int) -> Timing:
    if tok == "*":
        return Timing(any_time=True)
    if "..." in tok:
        # packetdrill's blocking-call form 'start...end': the call is issued at start; the
        # runner checks its return value when it completes, not the end time.
        a, b = tok.split("...", 1)
        _parse_time_value(b, path, lineno)
        tok = a
    if "~" in tok:
        a, b = tok.split("~", 1)
        sv, sr = _parse_time_value(a, path, lineno)
        ev, er = _parse_time_value(b, path, lineno)
        return Timing(start=sv, start_relative=sr, end=ev, end_relative=er)
    v, r = _parse_time_value(tok, path, lineno)
    return Timing(start=v, start_relative=r)


def _int(tok: str, path: str, lineno: int, what: str) -> int:
    try:
        return int(tok, 0)
    except ValueError:
        raise ScriptSyntaxError(path, lineno, f"bad {what} {tok!r}") from None


def parse_options(body: str, path: str, lineno: int) -> tuple[ScriptOption, ...] | None:
    """Parse the text between '<' and '>'. Returns None for '<...>'."""
    body = body.strip()
    if body == "...":
        return None
    if not body:
        return ()
    out: list[ScriptOption] = []
    for part in body.split(","):
        toks = part.split()
        if not toks:
            raise ScriptSyntaxError(path, lineno, "empty option in option list")
        k = toks[0]
        if k in ("nop", "eol", "sackOK") and len(toks) == 1:
            out.append(ScriptOption(k))
        elif k in ("mss", "wscale") and len(toks) == 2:
            out.append(ScriptOption(k, value=_int(toks[1], path, lineno, k)))
        elif k == "TS" and len(toks) == 5 and toks[1] == "val" and toks[3] == "ecr":
            out.append(ScriptOption("TS", ts=(_int(toks[2], path, lineno, "TS val"),
                                              _int(toks[4], path, lineno, "TS ecr"))))
        elif k == "sack" and len(toks) >= 2:
            blocks = []
            for b in toks[1:]:
                if ":" not in b:
                    raise ScriptSyntaxError(path, lineno, f"bad sack block {b!r}")
                lo, hi = b.split(":", 1)
                blocks.append((_int(lo, path, lineno, "sack"), _int(hi, path, lineno, "sack")))
            out.append(ScriptOption("sack", blocks=tuple(blocks)))
        elif k == "raw" and len(toks) == 2:
            h = toks[1][2:] if toks[1].lower().startswith("0x") else toks[1]
            try:
                out.append(ScriptOption("raw", raw=bytes.fromhex(h)))
            except ValueError:
                raise ScriptSyntaxError(path, lineno, f"bad raw option {toks[1]!r}") from None
        else:
            raise ScriptSyntaxError(path, lineno, f"unknown option {part.strip()!r}")
    return tuple(out)


_SEQ_RE = re.compile(r"^(-?\d+):(-?\d+)\((\d+)\)$")


def _parse_seq(tok: str, path: str, lineno: int) -> tuple[int, int, int]:
    m = _SEQ_RE.match(tok)
    if not m:
        raise ScriptSyntaxError(path, lineno, f"expected seq:end(len), got {tok!r}")
    seq, end, ln = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if end - seq != ln:
        raise ScriptSyntaxError(path, lineno, f"{tok}: end - seq != len")
    return seq, end, ln


def parse_packet(timing: Timing, rest: str, path: str, lineno: int, text: str) -> Line:
    direction = rest[0]
    body = rest[1:].strip()
    opts: tuple[ScriptOption, ...] | None = ()
    lt = body.find("<")
    if lt >= 0:
        if not body.endswith(">"):
            raise ScriptSyntaxError(path, lineno, "option list must end the line with '>'")
        opts = parse_options(body[lt + 1:-1], path, lineno)
        body = body[:lt].strip()
    toks = body.split()
    if not toks:
        raise ScriptSyntaxError(path, lineno, "packet line without flags")
    if toks[0] == "icmp":
        if direction != "<":
            raise ScriptSyntaxError(path, lineno, "only inbound ICMP is supported")
        return _parse_icmp(timing, toks[1:], path, lineno, text)
    flags_text = toks[0]
    flags = 0
    for ch in flags_text:
        if ch not in FLAG_CHARS:
            raise ScriptSyntaxError(path, lineno, f"bad flag {ch!r} in {flags_text!r}")
        flags |= FLAG_CHARS[ch]
    if len(toks) < 2:
        raise ScriptSyntaxError(path, lineno, "missing seq:end(len)")
    seq, end, ln = _parse_seq(toks[1], path, lineno)
    pkt = PacketLine(lineno, timing, direction, flags, flags_text, seq, end, ln,
                     options=opts, text=text)
    i = 2
    while i < len(toks):
        key = toks[i]
        if key in ("ack", "win", "urg") and i + 1 < len(toks):
            v = _int(toks[i + 1], path, lineno, key)
            setattr(pkt, key, v)
            i += 2
        elif key == "port" and i + 1 < len(toks):
            pkt.port = _int(toks[i + 1], path, lineno, "port")
            if not 1 <= pkt.port <= 65535:
                raise ScriptSyntaxError(path, lineno, f"port {pkt.port} out of range")
            i += 2
        elif direction == ">" and key == "tos" and i + 1 < len(toks):
            pkt.tos = _int(toks[i + 1], path, lineno, "tos")
            if not 0 <= pkt.tos <= 0xFF:
                raise ScriptSyntaxError(path, lineno, f"tos {pkt.tos} out of range 0..255")
            i += 2
        elif direction == "<" and key == "batch":
            pkt.batch = True
            i += 1
        elif direction == "<" and key == "bad_csum":
            pkt.bad_csum = True
            i += 1
        elif direction == "<" and key in ("src", "dst") and i + 1 < len(toks):
            if not re.match(r"^\d+\.\d+\.\d+\.\d+$", toks[i + 1]):
                raise ScriptSyntaxError(path, lineno, f"bad {key} address {toks[i + 1]!r}")
            setattr(pkt, key, toks[i + 1])
            i += 2
        elif direction == "<" and key == "ttl" and i + 1 < len(toks):
            pkt.ttl = _int(toks[i + 1], path, lineno, "ttl")
            i += 2
        elif direction == "<" and key == "ip_opts" and i + 1 < len(toks):
            h = toks[i + 1][2:] if toks[i + 1].lower().startswith("0x") else toks[i + 1]
            try:
                raw = bytes.fromhex(h)
            except ValueError:
                raise ScriptSyntaxError(path, lineno, f"bad ip_opts {toks[i + 1]!r}") from None
            if len(raw) > 40:
                raise ScriptSyntaxError(path, lineno, "ip_opts longer than 40 bytes")
            pkt.ip_options = raw + b"\x00" * (-len(raw) % 4)
            i += 2
        else:
            raise ScriptSyntaxError(path, lineno, f"unexpected {key!r} in packet line")
    if direction == "<" and opts:
        pass
    elif direction == ">" and opts and any(o.kind == "raw" for o in opts):
        raise ScriptSyntaxError(path, lineno, "raw options are for inbound packets only")
    if pkt.batch and (timing.any_time or timing.end is not None or timing.start != 0
                      or not timing.start_relative):
        raise ScriptSyntaxError(path, lineno, "a 'batch' line joins the inbound line before "
                                "it: its time must be +0")
    if pkt.ack is not None and not flags & ACK:
        raise ScriptSyntaxError(path, lineno, "'ack N' written but the ACK flag '.' is not")
    return pkt


def _parse_icmp(timing: Timing, toks: list[str], path: str, lineno: int, text: str) -> IcmpLine:
    if not toks or toks[0] not in ICMP_TYPES:
        raise ScriptSyntaxError(path, lineno, f"unknown ICMP type; one of {sorted(ICMP_TYPES)}")
    line = IcmpLine(lineno, timing, ICMP_TYPES[toks[0]], 0, text=text)
    i = 1
    while i < len(toks):
        t = toks[i]
        if t in ICMP_CODES:
            line.icmp_code = ICMP_CODES[t]
            i += 1
        elif t == "mtu" and i + 1 < len(toks):
            line.mtu = _int(toks[i + 1], path, lineno, "mtu")
            i += 2
        elif t.startswith("[") and t.endswith("]"):
            line.seq, line.end, line.length = _parse_seq(t[1:-1], path, lineno)
            i += 1
        else:
            raise ScriptSyntaxError(path, lineno, f"unexpected {t!r} in icmp line")
    return line


def split_args(s: str, path: str, lineno: int) -> list[str]:
    """Split a syscall's argument text on top-level commas."""
    args: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise ScriptSyntaxError(path, lineno, "unbalanced brackets in arguments")
        if ch == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise ScriptSyntaxError(path, lineno, "unbalanced brackets in arguments")
    last = "".join(cur).strip()
    if last or args:
        args.append(last)
    return args


_SYSCALL_RE = re.compile(r"^([a-z_][a-z0-9_]*)\s*\((.*)\)\s*=\s*(-?\d+)\s*(?:([A-Z][A-Z0-9_]*)"
                         r"\s*(?:\(.*\))?)?\s*$")


def parse_syscall(timing: Timing, rest: str, path: str, lineno: int, text: str) -> SyscallLine:
    m = _SYSCALL_RE.match(rest)
    if not m:
        raise ScriptSyntaxError(path, lineno, f"cannot parse system call {rest!r}")
    name, argtext, ret, err = m.group(1), m.group(2), int(m.group(3)), m.group(4)
    if ret == -1 and err is None:
        raise ScriptSyntaxError(path, lineno, "'= -1' needs an errno name, e.g. EAGAIN")
    if ret != -1 and err is not None:
        raise ScriptSyntaxError(path, lineno, "an errno name goes only with '= -1'")
    return SyscallLine(lineno, timing, name, split_args(argtext, path, lineno), ret, err, text)


def parse_settings(comments: list[tuple[int, str]], path: str) -> dict[str, str]:
    settings: dict[str, str] = {}
    for lineno, c in comments:
        c = c.strip()
        if not c.startswith("pytcp:"):
            continue
        body = c[len("pytcp:"):].strip()
        if body.startswith("xfail="):
            # The reason runs to the end of the comment and may contain spaces.
            settings["xfail"] = body[len("xfail="):].strip()
            continue
        for tok in body.split():
            if "=" not in tok:
                raise ScriptSyntaxError(path, lineno, f"pytcp setting {tok!r} is not key=value")
            k, v = tok.split("=", 1)
            settings[k] = v
    return settings


def parse_script(text: str, path: str = "<script>") -> Script:
    code, comments = strip_comments(text)
    settings = parse_settings(comments, path)
    lines: list[Line] = []
    for lineno, s in code:
        if s.startswith("`"):
            raise ScriptSyntaxError(path, lineno, "shell commands are not supported; use a "
                                    "'// pytcp: config.FIELD=VALUE' setting")
        if s.startswith("--"):
            raise ScriptSyntaxError(path, lineno, "command-line options are not supported; use "
                                    "a '// pytcp: key=value' setting")
        parts = s.split(None, 1)
        if len(parts) < 2:
            raise ScriptSyntaxError(path, lineno, f"incomplete line {s!r}")
        timing = parse_timing(parts[0], path, lineno)
        rest = parts[1].strip()
        if rest[0] in "<>":
            lines.append(parse_packet(timing, rest, path, lineno, s))
        else:
            lines.append(parse_syscall(timing, rest, path, lineno, s))
    first = ""
    for _, c in comments:
        if c.strip() and not c.strip().startswith("pytcp:"):
            first = c.strip()
            break
    return Script(path, lines, settings, first)


def check_file(path: str) -> list[ScriptSyntaxError]:
    """Parse only; every error found (empty when the script parses)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        return [ScriptSyntaxError(path, 0, str(e))]
    try:
        parse_script(text, path)
    except ScriptSyntaxError as e:
        return [e]
    return []


def parse_file(path: str) -> Script:
    with open(path, encoding="utf-8") as f:
        return parse_script(f.read(), path)
