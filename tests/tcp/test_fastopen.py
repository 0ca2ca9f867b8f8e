"""TCP Fast Open (RFC 7413): cookies, keys and their rotation, the client cache and its
fallbacks, the options on the wire, and the engine's SYN data both ways."""

from __future__ import annotations

import pytest

from pytcp.stack import Stack
from pytcp.tcp.config import TcpConfig
from pytcp.tcp.fastopen import (
    ClientRequest,
    CookieCache,
    CookieJar,
    make_cookie,
    parse_key,
    server_decide,
    siphash24,
)
from pytcp.tcp.state import State
from pytcp.wire.ipv4 import ip_to_int, parse_ipv4
from pytcp.wire.tcp import (
    ACK,
    PSH,
    SYN,
    TcpOptions,
    build_ipv4_tcp,
    encode_options,
    parse_options,
    parse_tcp,
)

CLIENT = ip_to_int("192.0.2.1")
SERVER = ip_to_int("192.168.0.1")
KEY = parse_key("a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4")


def test_siphash_reference_vector() -> None:
    # SipHash-2-4 paper, appendix A: key 00..0f, message 00..0e.
    assert siphash24(bytes(range(16)), bytes(range(15))) == 0xA129CA6149BE45E5


def test_cookie_is_linux_compatible() -> None:
    # google/packetdrill's run_all.py: TFO_COOKIE for 192.0.2.1 -> 192.168.0.1 under
    # defaults.sh's key.
    assert make_cookie(KEY, CLIENT, SERVER).hex() == "3021b9d889017eeb"


def test_jar_backup_key_and_rotation() -> None:
    jar = CookieJar(KEY)
    old = jar.make(0.0, CLIENT, SERVER)
    assert jar.check(0.0, old, CLIENT, SERVER) == 1
    jar.set_keys(parse_key("01020304-05060708-090a0b0c-0d0e0f10"))
    assert jar.check(0.0, old, CLIENT, SERVER) == 2  # old key: valid, hand out a new one
    assert jar.check(0.0, old[:4], CLIENT, SERVER) == 0
    assert jar.check(0.0, old, CLIENT + 1, SERVER) == 0  # another client's cookie
    derived = CookieJar(secret=b"s" * 16, lifetime=100.0)
    c0 = derived.make(10.0, CLIENT, SERVER)
    assert derived.check(150.0, c0, CLIENT, SERVER) == 2  # one period later: backup
    assert derived.check(250.0, c0, CLIENT, SERVER) == 0  # two periods: expired


def test_server_decisions() -> None:
    jar = CookieJar(KEY)
    good = make_cookie(KEY, CLIENT, SERVER)
    kw = {"jar": jar, "now": 0.0, "client": CLIENT, "server": SERVER, "exp": False}
    req = server_decide(0x3, 5, 0, cookie=b"", syn_data=False, **kw)  # type: ignore[arg-type]
    assert req is not None and not req.accept_data and req.reply_cookie == good
    ok = server_decide(0x3, 5, 0, cookie=good, syn_data=True, **kw)  # type: ignore[arg-type]
    assert ok is not None and ok.accept_data and ok.reply_cookie is None
    bad = server_decide(0x3, 5, 0, cookie=b"\0" * 8, syn_data=True, **kw)  # type: ignore[arg-type]
    assert bad is not None and not bad.accept_data and bad.reply_cookie == good
    full = server_decide(0x3, 5, 5, cookie=good, syn_data=True, **kw)  # type: ignore[arg-type]
    assert full is not None and not full.accept_data and full.reply_cookie is None
    assert server_decide(0x1, 5, 0, cookie=good, syn_data=True, **kw) is None  # type: ignore[arg-type]
    assert server_decide(0x3, 0, 0, cookie=good, syn_data=True, **kw) is None  # type: ignore[arg-type]
    anyone = server_decide(0x203, 5, 0, cookie=None, syn_data=True, **kw)  # type: ignore[arg-type]
    assert anyone is not None and anyone.accept_data


