"""Run packetdrill-syntax scripts against the real sans-I/O stack in virtual time.

This module owns script execution: it creates a ``pytcp.stack.Stack`` at 192.168.0.1 (the
script side is 192.0.2.1), advances virtual time line by line (running
``stack.handle_timers`` at every deadline in between), injects inbound packets built with
``pytcp.wire``, runs system calls through :mod:`pytcp.script.sockets`, and matches every
outbound packet against the next expected line with :mod:`pytcp.script.matcher`. Any
outbound packet that no line expects fails the script, and so does an expected packet that
does not come within the time tolerance. ``main(argv)`` is the ``pytcp script`` command.

Settings come from ``// pytcp: key=value ...`` comments (see docs/conformance.md):
``tolerance`` (seconds, default 0.01), ``profile`` (``linux`` or ``rfc``), ``remote_isn``,
``local_isn`` (a fixed ISN for our connections, to test the 2**32 wrap),
``local_port`` (8080), ``remote_port`` (46143), ``mtu`` (1500), ``ttl`` (64), ``seed``,
``xfail=<reason>``
and ``config.<TcpConfig field>=<value>``.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import os
import random
import re
import sys
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytcp.script.code import CodeEvaluator, CodeFailure, CodeUnsupported
from pytcp.script.inject import build_icmp_error, build_tcp_packet, encode_options
from pytcp.script.matcher import (
    MASK,
    Observed,
    compare,
    format_expected,
    format_observed,
    stream_bytes,
)
from pytcp.script.parser import (
    CodeLine,
    CommandLine,
    IcmpLine,
    Line,
    PacketLine,
    Script,
    ScriptSyntaxError,
    SyscallLine,
    Timing,
    parse_file,
)
from pytcp.script.shell import interpret
from pytcp.script.sockets import (
    BLOCKED,
    Outcome,
    SocketTable,
    SyscallError,
    SyscallMismatch,
    tcp_info_fields,
)
from pytcp.script.sockets import state_of as _state_of
from pytcp.tcp.seq import seq_sub
from pytcp.wire.tcp import ACK, CWR, SYN, md5_digest

ECN_BITS = {"noecn": 0, "ect1": 1, "ect0": 2, "ce": 3}

LOCAL_ADDR = "192.168.0.1"
REMOTE_ADDR = "192.0.2.1"
# --ip_version=ipv6 (pytcp's choice of addresses; scripts write them as "...").
LOCAL_ADDR6 = "fd3d:fa7b:d17d::1"
REMOTE_ADDR6 = "fd3d:fa7b:d17d::2"
DEFAULT_TOLERANCE = 0.01
DEFAULT_TSO = True  # packetdrill's tun on Linux sets TUN_F_TSO4: the kernel sends super-segments
TSO_MAX_PAYLOAD = 65536 - 40 - 40  # 64 KB IPv4 datagram less IP and TCP headers with options
MAX_TIMER_STEPS = 100_000
ANY_TIME_LIMIT = 3600.0  # how far '*' lets virtual time run looking for a packet
MAX_SKIPPED_PACKETS = 10_000  # packets of other connections one outbound line may skip

_SETTINGS = {"tolerance", "profile", "remote_isn", "local_isn", "local_port", "remote_port",
             "mtu", "ttl", "seed", "xfail", "strict", "tso"}

# packetdrill command-line options that change nothing in virtual time (or whose effect pytcp
# always has): accepted silently.
_QUIET_OPTIONS = {"ip_version", "non_fatal", "verbose", "debug", "dry_run", "gateway_ip",
                  "netmask_ip", "speed", "init_scripts", "is_anyip", "send_omit_free",
                  "tcp_ts_ecr_scaled", "bind_port", "connect_port", "tolerance_percent",
                  "tolerance_usecs", "mtu", "local_ip", "remote_ip", "define",
                  "tcp_ts_tick_usecs", "strict_segments", "mss", "tcp_md5_secret"}

# Notes already reported by this process (``pytcp script`` prints each skipped knob once).
_REPORTED: set[str] = set()


class ScriptFailure(Exception):
    """The stack did not behave as the script says, at ``lineno``."""

    def __init__(self, lineno: int, text: str, reason: str, expected: str = "",
                 actual: str = "", unsupported: str = "") -> None:
        super().__init__(reason)
        self.lineno = lineno
        self.text = text
        self.reason = reason
        self.expected = expected
        self.actual = actual
        # Set when the script needs a call, option or feature pytcp does not have (the
        # feature's name), as opposed to a behaviour that differs.
        self.unsupported = unsupported
        self.trace: list[str] = []

    def one_line(self) -> str:
        if self.expected or self.actual:
            return (f"expected {self.expected or '(nothing)'} got {self.actual or '(nothing)'}"
                    f" ({self.reason})")
        return self.reason

    def long(self, path: str) -> str:
        out = [f"{path}:{self.lineno}: {self.reason}", f"  script line: {self.text}"]
        if self.expected:
            out.append(f"  expected:    {self.expected}")
        if self.expected or self.actual:
            out.append(f"  actual:      {self.actual or '(nothing)'}")
        out.extend(self.trace)
        return "\n".join(out)


@dataclass(slots=True)
class ScriptResult:
    path: str
    passed: bool
    failure: ScriptFailure | None = None
    xfail: str | None = None
    trace: list[str] = dataclasses.field(default_factory=list)  # with verbose=True
    # Shell-line commands and knobs, and command-line options, that were not applied.
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """What counts for the exit status: a pass, or an expected (xfail) failure. A marked
        script that passes is not ok (strict xfail: the marker is stale)."""
        return self.passed != bool(self.xfail)

    def summary(self) -> str:
        if self.passed and self.xfail:
            return f"FAIL {self.path}: passed but is marked xfail ({self.xfail}): drop the marker"
        if self.passed:
            return f"PASS {self.path}"
        f = self.failure
        assert f is not None
        word = "XFAIL" if self.xfail else "FAIL"
        tail = f" [xfail: {self.xfail}]" if self.xfail else ""
        return f"{word} {self.path}:{f.lineno}: {f.one_line()}{tail}"


def _convert(old: object, text: str) -> object:
    if isinstance(old, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"not a boolean: {text!r}")
    if isinstance(old, int):
        return int(text, 0)
    if isinstance(old, float):
        return float(text)
    return text


def make_tcp_config(settings: dict[str, str], path: str,
                    shell_changes: dict[str, object] | None = None) -> Any:
    """The script's TcpConfig: the profile, then what its shell lines set (sysctls), then
    its ``config.FIELD`` settings."""
    from pytcp.tcp.config import TcpConfig

    profile = settings.get("profile", "linux")
    if profile not in ("linux", "rfc"):
        raise ScriptSyntaxError(path, 1, f"profile must be linux or rfc, not {profile!r}")
    cfg = TcpConfig.linux() if profile == "linux" else TcpConfig.rfc()
    names = {f.name for f in dataclasses.fields(cfg)}
    changes: dict[str, object] = {k: v for k, v in (shell_changes or {}).items() if k in names}
    for k, v in settings.items():
        if k.startswith("config."):
            name = k[len("config."):]
            if name not in names:
                raise ScriptSyntaxError(path, 1, f"TcpConfig has no field {name!r}")
            try:
                changes[name] = _convert(getattr(cfg, name), v)
            except ValueError as e:
                raise ScriptSyntaxError(path, 1, f"config.{name}: {e}") from None
        elif k not in _SETTINGS:
            raise ScriptSyntaxError(path, 1, f"unknown pytcp setting {k!r}")
    return dataclasses.replace(cfg, **changes) if changes else cfg  # type: ignore[arg-type]


class _FixedIsn:
    """An ISN generator that always answers the same number (the ``local_isn`` setting)."""

    def __init__(self, value: int) -> None:
        self.value = value

    def iss(self, now: float, local_addr: int, local_port: int, remote_addr: int,
            remote_port: int) -> int:
        return self.value


class Runner:
    """Executes one parsed script against a fresh stack."""

    def __init__(self, script: Script, *, pcap: Any = None, verbose: bool = False,
                 strict: bool = True, record: bool = False) -> None:
        from pytcp.stack import Stack, StackConfig
        from pytcp.wire.ipv4 import ip_to_int

        self.script = script
        st = script.settings
        path = script.path
        self.notes: list[str] = []
        self.script_dir = os.path.dirname(os.path.abspath(path))
        opts = self._read_options(script)
        # packetdrill's untimed first command (and every untimed command before the first
        # timed line) configures the kernel before the script starts: read, never run.
        self.runner_opts: dict[str, object] = {}
        shell_changes: dict[str, object] = {}
        for ln in script.lines:
            if not isinstance(ln, CommandLine) or ln.timing is not None:
                break
            eff = interpret(ln.command, self.script_dir)
            shell_changes.update(eff.config)
            files, more = self.runner_opts.get("files"), eff.runner.get("files")
            self.runner_opts.update(eff.runner)
            if isinstance(files, dict) and isinstance(more, dict):
                self.runner_opts["files"] = {**files, **more}
            self._note(*eff.skipped)
        self.tcp_config = make_tcp_config(st, path, shell_changes)
        try:
            tol = opts.get("tolerance_usecs")
            self.tolerance = float(st.get("tolerance", int(tol) / 1e6 if tol else
                                          DEFAULT_TOLERANCE))
            self.remote_isn = int(st.get("remote_isn", "0"), 0) & MASK
            self.local_port = int(st.get("local_port", "8080"))
            self.remote_port = int(st.get("remote_port", "46143"))
            mtu = int(st.get("mtu", opts.get("mtu") or "1500"))
            self.ttl = int(st.get("ttl", "64"))
            seed = int(st.get("seed", "1"))
            tick = opts.get("tcp_ts_tick_usecs")
            self.ts_tick_usecs = int(tick) if tick else 0
        except ValueError as e:
            raise ScriptSyntaxError(path, 1, f"bad setting: {e}") from None
        # pytcp's own stricter checks (``// pytcp: strict=1``): every packet the stack sends
        # must be expected before the next inbound line or call and by the end of the script,
        # a '>' line matches exactly one segment, and TS val follows our clock.
        self.strict_checks = st.get("strict", "0") not in ("0", "", "no", "false")
        if self.strict_checks and not self.ts_tick_usecs:
            self.ts_tick_usecs = max(1, 1_000_000 // self.tcp_config.ts_hz)
        self.aggregate = not self.strict_checks and "strict_segments" not in opts
        self.defines = dict(self._defines(opts))
        # --ip_version=ipv6: packets on the wire are IPv6 (the stack also keeps its IPv4
        # address); ipv4-mapped-ipv6: an AF_INET6 socket whose packets are IPv4, which is what
        # pytcp's script sockets give for IPv4 anyway. Over IPv6 the script device's MTU is
        # 20 bytes larger, so segment sizes (and the MSS of our SYN) are those of the IPv4 run.
        self.v6 = opts.get("ip_version") == "ipv6"
        # packetdrill --mss=N: an inbound packet with more than N payload bytes goes to the
        # tun as one GSO packet (virtio-net header, gso_size N), as a GRO'd packet arrives.
        mss_opt = str(opts.get("mss") or "0")
        self.inbound_gso = int(mss_opt) if mss_opt.isdigit() else 0
        if self.v6:
            local_addr = str(opts.get("local_ip") or LOCAL_ADDR6)
            remote_addr = str(opts.get("remote_ip") or REMOTE_ADDR6).split("/")[0]
            self.local_ip = int(ipaddress.IPv6Address(local_addr))
            self.remote_ip = int(ipaddress.IPv6Address(remote_addr))
            mtu += 20
        else:
            local_addr = str(opts.get("local_ip") or LOCAL_ADDR)
            remote_addr = str(opts.get("remote_ip") or REMOTE_ADDR).split("/")[0]
            self.local_ip = ip_to_int(local_addr)
            self.remote_ip = ip_to_int(remote_addr)
        self.local_addr, self.remote_addr = local_addr, remote_addr
        self.now = 0.0
        # The script device: like packetdrill's tun on Linux it does TSO (the stack hands it
        # super-segments) unless a shell line turns it off (``ethtool -K tun0 tso off``) or
        # the script says ``// pytcp: tso=0``.
        tso_setting = st.get("tso")
        if tso_setting is not None:
            self.tso = tso_setting not in ("0", "no", "off", "false")
        else:
            self.tso = bool(self.runner_opts.get("tso", DEFAULT_TSO and not self.strict_checks))
        cookies = int(self.runner_opts.get("syncookies", 1))  # type: ignore[call-overload]
        self.stack_cfg = StackConfig(mtu=mtu, ttl=self.ttl, gso=self.tso,
                                     syncookies=cookies if cookies in (0, 1, 2) else 1)
        # Linux's TCP always builds GSO packets (since 4.19, "tcp: switch to GSO being always
        # on": sk_setup_caps adds NETIF_F_GSO for TCP sockets whatever the device offers); a
        # device without TSO (``ethtool -K tun0 tso off gso off``) gets them cut in software
        # (validate_xmit_skb -> tcp_gso_segment: PSH/FIN on the last piece only). So the
        # shell line turns off only the device's offload, not the engine's sizing.
        self.soft_gso = not self.tso and "tso" in self.runner_opts and tso_setting is None
        if self.tso or self.soft_gso:
            # Linux sizes what it hands the device (tcp_tso_autosize, tcp_cwnd_test).
            autosize = st.get("config.tso_autosize") is None and st.get("profile",
                                                                        "linux") == "linux"
            self.tcp_config = self.tcp_config.replace(
                max_segment_payload=TSO_MAX_PAYLOAD,
                tso_autosize=autosize or self.tcp_config.tso_autosize)
        self.stack = Stack(LOCAL_ADDR if self.v6 else local_addr, now=self.now,
                           config=self.stack_cfg,
                           addr6=local_addr if self.v6 else None,
                           tcp_config=self.tcp_config,
                           secret=b"pytcp-script-" + str(seed).encode(),
                           rng=random.Random(seed))
        if "local_isn" in st:
            # Testing aid: every connection the stack creates starts at this ISN, so a script
            # can make our own sequence numbers cross 2**32. (Replaces the stack's ISN
            # generator; clock-driven ISNs themselves are unit-tested in tests/tcp/test_isn.py.)
            try:
                fixed = int(st["local_isn"], 0) & MASK
            except ValueError:
                raise ScriptSyntaxError(path, 1, "local_isn must be a number") from None
            if not hasattr(self.stack, "_isn"):
                raise ScriptSyntaxError(path, 1, "local_isn: this stack has no ISN generator")
            setattr(self.stack, "_isn", _FixedIsn(fixed))  # noqa: B010 - a private slot
        # A listening script listens on local_port; a connecting one connects to the script
        # side's local_port (packetdrill's 8080 both ways).
        self.table = SocketTable(self.stack, local_port=self.local_port,
                                 remote_addr=remote_addr, connect_port=self.local_port)
        self.code = CodeEvaluator()
        self.table.on_connect = self._on_connect
        # RFC 2385 (FreeBSD packetdrill's --tcp_md5_secret): the script side's key; it signs
        # inbound ``md5 valid`` options and checks outbound ones, and setsockopt(TCP_MD5SIG,
        # [1]) gives it to the socket for the script side's address.
        secret = opts.get("tcp_md5_secret")
        self.md5_secret = secret.strip('"').encode() if secret else None
        self.table.md5_secret = self.md5_secret
        self.table.v6 = self.v6  # IPV6_RECVERR in the error queue's control messages
        self.table.tolerance = self.tolerance  # for SCM_TIMESTAMPING times
        if "notsent_lowat" in self.runner_opts:
            self.table.notsent_lowat = int(self.runner_opts["notsent_lowat"])  # type: ignore[call-overload]
        self._files(self.runner_opts.get("files"))
        # The connection under test: our port and the script side's port.
        self.our_port = self.local_port
        self.their_port = self.remote_port
        self._children = 0  # connections started at a listening socket under test
        # A feature pytcp lacks that the script was seen to rely on: a failure is reported
        # as "unsupported: <this>" (the script may still pass without it).
        self.needs = ""
        # Our ISN per script-side port (one connection per port), learned from our SYN/SYN-ACK.
        self.isns: dict[int, int] = {}
        # packetdrill numbering: the ISN our SYN/SYN-ACK line wrote, per port. A SYN's seq
        # (and the ack of a SYN the script side sends) is relative to our ISN minus it; any
        # other segment's to our ISN itself (packetdrill local_seq_script_to_live_offset).
        self.script_isn: dict[int, int] = {}
        self.peer_isn: dict[int, int] = {}  # the script side's ISN per port, as written
        # Our TSval minus the script's, per script-side port, learned from the first outbound
        # line that writes a TS val; later written TS vals are checked against it.
        self.ts_offset: dict[int, int] = {}
        self.ts_map: dict[int, dict[int, int]] = {}
        self.last_tsval = 0
        self._ecr_port = self.remote_port
        self.last_seq = 0
        self.outq: deque[Observed | str] = deque()
        self.pending: list[tuple[SyscallLine, Callable[[float], Outcome | object],
                                 float | None]] = []
        self.base = 0.0  # time the next relative timing is measured from
        self.current: Line | None = None
        self.seen: list[Any] = []
        # The last packets both ways, for failure reports (outbound ones formatted late, once
        # our ISN is known).
        self.history: deque[tuple[float, Observed | str]] = deque(maxlen=10)
        # Everything, for `pytcp script -v`; and a pcapng writer (pytcp.pcap) for --pcap.
        self.log: list[tuple[float, Observed | str]] | None = [] if verbose else None
        self.pcap = pcap
        if pcap is not None:
            self.stack.annotate = True  # packet comments: why sent, why dropped
        # strict=False (for fuzz tests): unexpected outbound packets are dropped instead of
        # failing; they are still parsed, checksum-verified and address-checked.
        self.strict = strict and not record
        self.lenient = not self.strict
        # record=True (`pytcp script --record`): outbound lines in the script are skipped, our
        # ISNs are learned from what the stack sends, calls' actual results are logged rather
        # than checked, and the log becomes a runnable script (record_lines()).
        self.record = record
        if record:
            self.log = []
            self.table.script_fds = False  # record what the stack's own numbering gives

    # --- packetdrill options and shell lines ---
    def _read_options(self, script: Script) -> dict[str, str]:
        """packetdrill's command-line lines: the ones that matter in virtual time set runner
        options; the rest are noted once."""
        opts: dict[str, str] = {}
        for name, value in script.options:
            v = value if value is not None else "1"
            if name == "ip_version" and v not in ("ipv4", "ipv4-mapped-ipv6", "ipv6"):
                raise ScriptFailure(0, f"--ip_version={v}", f"unsupported: IP version {v}",
                                    unsupported=f"--ip_version={v}")
            if name == "ip_version":
                opts["ip_version"] = v
            if name == "udp_encapsulation":
                raise ScriptFailure(0, f"--{name}={v}", "unsupported: TCP over UDP",
                                    unsupported="--udp_encapsulation (TCP over UDP, RFC 8539)")
            if name not in _QUIET_OPTIONS:
                self._note(f"--{name}={v} (no effect in pytcp)")
            if name == "define":
                opts.setdefault("define", "")
                opts["define"] += v + "\n"
            else:
                opts[name] = v
        return opts

    @staticmethod
    def _defines(opts: dict[str, str]) -> list[tuple[str, str]]:
        # The upstream runner's (google/packetdrill run_all.py) IPv4 -D defaults: the Fast
        # Open cookie of 192.0.2.1 -> 192.168.0.1 under defaults.sh's tcp_fastopen_key.
        out = [("TFO_COOKIE", "3021b9d889017eeb"), ("CODE", "host_unreachable")]
        for d in opts.get("define", "").splitlines():
            k, _, v = d.partition("=")
            out.append((k, v.strip('"')))
        return out

    def _files(self, files: object) -> None:
        """Shell ``dd if=/dev/zero of=PATH`` / ``rm -f PATH``: the socket table's virtual
        files (in memory; the host's file system is never touched)."""
        if not isinstance(files, dict):
            return
        for path, size in files.items():
            if size is None:
                self.table.files.pop(path, None)
            else:
                self.table.files[path] = bytes(size)

    def _note(self, *notes: str) -> None:
        for n in notes:
            if n not in self.notes:
                self.notes.append(n)

    def _command(self, line: CommandLine) -> None:
        """A timed shell line: sysctls change the config of connections created from now on;
        nothing is run."""
        eff = interpret(line.command, self.script_dir)
        self._note(*eff.skipped)
        if eff.runner.get("tcp_metrics_flush"):
            self.stack.fastopen_cache.clear()  # (ip tcp_metrics flush: cached cookies)
        if "notsent_lowat" in eff.runner:
            self.table.notsent_lowat = int(eff.runner["notsent_lowat"])  # type: ignore[call-overload]
        self._files(eff.runner.get("files"))
        if eff.config:
            names = {f.name for f in dataclasses.fields(self.stack.tcp_config)}
            self.stack.tcp_config = self.stack.tcp_config.replace(
                **{k: v for k, v in eff.config.items() if k in names})

    def _code(self, line: CodeLine) -> None:
        handle = self._under_test()
        fields = tcp_info_fields(handle, self.now) if handle is not None else {}
        try:
            self.code.run(line.code, fields)
        except CodeUnsupported as e:
            raise self._fail(f"unsupported: {e}", unsupported=str(e)) from None
        except CodeFailure as e:
            raise self._fail(str(e)) from None
        except (ArithmeticError, TypeError, ValueError) as e:
            raise self._fail(f"code block: {type(e).__name__}: {e}") from None

    def _under_test(self) -> Any:
        """The connection the script's packets go to (packetdrill's socket under test)."""
        best = None
        for h in self.seen:
            if h.key[1] == self.our_port and h.key[3] == self.their_port:
                best = h
        return best if best is not None else (self.seen[-1] if self.seen else None)

    # --- plumbing ---
    def _on_connect(self, handle: Any) -> None:
        key = handle.key
        self.our_port = key[1]
        self.their_port = key[3]

    def _fail(self, reason: str, expected: str = "", actual: str = "",
              line: Line | None = None, unsupported: str = "") -> ScriptFailure:
        ln = line or self.current
        f = ScriptFailure(ln.lineno if ln else 0, ln.text if ln else "", reason, expected,
                          actual, unsupported)
        f.trace = self._trace()
        return f

    def _trace(self) -> list[str]:
        """State transitions of every connection seen, for failure reports."""
        out = []
        if self.history:
            out.append("  last packets (relative seq/ack):")
            out.extend(f"    t={t:.3f} {self._fmt(h)}" for t, h in self.history)
        for h in self.seen:
            k = h.key
            out.append(f"  connection :{k[1]} -> :{k[3]} now {h.conn.state}, transitions:")
            for t, old, new, why in h.conn.transitions[-12:]:
                out.append(f"    t={t:.3f} {old} -> {new} ({why})")
        return out

    def _fmt(self, item: Observed | str) -> str:
        if isinstance(item, str):
            return item
        return format_observed(item, self._local_base(item.dport, item.flags),
                               self._remote_base(item.dport, item.flags))

    def _collect(self) -> None:
        from pytcp.drops import MalformedPacket
        from pytcp.stack import addr_text
        from pytcp.wire.ipv4 import PROTO_TCP, parse_ipv4
        from pytcp.wire.ipv6 import addr_sum, parse_ipv6
        from pytcp.wire.offload import fill_checksums
        from pytcp.wire.tcp import parse_tcp

        for raw in self.stack.pending_packets():
            if getattr(raw, "gso_size", 0):
                # A TSO super-packet carries a partial checksum (the pseudo-header sum); the
                # device finishes it, as this stands in for the kernel.
                raw = fill_checksums(raw)
            if self.pcap is not None:
                self.pcap.write(self.now, raw, "out", getattr(raw, "note", None))
            try:
                if self.v6:
                    ip6 = parse_ipv6(raw)
                    if ip6.proto != PROTO_TCP:
                        self.outq.append(f"non-TCP packet (next header {ip6.proto}) at "
                                         f"{self.now:.3f}")
                        continue
                    th = parse_tcp(ip6.payload, addr_sum(ip6.src), addr_sum(ip6.dst))
                    src, dst, ttl, tos = ip6.src, ip6.dst, ip6.hop_limit, ip6.tclass
                else:
                    ip = parse_ipv4(raw)
                    if ip.proto != PROTO_TCP:
                        self.outq.append(f"non-TCP packet (IP proto {ip.proto}) at "
                                         f"{self.now:.3f}")
                        continue
                    th = parse_tcp(ip.payload, ip.src, ip.dst)
                    src, dst, ttl, tos = ip.src, ip.dst, ip.ttl, ip.tos
            except MalformedPacket as e:
                raise self._fail(f"the stack sent a malformed packet: {e}") from None
            if dst != self.remote_ip:
                self.outq.append(f"packet to {addr_text(dst)} (not the script side)")
                continue
            # MUST-44/45: our packets come from the stack's address; MUST-49: with its TTL.
            if src != self.local_ip or ttl != self.ttl:
                raise self._fail(f"IP header: src {addr_text(src)} ttl {ttl}, expected "
                                 f"{self.local_addr} ttl {self.ttl}")
            obs = Observed(self.now, th.flags, th.seq, th.ack, th.window, th.urg,
                           bytes(th.payload), th.options, tuple(th.option_kinds),
                           th.sport, th.dport, tos)
            if th.options.md5 is not None and self.md5_secret is not None:
                # RFC 2385: checked against the script side's key (``md5 valid``).
                obs.md5_ok = th.options.md5 == md5_digest(
                    self.md5_secret, src, dst, bytes(th.header) + bytes(th.payload), self.v6)
            if th.options.timestamp is not None:
                self.last_tsval = th.options.timestamp[0]
            self.last_seq = th.seq
            if self.record and th.flags & SYN and self._isn_stale(th.dport):
                self.isns[th.dport] = th.seq
            self.outq.append(obs)
            self._record(obs)

    def _record(self, item: Observed | str) -> None:
        self.history.append((self.now, item))
        if self.log is not None:
            self.log.append((self.now, item))

    def record_lines(self) -> list[str]:
        """The run as a script: settings, then every event at its absolute time, our packets
        in script notation (relative to our ISNs). Edit and keep what should be checked."""
        out = [f"// Recorded by `pytcp script --record` from {self.script.path}."]
        kept = {k: v for k, v in self.script.settings.items() if k != "xfail"}
        if kept:
            out.append("// pytcp: " + " ".join(f"{k}={v}" for k, v in kept.items()))
        for t, item in self.log or []:
            text = self._fmt(item)
            if isinstance(item, Observed):
                # Our own packets: leave the window unchecked unless the author adds it back.
                text = re.sub(r" win \d+", "", text)
            out.append(f"{t:.3f} {text}")
        return out

    def trace_lines(self) -> list[str]:
        """The verbose trace: every packet both ways and every call, in script notation."""
        return [f"t={t:.3f} {self._fmt(item)}" for t, item in (self.log or [])]

    def _after_step(self) -> None:
        for h in self.stack.connections():
            if all(h is not x for x in self.seen):
                self.seen.append(h)
        self._collect()
        self.table.drain_events(self.now)
        self._retry_pending()

    def _retry_pending(self) -> None:
        still = []
        for line, fn, end in self.pending:
            out = fn(self.now)
            if out is BLOCKED:
                still.append((line, fn, end))
            else:
                assert isinstance(out, tuple)
                self._check_return(line, out, end)
        self.pending = still

    def _advance(self, to: float, stop_on_packet: bool) -> None:
        """Run timers up to virtual time ``to`` (stopping early at the first outbound packet
        when ``stop_on_packet``)."""
        for _ in range(MAX_TIMER_STEPS):
            if stop_on_packet and self.outq:
                return
            d = self.stack.next_deadline()
            w = self.table.next_wakeup(self.now) if self.pending else None
            if w is not None and (d is None or w < d):
                if w > to:
                    break
                self.now = max(self.now, w)  # a blocked poll()/epoll_wait() times out
                self._after_step()
                continue
            if d is None or d > to:
                break
            self.now = max(self.now, d)
            self.stack.handle_timers(self.now)
            self._after_step()
        else:
            raise self._fail(f"timers did not settle by t={self.now:.6f} "
                             f"(next_deadline keeps returning a past time)")
        if not (stop_on_packet and self.outq):
            self.now = max(self.now, to)

    def _times(self, t: Timing) -> tuple[float, float, float]:
        """(target, earliest, latest) for a timing column."""
        if t.any_time:
            return self.base, self.base, self.now + ANY_TIME_LIMIT
        start = self.base + t.start if t.start_relative else t.start
        if t.end is None:
            return start, start - self.tolerance, start + self.tolerance
        end = self.base + t.end if t.end_relative else t.end
        return start, start - self.tolerance, end + self.tolerance

    def _no_unexpected(self, what: str) -> None:
        if self.outq and not self.strict:
            self.outq.clear()  # lenient mode (fuzzing): outbound packets are only sanity-checked
        if self.outq:
            item = self.outq[0]
            when = f" at t={item.time:.3f}" if isinstance(item, Observed) else ""
            raise self._fail(f"unexpected outbound packet{when} before {what}",
                             expected="(no packet)", actual=self._fmt(item))

    # --- lines ---
    def _ecr_map(self, ecr: int) -> int:
        if ecr == 0:
            return 0
        exact = self.ts_map.get(self._ecr_port, {}).get(ecr)
        if exact is not None:
            return exact
        off = self.ts_offset.get(self._ecr_port)
        if off is not None:
            return (ecr + off) & MASK
        return self.last_tsval

    def _inbound(self, line: PacketLine, batch: list[bytes] | None = None) -> None:
        """Build and inject one inbound line; with ``batch``, only build it and add it there
        (the caller hands the whole batch to ``stack.receive_batch``)."""
        from pytcp.wire.ipv4 import ip_to_int

        if line.port is None and self.table.listening_under_test:
            # packetdrill: an inbound packet while the socket under test listens starts a
            # new connection from a new ephemeral port of the script side.
            self.table.listening_under_test = False
            if self._children:
                self.their_port = (self.remote_port + self._children) & 0xFFFF or 1
            self._children += 1
        port = line.port or self.their_port
        lisn = self._local_base(port, line.flags) or 0
        if line.udp is not None:
            raise self._fail("unsupported: TCP over UDP", unsupported="TCP over UDP (/udp)")
        if line.seq_any:
            raise self._fail("unsupported: '...' or '!' sequence on an inbound packet",
                             unsupported="unchecked sequence number on an inbound packet")
        conns = self.stack.connections()
        if line.flags & SYN and (
                all(h.key[3] != port or str(h.conn.state) == "SYN-SENT" for h in conns)
                or (line.flags & ACK and not self.strict_checks
                    and any(h.key[3] == port and h.key[1] == self.our_port
                            and str(h.conn.state) == "SYN-SENT" for h in conns))):
            # A SYN that starts a connection: the data pattern starts after it (a SYN into a
            # live connection, e.g. an RFC 5961 test, changes nothing).
            self.peer_isn[port] = line.seq
        first = line.seq + (1 if line.flags & SYN else 0) - self.peer_isn.get(port, 0)
        seq = (self.remote_isn + line.seq) & MASK
        if self._relative_remote(port) and not line.flags & SYN:
            # packetdrill: the script side's SYN (or SYN-ACK) gives its ISN as written; its
            # later sequence numbers are relative to it.
            seq = (self.peer_isn[port] + line.seq) & MASK
            first = line.seq
        if self.v6 and (line.src or line.dst or line.ip_options):
            raise self._fail("unsupported: addresses or IP options on a packet over IPv6",
                             unsupported="IPv6 packet with addresses or IP options")
        pkt = build_tcp_packet(
            src=ip_to_int(line.src) if line.src else self.remote_ip,
            dst=ip_to_int(line.dst) if line.dst else self.local_ip,
            sport=port, dport=self.our_port,
            seq=seq,
            # packetdrill: with the ACK flag the ack is relative to our ISN (a '.' line without
            # 'ack' acknowledges relative 0); without it, the written value goes out as is.
            ack=((lisn + (line.ack or 0)) & MASK if line.flags & ACK
                 else (line.ack or 0) & MASK),
            flags=line.flags, win=line.win if line.win is not None else 65535,
            urg=line.urg or 0,
            options=self._encode_inbound_options(line, port, lisn),
            payload=stream_bytes((first - 1) & MASK, line.length) if line.length else b"",
            bad_csum=line.bad_csum, ttl=line.ttl if line.ttl is not None else 64,
            ip_options=line.ip_options, tos=self._inbound_tos(line),
            md5_key=self.md5_secret if any(o.kind == "md5" and o.symbol == "valid"
                                           for o in line.options or ()) else None)
        self._record(format_expected(line))
        gso = self.inbound_gso
        if gso and (line.length or 0) > gso and not line.bad_csum and not self.v6:
            from pytcp.wire.offload import RxPacket

            rx = RxPacket(pkt)
            rx.gso_size = gso
            pkt = rx
        if batch is not None:
            batch.append(pkt)
            return
        self._inject(pkt)

    @staticmethod
    def _inbound_tos(line: PacketLine) -> int:
        """The IP TOS byte of an inbound packet: ``(tos 0x..)`` and/or the ECN field."""
        tos = line.tos or 0
        if line.ecn is not None:
            tos = (tos & ~3) | ECN_BITS[line.ecn]
        return tos

    def _inbound_batch(self, lines: list[PacketLine]) -> None:
        """pytcp's ``batch`` extension: these packets reach the stack in one read batch
        (``Stack.receive_batch``), as the runtime delivers a burst read from the link."""
        pkts: list[bytes] = []
        for ln in lines:
            self.current = ln
            self._inbound(ln, pkts)
        self.stack.rx_drop_reasons.clear()
        self.stack.receive_batch(self.now, pkts)
        self._capture_in(pkts)
        self._after_step()

    def _capture_in(self, pkts: list[bytes]) -> None:
        """Inbound packets to the capture, each with its drop reason (after the stack)."""
        reasons = self.stack.rx_drop_reasons
        if self.pcap is not None:
            from pytcp.drops import describe

            for i, pkt in enumerate(pkts):
                reason = reasons[i] if i < len(reasons) else None
                self.pcap.write(self.now, pkt, "in",
                                f"dropped: {describe(reason)}" if reason is not None else None)
        reasons.clear()

    def _encode_inbound_options(self, line: PacketLine, port: int, lisn: int) -> bytes:
        self._ecr_port = port
        opts = line.options or ()
        for o in opts:
            if o.kind == "md5" and o.symbol == "valid" and self.md5_secret is None:
                raise self._fail("unsupported: md5 valid without --tcp_md5_secret",
                                 unsupported="md5 valid without --tcp_md5_secret")
            if o.kind == "md5" and o.symbol == "valid":
                continue
            if o.symbol and o.symbol not in self.defines:
                raise self._fail(f"unsupported: {o.kind} {o.symbol}: {o.symbol} is not "
                                 "--define'd", unsupported=f"symbol {o.symbol}")
        return encode_options(opts, self._ecr_map, lisn, self.defines)

    def _inject(self, pkt: bytes) -> None:
        self.stack.rx_drop_reasons.clear()
        self.stack.receive_packet(self.now, pkt)
        self._capture_in([pkt])
        self._after_step()

    def _icmp(self, line: IcmpLine) -> None:
        if line.direction != "<":
            raise self._fail("unsupported: outbound ICMP lines", unsupported="outbound ICMP")
        if line.udp is not None:
            raise self._fail("unsupported: TCP over UDP", unsupported="TCP over UDP (/udp)")
        if line.unknown:
            if line.unknown in self.defines:
                from pytcp.script.parser import ICMP_CODES

                code = self.defines[line.unknown]
                line.icmp_code = ICMP_CODES.get(code, 0) if not code.isdigit() else int(code)
            else:
                raise self._fail(f"unsupported: ICMP code {line.unknown} over IPv4",
                                 unsupported=f"ICMP code {line.unknown}")
        if line.seq is not None:
            qseq = (self.isns.get(self.their_port, 0) + line.seq) & MASK
        else:
            qseq = self.last_seq
        if self.v6:
            raise self._fail("unsupported: ICMP lines over IPv6", unsupported="ICMPv6 lines")
        pkt = build_icmp_error(src=self.remote_ip, dst=self.local_ip, icmp_type=line.icmp_type,
                               code=line.icmp_code, mtu=line.mtu or 0, sport=self.our_port,
                               dport=self.their_port, seq=qseq)
        self._record(line.text.split(None, 1)[1])
        self._inject(pkt)

    def _next_outbound(self, hi: float, target: float, exp: str,
                       line: PacketLine | None = None) -> Observed:
        for _ in range(MAX_SKIPPED_PACKETS):
            if not self.outq:
                self._advance(hi, stop_on_packet=True)
            if not self.outq:
                raise self._fail(f"no packet by t={hi:.3f} (expected at t={target:.3f})",
                                 expected=exp)
            item = self.outq.popleft()
            if isinstance(item, str):
                raise self._fail("unexpected packet", expected=exp, actual=item)
            if not self._foreign(item, line):
                return item
        raise self._fail(f"more than {MAX_SKIPPED_PACKETS} packets of other connections "
                         "before the expected one", expected=exp)

    def _foreign(self, item: Observed, line: PacketLine | None) -> bool:
        """packetdrill (sniff_outbound_live_packet) matches a '>' line only against packets
        of the socket under test (its live 4-tuple): an earlier socket's packets, e.g. the
        FIN its close() sent, are sniffed and dropped. pytcp's own strict scripts and lines
        naming a ``port`` see every packet."""
        if self.strict_checks or self.record or (line is not None and line.port is not None):
            return False
        return (item.sport, item.dport) != (self.our_port, self.their_port)

    def _outbound(self, line: PacketLine, target: float, lo: float, hi: float) -> None:
        exp = format_expected(line)
        if line.udp is not None:
            raise self._fail("unsupported: TCP over UDP", unsupported="TCP over UDP (/udp)")
        item = self._next_outbound(hi, target, exp, line)
        if self.aggregate and len(item.payload) < line.length:
            item = self._aggregate(item, line, hi, target, exp)
        port = line.port or self.their_port
        if line.flags & SYN and item.flags & SYN and (
                self._isn_stale(port) or (not item.flags & ACK and not self.strict_checks)):
            # (packetdrill: every new socket's SYN gives its own ISN)
            # Learn our ISN from our SYN / SYN-ACK (again for a new connection: packetdrill
            # keeps one ISN per socket).
            if self.strict_checks:
                self.isns[port] = (item.seq - line.seq) & MASK
            else:
                self.isns[port] = item.seq
                self.script_isn[port] = line.seq & MASK
        if not line.timing.any_time and not lo <= item.time <= hi:
            raise self._fail(f"packet at t={item.time:.3f}, expected at t={target:.3f} "
                             f"(tolerance {self.tolerance})", expected=exp,
                             actual=self._fmt(item))
        if (item.sport, item.dport) != (self.our_port, port):
            raise self._fail(f"ports {item.sport}->{item.dport}, expected "
                             f"{self.our_port}->{port}", expected=exp,
                             actual=self._fmt(item))
        for o in line.options or ():
            if o.symbol and o.kind in ("mss", "wscale") and o.symbol in self.defines:
                line = dataclasses.replace(line, options=tuple(
                    dataclasses.replace(x, value=int(self.defines[x.symbol], 0), symbol="")
                    if x.symbol in self.defines and x.kind in ("mss", "wscale") else x
                    for x in line.options or ()))
                break
        for o in line.options or ():
            if o.symbol and o.kind in ("FO", "FOEXP") and o.symbol in self.defines:
                # A Fast Open cookie written as a name (FO TFO_COOKIE): its hex value.
                line = dataclasses.replace(line, options=tuple(
                    dataclasses.replace(x, raw=bytes.fromhex(
                        self.defines[x.symbol].removeprefix("0x")), symbol="")
                    if x.symbol in self.defines and x.kind in ("FO", "FOEXP") else x
                    for x in line.options or ()))
                break
        diff = compare(line, item, self._local_base(port, item.flags),
                       self._remote_base(port, item.flags),
                       payload_of=self.table.payload_of(item.sport, item.dport))
        if diff:
            raise self._fail(diff, expected=exp, actual=self._fmt(item))
        self._check_tsval(line, item, port, exp)
        self.base = item.time

    def _aggregate(self, first: Observed, line: PacketLine, hi: float, target: float,
                   exp: str) -> Observed:
        """packetdrill (without --strict_segments) matches one '>' line against consecutive
        segments of one connection whose payloads add up to the line's length (so a line
        written for a TSO super-segment matches MSS-sized segments): headers from the last,
        sequence number and CWR from the first, every fragment but the last the same size."""
        parts = [first]
        total = len(first.payload)
        while total < line.length:
            nxt = self._next_outbound(hi, target, exp, line)
            prev = parts[-1]
            if ((nxt.sport, nxt.dport) != (prev.sport, prev.dport)
                    or nxt.seq != (prev.seq + len(prev.payload)) & MASK
                    or (len(parts) > 1 and len(prev.payload) != len(parts[-2].payload))):
                raise self._fail("segments do not add up to the expected one", expected=exp,
                                 actual=" + ".join(self._fmt(p) for p in parts + [nxt]))
            parts.append(nxt)
            total += len(nxt.payload)
        if len(parts) == 1:
            return first
        last = parts[-1]
        flags = (last.flags & ~CWR) | (first.flags & CWR)
        return dataclasses.replace(last, flags=flags, seq=first.seq,
                                   payload=b"".join(p.payload for p in parts))

    def _relative_remote(self, port: int) -> bool:
        """packetdrill numbering of the script side (not in pytcp's strict scripts, which
        write its sequence numbers as absolute values)."""
        return not self.strict_checks and port in self.peer_isn

    def _local_base(self, port: int, flags: int) -> int | None:
        """What our sequence numbers (and the script side's acks) are relative to: our ISN,
        minus the ISN our SYN line wrote for a segment with SYN (packetdrill), or None."""
        isn = self.isns.get(port)
        if isn is None or not flags & SYN:
            return isn
        return (isn - self.script_isn.get(port, 0)) & MASK

    def _remote_base(self, port: int, flags: int) -> int:
        """What our ack and SACK fields are relative to: the script side's ISN in
        packetdrill numbering (absolute in a SYN-ACK, as packetdrill), else remote_isn."""
        if self._relative_remote(port) and not flags & SYN:
            return self.peer_isn[port]
        return self.remote_isn

    def _check_tsval(self, line: PacketLine, item: Observed, port: int, exp: str) -> None:
        """RFC 7323 5.4: our TS clock. The first written TS val fixes the offset between the
        script's numbers and ours; each later one must match within the time tolerance
        (converted to clock ticks, plus one tick of rounding)."""
        if not line.options or item.options.timestamp is None:
            return
        for o in line.options:
            if o.kind != "TS" or o.ts is None:
                continue
            got = item.options.timestamp[0]
            # packetdrill maps an inbound 'ecr N' to the live TS val of the outbound line that
            # wrote 'TS val N' (else by the first offset).
            self.ts_map.setdefault(port, {})[o.ts[0]] = got
            off = self.ts_offset.get(port)
            if off is None:
                self.ts_offset[port] = (got - o.ts[0]) & MASK
                return
            if not self.ts_tick_usecs:  # packetdrill checks TS val only with a tick
                return
            want = (o.ts[0] + off) & MASK
            slack = int(self.tolerance * 1e6 / self.ts_tick_usecs) + 1
            if abs(seq_sub(got, want)) > slack:
                script_got = (got - off) & MASK
                raise self._fail(f"TS val expected {o.ts[0]} got {script_got} (in the script's "
                                 f"numbering; tolerance {slack} ticks)", expected=exp,
                                 actual=self._fmt(item))

    def _isn_stale(self, port: int) -> bool:
        """True when no live connection to the script side's ``port`` owns the ISN learned for
        it so far."""
        isn = self.isns.get(port)
        if isn is None:
            return True
        return all(h.key[3] != port or getattr(h.conn, "iss", None) != isn
                   for h in self.stack.connections())

    def _check_return(self, line: SyscallLine, out: tuple[int, str | None],
                      end: float | None = None) -> None:
        ret, err = out
        got = f"{ret}" + (f" {err}" if err else "")
        if self.log is not None:
            self.log.append((self.now, f"{line.name}({', '.join(line.args)}) = {got}"))
        if self.record:
            return
        want = f"{line.ret}" + (f" {line.errno_name}" if line.errno_name else "")
        # '= -1' without a name accepts any errno (packetdrill); EWOULDBLOCK is EAGAIN.
        err_ok = (err == line.errno_name or (line.errno_name is None and ret == -1)
                  or (err is not None and line.errno_name is not None
                      and getattr(errno, err, -1) == getattr(errno, line.errno_name, -2)))
        if ret != line.ret or not err_ok:
            raise self._fail(f"{line.name}() returned {got}", expected=f"= {want}",
                             actual=f"= {got}", line=line)
        if end is not None and abs(self.now - end) > self.tolerance + 1e-9:
            raise self._fail(f"{line.name}() returned at t={self.now:.3f}, expected at "
                             f"t={end:.3f} (tolerance {self.tolerance})", line=line)
        for s in self.table.socks.values():
            if s.handle is not None:
                st = _state_of(s.handle)
                if st.data_error:
                    raise self._fail(st.data_error, line=line)

    def _syscall(self, line: SyscallLine, end: float | None) -> None:
        try:
            out = self.table.call(self.now, line.name, line.args, line.ret)
        except SyscallError as e:
            raise self._fail(f"unsupported: {e}", unsupported=str(e)) from None
        except SyscallMismatch as e:
            raise self._fail(str(e)) from None
        if out is BLOCKED:
            if line.name in ("write", "send", "sendto", "sendmsg"):
                sock = self.table.socks[self.table.fd_of(line.args[0])]
                self.pending.append((line, lambda now: self.table.continue_write(now, sock),
                                     end))
            else:
                self.pending.append(
                    (line, lambda now: self.table.call(now, line.name, line.args, line.ret),
                     end))
        else:
            assert isinstance(out, tuple)
            self._check_return(line, out, end)
        self._after_step()

    def run(self) -> None:
        lines = self.script.lines
        i = 0
        while i < len(lines):
            line = lines[i]
            i += 1
            self.current = line
            if isinstance(line, CommandLine) and line.timing is None:
                continue  # the init command was read before the start; a cleanup: nothing
            assert line.timing is not None
            target, lo, hi = self._times(line.timing)
            if isinstance(line, PacketLine) and line.direction == ">":
                if not self.record:
                    self._outbound(line, target, lo, hi)
                continue
            self._advance(target, stop_on_packet=False)
            what = f"line {line.lineno}"
            if self.strict_checks or self.lenient:
                self._no_unexpected(what)
            if isinstance(line, PacketLine):
                group = [line]
                while (i < len(lines) and isinstance(lines[i], PacketLine)
                       and lines[i].batch):  # type: ignore[union-attr]
                    group.append(lines[i])  # type: ignore[arg-type]
                    i += 1
                if len(group) > 1:
                    self._inbound_batch(group)
                else:
                    self._inbound(line)
            elif isinstance(line, IcmpLine):
                self._icmp(line)
            elif isinstance(line, CommandLine):
                self._command(line)
            elif isinstance(line, CodeLine):
                self._code(line)
            else:
                end = None
                if line.timing.block_end is not None:
                    end = (self.base + line.timing.block_end if line.timing.start_relative
                           else line.timing.block_end)
                self._syscall(line, end)
            self.base = target
        self.current = self.script.lines[-1] if self.script.lines else None
        self._after_step()
        if self.strict_checks or self.lenient:
            self._no_unexpected("the end of the script")
        if self.pending and not self.record:
            line = self.pending[0][0]
            raise self._fail(f"{line.name}() was still blocked at the end of the script",
                             line=line)


def run_script(path_or_script: str | Script, *, pcap_path: str | None = None,
               verbose: bool = False, overrides: dict[str, str] | None = None) -> ScriptResult:
    """Parse (if given a path) and run one script; never raises for script failures.

    ``pcap_path``: write every packet both ways to this pcapng file (virtual time as
    timestamps). ``verbose``: keep the whole trace in ``ScriptResult.trace``. ``overrides``:
    settings that replace the script's own (``pytcp script --set KEY=VALUE``)."""
    try:
        script = (parse_file(path_or_script) if isinstance(path_or_script, str)
                  else path_or_script)
    except ScriptSyntaxError as e:
        path = path_or_script if isinstance(path_or_script, str) else path_or_script.path
        return ScriptResult(path, False, ScriptFailure(e.line, "", f"syntax error: {e.msg}"))
    except OSError as e:
        return ScriptResult(str(path_or_script), False, ScriptFailure(0, "", str(e)))
    if overrides:
        script.settings.update(overrides)
    xfail = script.settings.get("xfail")
    pcap = None
    if pcap_path is not None:
        from pytcp.pcap import PcapWriter

        pcap = PcapWriter(pcap_path, ifname="pytcp-script")
    try:
        return _run(script, xfail, pcap, verbose)
    finally:
        if pcap is not None:
            pcap.close()


def _run(script: Script, xfail: str | None, pcap: Any, verbose: bool) -> ScriptResult:
    runner: Runner | None = None
    try:
        runner = Runner(script, pcap=pcap, verbose=verbose)
        runner.run()
    except ScriptSyntaxError as e:
        return ScriptResult(script.path, False, ScriptFailure(e.line, "", e.msg), xfail)
    except ScriptFailure as failure:
        if runner is not None and runner.needs and not failure.unsupported:
            failure.unsupported = f"{runner.needs} (then: {failure.reason})"
        return ScriptResult(script.path, False, failure, xfail,
                            runner.trace_lines() if runner else [],
                            runner.notes if runner else [])
    except Exception as e:  # noqa: BLE001 - a bug in the stack (or the runner): report its line
        cur = runner.current if runner is not None else None
        crash = ScriptFailure(cur.lineno if cur else 0, cur.text if cur else "",
                              f"exception from the stack: {type(e).__name__}: {e}")
        crash.trace = [f"  {ln}" for ln in traceback.format_exc().rstrip().splitlines()[-8:]]
        return ScriptResult(script.path, False, crash, xfail,
                            runner.trace_lines() if runner else [],
                            runner.notes if runner else [])
    return ScriptResult(script.path, True, None, xfail, runner.trace_lines(), runner.notes)


def _expand(paths: list[str]) -> list[str]:
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            for root, _dirs, files in sorted(os.walk(p)):
                out.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(".pkt"))
        else:
            out.append(p)
    return out


