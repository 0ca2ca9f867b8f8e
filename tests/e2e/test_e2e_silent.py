"""Peers that go silent or slow (issue 7 items 4 and 8), against ``pytcp up`` on its TUN.

- A silent zero-window peer: a raw-socket client from an address the kernel does not own
  (so nothing answers for it) completes the handshake, asks for a response, advertises a
  zero window and then answers nothing, not even the probes. The connection must be gone
  (RST sent, no longer on the status page) within a bound set by the services' timeouts.
- Slowloris: many clients dribble a request byte by byte and never finish it; a normal curl
  must still be served at once, and every slow client is cut off by the request timeout (408).
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from tests.e2e.conftest import STACK_ADDR, Data, StartPytcp, curl, file_sha256, sha256
from tests.e2e.rawpeer import ACK, PEER_ADDR, RST, RawPeer
from tools.netns import Netns

HTTP, ECHO = 80, 7
TIMEOUT = 2.0  # --idle-timeout and so the send timeout too


def status(ns: Netns) -> dict:  # type: ignore[type-arg]
    res = curl(ns, f"http://{STACK_ADDR}/status.json", timeout=10)
    assert res.returncode == 0, res.stderr.decode()
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def peer_connections(ns: Netns, sport: int) -> list[dict]:  # type: ignore[type-arg]
    return [c for c in status(ns)["connections"] if c["remote"] == f"{PEER_ADDR}:{sport}"]


@pytest.mark.parametrize(("dport", "request_bytes"), [
    (HTTP, b"GET /status.json HTTP/1.1\r\nHost: x\r\n\r\n"),
    (ECHO, b"hello, is anybody there?\n" * 40),
], ids=["http", "echo"])
def test_silent_zero_window_peer_is_gone_within_the_bound(
        netns: Netns, start_pytcp: StartPytcp, dport: int, request_bytes: bytes) -> None:
    start_pytcp(netns, "--http", str(HTTP), "--echo", str(ECHO),
                "--idle-timeout", str(TIMEOUT))
    peer = RawPeer(netns)
    try:
        sport, isn = 40123, 777_000
        synack = peer.handshake(sport, dport, isn)
        srv_next = (synack.seq + 1) % 2**32
        assert peer_connections(netns, sport), "the connection is not established"
        t0 = time.monotonic()
        # The request, and from now on a zero window; then silence.
        peer.send_tcp(sport, dport, isn + 1, srv_next, flags="PA", payload=request_bytes,
                      window=0)
        ack = peer.expect_tcp(dport, sport, timeout=3.0,
                              want=lambda t: t.ack == (isn + 1 + len(request_bytes)) % 2**32)
        assert ack is not None, "the request was not acknowledged"
        rst = peer.expect_tcp(dport, sport, timeout=TIMEOUT + 6.0,
                              want=lambda t: bool(int(t.flags) & RST))
        elapsed = time.monotonic() - t0
        assert rst is not None, "the silent peer was not dropped"
        print(f"silent zero-window peer on port {dport}: RST after {elapsed:.2f} s")
        assert TIMEOUT * 0.75 <= elapsed <= TIMEOUT + 6.0, elapsed
        # The response never went out (window 0): only zero-window probes, SEQ = SND.UNA - 1.
        from_stack = [p for p in peer.seen if p.haslayer("TCP") and p["TCP"].sport == dport
                      and p["TCP"].dport == sport]
        data = [p for p in from_stack if len(bytes(p["TCP"].payload)) > 0]
        assert data == [], [p.summary() for p in data]
        probes = [p for p in from_stack if int(p["TCP"].flags) == ACK
                  and p["TCP"].seq == (srv_next - 1) % 2**32]
        assert probes, "no zero-window probes"
        assert peer_connections(netns, sport) == []  # gone from the table
    finally:
        peer.close()


SLOW_CLIENTS = 60
REQUEST_TIMEOUT = 4.0
DRIBBLE = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000


def test_slowloris_does_not_stop_a_normal_client(
        netns: Netns, start_pytcp: StartPytcp, e2e_data: Data) -> None:
    start_pytcp(netns, "--http", str(HTTP), "--root", str(e2e_data.root),
                "--request-timeout", str(REQUEST_TIMEOUT))
    socks: list[socket.socket] = []
    answers: dict[int, bytes] = {}
    ended: dict[int, float] = {}
    stop = threading.Event()
    try:
        for _ in range(SLOW_CLIENTS):
            s = netns.socket()
            s.settimeout(5.0)
            s.connect((STACK_ADDR, HTTP))
            s.setblocking(False)
            socks.append(s)
        t0 = time.monotonic()

        def dribble() -> None:  # one byte per client every 0.25 s, bounded by the stop event
            i = 0
            while not stop.is_set() and i < len(DRIBBLE):
                for n, s in enumerate(socks):
                    if n in ended:
                        continue
                    try:
                        s.send(DRIBBLE[i:i + 1])
                    except OSError:
                        pass
                    try:
                        chunk = s.recv(4096)
                    except BlockingIOError:
                        continue
                    except OSError:
                        chunk = b""
                    answers[n] = answers.get(n, b"") + chunk
                    if not chunk:
                        ended[n] = time.monotonic() - t0
                i += 1
                if len(ended) == len(socks):
                    return
                stop.wait(0.25)

        worker = threading.Thread(target=dribble, daemon=True)
        worker.start()
        time.sleep(1.0)  # the slow requests are well under way
        started = time.monotonic()
        res = curl(netns, "-o", "-", f"http://{STACK_ADDR}/s/07.bin", timeout=20)
        took = time.monotonic() - started
        assert res.returncode == 0, res.stderr.decode()
        assert sha256(res.stdout) == sha256(e2e_data.small["/s/07.bin"])
        assert took < 2.0, f"a normal request took {took:.2f} s during the slowloris"
        print(f"slowloris ({SLOW_CLIENTS} clients): curl of a small file took {took:.3f} s")
        big = curl(netns, "-o", "-", f"http://{STACK_ADDR}/big", timeout=60)
        assert big.returncode == 0 and sha256(big.stdout) == file_sha256(e2e_data.root / "big")
        worker.join(REQUEST_TIMEOUT + 15.0)
        assert not worker.is_alive(), "slow clients still connected after the request timeout"
        assert len(ended) == SLOW_CLIENTS
        print(f"slowloris: slow clients cut off after {min(ended.values()):.2f}.."
              f"{max(ended.values()):.2f} s (request timeout {REQUEST_TIMEOUT} s)")
        for n in range(SLOW_CLIENTS):
            assert answers.get(n, b"").startswith(b"HTTP/1.1 408 "), answers.get(n, b"")[:80]
            assert ended[n] <= REQUEST_TIMEOUT + 6.0, ended[n]
    finally:
        stop.set()
        for s in socks:
            s.close()
