"""MUST-42 (RFC 9293 3.9.1.1 / RFC 1122 4.2.2.18): a LISTEN may be issued on a local port
that already has connections in SYN-SENT and SYN-RECEIVED, and they go on undisturbed. The
stack keys connections by 4-tuple and listeners by port; here with the real engine, peers
played by scapy packets."""

from __future__ import annotations

import random

from scapy.layers.inet import IP, TCP  # type: ignore[import-untyped]

from pytcp.stack import AcceptReady, Stack, TcpHandle

US = "10.2.0.1"
B, C, D = "10.2.0.2", "10.2.0.3", "10.2.0.4"
PORT = 8080


def _out(s: Stack) -> list[IP]:
    return [IP(bytes(p)) for p in s.pending_packets()]


def _seg(src: str, sport: int, flags: str, seq: int, ack: int = 0) -> bytes:
    return bytes(IP(src=src, dst=US) / TCP(sport=sport, dport=PORT, seq=seq, ack=ack,
                                           flags=flags, window=65535,
                                           options=[("MSS", 1460)] if "S" in flags else []))


def test_listen_while_the_port_has_syn_sent_and_syn_received_connections() -> None:
    s = Stack(US, now=0.0, secret=b"m" * 16, rng=random.Random(3))

    # Connection 1: active open from port 8080 to C, then C's own SYN crosses ours
    # (simultaneous open): SYN-RECEIVED.
    c1 = s.connect(0.0, C, 9000, local_port=PORT)
    [syn1] = _out(s)
    assert syn1[TCP].flags == "S" and syn1[TCP].sport == PORT
    s.receive_packet(0.01, _seg(C, 9000, "S", 5000))
    [synack1] = _out(s)
    assert synack1[TCP].flags == "SA" and synack1[TCP].ack == 5001
    assert str(c1.state) == "SYN-RECEIVED"

    # Connection 2: active open from port 8080 to B: SYN-SENT.
    c2 = s.connect(0.02, B, 80, local_port=PORT)
    [syn2] = _out(s)
    assert syn2[TCP].flags == "S" and syn2[TCP].sport == PORT and syn2.dst == B
    assert str(c2.state) == "SYN-SENT"

    # MUST-42: LISTEN on the same port now succeeds.
    lst = s.listen(PORT)

    # A new peer's SYN goes to the listener (passive SYN-RECEIVED) ...
    s.receive_packet(0.03, _seg(D, 7000, "S", 100))
    [synack3] = _out(s)
    assert synack3[TCP].flags == "SA" and synack3.dst == D and synack3[TCP].ack == 101
    assert lst.pending == 1
    assert str(c1.state) == "SYN-RECEIVED" and str(c2.state) == "SYN-SENT"

    # ... while the SYN-ACK for connection 2 and the ACK for connection 1 reach their own
    # connections, not the listener.
    s.receive_packet(0.04, _seg(B, 80, "SA", 900, syn2[TCP].seq + 1))
    [ack2] = _out(s)
    assert ack2[TCP].flags == "A" and ack2[TCP].ack == 901 and ack2.dst == B
    assert str(c2.state) == "ESTABLISHED"
    s.receive_packet(0.05, _seg(C, 9000, "A", 5001, syn1[TCP].seq + 1))
    assert str(c1.state) == "ESTABLISHED"
    assert _out(s) == []
    assert lst.accept() is None and lst.pending == 1

    # The listener's connection completes and is the only one accepted.
    s.receive_packet(0.06, _seg(D, 7000, "A", 101, synack3[TCP].seq + 1))
    events = s.pending_events()
    assert (lst, AcceptReady()) in events
    h = lst.accept()
    assert isinstance(h, TcpHandle) and h.key.remote_port == 7000 and lst.accept() is None
    assert {c.key.remote_port for c in s.connections()} == {9000, 80, 7000}
    assert all(c.key.local_port == PORT for c in s.connections())

    # All three carry data independently.
    for i, c in enumerate((c1, c2, h)):
        c.send(0.07, bytes([i]) * 10)
    sent = _out(s)
    assert sorted((p.dst, bytes(p[TCP].payload)) for p in sent) == sorted(
        [(C, b"\x00" * 10), (B, b"\x01" * 10), (D, b"\x02" * 10)])
