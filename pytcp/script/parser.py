"""Parse packetdrill-syntax scripts into a list of events.

This module owns the script *language*: packetdrill's grammar (google/packetdrill
``parser.y``/``lexer.l``, read for reference, not copied) as far as TCP over IPv4 needs it,
plus pytcp's extensions. It knows nothing about the stack; ``pytcp.script.runner`` executes
what this module produces and ``pytcp.script.matcher`` compares packets.

A script is a sequence of *statements*. As in packetdrill a statement may span lines: a
newline inside ``( [ {``, a backquoted command or a ``%{ ... }%`` block does not end it.
``//`` and ``/* ... */`` comments go anywhere; FreeBSD's ``#ifdef NAME`` / ``#ifndef`` /
``#else`` / ``#endif`` lines select lines by the defined names (``STANDARD`` by default,
``--define=NAME`` adds one). Statements::

    --name[=value]                      command-line option (runner options)
    `shell command`                     untimed: packetdrill's init/cleanup command
    time `shell command`                a command event (never run: see the runner)
    time %{ python }%                   TCP_INFO assertions (see pytcp.script.code)
    time ('<' | '>') [IPINFO] FLAGS SEQ ':' END '(' LEN ')' [ack N] [win N] [urg N] [EXT]
         [OPTS] ['/udp(' A '>' B ')']
    time '<' [IPINFO] 'icmp' TYPE [CODE] [mtu N] ['[' SEQ ':' END '(' LEN ')' ['/udp(..)'] ']']
    time ['...' END] NAME '(' args ')' '=' RET [ERRNO] ['(' note ')']

    time  := '*' | t | t '~' t          t := ['+'] float
    IPINFO := '[' ect0 | ect1 | ce | noecn | ect01 ']' | '(' tos HEX | ttl N ')'
    FLAGS := one or more of S F R P . E W U A, or '-' for none ('.' is ACK)
    OPTS  := '<' '...' '>' | '<' option (',' option)* '>'
    option := nop | eol | mss N | wscale N | sackOK | TS val N ecr N | sack L:R (L:R)*
            | FO [HEX] | FOEXP [HEX] | md5 (valid | HEX) | raw HEX (pytcp, inbound only)
    EXT   := port N (both directions) | tos N (outbound: the IP TOS byte) | bad_csum
           | src A.B.C.D | dst A.B.C.D | ttl N | ip_opts HEX | batch  (pytcp extensions)
    RET   := integer (decimal or hex); ERRNO a name such as EAGAIN; '= -1' alone accepts any
             errno.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pytcp.wire.tcp import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG

FLAG_CHARS: dict[str, int] = {
    "S": SYN, "F": FIN, "R": RST, "P": PSH, ".": ACK, "E": ECE, "W": CWR, "U": URG,
    "A": 0x100,  # AE (RFC 9768's AccECN bit): parsed; the wire module has no such flag
}

DEFAULT_DEFINES = frozenset({"STANDARD"})


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
    each is an offset from the previous event's time. ``any_time`` is packetdrill's ``*``.
    ``block_end`` is the ``...END`` of a blocking system call (packetdrill checks the call
    returns then; relative to the same base as a relative start)."""

    any_time: bool = False
    start: float = 0.0
    end: float | None = None  # a range 'a~b'; None for a point
    start_relative: bool = True
    end_relative: bool = False
    block_end: float | None = None


