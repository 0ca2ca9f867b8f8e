"""Two Stacks wired back to back in virtual time with the real engine: handshake, a 1 MB
transfer with equal sha256, close, RST for a refused connect, and a lossy run."""

from __future__ import annotations

import hashlib
import random

import pytest

from pytcp.link.impair import Impairment
from pytcp.stack import AcceptReady, Stack, StackConfig, TcpHandle
from pytcp.tcp.config import TcpConfig
from pytcp.tcp.events import Closed, Connected, ConnectionRefused

A_ADDR = "10.1.0.1"
B_ADDR = "10.1.0.2"


class Wire:
    """Moves packets between two stacks; optional impairment per direction; virtual clock."""

    def __init__(self, a: Stack, b: Stack, imp_ab: Impairment | None = None,
                 imp_ba: Impairment | None = None) -> None:
        self.a, self.b = a, b
        self.imp = {id(a): imp_ab, id(b): imp_ba}
        self.now = 0.0
        self.events: list[tuple[object, object]] = []
        self.packets = 0

    def _move(self, src: Stack, dst: Stack) -> int:
        n = 0
        imp = self.imp[id(src)]
        pkts = src.pending_packets()
        if imp is not None:
            for p in pkts:
                imp.submit(self.now, p)
            pkts = imp.release(self.now)
        for p in pkts:
            dst.receive_packet(self.now, p)
            n += 1
        self.packets += n
        return n

    def step(self) -> bool:
        """Deliver everything pending; if nothing moved, jump to the next deadline."""
        moved = self._move(self.a, self.b) + self._move(self.b, self.a)
        self.events += self.a.pending_events() + self.b.pending_events()
        if moved:
            return True
        deadlines = [d for d in (self.a.next_deadline(), self.b.next_deadline(),
                                 *(i.next_deadline() for i in self.imp.values() if i))
                     if d is not None]
        if not deadlines:
            return False
        self.now = max(self.now, min(deadlines))
        self.a.handle_timers(self.now)
        self.b.handle_timers(self.now)
        return True

    def run_until(self, cond: object, max_steps: int = 100_000, max_time: float = 600.0) -> None:
        for _ in range(max_steps):
            if cond():  # type: ignore[operator]
                return
            if not self.step() or self.now > max_time:
                break
        assert cond(), "condition not reached"  # type: ignore[operator]


def pair(tcp: TcpConfig | None = None, **cfg: object) -> tuple[Stack, Stack]:
    a = Stack(A_ADDR, now=0.0, config=StackConfig(**cfg), secret=b"a" * 16,  # type: ignore[arg-type]
              rng=random.Random(1), tcp_config=tcp)
    b = Stack(B_ADDR, now=0.0, config=StackConfig(**cfg), secret=b"b" * 16,  # type: ignore[arg-type]
              rng=random.Random(2), tcp_config=tcp)
    return a, b


def connect_pair(w: Wire) -> tuple[TcpHandle, TcpHandle]:
    lst = w.b.listen(80)
    client = w.a.connect(w.now, B_ADDR, 80)
    w.run_until(lambda: (lst, AcceptReady()) in w.events)
    server = lst.accept()
    assert server is not None
    assert (client, Connected()) in w.events and (server, Connected()) in w.events
    assert str(client.conn.state) == "ESTABLISHED" == str(server.conn.state)
    return client, server


def transfer(w: Wire, client: TcpHandle, server: TcpHandle, data: bytes) -> bytes:
    sent = 0
    got = bytearray()
    def progress() -> bool:
        nonlocal sent
        if sent < len(data):
            sent += client.send(w.now, data[sent:sent + 65536])
        chunk = server.receive(w.now)
        got.extend(chunk)
        return len(got) >= len(data)
    w.run_until(progress, max_steps=200_000)
    return bytes(got)


def test_handshake_and_1mb_transfer_back_to_back() -> None:
    a, b = pair()
    w = Wire(a, b)
    client, server = connect_pair(w)
    assert client.key.remote_port == 80 and server.key.local_port == 80
    assert client.key.local_port == server.key.remote_port
    data = random.Random(42).randbytes(1 << 20)
    got = transfer(w, client, server, data)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    # orderly close both ways; both sides leave the table eventually (TIME-WAIT expires)
    client.close(w.now)
    w.run_until(lambda: server.conn.at_eof)
    server.close(w.now)
    w.run_until(lambda: (server, Closed()) in w.events and (client, Closed()) in w.events,
                max_time=w.now + 300)
    assert a.connections() == [] and b.connections() == []
    w.run_until(lambda: a.time_wait_count == 0, max_time=w.now + 300)  # 2*MSL passes
    assert a.stats["time_wait_entered"] == a.stats["time_wait_expired"] == 1
    assert a.stats["tx_packets"] > 700 and b.stats["rx_packets"] == a.stats["tx_packets"]


