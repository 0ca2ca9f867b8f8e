"""Fuzz targets for pytcp (issue 7 item 7): the wire parsers, the stack's receive path and the
script parser, each a function of one ``bytes`` input that raises only when an invariant is
broken.

The targets are plain Python (no atheris import) so that the regression tests replay crash
inputs without the fuzzer; ``tests/fuzz/run.py`` drives them under atheris (coverage-guided,
pytcp's bytecode instrumented) and ``tests/fuzz/seeds.py`` makes their seed corpora.

Invariants checked:
- Only the documented exceptions: the wire parsers raise only ``MalformedPacket``; the stack
  never raises out of ``receive_packet``/``receive_batch``/``handle_timers`` and never counts
  ``STACK_ERROR`` (a caught bug: ``StrictStack`` re-raises it so the fuzzer sees it); the
  application calls raise only ``TcpUsageError``; the script parser raises only
  ``ScriptSyntaxError``.
- Parsers agree: ``parse_ipv4_tcp`` (the fast path) gives what ``parse_ipv4`` +
  ``parse_tcp`` give; a parsed TCP header rebuilt with ``write_tcp`` parses to the same
  fields, options and payload.
- Engine invariants after every input event, for every connection of both stacks:
  SND.UNA =< SND.NXT =< SND.MAX (``pytcp.tcp.seq``, never ``<``), the send ring, the receive
  queue and the out-of-order queue within their configured bounds, the peer's window within
  what 16 bits scaled by 14 can say, the connection table within ``max_connections``, the
  TIME-WAIT entries within ``max_time_wait``, fragments held within ``frag_max_bytes``, and
  the stack-wide receive memory account equal to the bytes the connections hold and within
  ``recv_memory_limit`` (plus at most one segment per connection, by design).
- Every datagram the stack sends parses with valid checksums, comes from its address and
  fits the MTU.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

from pytcp.drops import DropReason, MalformedPacket
from pytcp.script.parser import ScriptSyntaxError, parse_script
from pytcp.stack import Stack, StackConfig, TcpHandle
from pytcp.tcp.config import TcpConfig
from pytcp.tcp.errors import TcpUsageError
from pytcp.tcp.output import GSO_MAX_SIZE
from pytcp.tcp.seq import seq_add, seq_le, seq_sub
from pytcp.tcp.state import State
from pytcp.wire.icmp import ERROR_TYPES, build_dest_unreachable, parse_icmp
from pytcp.wire.ipv4 import PROTO_ICMP, PROTO_TCP, build_ipv4_header, parse_ipv4
from pytcp.wire.tcp import parse_ipv4_tcp, parse_options, parse_tcp, write_tcp

__all__ = ["TARGETS", "InvariantError", "script_one_input", "stack_one_input",
           "wire_one_input"]


class InvariantError(AssertionError):
    """A fuzz invariant does not hold (a finding)."""


def check(cond: bool, what: str) -> None:
    if not cond:
        raise InvariantError(what)


class Input:
    """A small FuzzedDataProvider: reads integers and bytes off the input, zeros at its end
    (so every input is valid and a shorter one is a prefix of the same run)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out

    def uint(self, nbytes: int) -> int:
        return int.from_bytes(self.take(nbytes).ljust(nbytes, b"\0"), "big")

    def u8(self) -> int:
        return self.uint(1)

    def below(self, n: int) -> int:
        """0 .. n-1."""
        return self.uint(2 if n > 256 else 1) % n if n > 1 else 0


# ------------------------------------------------------------------------------ wire