def _record(files: list[str], overrides: dict[str, str]) -> int:
    """``--record``: run each script leniently and print it back with what the stack did."""
    status = 0
    for path in files:
        try:
            script = parse_file(path)
            script.settings.update(overrides)
            runner = Runner(script, record=True)
            runner.run()
        except (ScriptSyntaxError, ScriptFailure, OSError) as e:
            print(f"pytcp script: {path}: {e}", file=sys.stderr)
            status = 1
            continue
        print("\n".join(runner.record_lines()))
    return status


def _check(files: list[str]) -> int:
    """``--check``: parse only. Every error as ``FILE:LINE: message`` on stderr; 1 when any
    file has one."""
    from pytcp.script.parser import check_file

    bad = 0
    for path in files:
        errors = check_file(path)
        for e in errors:
            print(str(e), file=sys.stderr)
        bad += bool(errors)
    print(f"{len(files) - bad} parsed, {bad} with errors")
    return 1 if bad else 0


USAGE = """usage: pytcp script [-v] [--pcap PATH] [--record] [--check] [--set KEY=VALUE]...
                    FILE.pkt|DIR ...

Run packetdrill-syntax scripts against the pytcp stack in virtual time (docs/conformance.md).
  -v, --verbose  print every packet and system call of each script (relative seq/ack)
  --pcap PATH    write each script's packets to a pcapng file: PATH itself for one script
                 ending in .pcapng, else PATH/<dir>-<name>.pcapng
  --record       do not check: run the inbound packets and calls, and print the script back
                 with the packets the stack sent and the values the calls returned
  --check        parse only: print each error as FILE:LINE: message (exit 1 if any)
  --set K=V      override a script setting, e.g. --set profile=rfc --set config.sack=0
Prints PASS/FAIL per script and 'N passed, N failed'; exit status 0 only when none failed."""