def test_connect_to_closed_port_is_refused() -> None:
    a, b = pair()
    w = Wire(a, b)
    client = a.connect(0.0, B_ADDR, 9)
    w.run_until(lambda: (client, ConnectionRefused()) in w.events)
    assert b.stats["rst_sent"] == 1
    w.run_until(lambda: (client, Closed()) in w.events)
    assert a.connections() == []


class SizeCheck(Wire):
    def __init__(self, a: Stack, b: Stack) -> None:
        super().__init__(a, b)
        self.sizes: list[int] = []

    def _move(self, src: Stack, dst: Stack) -> int:
        pkts = src.pending_packets()
        self.sizes += [len(p) for p in pkts]
        for p in pkts:
            dst.receive_packet(self.now, p)
        return len(pkts)


@pytest.mark.parametrize("gso", [False, True])
def test_engine_super_segments_cut_to_mtu_unless_gso(gso: bool) -> None:
    a, b = pair(TcpConfig(max_segment_payload=65536), mtu=1500, gso=gso)
    w = SizeCheck(a, b)
    client, server = connect_pair(w)
    data = random.Random(1).randbytes(500_000)
    got = transfer(w, client, server, data)
    assert got == data
    if gso:
        assert max(w.sizes) > 1500 and a.stats["gso_cut"] == 0
    else:
        assert max(w.sizes) <= 1500
        assert a.stats["gso_cut"] > 0