@dataclass(frozen=True, slots=True)
class ScriptOption:
    """One TCP option as written. ``kind`` is 'nop', 'eol', 'mss', 'wscale', 'sackOK', 'TS',
    'sack', 'FO', 'FOEXP', 'md5' or 'raw'. ``symbol`` holds a name written where a number
    goes (``mss MSS``, ``FO TFO_COOKIE``): the runner resolves it from ``--define``."""

    kind: str
    value: int | None = None          # mss, wscale
    ts: tuple[int, int] | None = None  # TS (val, ecr)
    blocks: tuple[tuple[int, int], ...] = ()  # sack (relative L, R)
    raw: bytes = b""                  # raw; the FO/FOEXP cookie; the md5 digest
    symbol: str = ""

    def __str__(self) -> str:
        if self.symbol:
            return f"{self.kind} {self.symbol}"
        if self.kind in ("mss", "wscale"):
            return f"{self.kind} {self.value}"
        if self.kind == "TS":
            assert self.ts is not None
            return f"TS val {self.ts[0]} ecr {self.ts[1]}"
        if self.kind == "sack":
            return "sack " + " ".join(f"{a}:{b}" for a, b in self.blocks)
        if self.kind == "raw":
            return "raw 0x" + self.raw.hex()
        if self.kind in ("FO", "FOEXP", "md5") and self.raw:
            return f"{self.kind} {self.raw.hex()}"
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
    tos: int | None = None  # the IP TOS byte: checked outbound, sent inbound (MUST-48)
    batch: bool = False  # delivered in one read batch with the inbound line before it
    ecn: str | None = None  # '[ect0]' etc.: the IP ECN field ('noecn', 'ect0', 'ect1', 'ce',
    #                         'ect01' = either ECT codepoint, outbound only)
    udp: tuple[int, int] | None = None  # FreeBSD's '/udp(sport > dport)' (TCP over UDP)
    seq_any: bool = False  # FreeBSD's '...(LEN)' and 'A:B(LEN)!': the seq is not checked


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
    direction: str = "<"
    unknown: str = ""  # a type or code name pytcp cannot send (e.g. an ICMPv6 one)
    udp: tuple[int, int] | None = None


@dataclass(slots=True)
class SyscallLine:
    lineno: int
    timing: Timing
    name: str
    args: list[str]
    ret: int
    errno_name: str | None = None  # None with ret -1: any errno (packetdrill's '= -1')
    text: str = ""
    note: str = ""


@dataclass(slots=True)
class CommandLine:
    """A backquoted shell command. Never run: the runner reads the sysctl assignments in it
    (and in files it sources) as stack settings. ``timing`` is None for packetdrill's untimed
    init (first) and cleanup (last) commands."""

    lineno: int
    timing: Timing | None
    command: str
    text: str = ""


@dataclass(slots=True)
class CodeLine:
    """A ``%{ ... }%`` block: Python-syntax assertions on TCP_INFO fields, evaluated by
    pytcp.script.code's restricted evaluator (never ``exec``)."""

    lineno: int
    timing: Timing
    code: str
    text: str = ""


Line = PacketLine | IcmpLine | SyscallLine | CommandLine | CodeLine


@dataclass(slots=True)
class Script:
    path: str
    lines: list[Line]
    settings: dict[str, str] = field(default_factory=dict)
    first_comment: str = ""
    # packetdrill command-line lines ('--tolerance_usecs=10000'), in order: (name, value)
    options: list[tuple[str, str | None]] = field(default_factory=list)


_NUM = r"(?:\d+(?:\.\d+)?|\.\d+)"
_TIME_RE = re.compile(r"^(\+)?\s*(\d+(?:\.\d*)?|\.\d+)$")

ICMP_TYPES: dict[str, int] = {
    "echo_reply": 0, "unreachable": 3, "source_quench": 4, "redirect": 5, "echo_request": 8,
    "time_exceeded": 11, "parameter_problem": 12, "timestamp_request": 13,
    "timestamp_reply": 14, "information_request": 15, "information_reply": 16,
    "address_mask_request": 17, "address_mask_reply": 18,
    "packet_too_big": 3,  # ICMPv6's name; over IPv4, "fragmentation needed"
}
ICMP_CODES: dict[str, int] = {
    "net_unreachable": 0, "host_unreachable": 1, "protocol_unreachable": 2,
    "port_unreachable": 3, "frag_needed": 4, "source_route_failed": 5,
    "net_unknown": 6, "host_unknown": 7, "source_host_isolated": 8, "net_prohibited": 9,
    "host_prohibited": 10, "net_unreachable_for_tos": 11, "host_unreachable_for_tos": 12,
    "packet_filtered": 13, "precedence_violation": 14, "precedence_cutoff": 15,
    "ttl_exceeded": 0, "ttl_exceeded_in_transit": 0, "frag_reassembly_exceeded": 1,
    "frag_reass_exceeded": 1,
}
# ICMPv6 code names (packetdrill accepts them in scripts run over IPv6); over IPv4 they parse
# and the runner reports them as unsupported.
ICMPV6_CODES = frozenset({
    "no_route", "admin_prohibited", "not_neighbour", "address_unreachable",
    "exceeded_hop_limit", "exceeded_frag_time", "header_field", "unknown_next_header",
    "unknown_option",
})