def test_client_cache_fallbacks() -> None:
    cache = CookieCache(max_entries=2)
    assert cache.request(0.0, SERVER, 0x1, 1460) == ClientRequest(b"", False, 0)
    assert cache.request(0.0, SERVER, 0x0, 1460) is None
    # No answer to a kind-34 request: try the experimental option next time.
    cache.update(0.0, SERVER, mss=1460, cookie=None, exp=False, syn_lost=False, try_exp=1)
    assert cache.request(0.0, SERVER, 0x1, 1460) == ClientRequest(b"", True, 0)
    # No answer in kind 254 either: back to kind 34 for good (Linux: try_exp only grows).
    cache.update(0.0, SERVER, mss=1460, cookie=None, exp=False, syn_lost=False, try_exp=2)
    assert cache.request(0.0, SERVER, 0x1, 1460) == ClientRequest(b"", False, 0)
    cache.update(0.0, SERVER, mss=1460, cookie=None, exp=False, syn_lost=False, try_exp=1)
    assert cache.request(0.0, SERVER, 0x1, 1460) == ClientRequest(b"", False, 0)
    cache.update(0.0, SERVER, mss=940, cookie=b"abcdefgh", exp=False, syn_lost=False, try_exp=0)
    assert cache.request(0.0, SERVER, 0x1, 1460) == ClientRequest(b"abcdefgh", False, 900)
    # Repeated SYN-data losses: no Fast Open to this server for a while.
    cache.update(1.0, SERVER, mss=0, cookie=None, exp=False, syn_lost=True, try_exp=0)
    cache.update(2.0, SERVER, mss=0, cookie=None, exp=False, syn_lost=True, try_exp=0)
    assert cache.request(3.0, SERVER, 0x1, 1460) is None
    assert cache.request(1000.0, SERVER, 0x1, 1460) is not None
    # The no-cookie mode (0x4) sends no option even with a cookie cached (Linux).
    assert cache.request(1000.0, SERVER, 0x5, 1460) == ClientRequest(None, False, 900)
    for a in (1, 2, 3):
        cache.update(0.0, a, mss=1, cookie=None, exp=False, syn_lost=False, try_exp=0)
    assert len(cache) == 2  # bounded


def test_options_on_the_wire() -> None:
    req = encode_options(TcpOptions(mss=1460, sack_permitted=True, wscale=8, fastopen=b""))
    assert req.hex() == "020405b4010104020103030822020101"  # ..., FO, nop, nop
    exp = encode_options(TcpOptions(mss=1460, fastopen=b"12345678", fastopen_exp=True))
    assert exp[4:8] == bytes((254, 12, 0xF9, 0x89))
    opts, kinds = parse_options(exp)
    assert opts.fastopen == b"12345678" and opts.fastopen_exp and kinds == (2, 254)


def _syn(payload: bytes, opts: TcpOptions) -> bytes:
    return bytes(build_ipv4_tcp(src=CLIENT, dst=SERVER, sport=40000, dport=80, seq=1000,
                                ack=0, flags=SYN, window=65535, options=opts, payload=payload))


def test_stack_server_accepts_syn_data_with_a_valid_cookie() -> None:
    st = Stack(SERVER, now=0.0, tcp_config=TcpConfig(fastopen_key="a1a1a1a1-b2b2b2b2-"
                                                      "c3c3c3c3-d4d4d4d4"))
    lst = st.listen(80)
    lst.set_fastopen(4)
    st.receive_packet(0.0, _syn(b"hello", TcpOptions(mss=1460, fastopen=bytes.fromhex(
        "3021b9d889017eeb"))))
    [pkt] = st.pending_packets()
    ip = parse_ipv4(pkt)
    th = parse_tcp(ip.payload, ip.src, ip.dst)
    assert th.flags == SYN | ACK and th.ack == 1000 + 1 + 5  # the data is acknowledged
    h = lst.accept()  # usable before the handshake completes (RFC 7413 4.2.2)
    assert h is not None and h.conn.state is State.SYN_RECEIVED
    assert h.receive(0.0) == b"hello"
    h.send(0.0, b"world")
    [data] = st.pending_packets()
    ip = parse_ipv4(data)
    assert bytes(parse_tcp(ip.payload, ip.src, ip.dst).payload) == b"world"