def test_transfer_survives_loss_and_reordering() -> None:
    a, b = pair()
    w = Wire(a, b, Impairment("loss=0.02,reorder=0.02,dup=0.01", random.Random(3)),
             Impairment("loss=0.02", random.Random(4)))
    client, server = connect_pair(w)
    data = random.Random(7).randbytes(300_000)
    got = transfer(w, client, server, data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


def test_icmp_unreachable_refuses_syn_sent_only_with_right_seq() -> None:
    from scapy.layers.inet import ICMP, IP  # type: ignore[import-untyped]

    from pytcp.drops import DropReason

    a, _ = pair()
    client = a.connect(0.0, B_ADDR, 80)
    [synpkt] = a.pending_packets()
    quote = bytearray(bytes(synpkt)[:28])
    quote[24:28] = ((client.conn.iss + 5000) & 0xFFFFFFFF).to_bytes(4, "big")  # blind guess
    a.receive_packet(0.1, bytes(IP(src=B_ADDR, dst=A_ADDR) / ICMP(type=3, code=3) / bytes(quote)))
    assert a.drops[DropReason.ICMP_IGNORED] == 1 and client.open
    a.receive_packet(0.2, bytes(IP(src=B_ADDR, dst=A_ADDR) / ICMP(type=3, code=3) /
                                bytes(synpkt)[:28]))
    assert (client, ConnectionRefused()) in a.pending_events()
    assert not client.open


def test_backlog_overflow_then_syn_retransmission_gets_in() -> None:
    from pytcp.drops import DropReason

    a, b = pair()
    w = Wire(a, b)
    lst = b.listen(80, backlog=1)
    c1 = a.connect(0.0, B_ADDR, 80)
    w.run_until(lambda: (lst, AcceptReady()) in w.events)
    c2 = a.connect(w.now, B_ADDR, 80)
    w.step()
    assert b.drops[DropReason.LISTEN_OVERFLOW] == 1  # dropped silently, no RST
    assert b.stats["rst_sent"] == 0 and str(c2.conn.state) == "SYN-SENT"
    s1 = lst.accept()
    assert s1 is not None and s1.key.remote_port == c1.key.local_port
    t_accept = w.now
    w.run_until(lambda: w.events.count((lst, AcceptReady())) == 2, max_time=10.0)
    assert (c2, Connected()) in w.events
    assert w.now >= t_accept + 0.9  # it took the SYN retransmission (initial RTO 1 s)
    s2 = lst.accept()
    assert s2 is not None and s2.key.remote_port == c2.key.local_port
    assert b.drops[DropReason.LISTEN_OVERFLOW] == 1


def test_connection_reset_in_the_accept_queue_stays_queued() -> None:
    # Linux keeps a child that dies in the accept queue (inet_csk_accept returns it);
    # accept(closed=True) hands it over CLOSED with its unread bytes, accept() skips it.
    from pytcp.tcp.events import ConnectionReset

    for closed in (True, False):
        a, b = pair()
        w = Wire(a, b)
        lst = b.listen(80, backlog=4)
        client = a.connect(0.0, B_ADDR, 80)
        w.run_until(lambda: (lst, AcceptReady()) in w.events)
        assert client.send(w.now, b"hello") == 5
        w.run_until(lambda: lst._queue[0].conn.bytes_readable == 5)
        server = lst._queue[0]
        client.abort(w.now)
        w.run_until(lambda: (server, ConnectionReset()) in w.events)
        assert not server.open and lst.accept_queue == 1
        got = lst.accept(closed=closed)
        assert lst.accept_queue == 0
        if closed:
            assert got is server and str(got.conn.state) == "CLOSED"
            assert got.receive(w.now) == b"hello"
        else:
            assert got is None


def test_keepalive_via_handle_arms_the_stack_timer() -> None:
    a, b = pair()
    w = Wire(a, b)
    client, server = connect_pair(w)
    assert a.next_deadline() is None or a.next_deadline() > 1000  # idle: nothing due soon
    client.set_keepalive(True, idle=10.0, interval=5.0, count=3, now=w.now)
    d = a.next_deadline()
    assert d is not None and d <= w.now + 10.0 + 1e-6
    before = b.stats["rx_packets"]
    t0 = w.now
    w.run_until(lambda: b.stats["rx_packets"] > before, max_time=t0 + 20.0)
    assert w.now >= t0 + 10.0 - 1e-6  # the probe went out after the idle time
    client.set_nodelay(True)
    assert str(client.state) == "ESTABLISHED"


def test_new_syn_reopens_a_four_tuple_in_time_wait() -> None:
    """The server closes first, so the server side sits in TIME-WAIT; the client reconnects
    from the same port at once (RFC 6191: newer timestamps) and gets a fresh connection."""
    a, b = pair()
    w = Wire(a, b)
    lst = b.listen(80)
    client = a.connect(0.0, B_ADDR, 80, local_port=40000)
    w.run_until(lambda: (lst, AcceptReady()) in w.events)
    server = lst.accept()
    assert server is not None
    server.close(w.now)
    w.run_until(lambda: client.conn.at_eof)
    client.close(w.now)
    w.run_until(lambda: (client, Closed()) in w.events)
    # The server's side is a compact TIME-WAIT entry now: out of the live table (its owner
    # was told Closed), still holding the 4-tuple.
    assert str(server.state) == "TIME-WAIT" and not server.open
    assert b.connections() == [] and b.time_wait_count == 1
    assert (server, Closed()) in w.events
    w.now += 1.0  # TS clock moves on
    again = a.connect(w.now, B_ADDR, 80, local_port=40000)
    w.run_until(lambda: w.events.count((lst, AcceptReady())) == 2, max_time=w.now + 0.5)
    assert (again, Connected()) in w.events
    assert b.stats["time_wait_reused"] == 1
    assert b.time_wait_count == 0 and str(server.state) == "CLOSED"  # the old one is gone
    new_server = lst.accept()
    assert new_server is not None and new_server is not server
    assert new_server.key == server.key


def test_hostile_segments_to_an_established_connection_never_raise() -> None:
    """Thousands of forged segments (random flags, sequence numbers near and far, options,
    payloads) for a live 4-tuple: every one is handled or counted, none raises."""
    from pytcp.drops import DropReason
    from pytcp.wire.ipv4 import ip_to_int
    from pytcp.wire.tcp import TcpOptions, build_ipv4_tcp

    rng = random.Random(99)
    a, b = pair()
    w = Wire(a, b)
    client, server = connect_pair(w)
    src, dst = ip_to_int(A_ADDR), ip_to_int(B_ADDR)
    sport, dport = server.key.remote_port, server.key.local_port
    handled = 0
    for i in range(3000):
        if not server.open:
            break
        handled += 1
        conn = server.conn
        base_seq = conn.rcv_nxt if rng.random() < 0.7 else rng.getrandbits(32)
        base_ack = conn.snd_nxt if rng.random() < 0.7 else rng.getrandbits(32)
        opts = rng.choice([
            TcpOptions(),
            TcpOptions(timestamp=(rng.getrandbits(32), rng.getrandbits(32))),
            TcpOptions(sack_blocks=((rng.getrandbits(32), rng.getrandbits(32)),)),
            TcpOptions(mss=rng.randrange(0, 70000) & 0xFFFF, wscale=rng.randrange(20),
                       sack_permitted=True),
        ])
        pkt = build_ipv4_tcp(src=src, dst=dst, sport=sport, dport=dport,
                             seq=(base_seq + rng.randrange(-70000, 70000)) & 0xFFFFFFFF,
                             ack=(base_ack + rng.randrange(-70000, 70000)) & 0xFFFFFFFF,
                             flags=rng.getrandbits(8), window=rng.getrandbits(16),
                             options=opts, payload=rng.randbytes(rng.choice([0, 0, 1, 100, 1400])),
                             urg=rng.getrandbits(16))
        b.receive_packet(w.now + i * 1e-4, bytes(pkt))
        b.pending_packets()
        b.pending_events()
        assert b.drops[DropReason.STACK_ERROR] == 0, f"segment {i} raised inside the engine"
    assert handled > 500  # the forgeries rarely hit the exact RST sequence number
    assert sum(b.drops.values()) > 0


def test_icmp_fragmentation_needed_lowers_the_segment_size() -> None:
    """RFC 1191: an ICMP 3/4 quoting our in-flight data, with next-hop MTU 1000, makes the
    stack resend that data in segments that fit 1000-byte datagrams."""
    from pytcp.wire.icmp import UNREACH_FRAG_NEEDED, build_dest_unreachable
    from pytcp.wire.ipv4 import PROTO_ICMP, build_ipv4_header, ip_to_int, parse_ipv4

    a, b = pair()
    w = Wire(a, b)
    client, _server = connect_pair(w)
    client.send(w.now, bytes(20_000))
    sent = a.pending_packets()
    assert max(len(p) for p in sent) == 1500
    icmp = build_dest_unreachable(UNREACH_FRAG_NEEDED, bytes(sent[0]), mtu=1000)
    pkt = bytearray(20 + len(icmp))
    build_ipv4_header(pkt, 0, src=ip_to_int(B_ADDR), dst=ip_to_int(A_ADDR), proto=PROTO_ICMP,
                      payload_len=len(icmp))
    pkt[20:] = icmp
    a.receive_packet(w.now, bytes(pkt))
    resent = a.pending_packets()
    assert resent, "nothing resent after fragmentation needed"
    assert max(parse_ipv4(memoryview(p)).total_length for p in resent) <= 1000


@pytest.mark.parametrize("batched", [True, False])
def test_a_burst_read_as_one_batch_is_answered_by_one_ack(batched: bool) -> None:
    """MUST-58/59 (RFC 1122 4.2.3.2): the runtime hands the stack every packet it read at
    once; all of them are processed before the receiver builds its ACK. Unbatched, the
    receiver ACKs each one (quickack at the start of a connection, as Linux does)."""
    from pytcp.wire.ipv4 import parse_ipv4
    from pytcp.wire.tcp import ACK, parse_tcp

    a, b = pair()
    w = Wire(a, b)
    client, server = connect_pair(w)
    client.set_nodelay(True)
    client.send(w.now, bytes(10 * 1448))
    burst = a.pending_packets()
    assert len(burst) == 10
    if batched:
        b.receive_batch(w.now, burst)
    else:
        for p in burst:
            b.receive_packet(w.now, p)
    acks = []
    for p in b.pending_packets():
        ip = parse_ipv4(memoryview(p))
        th = parse_tcp(ip.payload, ip.src, ip.dst)
        assert th.flags & ACK and not len(th.payload)
        acks.append(th.ack)
    end = (client.conn.iss + 1 + 10 * 1448) & 0xFFFFFFFF
    if batched:
        assert acks == [end]
    else:
        assert len(acks) == 10 and acks[-1] == end
    assert server.receive(w.now) == bytes(10 * 1448)


def test_output_of_a_slow_batch_is_built_at_the_clock_after_it() -> None:
    """A batch of ACKs that takes 50 ms to process (a loaded host): the data they release is
    stamped (TSval) and its tail loss probe armed (RFC 8985 7.2, PTO from the transmission)
    when it is built, after the batch, not at the batch's start. From the start, the probe
    was already due as the segments left and retransmitted the last one at once (the flaky
    test_echo_1mb_sha256_equal: a duplicate FIN dropped as out of window at the peer)."""
    from pytcp.wire.ipv4 import parse_ipv4
    from pytcp.wire.tcp import parse_tcp

    a, b = pair()
    w = Wire(a, b)
    client, _server = connect_pair(w)
    client.set_nodelay(True)
    assert client.send(w.now, bytes(20 * 1448)) == 20 * 1448
    first = a.pending_packets()
    assert 0 < len(first) < 20  # the initial window holds the rest back
    w.now += 0.001
    b.receive_batch(w.now, first)
    acks = b.pending_packets()
    assert acks
    w.now += 0.001
    start, done = w.now, w.now + 0.05
    a.receive_batch(start, acks, clock=lambda: done)
    released = a.pending_packets()
    assert released, "the ACKs released no new data"
    conn = client.conn
    tsvals = set()
    for p in released:
        ip = parse_ipv4(memoryview(p))
        th = parse_tcp(ip.payload, ip.src, ip.dst)
        assert len(th.payload) and th.options.timestamp is not None
        tsvals.add(th.options.timestamp[0])
    assert tsvals == {conn._ts_val(done)}
    tlp = conn._tlp_at
    assert tlp is not None and tlp > done, (tlp, start, done)
    assert a.next_deadline() is not None and a.next_deadline() > done  # type: ignore[operator]
