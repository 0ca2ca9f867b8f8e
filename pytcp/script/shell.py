"""Read packetdrill's shell lines without running them.

packetdrill runs backquoted lines with ``system()``; in the upstream corpora they configure the
kernel under test (``sysctl -q net.ipv4.tcp_sack=0``, ``../common/defaults.sh``,
``set_sysctls.py /proc/sys/net/ipv4/tcp_timestamps=0``, ``ethtool -K tun0 tso off``). pytcp
never runs a host command (it would change the host's kernel): this module reads the text,
follows ``*.sh`` files it names next to the script (read, never executed), and turns

- sysctl assignments into :class:`pytcp.tcp.config.TcpConfig` changes where pytcp has the
  knob (:data:`SYSCTLS`),
- ``ethtool -K DEV tso on|off`` into the script device's TSO setting,
- ``dd bs=B count=N if=/dev/zero of=PATH`` / ``rm -f PATH`` into the runner's virtual files
  (kept in memory for ``open()`` and ``sendfile()``),

and lists everything else (unknown knobs, ``tc``, ``ip``, ``nstat`` ...) as skipped, for the
runner to report once. Shell arithmetic ``$((15*1024*1024))`` is evaluated (integers and
``+ - * / ( )`` only).
"""

from __future__ import annotations

import ast
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from pytcp.tcp.config import wscale_for

MAX_SOURCE_DEPTH = 4      # nested ``*.sh`` files followed
MAX_SOURCE_BYTES = 1 << 16  # a sourced file longer than this is not read


@dataclass(slots=True)
class ShellEffects:
    """What a run of shell text asks for."""

    config: dict[str, object] = field(default_factory=dict)  # TcpConfig field -> value
    runner: dict[str, object] = field(default_factory=dict)  # runner option -> value
    skipped: list[str] = field(default_factory=list)  # one line per command / knob not applied

    def merge(self, other: ShellEffects) -> None:
        self.config.update(other.config)
        files, more = self.runner.get("files"), other.runner.get("files")
        self.runner.update(other.runner)
        if isinstance(files, dict) and isinstance(more, dict):
            self.runner["files"] = {**files, **more}  # (the later command wins)
        self.skipped.extend(other.skipped)


def _bool(v: str) -> bool:
    return int(v, 0) != 0


def _ints(v: str) -> list[int]:
    return [int(x, 0) for x in v.split()]


def _rmem(v: str) -> dict[str, object]:
    # Linux: tcp_rmem = "min default max"; the receive window's scale comes from the max
    # (tcp_select_initial_window), the buffer from the default. Scripts keep the default
    # buffer fixed (recv_buffer_min = recv_buffer: no autotuning, which needs real RTTs of
    # reading); the window still grows from ~64 KiB within it (rcv_ssthresh).
    _lo, default, hi = (_ints(v) + [0, 0, 0])[:3]
    return {"recv_buffer": max(default, 1), "recv_buffer_min": max(default, 1),
            "wscale": wscale_for(max(hi, default))}


def _wmem(v: str) -> dict[str, object]:
    # Linux: tcp_wmem = "min default max": a socket starts at the default and
    # tcp_sndbuf_expand grows it with cwnd up to the max (pytcp: send_buffer_min, send_buffer).
    _lo, default, hi = (_ints(v) + [0, 0, 0])[:3]
    return {"send_buffer_min": max(default, 1), "send_buffer": max(hi, default, 1)}


def _cc(v: str) -> dict[str, object]:
    name = {"reno": "newreno", "newreno": "newreno", "cubic": "cubic"}.get(v.strip())
    if name is None:
        raise ValueError(f"congestion control {v.strip()!r} (pytcp has cubic and newreno)")
    return {"congestion": name}


def _fastopen_key(v: str) -> dict[str, object]:
    from pytcp.tcp.fastopen import parse_keys

    parse_keys(v)  # ValueError for a malformed key
    return {"fastopen_key": v.strip()}