def strip_comments(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """Return (code lines, comment texts), each as (line number, text), removing ``//`` and
    ``/* */`` comments. Line numbers are 1-based and kept for multi-line block comments."""
    stmts, comments = split_statements(text, "<text>")
    return [(ln, " ".join(t.split())) for ln, t in stmts], comments


def _preprocess(text: str, path: str, defines: frozenset[str]) -> str:
    """FreeBSD's ``#ifdef``/``#ifndef``/``#else``/``#endif`` (and ``#if 0``/``#if 1``):
    lines in a false branch and the directive lines become empty (line numbers kept)."""
    if "#" not in text:
        return text
    out: list[str] = []
    stack: list[tuple[bool, bool]] = []  # (this branch active, parent active)
    active = True
    for lineno, line in enumerate(text.split("\n"), start=1):
        t = line.strip()
        m = re.match(r"^#\s*(ifdef|ifndef|if|else|endif|elif|define|undef)\b\s*(\S*)", t)
        if not m:
            out.append(line if active else "")
            continue
        kw, arg = m.group(1), m.group(2)
        if kw in ("ifdef", "ifndef", "if"):
            if kw == "if":
                cond = arg not in ("", "0")
            else:
                cond = (arg in defines) == (kw == "ifdef")
            stack.append((cond, active))
            active = active and cond
        elif kw in ("else", "elif"):
            if not stack:
                raise ScriptSyntaxError(path, lineno, f"#{kw} without #if")
            cond, parent = stack[-1]
            stack[-1] = (not cond, parent)
            active = parent and not cond
        elif kw == "endif":
            if not stack:
                raise ScriptSyntaxError(path, lineno, "#endif without #if")
            _, active = stack.pop()
        else:  # '#define'/'#undef' lines are not used by the corpora: ignored
            pass
        out.append("")
    if stack:
        raise ScriptSyntaxError(path, len(out), "#if without #endif")
    return "\n".join(out)


def split_statements(text: str, path: str) -> tuple[list[tuple[int, str]],
                                                      list[tuple[int, str]]]:
    """Split a script into statements (line number of their first token, text without
    comments) and comments (line number, text). A newline ends a statement unless it is
    inside brackets, a string, a backquoted command or a ``%{ }%`` block."""
    stmts: list[tuple[int, str]] = []
    comments: list[tuple[int, str]] = []
    cur: list[str] = []
    start = 0
    depth = 0
    lineno = 1
    i = 0
    n = len(text)

    def flush() -> None:
        nonlocal cur
        stmt = "".join(cur).strip()
        if stmt:
            stmts.append((start, stmt))
        cur = []

    while i < n:
        c = text[i]
        if c == "\n":
            lineno += 1
            if depth == 0:
                flush()
            else:
                cur.append(" ")
            i += 1
            continue
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            comments.append((lineno, text[i + 2:j]))
            i = j
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise ScriptSyntaxError(path, lineno, "unterminated /* comment")
            body = text[i + 2:j]
            for k, part in enumerate(body.split("\n")):
                comments.append((lineno + k, part))
            lineno += body.count("\n")
            cur.append(" ")
            i = j + 2
            continue
        if not "".join(cur).strip():
            start = lineno
        if c in "`\"" or text.startswith("%{", i):
            close = "}%" if c == "%" else c
            j = text.find(close, i + (2 if c == "%" else 1))
            if c == '"':
                while j > 0 and text[j - 1] == "\\":
                    j = text.find(close, j + 1)
            if j < 0:
                what = {"`": "backquoted command", '"': "string"}.get(c, "%{ code block")
                raise ScriptSyntaxError(path, lineno, f"unterminated {what}")
            j += len(close)
            chunk = text[i:j]
            cur.append(chunk)
            lineno += chunk.count("\n")
            i = j
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        cur.append(c)
        i += 1
    if depth:
        raise ScriptSyntaxError(path, start, "unbalanced brackets at the end of the script")
    flush()
    return stmts, comments


def _parse_time_value(tok: str, path: str, lineno: int) -> tuple[float, bool]:
    m = _TIME_RE.match(tok)
    if not m:
        raise ScriptSyntaxError(path, lineno, f"bad time {tok!r}")
    return float(m.group(2)), m.group(1) == "+"


def parse_timing(tok: str, path: str, lineno: int) -> Timing:
    tok = tok.replace(" ", "")
    if tok == "*":
        return Timing(any_time=True)
    block_end = None
    if "..." in tok:
        # packetdrill's blocking-call form 'start...end': the call is issued at start and
        # must return by end.
        a, b = tok.split("...", 1)
        block_end, _ = _parse_time_value(b, path, lineno)
        tok = a
    if "~" in tok:
        a, b = tok.split("~", 1)
        sv, sr = _parse_time_value(a, path, lineno)
        ev, er = _parse_time_value(b, path, lineno)
        return Timing(start=sv, start_relative=sr, end=ev, end_relative=er)
    v, r = _parse_time_value(tok, path, lineno)
    return Timing(start=v, start_relative=r, block_end=block_end)


_TIMING_RE = re.compile(
    rf"^(\*|\+?\s*{_NUM}(?:\s*~\s*\+?{_NUM})?(?:\s*\.\.\.\s*\+?{_NUM})?)(?=[\s`%<>]|[a-z_])\s*",
    re.DOTALL)


def _int(tok: str, path: str, lineno: int, what: str) -> int:
    try:
        return int(tok, 0)
    except ValueError:
        raise ScriptSyntaxError(path, lineno, f"bad {what} {tok!r}") from None


def _hexbytes(tok: str, path: str, lineno: int, what: str) -> bytes:
    h = tok[2:] if tok.lower().startswith("0x") else tok
    if len(h) % 2:
        h = "0" + h
    try:
        return bytes.fromhex(h)
    except ValueError:
        raise ScriptSyntaxError(path, lineno, f"bad {what} {tok!r}") from None


_SYMBOL_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")


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
        elif k in ("mss", "wscale") and len(toks) == 2 and _SYMBOL_RE.match(toks[1]):
            out.append(ScriptOption(k, symbol=toks[1]))
        elif k in ("mss", "wscale") and len(toks) == 2:
            v = _int(toks[1], path, lineno, k)
            if not 0 <= v <= (0xFFFF if k == "mss" else 0xFF):
                raise ScriptSyntaxError(path, lineno, f"{k} {v} out of range")
            out.append(ScriptOption(k, value=v))
        elif k == "TS" and len(toks) == 5 and toks[1] == "val" and toks[3] == "ecr":
            out.append(ScriptOption("TS", ts=(_int(toks[2], path, lineno, "TS val") & 0xFFFFFFFF,
                                              _int(toks[4], path, lineno, "TS ecr") & 0xFFFFFFFF)))
        elif k == "sack" and len(toks) >= 2:
            blocks = []
            for b in toks[1:]:
                if ":" not in b:
                    raise ScriptSyntaxError(path, lineno, f"bad sack block {b!r}")
                lo, hi = b.split(":", 1)
                blocks.append((_int(lo, path, lineno, "sack"), _int(hi, path, lineno, "sack")))
            out.append(ScriptOption("sack", blocks=tuple(blocks)))
        elif k in ("FO", "FOEXP") and len(toks) <= 2:
            if len(toks) == 2 and _SYMBOL_RE.match(toks[1]):
                out.append(ScriptOption(k, symbol=toks[1]))
            else:
                cookie = _hexbytes(toks[1], path, lineno, "cookie") if len(toks) == 2 else b""
                out.append(ScriptOption(k, raw=cookie))
        elif k == "md5" and len(toks) == 2:
            if toks[1] == "valid":
                out.append(ScriptOption("md5", symbol="valid"))
            else:
                out.append(ScriptOption("md5", raw=_hexbytes(toks[1], path, lineno, "md5")))
        elif k == "raw" and len(toks) == 2:
            out.append(ScriptOption("raw", raw=_hexbytes(toks[1], path, lineno, "raw option")))
        else:
            raise ScriptSyntaxError(path, lineno, f"unknown option {part.strip()!r}")
    return tuple(out)


_SEQ_RE = re.compile(r"^(-?\d+):(-?\d+)\((\d+)\)$")


def _parse_seq(tok: str, path: str, lineno: int) -> tuple[int, int, int]:
    m = _SEQ_RE.match(tok)
    if not m:
        raise ScriptSyntaxError(path, lineno, f"expected seq:end(len), got {tok!r}")
    seq, end, ln = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if (end - seq) & 0xFFFFFFFF != ln:
        raise ScriptSyntaxError(path, lineno, f"{tok}: end - seq != len")
    return seq, end, ln


_UDP_RE = re.compile(r"/udp\(\s*(\d+)\s*>\s*(\d+)\s*\)")
_IPINFO_RE = re.compile(r"^([\[(])([^\])]*)([\])])\s*")
_ECN = ("noecn", "ect0", "ect1", "ce", "ect01")


def _parse_ipinfo(body: str, pkt: PacketLine | None, path: str, lineno: int) -> dict[str, int
                                                                                   | str]:
    """'(tos 0x20)', '[ect0]', '(ttl 64)', '[ce, flowlabel 0x1]': returns the fields."""
    out: dict[str, int | str] = {}
    for part in body.split(","):
        toks = part.split()
        if not toks:
            continue
        if len(toks) == 1 and toks[0] in _ECN:
            out["ecn"] = toks[0]
        elif len(toks) == 2 and toks[0] in ("tos", "class"):
            v = _int(toks[1], path, lineno, "tos")
            if not 0 <= v <= 0xFF:
                raise ScriptSyntaxError(path, lineno, f"tos {v} out of range 0..255")
            out["tos"] = v
        elif len(toks) == 2 and toks[0] in ("ttl", "hlim"):
            out["ttl"] = _int(toks[1], path, lineno, "ttl")
        elif len(toks) == 2 and toks[0] == "flowlabel":
            out["flowlabel"] = _int(toks[1], path, lineno, "flowlabel")
        else:
            raise ScriptSyntaxError(path, lineno, f"unknown IP field {part.strip()!r}")
    return out


def parse_packet(timing: Timing, rest: str, path: str, lineno: int, text: str) -> Line:
    direction = rest[0]
    body = rest[1:].strip()
    udp = None
    m = _UDP_RE.search(body)
    if m and not body[:m.start()].rstrip().endswith("[") and "icmp" not in body.split()[:3]:
        udp = (int(m.group(1)), int(m.group(2)))
        body = (body[:m.start()] + body[m.end():]).strip()
    ipinfo: dict[str, int | str] = {}
    mi = _IPINFO_RE.match(body)
    if mi:
        ipinfo = _parse_ipinfo(mi.group(2), None, path, lineno)
        body = body[mi.end():]
    opts: tuple[ScriptOption, ...] | None = ()
    if body.startswith("icmp"):
        return _parse_icmp(timing, body[4:].strip(), direction, path, lineno, text)
    lt = body.find("<")
    if lt >= 0:
        if not body.endswith(">"):
            raise ScriptSyntaxError(path, lineno, "option list must end the line with '>'")
        opts = parse_options(body[lt + 1:-1], path, lineno)
        body = body[:lt].strip()
    toks = body.split()
    if not toks:
        raise ScriptSyntaxError(path, lineno, "packet line without flags")
    flags_text = toks[0]
    if _SEQ_RE.match(flags_text):  # flags written as nothing at all: not packetdrill
        raise ScriptSyntaxError(path, lineno, "packet line without flags ('-' for none)")
    flags = 0
    if flags_text != "-":
        for ch in flags_text:
            if ch not in FLAG_CHARS:
                raise ScriptSyntaxError(path, lineno, f"bad flag {ch!r} in {flags_text!r}")
            flags |= FLAG_CHARS[ch]
    if len(toks) < 2:
        raise ScriptSyntaxError(path, lineno, "missing seq:end(len)")
    if len(toks) > 2 and toks[1] == ".":  # 'F .' : the ACK flag written apart
        flags |= ACK
        flags_text += "."
        del toks[1]
    seq_any = False
    if toks[1].endswith("!"):
        seq_any, toks[1] = True, toks[1][:-1]
    ma = re.match(r"^\.\.\.\((\d+)\)$", toks[1])
    if ma:
        seq_any = True
        seq, end, ln = 0, int(ma.group(1)), int(ma.group(1))
    else:
        seq, end, ln = _parse_seq(toks[1], path, lineno)
    pkt = PacketLine(lineno, timing, direction, flags, flags_text, seq, end, ln,
                     options=opts, text=text, udp=udp, seq_any=seq_any)
    if "ecn" in ipinfo:
        pkt.ecn = str(ipinfo["ecn"])
        if pkt.ecn == "ect01" and direction != ">":
            raise ScriptSyntaxError(path, lineno, "[ect01] is for outbound packets only")
    if "tos" in ipinfo:
        pkt.tos = int(ipinfo["tos"])
    if "ttl" in ipinfo:
        pkt.ttl = int(ipinfo["ttl"])
    i = 2
    while i < len(toks):
        key = toks[i]
        if key in ("ack", "win", "urg") and i + 1 < len(toks):
            v = _int(toks[i + 1], path, lineno, key)
            limit = 0xFFFFFFFF if key == "ack" else 0xFFFF
            if not 0 <= v <= limit:
                raise ScriptSyntaxError(path, lineno, f"{key} {v} out of range")
            setattr(pkt, key, v)
            i += 2
        elif key == "port" and i + 1 < len(toks):
            pkt.port = _int(toks[i + 1], path, lineno, "port")
            if not 1 <= pkt.port <= 65535:
                raise ScriptSyntaxError(path, lineno, f"port {pkt.port} out of range")
            i += 2
        elif key == "tos" and i + 1 < len(toks):
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
            raw = _hexbytes(toks[i + 1], path, lineno, "ip_opts")
            if len(raw) > 40:
                raise ScriptSyntaxError(path, lineno, "ip_opts longer than 40 bytes")
            pkt.ip_options = raw + b"\x00" * (-len(raw) % 4)
            i += 2
        else:
            raise ScriptSyntaxError(path, lineno, f"unexpected {key!r} in packet line")
    if direction == ">" and opts and any(o.kind == "raw" for o in opts):
        raise ScriptSyntaxError(path, lineno, "raw options are for inbound packets only")
    if direction == "<" and opts is None:
        raise ScriptSyntaxError(path, lineno, "<...> is for outbound packets only")
    if pkt.batch and (timing.any_time or timing.end is not None or timing.start != 0
                      or not timing.start_relative):
        raise ScriptSyntaxError(path, lineno, "a 'batch' line joins the inbound line before "
                                "it: its time must be +0")
    return pkt


def _parse_icmp(timing: Timing, body: str, direction: str, path: str, lineno: int,
                text: str) -> IcmpLine:
    quoted = None
    if "[" in body:
        b = body.index("[")
        if not body.endswith("]"):
            raise ScriptSyntaxError(path, lineno, "the quoted segment '[...]' ends the line")
        quoted = body[b + 1:-1].strip()
        body = body[:b]
    toks = body.split()
    if not toks:
        raise ScriptSyntaxError(path, lineno, "icmp line without a type")
    t0 = toks[0]
    line = IcmpLine(lineno, timing, 0, 0, text=text, direction=direction)
    if t0 in ICMP_TYPES:
        line.icmp_type = ICMP_TYPES[t0]
        if t0 == "packet_too_big":
            line.icmp_code = 4
    elif re.match(r"^type_\d+$", t0):
        line.icmp_type = int(t0[5:])
    else:
        raise ScriptSyntaxError(path, lineno, f"unknown ICMP type {t0!r}; one of "
                                f"{', '.join(sorted(ICMP_TYPES))}")
    i = 1
    while i < len(toks):
        t = toks[i]
        if t in ICMP_CODES:
            line.icmp_code = ICMP_CODES[t]
            i += 1
        elif re.match(r"^code_\d+$", t):
            line.icmp_code = int(t[5:])
            i += 1
        elif t in ICMPV6_CODES or _SYMBOL_RE.match(t):  # or a --define'd name
            line.unknown = t
            i += 1
        elif t == "mtu" and i + 1 < len(toks):
            line.mtu = _int(toks[i + 1], path, lineno, "mtu")
            i += 2
        else:
            raise ScriptSyntaxError(path, lineno, f"unexpected {t!r} in icmp line")
    if quoted is not None:
        m = _UDP_RE.search(quoted)
        if m:
            line.udp = (int(m.group(1)), int(m.group(2)))
            quoted = (quoted[:m.start()] + quoted[m.end():]).strip()
        if quoted:
            line.seq, line.end, line.length = _parse_seq(quoted, path, lineno)
    return line


def split_args(s: str, path: str, lineno: int) -> list[str]:
    """Split a syscall's argument text on top-level commas (whitespace runs collapsed)."""
    args: list[str] = []
    depth = 0
    cur: list[str] = []
    in_str = False
    for ch in s:
        if ch == '"':
            in_str = not in_str
        elif not in_str and ch in "([{":
            depth += 1
        elif not in_str and ch in ")]}":
            depth -= 1
            if depth < 0:
                raise ScriptSyntaxError(path, lineno, "unbalanced brackets in arguments")
        if ch == "," and depth == 0 and not in_str:
            args.append(" ".join("".join(cur).split()))
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise ScriptSyntaxError(path, lineno, "unbalanced brackets in arguments")
    last = " ".join("".join(cur).split())
    if last or args:
        args.append(last)
    return args


_SYSCALL_HEAD_RE = re.compile(r"^([a-z_][a-z0-9_]*)\s*\(", re.IGNORECASE)
_RET_RE = re.compile(r"^\s*=\s*(-?(?:0x[0-9a-fA-F]+|\d+))\s*(?:([A-Z][A-Z0-9_]*))?\s*"
                     r"(?:\((.*)\))?\s*$", re.DOTALL)


def parse_syscall(timing: Timing, rest: str, path: str, lineno: int, text: str) -> SyscallLine:
    m = _SYSCALL_HEAD_RE.match(rest)
    if not m:
        raise ScriptSyntaxError(path, lineno, f"cannot parse system call {rest[:60]!r}")
    # The argument list ends at the parenthesis that closes the one after the name.
    depth = 0
    close = -1
    in_str = False
    for j in range(m.end() - 1, len(rest)):
        ch = rest[j]
        if ch == '"':
            in_str = not in_str
        elif in_str:
            continue
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                close = j
                break
    if close < 0:
        raise ScriptSyntaxError(path, lineno, f"unbalanced parentheses in {m.group(1)}()")
    name = m.group(1)
    argtext = rest[m.end():close]
    r = _RET_RE.match(rest[close + 1:])
    if not r:
        raise ScriptSyntaxError(path, lineno, f"{name}(): expected '= VALUE [ERRNO]' after "
                                f"the arguments, got {rest[close + 1:].strip()[:40]!r}")
    ret, err, note = _int(r.group(1), path, lineno, "return value"), r.group(2), r.group(3) or ""
    if ret != -1 and err is not None:
        raise ScriptSyntaxError(path, lineno, "an errno name goes only with '= -1'")
    return SyscallLine(lineno, timing, name, split_args(argtext, path, lineno), ret, err,
                       " ".join(text.split()), note)


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


_OPTION_RE = re.compile(r"--([A-Za-z0-9_]+)(?:=(\"[^\"]*\"|`[^`]*`|\S+))?")


def _parse_option_line(stmt: str, path: str, lineno: int) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    pos = 0
    while pos < len(stmt):
        m = _OPTION_RE.match(stmt, pos)
        if not m:
            raise ScriptSyntaxError(path, lineno, f"bad command-line option {stmt[pos:]!r}")
        v = m.group(2)
        if v is not None and v[:1] in "\"`":
            v = v[1:-1]
        out.append((m.group(1), v))
        pos = m.end()
        while pos < len(stmt) and stmt[pos].isspace():
            pos += 1
    return out


def _defines_of(text: str) -> frozenset[str]:
    names = set(DEFAULT_DEFINES)
    for m in re.finditer(r"^--define[= ](\w+)", text, re.MULTILINE):
        names.add(m.group(1))
    return frozenset(names)


def parse_statement(lineno: int, s: str, path: str) -> Line:
    """One timed statement (a packet, ICMP, system call, command or code line)."""
    m = _TIMING_RE.match(s)
    if not m:
        tok = s.split(None, 1)[0] if s.split() else s
        raise ScriptSyntaxError(path, lineno, f"bad time {tok[:30]!r}")
    timing = parse_timing(m.group(1), path, lineno)
    rest = s[m.end():].strip()
    text = " ".join(s.split())
    if not rest:
        raise ScriptSyntaxError(path, lineno, f"incomplete line {s!r}")
    if timing.block_end is not None and (rest[0] in "<>`" or rest.startswith("%{")):
        raise ScriptSyntaxError(path, lineno, "'...END' is for system calls only")
    if rest[0] in "<>":
        if timing.any_time and rest[0] == "<":
            raise ScriptSyntaxError(path, lineno, "'*' is for outbound packets only")
        return parse_packet(timing, rest, path, lineno, text)
    if timing.any_time or timing.end is not None:
        raise ScriptSyntaxError(path, lineno, "'*' and time ranges are for outbound packets")
    if rest[0] == "`":
        if not rest.endswith("`"):
            raise ScriptSyntaxError(path, lineno, "text after a backquoted command")
        return CommandLine(lineno, timing, rest[1:-1], text)
    if rest.startswith("%{"):
        if not rest.endswith("}%"):
            raise ScriptSyntaxError(path, lineno, "text after a %{ }% block")
        return CodeLine(lineno, timing, rest[2:-2], s)
    return parse_syscall(timing, rest, path, lineno, text)


def parse_script(text: str, path: str = "<script>",
                 errors: list[ScriptSyntaxError] | None = None) -> Script:
    """Parse a whole script. With ``errors``, a bad statement is appended there and parsing
    goes on (``pytcp script --check``); without, the first one is raised."""
    text = _preprocess(text, path, _defines_of(text))
    stmts, comments = split_statements(text, path)
    settings = parse_settings(comments, path)
    lines: list[Line] = []
    options: list[tuple[str, str | None]] = []
    for lineno, s in stmts:
        try:
            if s.startswith("--"):
                options.extend(_parse_option_line(s, path, lineno))
            elif s.startswith("`"):
                if not s.endswith("`"):
                    raise ScriptSyntaxError(path, lineno, "text after a backquoted command")
                lines.append(CommandLine(lineno, None, s[1:-1], s))
            else:
                lines.append(parse_statement(lineno, s, path))
        except ScriptSyntaxError as e:
            if errors is None:
                raise
            errors.append(e)
    first = ""
    for _, c in comments:
        if c.strip() and not c.strip().startswith("pytcp:"):
            first = c.strip()
            break
    return Script(path, lines, settings, first, options)


def check_file(path: str) -> list[ScriptSyntaxError]:
    """Parse only; every error found (empty when the script parses)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        return [ScriptSyntaxError(path, 0, str(e))]
    errors: list[ScriptSyntaxError] = []
    try:
        parse_script(text, path, errors)
    except ScriptSyntaxError as e:  # the preprocessor's and the splitter's own errors
        errors.append(e)
    return errors


def parse_file(path: str) -> Script:
    with open(path, encoding="utf-8") as f:
        return parse_script(f.read(), path)