def test_stack_server_answers_a_cookie_request_and_refuses_a_bad_cookie() -> None:
    st = Stack(SERVER, now=0.0, tcp_config=TcpConfig(fastopen_key="a1a1a1a1-b2b2b2b2-"
                                                      "c3c3c3c3-d4d4d4d4"))
    st.listen(80).set_fastopen(4)
    st.receive_packet(0.0, _syn(b"hello", TcpOptions(mss=1460, fastopen=b"\0" * 8)))
    [pkt] = st.pending_packets()
    ip = parse_ipv4(pkt)
    th = parse_tcp(ip.payload, ip.src, ip.dst)
    assert th.ack == 1001  # the data is not accepted: normal handshake (RFC 7413 4.2.2)
    assert th.options.fastopen == bytes.fromhex("3021b9d889017eeb")  # a valid cookie


def test_stack_client_learns_the_cookie_then_sends_data_in_the_syn() -> None:
    st = Stack(CLIENT, now=0.0)
    h = st.connect(0.0, SERVER, 80, fastopen=True, data=b"x" * 100)
    [syn] = st.pending_packets()
    ip = parse_ipv4(syn)
    th = parse_tcp(ip.payload, ip.src, ip.dst)
    assert th.options.fastopen == b"" and not th.payload and h.fastopen_sent == 0
    synack = build_ipv4_tcp(src=SERVER, dst=CLIENT, sport=80, dport=h.key.local_port, seq=5,
                            ack=th.seq + 1, flags=SYN | ACK, window=65535,
                            options=TcpOptions(mss=1200, fastopen=b"COOKIE12"))
    st.receive_packet(0.01, synack)
    st.pending_packets()
    h2 = st.connect(1.0, SERVER, 80, fastopen=True, data=b"y" * 5000)
    [syn2] = st.pending_packets()
    ip = parse_ipv4(syn2)
    th2 = parse_tcp(ip.payload, ip.src, ip.dst)
    assert th2.options.fastopen == b"COOKIE12"
    assert len(th2.payload) == h2.fastopen_sent == 1200 - 40  # cached MSS - option room


@pytest.mark.parametrize("mask", [0x1, 0x5])
def test_client_without_cookie_no_cookie_mode(mask: int) -> None:
    st = Stack(CLIENT, now=0.0, tcp_config=TcpConfig(fastopen=mask))
    h = st.connect(0.0, SERVER, 80, fastopen=True, data=b"z" * 10)
    [syn] = st.pending_packets()
    ip = parse_ipv4(syn)
    th = parse_tcp(ip.payload, ip.src, ip.dst)
    if mask & 0x4:  # TFO_CLIENT_NO_COOKIE: data, no option
        assert bytes(th.payload) == b"z" * 10 and th.options.fastopen is None
    else:
        assert not th.payload and th.options.fastopen == b"" and h.fastopen_sent == 0


@pytest.mark.parametrize("bad", [b"\x11\x22", b"\x11\x22\x33", b"\x01" * 18])
def test_client_ignores_a_cookie_of_bad_length(bad: bytes) -> None:
    # RFC 7413 4.1.1: 4 to 16 bytes (Linux: and an even length); another is not cached.
    st = Stack(CLIENT, now=0.0)
    st.fastopen_cache.update(0.0, SERVER, mss=1460, cookie=b"GOODCOOK", exp=False,
                             syn_lost=False, try_exp=0)
    h = st.connect(0.0, SERVER, 80, fastopen=True, data=b"x" * 100)
    [syn] = st.pending_packets()
    ip = parse_ipv4(syn)
    th = parse_tcp(ip.payload, ip.src, ip.dst)
    assert th.options.fastopen == b"GOODCOOK" and len(th.payload) == 100
    synack = build_ipv4_tcp(src=SERVER, dst=CLIENT, sport=80, dport=h.key.local_port, seq=5,
                            ack=th.seq + 101, flags=SYN | ACK, window=65535,
                            options=TcpOptions(mss=940, fastopen=bad))
    st.receive_packet(0.01, synack)
    e = st.fastopen_cache.get(SERVER)
    assert e is not None and e.cookie == b"GOODCOOK" and e.mss == 940


