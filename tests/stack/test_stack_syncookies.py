"""SYN cookies in the stack (RFC 4987 3.6, Linux tcp_syncookies=1), with the real engine in
virtual time: a flood fills the SYN queue, then a real client gets a cookie SYN-ACK and its
ACK creates the connection with the MSS, window scale and SACK of its SYN; a bogus or expired
cookie is answered with RST and counted."""

from __future__ import annotations

import hashlib
import random

from scapy.layers.inet import IP, TCP  # type: ignore[import-untyped]
from test_stack_tcp import A_ADDR, B_ADDR, Wire, transfer

from pytcp.drops import DropReason
from pytcp.stack import AcceptReady, Stack, StackConfig
from pytcp.tcp.config import TcpConfig
from pytcp.tcp.events import Connected
from pytcp.tcp.syncookie import SynCookies
from pytcp.wire.tcp import RST

SPOOFED = "10.1.0.77"  # an address nobody on the wire owns: its SYN-ACKs are lost


def stacks(client_tcp: TcpConfig | None = None, client_mtu: int = 1500,
           **server_cfg: object) -> tuple[Stack, Stack]:
    a = Stack(A_ADDR, now=0.0, config=StackConfig(mtu=client_mtu), secret=b"a" * 16,
              rng=random.Random(1), tcp_config=client_tcp)
    b = Stack(B_ADDR, now=0.0, config=StackConfig(**server_cfg),  # type: ignore[arg-type]
              secret=b"b" * 16, rng=random.Random(2))
    return a, b


def flood(b: Stack, now: float, n: int, port: int = 80) -> None:
    for i in range(n):
        b.receive_packet(now, bytes(IP(src=SPOOFED, dst=B_ADDR) /
                                    TCP(sport=20000 + i, dport=port, seq=i * 7919, flags="S",
                                        options=[("MSS", 1460)])))