# sysctl name (dots) -> TcpConfig changes for its value. Linux names first, then FreeBSD's.
SYSCTLS: dict[str, Callable[[str], dict[str, object]]] = {
    "net.ipv4.tcp_timestamps": lambda v: {"timestamps": _bool(v)},
    "net.ipv4.tcp_sack": lambda v: {"sack": _bool(v)},
    "net.ipv4.tcp_window_scaling": lambda v: {"window_scaling": _bool(v)},
    "net.ipv4.tcp_syn_retries": lambda v: {"syn_retries": int(v, 0)},
    "net.ipv4.tcp_synack_retries": lambda v: {"synack_retries": int(v, 0)},
    "net.ipv4.tcp_retries2": lambda v: {"retries2": int(v, 0)},
    "net.ipv4.tcp_congestion_control": _cc,
    "net.ipv4.tcp_rmem": _rmem,
    "net.ipv4.tcp_wmem": _wmem,
    "net.ipv4.tcp_fin_timeout": lambda v: {"fin_wait2_timeout": float(int(v, 0))},
    "net.ipv4.tcp_keepalive_time": lambda v: {"keepalive_idle": float(int(v, 0))},
    "net.ipv4.tcp_keepalive_intvl": lambda v: {"keepalive_interval": float(int(v, 0))},
    "net.ipv4.tcp_keepalive_probes": lambda v: {"keepalive_count": int(v, 0)},
    "net.ipv4.tcp_challenge_ack_limit": lambda v: {"challenge_ack_limit": int(v, 0)},
    "net.ipv4.tcp_slow_start_after_idle": lambda v: {"slow_start_after_idle": _bool(v)},
    "net.ipv4.tcp_fastopen": lambda v: {"fastopen": int(v, 0)},
    "net.ipv4.tcp_ecn": lambda v: {"ecn": int(v, 0)},
    "net.ipv4.tcp_fastopen_key": _fastopen_key,
    "net.ipv4.tcp_recovery": lambda v: {"rack": bool(int(v, 0) & 1)},
    "net.ipv4.tcp_early_retrans": lambda v: {"tlp": int(v, 0) in (3, 4)},
    "net.ipv4.tcp_min_tso_segs": lambda v: {"min_tso_segs": max(1, int(v, 0))},
    "net.inet.tcp.rfc1323": lambda v: {"timestamps": _bool(v), "window_scaling": _bool(v)},
    "net.inet.tcp.sack.enable": lambda v: {"sack": _bool(v)},
    "net.inet.tcp.recvspace": lambda v: {"recv_buffer": int(v, 0)},
    "net.inet.tcp.sendspace": lambda v: {"send_buffer": int(v, 0)},
    "net.inet.tcp.keepidle": lambda v: {"keepalive_idle": int(v, 0) / 1000.0},
    "net.inet.tcp.keepintvl": lambda v: {"keepalive_interval": int(v, 0) / 1000.0},
    "net.inet.tcp.keepcnt": lambda v: {"keepalive_count": int(v, 0)},
}

# Knobs pytcp has no setting for but whose assigned value is what pytcp always does: not
# reported. (Linux's RFC 5681 dupthresh, D-SACK on, FACK off, ECN off.)
FIXED: dict[str, str] = {
    "net.ipv4.tcp_reordering": "3",
    "net.ipv4.tcp_dsack": "1",
    "net.ipv4.tcp_fack": "0",
}

_ARITH_RE = re.compile(r"\$\(\((.*?)\)\)")
_REDIRECT_RE = re.compile(r"(?<![\w=])\d*(?:&>|>>|>&|>|<)\s*(&?[^\s;|&]+)")


def _arith(expr: str) -> int:
    """Evaluate shell arithmetic over integers with + - * / and parentheses (never eval)."""
    tree = ast.parse(expr.strip(), mode="eval")

    def ev(n: ast.AST) -> int:
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Constant) and isinstance(n.value, int):
            return n.value
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return -ev(n.operand)
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Add, ast.Sub, ast.Mult,
                                                          ast.FloorDiv, ast.Div)):
            a, b = ev(n.left), ev(n.right)
            if isinstance(n.op, ast.Add):
                return a + b
            if isinstance(n.op, ast.Sub):
                return a - b
            if isinstance(n.op, ast.Mult):
                return a * b
            return a // b
        raise ValueError(f"unsupported shell arithmetic {expr!r}")

    return ev(tree)


def _expand(text: str) -> str:
    return _ARITH_RE.sub(lambda m: str(_arith(m.group(1))), text)


def _commands(text: str) -> list[list[str]]:
    """Simple commands of a shell text: continuation lines joined, comments dropped, split at
    ``;``, ``&&``, ``||``, ``|`` and newlines, redirections removed."""
    text = text.replace("\\\n", " ")
    out: list[list[str]] = []
    for line in text.splitlines():
        try:
            # Redirections go, except that a write to /proc/sys/ is kept as an argument.
            line = _REDIRECT_RE.sub(
                lambda m: f" {m.group(1)} " if m.group(1).startswith("/proc/sys/") else " ",
                line)
            lex = shlex.shlex(_expand(line), posix=True, punctuation_chars=";&|")
            lex.whitespace_split = True
            lex.commenters = "#"
            toks = list(lex)
        except ValueError:
            out.append([line.strip()])
            continue
        cur: list[str] = []
        for t in toks:
            if t in (";", "&&", "||", "|", "&"):
                if cur:
                    out.append(cur)
                cur = []
            else:
                cur.append(t)
        if cur:
            out.append(cur)
    return out


