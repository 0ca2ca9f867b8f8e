"""The end-to-end harness itself: namespaces come and go, and the crafted peer's packets reach
a TUN device and the replies written to it reach the peer (checked with a TUN this test opens,
so it needs none of pytcp's stack)."""

from __future__ import annotations

import fcntl
import os
import select
import socket
import struct
import subprocess

from scapy.layers.inet import IP, TCP

from tests.e2e.rawpeer import PEER_ADDR, STACK_ADDR, RawPeer
from tools.netns import Netns

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def test_namespace_is_created_with_lo_up_and_removed_with_its_processes() -> None:
    ns = Netns()
    name = ns.name
    try:
        assert os.path.exists(f"/run/netns/{name}")
        out = ns.run(["ip", "-o", "addr", "show", "dev", "lo"], timeout=10, check=True).stdout
        assert b"127.0.0.1/8" in out
        sleeper = ns.popen(["sleep", "60"])
    finally:
        ns.close()
    assert sleeper.poll() is not None, "a process started in the namespace outlived it"
    assert not os.path.exists(f"/run/netns/{name}")
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    assert name not in listed


def test_socket_opened_in_namespace_lives_there(netns: Netns) -> None:
    server = netns.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = netns.socket()
    client.settimeout(5)
    client.connect(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.sendall(b"inside")
    assert client.recv(16) == b"inside"
    for s in (client, conn, server):
        s.close()
    # The same port in this process's own namespace has no listener.
    outside = socket.socket()
    outside.settimeout(5)
    try:
        assert outside.connect_ex(("127.0.0.1", port)) != 0
    finally:
        outside.close()


def test_raw_peer_reaches_a_tun_and_reads_what_is_written_to_it(netns: Netns) -> None:
    with netns.entered():  # a TUN belongs to the namespace its /dev/net/tun was opened in
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", b"pytcp0", IFF_TUN | IFF_NO_PI))
        netns.ip("addr", "add", "10.77.0.1/24", "dev", "pytcp0")
        netns.ip("link", "set", "pytcp0", "up")
        peer = RawPeer(netns)
        try:
            sent = peer.send_tcp(40000, 80, 1000, flags="S", options=[("MSS", 1460)])
            got = b""
            for _ in range(50):  # the kernel may also emit IPv6 router solicitations etc.
                r, _, _ = select.select([fd], [], [], 0.1)
                if r:
                    got = os.read(fd, 65535)
                    if got[:1] == b"\x45":
                        break
            assert got == sent, "the crafted SYN did not arrive unchanged on the TUN"

            reply = bytes(IP(src=STACK_ADDR, dst=PEER_ADDR) /
                          TCP(sport=80, dport=40000, seq=5000, ack=1001, flags="SA"))
            os.write(fd, reply)
            seg = peer.expect_tcp(80, 40000, timeout=3.0)
            assert seg is not None, "the peer did not see the reply written to the TUN"
            assert (seg.seq, seg.ack, str(seg.flags)) == (5000, 1001, "SA")
            # The kernel itself never answers for 10.77.0.9 (forwarding off, not its address).
            r, _, _ = select.select([fd], [], [], 0.5)
            stray = [p for p in ([os.read(fd, 65535)] if r else []) if p[:1] == b"\x45"]
            assert stray == []
        finally:
            peer.close()
    finally:
        os.close(fd)