def wire_one_input(data: bytes) -> None:
    """Byte 0: bit 0 = verify checksums. The rest: a datagram for every parser."""
    if not data:
        return
    verify = bool(data[0] & 1)
    buf = data[1:]
    ip = None
    try:
        ip = parse_ipv4(buf, verify)
    except MalformedPacket:
        pass
    else:
        hl = len(ip.header)
        check(hl == ip.ihl * 4 and 20 <= hl <= 60, f"ihl {ip.ihl} vs header {hl}")
        check(hl + len(ip.payload) == ip.total_length <= len(buf),
              f"total_length {ip.total_length}, header {hl}, payload {len(ip.payload)}")
    fast = None
    try:
        fast = parse_ipv4_tcp(buf, verify)
    except MalformedPacket:
        pass
    if fast is not None:
        src, dst, th = fast
        check(ip is not None and ip.proto == PROTO_TCP and not ip.is_fragment
              and (ip.src, ip.dst) == (src, dst), "fast path took what parse_ipv4 refuses")
        assert ip is not None
        general = parse_tcp(ip.payload, ip.src, ip.dst, verify)  # must not raise now
        check(_tcp_fields(general) == _tcp_fields(th), "fast and general TCP parses differ")
    seg = ip.payload if ip is not None else memoryview(buf)
    src = ip.src if ip is not None else 0x0A000001
    dst = ip.dst if ip is not None else 0x0A000002
    try:
        th = parse_tcp(seg, src, dst, verify)
    except MalformedPacket:
        pass
    else:
        hlen = th.data_offset * 4
        check(20 <= hlen <= len(seg) and len(th.header) == hlen, "TCP header length")
        check(bytes(th.payload) == bytes(seg[hlen:]), "TCP payload is not the rest")
        _tcp_round_trip(th, src, dst)
    try:
        msg = parse_icmp(seg, verify)
    except MalformedPacket:
        pass
    else:
        check(msg.is_error == (msg.type in ERROR_TYPES), "ICMP is_error")
        check(len(msg.original) == (len(msg.payload) if msg.is_error else 0), "ICMP original")
    try:
        opts, kinds = parse_options(buf[:40])
    except MalformedPacket:
        pass
    else:
        check(all(0 <= k <= 255 for k in kinds), "option kinds")
        if opts.wscale is not None:
            check(0 <= opts.wscale <= 255, "wscale byte")


def _tcp_fields(th: object) -> tuple[object, ...]:
    names = ("sport", "dport", "seq", "ack", "data_offset", "flags", "window", "checksum",
             "urg", "options", "option_kinds")
    return tuple(getattr(th, n) for n in names) + (bytes(th.payload),)  # type: ignore[attr-defined]


def _tcp_round_trip(th: object, src: int, dst: int) -> None:
    """Rebuilt from its fields and raw option area, a header parses to the same values."""
    area = bytes(th.header[20:])  # type: ignore[attr-defined]
    payload = bytes(th.payload)  # type: ignore[attr-defined]
    buf = bytearray(20 + len(area) + len(payload))
    write_tcp(buf, 0, area, src=src, dst=dst, sport=th.sport, dport=th.dport,  # type: ignore[attr-defined]
              seq=th.seq, ack=th.ack, flags=th.flags, window=th.window,  # type: ignore[attr-defined]
              payload=payload, urg=th.urg)  # type: ignore[attr-defined]
    again = parse_tcp(buf, src, dst, True)  # our own checksum must verify
    a, b = _tcp_fields(th), _tcp_fields(again)
    # The flags byte keeps only what write_tcp writes (the low 8 bits); checksums differ.
    check(a[:5] == b[:5] and a[6] == b[6] and a[8:] == b[8:], "write_tcp/parse_tcp round trip")


# ------------------------------------------------------------------------------ stack

A_ADDR, B_ADDR = 0x0A000001, 0x0A000002
PORTS = (80, 7)


class StrictStack(Stack):
    """A stack whose caught bugs (``STACK_ERROR``) propagate to the fuzzer."""

    def _count_error(self, e: Exception, where: str) -> None:
        raise e


def _configs(choice: int) -> tuple[StackConfig, TcpConfig]:
    """Byte 0 of a stack input picks the profile (bits 0-1; small limits make the bounds
    reachable) and whether the stack verifies checksums (bit 2 set: it does not, as behind
    a TUN with checksum offload, so raw bytes reach the TCP layer)."""
    scfg, tcfg = _profile(choice)
    if choice & 4:
        scfg = dataclasses.replace(scfg, verify_checksums=False)
    return scfg, tcfg


def _profile(choice: int) -> tuple[StackConfig, TcpConfig]:
    # (64 KiB send rings: allocating 1 MiB ones per connection would cost most of the time
    # of an input; their bound is checked the same way.)
    if choice % 4 == 0:
        return StackConfig(), TcpConfig.linux().replace(send_buffer=1 << 16)
    if choice % 4 == 1:
        return StackConfig(), TcpConfig.rfc().replace(send_buffer=1 << 16)
    if choice % 4 == 2:
        return (StackConfig(max_connections=8, backlog=2, syn_backlog=2, syncookies=1,
                            frag_max_bytes=8192, frag_max_datagrams=4, frag_max_fragments=8,
                            recv_memory_limit=8192, max_time_wait=2),
                TcpConfig().replace(recv_buffer=4096, send_buffer=4096,
                                    reassembly_limit=4096, timestamps=False, sack=False,
                                    window_scaling=False))
    return (StackConfig(syncookies=2, mtu=576),
            TcpConfig().replace(send_buffer=1 << 16, congestion="newreno", nodelay=True,
                                keepalive=True,
                                keepalive_idle=30.0, keepalive_interval=5.0, keepalive_count=2))