def test_client_resends_unacked_syn_data_alone_then_new_data() -> None:
    # RFC 7413 4.2.1 / Linux tcp_rcv_fastopen_synack: the SYN-ACK acknowledges the SYN only;
    # the SYN's data goes again at once as its own segment with PSH, new data after it.
    st = Stack(CLIENT, now=0.0, tcp_config=TcpConfig(timestamps=False))
    st.fastopen_cache.update(0.0, SERVER, mss=1460, cookie=b"GOODCOOK", exp=False,
                             syn_lost=False, try_exp=0)
    h = st.connect(0.0, SERVER, 80, fastopen=True, data=bytes(range(256)) * 12,
                   syn_only=False)
    [syn] = st.pending_packets()
    ip = parse_ipv4(syn)
    th = parse_tcp(ip.payload, ip.src, ip.dst)
    assert len(th.payload) == 1420 and h.fastopen_sent == 3072
    synack = build_ipv4_tcp(src=SERVER, dst=CLIENT, sport=80, dport=h.key.local_port, seq=5,
                            ack=th.seq + 1, flags=SYN | ACK, window=65535,
                            options=TcpOptions(mss=1460))
    st.receive_packet(0.01, synack)
    segs = []
    for pkt in st.pending_packets():
        ip = parse_ipv4(pkt)
        segs.append(parse_tcp(ip.payload, ip.src, ip.dst))
    first = segs[0]
    assert first.seq == th.seq + 1 and bytes(first.payload) == bytes(th.payload)
    assert first.flags & PSH and first.ack == 6
    assert sum(len(s.payload) for s in segs) == 3072  # then the rest, once
    assert h.conn.info().retransmits == 1


def test_stack_connect_cookie_request_ignores_the_cached_cookie() -> None:
    # Linux tcp_send_syn_data's fallback (the data cannot be taken): a cookie request, no data.
    st = Stack(CLIENT, now=0.0)
    st.fastopen_cache.update(0.0, SERVER, mss=1460, cookie=b"GOODCOOK", exp=False,
                             syn_lost=False, try_exp=0)
    h = st.connect(0.0, SERVER, 80, fastopen=True, data=b"x" * 10, cookie_request=True)
    [syn] = st.pending_packets()
    ip = parse_ipv4(syn)
    th = parse_tcp(ip.payload, ip.src, ip.dst)
    assert th.options.fastopen == b"" and not th.payload and h.fastopen_sent == 0
    e = st.fastopen_cache.get(SERVER)
    assert e is not None and e.cookie == b"GOODCOOK"  # the cache keeps it


def test_frag_needed_on_syn_data_resends_a_plain_syn_at_the_path_mss() -> None:
    # RFC 1191 / Linux tcp_simple_retransmit: the SYN with data was too big for the path.
    from pytcp.script.inject import build_icmp_error

    st = Stack(CLIENT, now=0.0, tcp_config=TcpConfig(timestamps=False))
    st.fastopen_cache.update(0.0, SERVER, mss=1460, cookie=b"GOODCOOK", exp=False,
                             syn_lost=False, try_exp=0)
    h = st.connect(0.0, SERVER, 80, fastopen=True, data=b"x" * 1000)
    [syn] = st.pending_packets()
    ip = parse_ipv4(syn)
    th = parse_tcp(ip.payload, ip.src, ip.dst)
    assert len(th.payload) == 1000
    st.receive_packet(0.01, build_icmp_error(src=SERVER, dst=CLIENT, icmp_type=3, code=4,
                                             mtu=800, sport=h.key.local_port, dport=80,
                                             seq=th.seq))
    [again] = st.pending_packets()
    ip = parse_ipv4(again)
    th2 = parse_tcp(ip.payload, ip.src, ip.dst)
    assert th2.flags == SYN and th2.seq == th.seq and not th2.payload
    assert th2.options.mss == 760 and th2.options.fastopen is None


def _fo_server_child(window: int, ts: tuple[int, int] | None = None,
                     **cfg: object) -> tuple[Stack, object, int]:
    """A Fast Open child (SYN data accepted, SYN-ACK unacknowledged) whose client offered
    ``window`` in its SYN and an MSS of 1000; returns the stack, the handle and our ISS."""
    from pytcp.stack import StackConfig

    st = Stack(SERVER, now=0.0, config=StackConfig(gso=bool(cfg)),
               tcp_config=TcpConfig(fastopen_key="a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4")
               .replace(**cfg))
    lst = st.listen(80)
    lst.set_fastopen(4)
    syn = build_ipv4_tcp(src=CLIENT, dst=SERVER, sport=40000, dport=80, seq=1000, ack=0,
                         flags=SYN, window=window, payload=b"hello",
                         options=TcpOptions(mss=1000, sack_permitted=True, timestamp=ts,
                                            fastopen=bytes.fromhex("3021b9d889017eeb")))
    st.receive_packet(0.0, bytes(syn))
    [synack] = st.pending_packets()
    ip = parse_ipv4(synack)
    iss = parse_tcp(ip.payload, ip.src, ip.dst).seq
    h = lst.accept()
    assert h is not None and h.conn.state is State.SYN_RECEIVED
    return st, h, iss


