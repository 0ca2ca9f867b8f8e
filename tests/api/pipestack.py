"""A stand-in stack for api tests: connections are in-memory byte pipes (no packets, no TCP).

It implements the part of the ``pytcp.stack.Stack`` contract the api uses (listen, connect,
handles with send/receive/shutdown/close/abort, pending_events, AcceptReady) with a bounded
receive buffer per side, so the transport's back-pressure, half-close, abort and refusal paths
can be tested alone and deterministically. Two ``PipeStack`` objects on one ``PipeNet`` reach
each other; each is driven by its own ``Runtime`` over a dummy link.
"""

from __future__ import annotations

import socket
from typing import Any, NamedTuple

from pytcp.tcp import events as ev
from pytcp.tcp.errors import TcpUsageError


class AcceptReady:
    """Same name as pytcp.stack.AcceptReady (the api dispatches on the event's class name)."""


class Key(NamedTuple):
    local_addr: int
    local_port: int
    remote_addr: int
    remote_port: int


class PipeConn:
    def __init__(self) -> None:
        self.state = "ESTABLISHED"
        self.rbuf = bytearray()
        self.fin_received = False

    @property
    def readable(self) -> bool:
        return bool(self.rbuf)

    @property
    def at_eof(self) -> bool:
        return self.fin_received and not self.rbuf


class PipeHandle:
    def __init__(self, stack: PipeStack, key: Key, capacity: int) -> None:
        self.stack = stack
        self.key = key
        self.conn = PipeConn()
        self.user_data: Any = None
        self.peer: PipeHandle | None = None
        self.capacity = capacity
        self.shut_wr = False
        self.dead = False
        self.blocked = False  # a send() was short: owe a SendSpaceAvailable

    def _event(self, e: object) -> None:
        self.stack.events.append((self, e))
        self.stack.net.kick(self.stack)

    def send(self, now: float, data: Any, push: bool = True) -> int:
        if self.dead or self.shut_wr:
            raise TcpUsageError("send after shutdown/close")
        peer = self.peer
        assert peer is not None
        if peer.dead:
            return len(data)  # the RST is on its way
        n = min(len(data), self.capacity - len(peer.conn.rbuf))
        if n < len(data):
            self.blocked = True
        if n > 0:
            peer.conn.rbuf += bytes(data[:n])
            peer._event(ev.DataAvailable())
        return n

    def receive(self, now: float, max_bytes: int = -1) -> bytes:
        # Data received before the connection ended stays readable.
        buf = self.conn.rbuf
        n = len(buf) if max_bytes < 0 else min(max_bytes, len(buf))
        data = bytes(buf[:n])
        del buf[:n]
        peer = self.peer
        if n and peer is not None and peer.blocked and not peer.dead:
            peer.blocked = False
            peer._event(ev.SendSpaceAvailable())
        return data

    def shutdown(self, now: float) -> None:
        if self.dead or self.shut_wr:
            raise TcpUsageError("already shut down")
        self.shut_wr = True
        peer = self.peer
        assert peer is not None
        if not peer.dead:
            peer.conn.fin_received = True
            peer._event(ev.EndOfStream())
        self._maybe_closed()

    def close(self, now: float) -> None:
        if self.dead:
            raise TcpUsageError("already closed")
        if self.conn.rbuf:
            self.abort(now)  # unread data: RST, as Linux
            return
        if not self.shut_wr:
            self.shutdown(now)
        self.conn.state = "CLOSED" if self.conn.fin_received else "FIN-WAIT-2"
        self._maybe_closed()

    def abort(self, now: float) -> None:
        if self.dead:
            raise TcpUsageError("already closed")
        self._die()
        peer = self.peer
        if peer is not None and not peer.dead:
            peer._event(ev.ConnectionReset())
            peer._die()

    def _die(self) -> None:
        self.dead = True
        self.conn.state = "CLOSED"
        self._event(ev.Closed())
        if self in self.stack.conns:
            self.stack.conns.remove(self)

    def _maybe_closed(self) -> None:
        peer = self.peer
        if peer is None or self.dead:
            return
        # Both directions shut: both sides reach CLOSED.
        if self.shut_wr and peer.shut_wr:
            for h in (self, peer):
                if not h.dead:
                    h._die()


class PipeListener:
    def __init__(self, stack: PipeStack, port: int, backlog: int) -> None:
        self.stack = stack
        self.port = port
        self.backlog = backlog
        self.user_data: Any = None
        self.queue: list[PipeHandle] = []
        self.closed = False

    def accept(self) -> PipeHandle | None:
        return self.queue.pop(0) if self.queue else None

    def close(self, now: float | None = None) -> None:
        self.closed = True
        self.stack.listeners_by_port.pop(self.port, None)


class PipeNet:
    def __init__(self) -> None:
        self.stacks: dict[int, PipeStack] = {}
        self.runtimes: dict[int, Any] = {}

    def kick(self, stack: PipeStack) -> None:
        rt = self.runtimes.get(stack.addr)
        if rt is not None:
            rt.kick()


class PipeStack:
    def __init__(self, addr: str, net: PipeNet, capacity: int = 64 * 1024) -> None:
        self.addr = int.from_bytes(socket.inet_aton(addr), "big")
        self.net = net
        net.stacks[self.addr] = self
        self.capacity = capacity
        self.events: list[tuple[Any, object]] = []
        self.conns: list[PipeHandle] = []
        self.listeners_by_port: dict[int, PipeListener] = {}
        self.next_port = 40000

    # network side: nothing travels as packets
    def receive_packet(self, now: float, packet: bytes) -> None: ...
    def receive_batch(self, now: float, packets: list[bytes], clock: Any = None) -> None: ...
    def handle_timers(self, now: float) -> None: ...
    def next_deadline(self) -> float | None: return None
    def pending_packets(self) -> list[bytes]: return []

    def pending_events(self) -> list[tuple[Any, object]]:
        out, self.events = self.events, []
        return out

    def connections(self) -> list[PipeHandle]:
        return list(self.conns)

    def listeners(self) -> list[PipeListener]:
        return list(self.listeners_by_port.values())

    def listen(self, port: int, backlog: int = 128) -> PipeListener:
        if port in self.listeners_by_port:
            raise OSError(98, "in use")
        lst = PipeListener(self, port, backlog)
        self.listeners_by_port[port] = lst
        return lst

    def connect(self, now: float, remote_addr: int | str, remote_port: int,
                local_port: int | None = None, *, tos: int = 0) -> PipeHandle:
        if isinstance(remote_addr, str):
            remote_addr = int.from_bytes(socket.inet_aton(remote_addr), "big")
        if local_port is None:
            self.next_port += 1
            local_port = self.next_port
        h = PipeHandle(self, Key(self.addr, local_port, remote_addr, remote_port), self.capacity)
        self.conns.append(h)
        remote = self.net.stacks.get(remote_addr)
        lst = remote.listeners_by_port.get(remote_port) if remote else None
        if remote is None or lst is None:
            h.conn.state = "CLOSED"
            h._event(ev.ConnectionRefused())
            h._die()
            return h
        p = PipeHandle(remote, Key(remote_addr, remote_port, self.addr, local_port),
                       remote.capacity)
        h.peer, p.peer = p, h
        remote.conns.append(p)
        lst.queue.append(p)
        remote.events.append((lst, AcceptReady()))
        remote.net.kick(remote)
        h._event(ev.Connected())
        return h