class World:
    """Stack B (under test, listening on 80 and 7) and its peer A, in virtual time, joined
    by a loss-free wire the fuzzer can also write to. After ``__init__`` two connections from
    A to B are established; B has sent data A has not read, A data B has not read."""

    def __init__(self, choice: int) -> None:
        self.now = 1000.0
        scfg, tcfg = _configs(choice)
        self.mtu = scfg.mtu
        self.a = StrictStack(A_ADDR, now=self.now, config=scfg, tcp_config=tcfg,
                             secret=b"A" * 16, rng=random.Random(1))
        self.b = StrictStack(B_ADDR, now=self.now, config=scfg, tcp_config=tcfg,
                             secret=b"B" * 16, rng=random.Random(2))
        self.listeners = [self.b.listen(p) for p in PORTS]
        self.b_handles: list[TcpHandle] = []
        self.a_handles = [self.a.connect(self.now, B_ADDR, PORTS[i % 2]) for i in range(2)]
        self.shuttle(3)
        self.accept()
        for h in self.a_handles:
            self.app(lambda: h.send(self.now, b"a" * 3000))
        for h in self.b_handles:
            self.app(lambda: h.send(self.now, b"b" * 5000))
        self.shuttle(3)

    def accept(self) -> None:
        for lst in self.listeners:
            while (h := lst.accept()) is not None:
                self.b_handles.append(h)

    def app(self, call: Callable[[], object]) -> None:
        try:
            call()
        except TcpUsageError:
            pass  # documented: local misuse (e.g. send after close)

    def shuttle(self, rounds: int) -> None:
        """Carry packets both ways (B's checked), at most ``rounds`` times."""
        for _ in range(rounds):
            to_a = self.b.pending_packets()
            for pkt in to_a:
                self.check_output(pkt)
            to_b = self.a.pending_packets()
            if not to_a and not to_b:
                return
            if to_a:
                self.a.receive_batch(self.now, [bytes(p) for p in to_a])
            if to_b:
                self.b.receive_batch(self.now, [bytes(p) for p in to_b])
            self.a.pending_events()
            self.b.pending_events()
            self.accept()

    def check_output(self, pkt: bytes | bytearray) -> None:
        try:
            ip = parse_ipv4(pkt, True)
            if ip.proto == PROTO_TCP:
                parse_tcp(ip.payload, ip.src, ip.dst, True)
            elif ip.proto == PROTO_ICMP and not ip.is_fragment:
                parse_icmp(ip.payload, True)
        except MalformedPacket as e:
            raise InvariantError(f"the stack sent a malformed datagram: {e}") from None
        check(ip.src == B_ADDR, "a datagram from another address")
        check(len(pkt) <= self.mtu, f"a datagram of {len(pkt)} bytes over MTU {self.mtu}")

    def check_invariants(self) -> None:
        for stack in (self.a, self.b):
            check(stack.drops[DropReason.STACK_ERROR] == 0, "STACK_ERROR counted")
            check(len(stack.connections()) <= stack.config.max_connections, "too many conns")
            check(stack.time_wait_count <= stack.config.max_time_wait, "TIME-WAIT entries")
            frag = stack._frag
            check(0 <= frag.bytes_held <= stack.config.frag_max_bytes, "fragment bytes")
            # The stack-wide receive memory (Linux tcp_mem): the account equals what the
            # connections hold, and passes the cap by at most one segment per connection.
            rmem = stack.rmem
            conns = stack.connections()
            held = sum(len(h.conn._rcvq) + h.conn._reasm.bytes_queued for h in conns)
            ooo = sum(h.conn._reasm.bytes_queued for h in conns)
            check((rmem.used, rmem.ooo) == (held, ooo),
                  f"receive memory account {rmem.used}/{rmem.ooo} != held {held}/{ooo}")
            check(rmem.used <= rmem.limit + len(conns) * 65536, "receive memory over the cap")
            for h in conns:
                c = h.conn
                cfg = c.config
                if c.state not in (State.CLOSED, State.LISTEN, State.SYN_SENT):
                    check(seq_le(c.snd_una, c.snd_nxt) and seq_le(c.snd_nxt, c.snd_max),
                          f"SND.UNA {c.snd_una} <= SND.NXT {c.snd_nxt} <= SND.MAX {c.snd_max}")
                # Linux's accounting: a new skb only below SO_SNDBUF (c.sndbuf, autotuned up
                # to send_buffer), so the bytes pass it by at most one skb (the size goal)
                # and what the write sent at once (in flight).
                flight = seq_sub(c.snd_max, c.snd_una) if c.state.synchronized else 0
                check(len(c._sendbuf) <= c.sndbuf + GSO_MAX_SIZE + max(0, flight) and
                      c.sndbuf <= max(cfg.send_buffer, 1), "send buffer bound")
                check(len(c._rcvq) <= cfg.recv_buffer, "receive queue over recv_buffer")
                check(c._reasm.bytes_queued <= cfg.reassembly_limit, "out-of-order bytes")
                check(0 <= c.snd_wnd <= 0xFFFF << 14, "send window")
                rcv_wnd = seq_sub(c.rcv_adv, c.rcv_nxt)
                check(rcv_wnd <= max(cfg.recv_buffer, 0xFFFF) + (1 << c.rcv_wscale),
                      f"advertised window {rcv_wnd} over the buffer")

    # --- what the fuzzer sends B --------------------------------------------------------------

    def target(self, inp: Input) -> tuple[int, int, int, int, TcpHandle | None]:
        """(src, sport, dport, base seq, handle) of a connection of B, a listener, or none."""
        k = inp.below(6)
        if k < len(self.b_handles):
            h = self.b_handles[k]
            key = h.key
            return key.remote_addr, key.remote_port, key.local_port, h.conn.rcv_nxt, h
        if k == 4:
            return A_ADDR + 1 + inp.below(3), 1024 + inp.uint(2) % 60000, PORTS[inp.below(2)], \
                inp.uint(4), None
        return A_ADDR, 40000 + inp.below(100), 9, inp.uint(4), None

    def crafted_tcp(self, inp: Input) -> bytes:
        src, sport, dport, base, h = self.target(inp)
        seq = _near(inp, base)
        ack = _near(inp, h.conn.snd_una if h is not None else inp.uint(4))
        flags = inp.u8()
        window = inp.uint(2)
        olen = inp.below(11) * 4
        opts = inp.take(olen).ljust(olen, b"\x01")
        plen = (0, 1, 10, 536, 1460, 3000)[inp.below(6)]
        payload = bytes([inp.u8()]) * plen
        urg = inp.uint(2) if flags & 0x20 else 0
        buf = bytearray(40 + olen + plen)
        build_ipv4_header(buf, 0, src=src, dst=B_ADDR, proto=PROTO_TCP,
                          payload_len=20 + olen + plen)
        write_tcp(buf, 20, opts, src=src, dst=B_ADDR, sport=sport, dport=dport, seq=seq,
                  ack=ack, flags=flags, window=window, payload=payload, urg=urg)
        if inp.below(8) == 0:
            buf[-1 if plen else 37] ^= 0x40  # a wrong checksum now and then
        return bytes(buf)

    def crafted_fragment(self, inp: Input) -> bytes:
        ident = inp.below(4)
        off = inp.below(32) * 8
        size = inp.below(64) * 8 or 8
        mf = bool(inp.u8() & 1)
        proto = (PROTO_TCP, PROTO_ICMP, 17)[inp.below(3)]
        buf = bytearray(20 + size)
        buf[20:] = inp.take(size).ljust(size, b"\0")
        build_ipv4_header(buf, 0, src=A_ADDR, dst=B_ADDR, proto=proto, payload_len=size,
                          ident=ident, df=False, mf=mf, frag_offset=off)
        return bytes(buf)

    def crafted_icmp(self, inp: Input) -> bytes:
        """An ICMP error quoting one of B's segments (type/code/MTU fuzzed)."""
        _, sport, dport, _, h = self.target(inp)
        seq = _near(inp, h.conn.snd_una if h is not None else 0)
        quoted = bytearray(28)
        build_ipv4_header(quoted, 0, src=B_ADDR, dst=A_ADDR, proto=PROTO_TCP, payload_len=8)
        quoted[20:28] = dport.to_bytes(2, "big") + sport.to_bytes(2, "big") + \
            (seq & 0xFFFFFFFF).to_bytes(4, "big")
        code = inp.below(16)
        msg = bytearray(build_dest_unreachable(code, bytes(quoted), mtu=inp.uint(2)))
        msg[0] = (3, 3, 3, 4, 11, 12, 5, 0)[inp.below(8)]
        buf = bytearray(20 + len(msg))
        build_ipv4_header(buf, 0, src=A_ADDR, dst=B_ADDR, proto=PROTO_ICMP,
                          payload_len=len(msg))
        buf[20:] = msg
        _fix_icmp_checksum(buf)
        return bytes(buf)

    def app_call(self, inp: Input) -> None:
        if not self.b_handles:
            return
        h = self.b_handles[inp.below(len(self.b_handles))]
        op = inp.below(7)
        now = self.now
        if op == 0:
            self.app(lambda: h.send(now, b"s" * (1 << inp.below(17))))
        elif op == 1:
            self.app(lambda: h.receive(now, inp.uint(2) - 1))
        elif op == 2:
            self.app(lambda: h.shutdown(now))
        elif op == 3:
            self.app(lambda: h.close(now))
        elif op == 4:
            self.app(lambda: h.abort(now))
        elif op == 5:
            self.app(lambda: h.set_keepalive(True, idle=1.0, interval=1.0, count=1, now=now))
        else:
            self.app(lambda: h.conn.set_orphan())


