"""MUST-48 (RFC 9293 3.9.1.1, RFC 1122 4.2.4.2): the application sets the IP TOS / Diffserv
byte of a connection's segments. Checked on the wire with scapy: the TOS byte and a valid IPv4
header checksum (the stack keeps a partial checksum of its per-connection header template)."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP  # type: ignore[import-untyped]

from tests.stack.test_stack_tcp import B_ADDR, Wire, connect_pair, pair


def _ip_ok(raw: bytes | bytearray) -> IP:
    """The packet as scapy reads it, after checking its IPv4 and TCP checksums."""
    p = IP(bytes(raw))
    got_ip, got_tcp = p.chksum, p[TCP].chksum
    del p.chksum
    del p[TCP].chksum
    q = IP(bytes(p))
    assert q.chksum == got_ip, "bad IPv4 header checksum"
    assert q[TCP].chksum == got_tcp, "bad TCP checksum"
    return q


def test_set_tos_marks_later_segments_with_valid_checksums() -> None:
    a, b = pair()
    w = Wire(a, b)
    client, _server = connect_pair(w)
    client.set_nodelay(True)  # every write leaves at once
    client.send(w.now, b"before")
    before = a.pending_packets()
    assert [_ip_ok(p).tos for p in before] == [0]
    client.set_tos(0x10)
    assert client.tos == 0x10
    client.send(w.now, b"x" * 3000)  # several segments, each with its own length and ident
    after = a.pending_packets()
    assert len(after) == 3
    for p in after:
        ip = _ip_ok(p)
        assert ip.tos == 0x10
        assert ip.flags == "DF" and ip.ttl == 64 and ip.dst == B_ADDR
    client.set_tos(0xB8)  # EF (DSCP 46)
    client.send(w.now, b"y")
    assert [_ip_ok(p).tos for p in a.pending_packets()] == [0xB8]


def test_connect_with_tos_marks_the_syn() -> None:
    a, _b = pair()
    h = a.connect(0.0, B_ADDR, 80, tos=0x28)
    [syn] = a.pending_packets()
    ip = _ip_ok(syn)
    assert ip.tos == 0x28 and ip[TCP].flags == "S"
    assert h.tos == 0x28


def test_accepted_connection_inherits_the_listener_tos() -> None:
    """As Linux: a connection accepted from a listener with IP_TOS set uses it, from the
    SYN-ACK on."""
    a, b = pair()
    lst = b.listen(80)
    lst.set_tos(0x10)
    a.connect(0.0, B_ADDR, 80)
    for p in a.pending_packets():
        b.receive_packet(0.0, p)
    [synack] = b.pending_packets()
    ip = _ip_ok(synack)
    assert ip[TCP].flags == "SA" and ip.tos == 0x10


def test_tos_out_of_range_raises() -> None:
    a, b = pair()
    w = Wire(a, b)
    client, _server = connect_pair(w)
    with pytest.raises(ValueError):
        client.set_tos(256)
    with pytest.raises(ValueError):
        b.listen(81).set_tos(-1)
    with pytest.raises(ValueError):
        a.connect(0.0, B_ADDR, 80, tos=300)