def main(argv: list[str]) -> int:
    """``pytcp script [-v] [--pcap PATH] FILE|DIR...``: one line per script, then a summary;
    0 when all pass, 1 when one failed, 2 for a usage error."""
    verbose = False
    record = False
    check = False
    pcap: str | None = None
    overrides: dict[str, str] = {}
    paths: list[str] = []
    args = list(argv)
    while args:
        a = args.pop(0)
        if a in ("-h", "--help"):
            print(USAGE)
            return 0
        if a in ("-v", "--verbose"):
            verbose = True
        elif a == "--record":
            record = True
        elif a == "--check":
            check = True
        elif a == "--set":
            if not args or "=" not in args[0]:
                print("pytcp script: --set needs KEY=VALUE", file=sys.stderr)
                return 2
            k, v = args.pop(0).split("=", 1)
            overrides[k] = v
        elif a == "--pcap" or a.startswith("--pcap="):
            if a == "--pcap":
                if not args:
                    print("pytcp script: --pcap needs a PATH", file=sys.stderr)
                    return 2
                pcap = args.pop(0)
            else:
                pcap = a.split("=", 1)[1]
        elif a.startswith("-") and a != "-":
            print(f"pytcp script: unknown option {a} (see --help)", file=sys.stderr)
            return 2
        else:
            paths.append(a)
    if not paths:
        print(USAGE, file=sys.stderr)
        return 2
    for p in paths:
        if not os.path.exists(p):  # a usage error, not a failed test
            print(f"pytcp script: error: no such file or directory: {p}", file=sys.stderr)
            return 2
    files = _expand(paths)
    if check:
        return _check(files)
    if record:
        return _record(files, overrides)
    one_file = pcap is not None and len(files) == 1 and pcap.endswith((".pcapng", ".pcap"))
    if pcap is not None and not one_file:
        os.makedirs(pcap, exist_ok=True)
    passed = failed = xfailed = 0
    for path in files:
        target = None
        if pcap is not None:
            stem = os.path.splitext(os.path.basename(path))[0]
            area = os.path.basename(os.path.dirname(os.path.abspath(path)))
            target = pcap if one_file else os.path.join(pcap, f"{area}-{stem}.pcapng")
        res = run_script(path, pcap_path=target, verbose=verbose, overrides=overrides)
        for note in res.notes:  # each skipped knob or command once per run
            if note not in _REPORTED:
                _REPORTED.add(note)
                print(f"pytcp script: not applied: {note}", file=sys.stderr)
        if verbose:
            for ln in res.trace:
                print(f"  {ln}")
        print(res.summary(), flush=True)
        if not res.ok:
            failed += 1
        elif res.passed:
            passed += 1
        else:
            xfailed += 1
    tail = f", {xfailed} xfailed" if xfailed else ""
    print(f"{passed} passed, {failed} failed{tail}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