def _sent(st: Stack) -> list[tuple[int, int, int]]:
    out = []
    for pkt in st.pending_packets():
        ip = parse_ipv4(pkt)
        th = parse_tcp(ip.payload, ip.src, ip.dst, verify_checksum=False)  # (GSO: partial)
        out.append((th.seq, len(th.payload), th.flags))
    return out


def test_fast_open_first_flight_is_the_whole_window_after_the_synack() -> None:
    # RFC 7413 4.2.2: the server sends before its SYN-ACK is acknowledged. The SYN-ACK is no
    # data in flight (Linux never puts it in packets_out) and the window the SYN offered
    # starts after it (Linux's child starts with SND.UNA = ISS + 1): with an initial window
    # of 10 segments and a 10000-byte window, all 10 segments leave.
    st, h, iss = _fo_server_child(10000)
    assert h.send(0.01, bytes(15000)) == 15000  # type: ignore[attr-defined]
    segs = _sent(st)
    assert [(s - iss, n) for s, n, _f in segs] == [(1 + 1000 * i, 1000) for i in range(10)]
    # With TSO sized as Linux's (no RTT sample yet, so no pacing bound): two packets of half
    # the window each (tcp_cwnd_test), each with PSH.
    st, h, iss = _fo_server_child(10000, max_segment_payload=65000, tso_autosize=True)
    assert h.send(0.01, bytes(15000)) == 15000  # type: ignore[attr-defined]
    assert [(s - iss, n, f & PSH) for s, n, f in _sent(st)] == [(1, 5000, PSH),
                                                                (5001, 5000, PSH)]


def test_ack_completing_a_fast_open_handshake_is_processed_as_in_established() -> None:
    # RFC 9293 3.10.7.4 (SYN-RECEIVED): "enter ESTABLISHED state and continue processing":
    # the ACK of the SYN-ACK that SACKs data the child sent (RFC 7413 4.2.2) starts loss
    # recovery at once (Linux tcp_ack on its child), resending the first segments.
    st, h, iss = _fo_server_child(65535)
    h.send(0.01, bytes(10000))  # type: ignore[attr-defined]
    assert len(_sent(st)) == 10
    ack = build_ipv4_tcp(src=CLIENT, dst=SERVER, sport=40000, dport=80, seq=1006,
                         ack=(iss + 1) & 0xFFFFFFFF, flags=ACK, window=65535,
                         options=TcpOptions(sack_blocks=(((iss + 2001) & 0xFFFFFFFF,
                                                          (iss + 5001) & 0xFFFFFFFF),)))
    st.receive_packet(0.02, bytes(ack))
    assert h.conn.state is State.ESTABLISHED  # type: ignore[attr-defined]
    resent = _sent(st)
    assert resent and resent[0][0] - iss == 1  # the hole below the SACKed data, at once


def test_ack_of_synack_and_data_gives_one_rtt_sample() -> None:
    # Linux takes the sample in tcp_ack and measures the SYN-ACK only without one: an ACK of
    # the SYN-ACK and of data is one RTT sample (RFC 6298 2.2/2.3), not two.
    st, h, iss = _fo_server_child(65535, ts=(100, 0))
    conn = h.conn  # type: ignore[attr-defined]
    h.send(0.01, bytes(3000))  # type: ignore[attr-defined]
    assert sum(n for _s, n, _f in _sent(st)) == 3000  # (MSS 988 with timestamps)
    assert conn._rtt.samples == 0
    tsval = conn._ts_val(0.01)
    ack = build_ipv4_tcp(src=CLIENT, dst=SERVER, sport=40000, dport=80, seq=1006,
                         ack=(iss + 3001) & 0xFFFFFFFF, flags=ACK, window=65535,
                         options=TcpOptions(timestamp=(101, tsval)))
    st.receive_packet(0.05, bytes(ack))
    assert conn.state is State.ESTABLISHED and conn.snd_una == (iss + 3001) & 0xFFFFFFFF
    assert conn._rtt.samples == 1