# sysctls the script layer itself models (socket-level defaults): name -> runner option.
RUNNER_SYSCTLS: dict[str, str] = {"net.ipv4.tcp_notsent_lowat": "notsent_lowat",
                                  "net.ipv4.tcp_syncookies": "syncookies"}


def _sysctl(name: str, value: str, eff: ShellEffects) -> None:
    name = name.strip().replace("/", ".")
    name = name.removeprefix(".proc.sys.")
    if name in RUNNER_SYSCTLS:
        try:
            eff.runner[RUNNER_SYSCTLS[name]] = int(value, 0)
        except ValueError:
            eff.skipped.append(f"sysctl {name}={value} (not a number)")
            return
        if name not in SYSCTLS:
            return  # (tcp_fastopen is also the engine's TcpConfig.fastopen: go on)
    fn = SYSCTLS.get(name)
    if fn is None and FIXED.get(name) == value.strip():
        return
    if fn is None:
        eff.skipped.append(f"sysctl {name}={value} (pytcp has no such knob)")
        return
    try:
        eff.config.update(fn(value))
    except ValueError as e:
        eff.skipped.append(f"sysctl {name}={value} ({e})")


MAX_VIRTUAL_FILE = 1 << 20  # bytes of a ``dd`` file the runner keeps in memory


def _dd_zero_file(argv: list[str], eff: ShellEffects) -> bool:
    """``dd bs=B count=N if=/dev/zero of=PATH``: a virtual file of B*N zero bytes (the
    runner's open()/sendfile() read it; the host's file system is never touched). False
    for any other ``dd``."""
    ops = dict(a.split("=", 1) for a in argv[1:] if "=" in a)
    if ops.get("if") != "/dev/zero" or "of" not in ops:
        return False
    try:
        size = int(ops.get("bs", "512"), 0) * int(ops.get("count", "0"), 0)
    except ValueError:
        return False
    if not 0 <= size <= MAX_VIRTUAL_FILE:
        eff.skipped.append(f"dd of={ops['of']} ({size} bytes: more than {MAX_VIRTUAL_FILE})")
        return True
    files = eff.runner.setdefault("files", {})
    assert isinstance(files, dict)
    files[ops["of"]] = size
    return True


def interpret(text: str, script_dir: str, depth: int = 0) -> ShellEffects:
    """The effects of one backquoted command (which may name sourced files)."""
    eff = ShellEffects()
    for argv in _commands(text):
        cmd = argv[0]
        base = os.path.basename(cmd)
        if base == "sysctl":
            for a in argv[1:]:
                if a.startswith("-"):
                    continue
                if "=" not in a:
                    eff.skipped.append(f"sysctl {a} (a read, not an assignment)")
                    continue
                k, v = a.split("=", 1)
                _sysctl(k, v, eff)
        elif base == "set_sysctls.py":
            for a in argv[1:]:
                if "=" in a:
                    k, v = a.split("=", 1)
                    _sysctl(k, v, eff)
        elif base == "echo" and len(argv) >= 2 and any(
                a.startswith("/proc/sys/") for a in argv):
            target = next(a for a in argv if a.startswith("/proc/sys/"))
            _sysctl(target, argv[1], eff)
        elif base == "ip" and argv[1:3] == ["tcp_metrics", "flush"]:
            eff.runner["tcp_metrics_flush"] = True  # Fast Open cookies cached so far go
        elif base == "dd" and _dd_zero_file(argv, eff):
            pass  # (a file of zeros for open()/sendfile(): the runner's virtual files)
        elif base == "rm" and argv[1:2] == ["-f"] and len(argv) == 3:
            files = eff.runner.setdefault("files", {})
            assert isinstance(files, dict)
            files[argv[2]] = None  # removed (a virtual file; nothing on the host is touched)
        elif base == "ethtool" and "-K" in argv:
            words = argv[argv.index("-K") + 2:]
            for k, v in zip(words[::2], words[1::2]):
                if k in ("tso", "gso"):
                    eff.runner["tso"] = v == "on"
        elif cmd.endswith(".sh") and "$" not in cmd:
            path = cmd if os.path.isabs(cmd) else os.path.join(script_dir, cmd)
            if depth >= MAX_SOURCE_DEPTH:
                eff.skipped.append(f"{cmd} (sourced files nested too deep)")
                continue
            try:
                with open(path, encoding="utf-8") as f:
                    body = f.read(MAX_SOURCE_BYTES + 1)
            except OSError:
                eff.skipped.append(f"{cmd} (not found next to the script)")
                continue
            if len(body) > MAX_SOURCE_BYTES:
                eff.skipped.append(f"{cmd} (longer than {MAX_SOURCE_BYTES} bytes)")
                continue
            eff.merge(interpret(body, os.path.dirname(path), depth + 1))
        else:
            eff.skipped.append(f"{' '.join(argv)[:80]} (host command, not run)")
    return eff