def test_flood_fills_the_syn_queue_then_a_cookie_connection_carries_1mb() -> None:
    a, b = stacks()
    lst = b.listen(80, syn_backlog=4)
    flood(b, 0.0, 10)
    assert lst.syn_queue == 4
    assert b.stats["syncookies_sent"] == 6  # the SYNs beyond the queue: cookies, no state
    assert len(b.connections()) == 4
    w = Wire(a, b)
    w.run_until(lambda: True)
    client = a.connect(w.now, B_ADDR, 80)
    w.run_until(lambda: (lst, AcceptReady()) in w.events)
    assert b.stats["syncookies_sent"] == 7 and b.stats["syncookies_validated"] == 1
    server = lst.accept()
    assert server is not None and (client, Connected()) in w.events
    assert server.key.remote_port == client.key.local_port
    srv, cli = server.conn, client.conn
    # The cookie's ISN is the server's ISS; what the SYN offered survived the round trip.
    assert srv.iss == (cli.irs) and srv.peer_mss == 1460
    assert srv.ts_ok and cli.ts_ok and srv.sack_ok and cli.sack_ok
    assert srv.ws_ok and srv.snd_wscale == cli.rcv_wscale and cli.snd_wscale == srv.rcv_wscale
    data = random.Random(5).randbytes(1 << 20)
    got = transfer(w, client, server, data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    back = transfer(w, server, client, data[:300_000])
    assert back == data[:300_000]
    assert b.drops[DropReason.SYNCOOKIE_INVALID] == 0


def test_cookie_without_timestamps_keeps_only_the_mss() -> None:
    # Client MTU 1400 -> MSS 1360, encoded as the table's 1300; no TS: no WS, no SACK.
    a, b = stacks(client_tcp=TcpConfig(timestamps=False), client_mtu=1400, syncookies=2)
    lst = b.listen(80)
    w = Wire(a, b)
    client = a.connect(0.0, B_ADDR, 80)
    w.run_until(lambda: (lst, AcceptReady()) in w.events)
    server = lst.accept()
    assert server is not None
    srv = server.conn
    assert srv.peer_mss == 1300 and srv.snd_mss == 1300
    assert not srv.ts_ok and not srv.ws_ok and not srv.sack_ok
    assert not client.conn.ws_ok and not client.conn.sack_ok
    data = random.Random(6).randbytes(200_000)
    assert transfer(w, client, server, data) == data
    assert b.stats["syncookies_validated"] == 1 and lst.syn_queue == 0


def test_bogus_ack_is_rejected_counted_and_reset() -> None:
    a, b = stacks()
    b.listen(80, syn_backlog=1)
    flood(b, 0.0, 3)
    b.pending_packets()
    b.receive_packet(1.0, bytes(IP(src=SPOOFED, dst=B_ADDR) /
                                TCP(sport=31000, dport=80, seq=5, ack=123456, flags="A")))
    [rst] = [IP(bytes(p)) for p in b.pending_packets()]
    assert int(rst[TCP].flags) == RST and rst[TCP].seq == 123456
    assert b.stats["syncookies_rejected"] == 1
    assert b.drops[DropReason.SYNCOOKIE_INVALID] == 1
    assert len(b.connections()) == 1  # only the one queued SYN


def test_ack_without_recent_cookies_is_a_plain_no_socket_rst() -> None:
    _, b = stacks()
    b.listen(80)
    b.receive_packet(1.0, bytes(IP(src=SPOOFED, dst=B_ADDR) /
                                TCP(sport=31000, dport=80, seq=5, ack=123456, flags="A")))
    assert b.stats["syncookies_rejected"] == 0 and b.drops[DropReason.NO_SOCKET] == 1
    assert len(b.pending_packets()) == 1


def test_an_expired_cookie_is_rejected() -> None:
    _, b = stacks(syncookies=2)
    b.listen(80)
    b.receive_packet(0.0, bytes(IP(src=SPOOFED, dst=B_ADDR) /
                                TCP(sport=31000, dport=80, seq=999, flags="S",
                                    options=[("MSS", 1460)])))
    [synack] = [IP(bytes(p)) for p in b.pending_packets()]
    assert synack[TCP].flags == "SA" and b.connections() == []
    cookie = synack[TCP].seq
    ack = bytes(IP(src=SPOOFED, dst=B_ADDR) /
                TCP(sport=31000, dport=80, seq=1000, ack=cookie + 1, flags="A"))
    b.receive_packet(120.0, ack)  # two counter periods later
    assert b.stats["syncookies_rejected"] == 1 and b.connections() == []
    b.receive_packet(119.0, ack)  # within the validity (the clock is only an argument)
    assert b.stats["syncookies_validated"] == 1 and len(b.connections()) == 1


def test_the_cookie_is_the_codecs() -> None:
    # The stack's cookie ISN checks with a codec keyed by the same secret (white box).
    _, b = stacks(syncookies=2)
    b.listen(80)
    b.receive_packet(5.0, bytes(IP(src=SPOOFED, dst=B_ADDR) /
                                TCP(sport=31001, dport=80, seq=42, flags="S",
                                    options=[("MSS", 1440)])))
    [synack] = [IP(bytes(p)) for p in b.pending_packets()]
    sc = SynCookies(b"b" * 16)
    assert sc.check(5.0, b.addr, 80, 0x0A01004D, 31001, 42, synack[TCP].seq) == 1440
    assert SynCookies(b"c" * 16).check(5.0, b.addr, 80, 0x0A01004D, 31001, 42,
                                       synack[TCP].seq) is None


def test_accept_queue_full_drops_the_cookie_ack() -> None:
    a, b = stacks(syncookies=2)
    lst = b.listen(80, backlog=1)
    b.receive_packet(0.0, bytes(IP(src=SPOOFED, dst=B_ADDR) /
                                TCP(sport=31000, dport=80, seq=999, flags="S")))
    [synack] = [IP(bytes(p)) for p in b.pending_packets()]
    w = Wire(a, b)
    c1 = a.connect(0.0, B_ADDR, 80)
    w.run_until(lambda: (lst, AcceptReady()) in w.events)
    assert lst.accept_queue == 1 and str(c1.conn.state) == "ESTABLISHED"
    c2 = a.connect(w.now, B_ADDR, 80)
    w.step()  # SYN: dropped, the accept queue is full
    assert b.drops[DropReason.LISTEN_OVERFLOW] == 1 and str(c2.conn.state) == "SYN-SENT"
    n = len(b.connections())
    b.pending_packets()
    b.receive_packet(w.now, bytes(IP(src=SPOOFED, dst=B_ADDR) /
                                  TCP(sport=31000, dport=80, seq=1000,
                                      ack=synack[TCP].seq + 1, flags="A")))
    # A valid cookie, but no room: dropped without a RST (the peer retransmits), as Linux.
    assert b.drops[DropReason.LISTEN_OVERFLOW] == 2 and len(b.connections()) == n
    assert b.pending_packets() == [] and b.stats["syncookies_rejected"] == 0


def test_data_on_the_cookie_ack_is_delivered() -> None:
    _, b = stacks(syncookies=2)
    lst = b.listen(80)
    b.receive_packet(0.0, bytes(IP(src=SPOOFED, dst=B_ADDR) /
                                TCP(sport=31002, dport=80, seq=7000, flags="S",
                                    options=[("MSS", 1300), ("SAckOK", b""),
                                             ("Timestamp", (555, 0)), ("WScale", 2)])))
    [synack] = [IP(bytes(p)) for p in b.pending_packets()]
    opts = dict(synack[TCP].options)
    assert opts["MSS"] == 1460 and opts["WScale"] == 7 and "SAckOK" in opts
    tsval, tsecr = opts["Timestamp"]
    assert tsecr == 555 and tsval & 0x3F == 0x10 | 2  # SACK bit + the peer's shift 2
    b.receive_packet(0.05, bytes(IP(src=SPOOFED, dst=B_ADDR) /
                                 TCP(sport=31002, dport=80, seq=7001, ack=synack[TCP].seq + 1,
                                     flags="PA", window=1000,
                                     options=[("Timestamp", (556, tsval))]) / b"hello"))
    assert b.stats["syncookies_validated"] == 1
    server = lst.accept()
    assert server is not None
    assert server.receive(0.05) == b"hello"
    srv = server.conn
    assert srv.peer_mss == 1300 and srv.snd_wscale == 2 and srv.sack_ok and srv.ts_ok
    assert srv.snd_wnd == 1000 << 2
    [ack] = [IP(bytes(p)) for p in b.pending_packets()]
    assert ack[TCP].ack == 7001 + 5 and dict(ack[TCP].options)["Timestamp"][1] == 556