def _near(inp: Input, base: int) -> int:
    """A sequence number around ``base`` (mostly close, sometimes anywhere)."""
    k = inp.below(4)
    if k == 0:
        return base
    if k == 3:
        return inp.uint(4)
    d = inp.uint(2 if k == 1 else 4) - (1 << (15 if k == 1 else 31))
    return seq_add(base, d)


def _fix_icmp_checksum(buf: bytearray) -> None:
    from pytcp import native

    buf[22:24] = b"\0\0"
    buf[22:24] = native.checksum(bytes(buf[20:])).to_bytes(2, "big")


def stack_one_input(data: bytes) -> None:
    """Byte 0: the configuration profile. Then events until the input ends: raw bytes as an
    IPv4 datagram, a crafted TCP segment to a connection/listener/closed port, a fragment,
    an ICMP error, a batch, time passing (timers), or an application call on B."""
    inp = Input(data)
    world = World(inp.u8())
    world.check_invariants()
    for _ in range(64):
        if inp.left <= 0:
            break
        op = inp.below(8)
        if op == 0:
            world.b.receive_packet(world.now, inp.take(inp.uint(2) % 1600))
        elif op in (1, 2):
            world.b.receive_packet(world.now, world.crafted_tcp(inp))
        elif op == 3:
            world.b.receive_packet(world.now, world.crafted_fragment(inp))
        elif op == 4:
            world.b.receive_packet(world.now, world.crafted_icmp(inp))
        elif op == 5:
            n = 1 + inp.below(4)
            world.b.receive_batch(world.now, [world.crafted_tcp(inp) for _ in range(n)])
        elif op == 6:
            world.now += (0.001, 0.05, 0.3, 1.5, 10.0, 70.0, 400.0, 3000.0)[inp.below(8)]
            world.a.handle_timers(world.now)
            world.b.handle_timers(world.now)
        else:
            world.app_call(inp)
        for pkt in world.b.pending_packets():  # B's answers to the fuzzer's packets
            world.check_output(pkt)
        world.b.pending_events()
        world.accept()
        world.check_invariants()
        if inp.below(4) == 0:
            world.shuttle(2)  # let the real peer see what B sends now and then
            world.check_invariants()


# ------------------------------------------------------------------------------ script

def script_one_input(data: bytes) -> None:
    """The input as a script's text (UTF-8, errors replaced): only ScriptSyntaxError."""
    text = data.decode("utf-8", errors="replace")
    try:
        parse_script(text, "fuzz.pkt")
    except ScriptSyntaxError:
        pass


TARGETS: dict[str, Callable[[bytes], None]] = {
    "wire": wire_one_input,
    "stack": stack_one_input,
    "script": script_one_input,
}
