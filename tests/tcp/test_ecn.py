"""ECN (RFC 3168): negotiation, ECT(0) on new data only, CE -> ECE until CWR, the sender's
once-per-window reduction, and the impairment stage's CE marking."""

from __future__ import annotations

from pytcp.link.impair import Impairment, mark_ce
from pytcp.stack import Stack
from pytcp.tcp.config import TcpConfig
from pytcp.tcp.ecn import CE, ECT0, Ecn
from pytcp.wire.ipv4 import ip_to_int, parse_ipv4
from pytcp.wire.tcp import ACK, CWR, ECE, NO_OPTIONS, SYN, TcpOptions, build_ipv4_tcp, parse_tcp

A = ip_to_int("10.0.0.1")
B = ip_to_int("10.0.0.2")


def test_negotiation_rules() -> None:
    client, server, off = Ecn(1), Ecn(2), Ecn(0)
    assert client.syn_flags() == ECE | CWR and server.syn_flags() == 0
    assert server.on_syn(SYN | ECE | CWR) == ECE and server.ok
    assert off.on_syn(SYN | ECE | CWR) == 0 and not off.ok
    assert Ecn(2).on_syn(SYN | ECE) == 0  # not an ECN-setup SYN (RFC 3168 6.1.1)
    client.on_synack(SYN | ACK | ECE)
    assert client.ok
    c2 = Ecn(1)
    c2.on_synack(SYN | ACK | ECE | CWR)  # both bits: a reflecting middlebox, not ECN
    assert not c2.ok


def test_receiver_echoes_until_cwr_and_sender_reduces_once_per_window() -> None:
    r = Ecn(2)
    r.on_syn(SYN | ECE | CWR)
    assert r.on_segment(CE, ACK, True) and r.ack_flags() == ECE and r.seen
    assert not r.on_segment(ECT0, ACK, True) and r.ack_flags() == ECE  # still echoing
    r.on_segment(ECT0, ACK | CWR, True)
    assert r.ack_flags() == 0
    s = Ecn(1)
    s.on_synack(SYN | ACK | ECE)
    assert s.on_ece(ack=100, snd_max=1000)
    assert s.data_flags() == CWR and s.data_flags() == 0
    assert not s.on_ece(ack=500, snd_max=2000)  # same window
    assert s.on_ece(ack=1000, snd_max=2000)


def _pkt(flags: int, seq: int, ack: int, payload: bytes = b"", tos: int = 0,
         opts: TcpOptions = NO_OPTIONS) -> bytes:
    return bytes(build_ipv4_tcp(src=B, dst=A, sport=5000, dport=80, seq=seq, ack=ack,
                                flags=flags, window=65535, options=opts, payload=payload,
                                tos=tos))


def _out(st: Stack) -> list:  # type: ignore[type-arg]
    res = []
    for p in st.pending_packets():
        ip = parse_ipv4(p)
        res.append((ip.tos & 3, parse_tcp(ip.payload, ip.src, ip.dst)))
    return res


def test_stack_marks_ect0_on_new_data_and_echoes_ce() -> None:
    st = Stack(A, now=0.0, tcp_config=TcpConfig(ecn=2))
    lst = st.listen(80)
    st.receive_packet(0.0, _pkt(SYN | ECE | CWR, 1000, 0, opts=TcpOptions(mss=1460)))
    [(ecn, synack)] = _out(st)
    assert synack.flags == SYN | ACK | ECE and ecn == 0  # never ECT on a SYN-ACK
    st.receive_packet(0.1, _pkt(ACK, 1001, synack.seq + 1))
    h = lst.accept()
    assert h is not None and h.conn.ecn_ok
    h.send(0.1, b"d" * 100)
    [(ecn, data)] = _out(st)
    assert ecn == ECT0 and bytes(data.payload) == b"d" * 100  # RFC 3168 6.1.2
    # A CE-marked segment from the peer: ECE on our ACK at once, until CWR.
    st.receive_packet(0.2, _pkt(ACK, 1001, data.seq + 100, b"x" * 10, tos=CE))
    [(ecn, ack)] = _out(st)
    assert ack.flags & ECE and ecn == 0  # a pure ACK is never ECT
    st.receive_packet(0.3, _pkt(ACK | CWR, 1011, data.seq + 100, b"y" * 10, tos=ECT0))
    st.handle_timers(1.0)
    assert all(not t.flags & ECE for _, t in _out(st))


def test_stack_sender_reduces_on_ece_and_sets_cwr() -> None:
    st = Stack(A, now=0.0, tcp_config=TcpConfig(ecn=1))
    h = st.connect(0.0, B, 5000)
    [(_, syn)] = _out(st)
    assert syn.flags == SYN | ECE | CWR
    st.receive_packet(0.1, bytes(build_ipv4_tcp(
        src=B, dst=A, sport=5000, dport=h.key.local_port, seq=7000, ack=syn.seq + 1,
        flags=SYN | ACK | ECE, window=65535, options=TcpOptions(mss=1000))))
    _out(st)
    assert h.conn.ecn_ok
    h.send(0.1, b"a" * 4000)
    sent = _out(st)
    cwnd = h.info().cwnd
    st.receive_packet(0.2, bytes(build_ipv4_tcp(
        src=B, dst=A, sport=5000, dport=h.key.local_port, seq=7001,
        ack=sent[0][1].seq + 1000, flags=ACK | ECE, window=65535)))
    assert h.info().ssthresh < cwnd  # RFC 3168 6.1.2: reduced as for a loss
    h.send(0.2, b"b" * 100)
    later = [t for _, t in _out(st) if t.payload]
    assert later and later[0].flags & CWR


def test_impairment_marks_ect_packets_ce_and_drops_not_ect() -> None:
    ect = _pkt(ACK, 1, 1, b"z", tos=ECT0)
    q = parse_ipv4(mark_ce(ect))  # header checksum still right (parse verifies it)
    assert q.tos & 3 == CE
    imp = Impairment("ce=1")
    imp.submit(0.0, ect)
    imp.submit(0.0, _pkt(ACK, 1, 1, b"z"))
    out = imp.release(0.0)
    assert len(out) == 1 and parse_ipv4(out[0]).tos & 3 == CE
    assert imp.stats["ce_marked"] == 1 and imp.stats["lost"] == 1


def test_stack_window_probe_and_retransmission_are_not_ect() -> None:
    # RFC 3168 6.1.6: neither ECT nor CWR on a window probe (here the persist timer's probe of
    # a too-small window, which carries new data); 6.1.5: no ECT on a retransmission; CWR
    # waits for the next new data (6.1.2).
    st = Stack(A, now=0.0, tcp_config=TcpConfig(ecn=1))
    h = st.connect(0.0, B, 5000)
    [(_, syn)] = _out(st)
    st.receive_packet(0.1, bytes(build_ipv4_tcp(
        src=B, dst=A, sport=5000, dport=h.key.local_port, seq=7000, ack=syn.seq + 1,
        flags=SYN | ACK | ECE, window=65535, options=TcpOptions(mss=1000))))
    _out(st)
    h.send(0.1, b"a" * 1000)
    [(ect, first)] = [x for x in _out(st) if x[1].payload]
    assert ect == ECT0
    # RTO: the retransmission goes out not-ECT.
    st.handle_timers(2.0)
    rtx = [x for x in _out(st) if x[1].payload]
    assert [(e, t.seq) for e, t in rtx] == [(0, first.seq)]
    # ECE in the ACK, and a 100-byte window: the next write waits for the persist timer.
    st.receive_packet(2.1, bytes(build_ipv4_tcp(
        src=B, dst=A, sport=5000, dport=h.key.local_port, seq=7001, ack=first.seq + 1000,
        flags=ACK | ECE, window=100)))
    h.send(2.1, b"b" * 1000)
    assert not [x for x in _out(st) if x[1].payload]
    probes = []
    for i in range(1, 60):
        st.handle_timers(2.1 + i * 0.1)
        probes += [x for x in _out(st) if x[1].payload]
        if probes:
            break
    assert [(e, t.flags & CWR, len(t.payload)) for e, t in probes] == [(0, 0, 100)]
    st.receive_packet(8.0, bytes(build_ipv4_tcp(
        src=B, dst=A, sport=5000, dport=h.key.local_port, seq=7001,
        ack=first.seq + 1100, flags=ACK, window=65535)))
    rest = [x for x in _out(st) if x[1].payload]
    assert [(e, bool(t.flags & CWR), len(t.payload)) for e, t in rest] == [(ECT0, True, 900)]


def test_stack_ignores_ce_on_out_of_window_data_and_sends_no_ect_unless_negotiated() -> None:
    # RFC 3168 6.1.5: the receiver SHOULD ignore CE on an out-of-window data packet (a
    # spoofed one could otherwise halve the sender's window): the duplicate ACK it draws
    # carries no ECE, and no later ACK does.
    st = Stack(A, now=0.0, tcp_config=TcpConfig(ecn=2))
    lst = st.listen(80)
    st.receive_packet(0.0, _pkt(SYN | ECE | CWR, 1000, 0, opts=TcpOptions(mss=1460)))
    [(_, synack)] = _out(st)
    st.receive_packet(0.1, _pkt(ACK, 1001, synack.seq + 1))
    h = lst.accept()
    assert h is not None and h.conn.ecn_ok
    st.receive_packet(0.2, _pkt(ACK, 1001 + 1_000_000, synack.seq + 1, b"x" * 10, tos=CE))
    acks = _out(st)
    assert acks and all(not t.flags & ECE for _, t in acks)
    assert h.conn._ecn.ce_seen == 0
    st.receive_packet(0.3, _pkt(ACK, 1001, synack.seq + 1, b"y" * 10, tos=ECT0))
    st.handle_timers(1.0)
    assert all(not t.flags & ECE for _, t in _out(st))
    # RFC 3168 6.1.1: without negotiation (a plain SYN) no packet of ours is ECT.
    st2 = Stack(A, now=0.0, tcp_config=TcpConfig(ecn=2))
    lst2 = st2.listen(80)
    st2.receive_packet(0.0, _pkt(SYN, 1000, 0, opts=TcpOptions(mss=1460)))
    [(ecn, synack2)] = _out(st2)
    assert ecn == 0 and not synack2.flags & ECE
    st2.receive_packet(0.1, _pkt(ACK, 1001, synack2.seq + 1))
    h2 = lst2.accept()
    assert h2 is not None and not h2.conn.ecn_ok
    h2.send(0.1, b"d" * 100)
    assert [(e, len(t.payload)) for e, t in _out(st2)] == [(0, 100)]


def test_retransmitted_ecn_setup_syn_is_plain() -> None:
    # RFC 3168 6.1.1.1 (MAY; Linux tcp_ecn_clear_syn): an ECN-setup SYN that got no answer
    # is retransmitted without ECE and CWR (a middlebox may drop ECN-setup SYNs).
    st = Stack(A, now=0.0, tcp_config=TcpConfig(ecn=1))
    st.connect(0.0, B, 5000)
    [(ecn, syn)] = _out(st)
    assert syn.flags == SYN | ECE | CWR and ecn == 0
    st.handle_timers(1.5)
    [(ecn, again)] = _out(st)
    assert again.flags == SYN and again.seq == syn.seq and ecn == 0
