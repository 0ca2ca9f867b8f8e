"""Blocking pytcp sockets against the Linux kernel's TCP over a real TUN device, inside a
network namespace this test creates and removes (root only; skipped otherwise)."""

from __future__ import annotations

import hashlib
import random
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytcp.api.sock import BackgroundRuntime
from tools.netns import Netns, environment_problem

PROBLEM = environment_problem()
pytestmark = pytest.mark.skipif(PROBLEM is not None, reason=PROBLEM or "")

STACK = "10.213.7.2"
HOST = "10.213.7.1"


@pytest.fixture
def tun(tmp_path: Path) -> Iterator[tuple[Netns, BackgroundRuntime, Path]]:
    pcap_path = tmp_path / "tun.pcapng"
    with Netns("pytcp-e1") as ns:
        with ns.entered():
            bg = BackgroundRuntime.on_tun(STACK, ifname=f"e1{secrets.token_hex(3)}",
                                          host_addr=f"{HOST}/24", pcap_path=str(pcap_path),
                                          seed=3)
        bg.start()
        try:
            yield ns, bg, pcap_path
        finally:
            with ns.entered():  # the TUN interface is removed from inside its namespace
                bg.close(graceful_timeout=0.5)


def _recv_all(sock: socket.socket) -> bytes:
    out = bytearray()
    for _ in range(100_000):
        data = sock.recv(65536)
        if not data:
            break
        out += data
    return bytes(out)


def test_kernel_client_and_kernel_server_against_pytcp_sockets(
        tun: tuple[Netns, BackgroundRuntime, Path]) -> None:
    ns, bg, pcap_path = tun
    payload = random.Random(5).randbytes(500_000)

    # 1. The kernel connects to a pytcp listening socket; pytcp echoes.
    server = bg.socket()
    server.settimeout(10)
    server.listen(7, 8)
    errors: list[BaseException] = []

    def echo() -> None:
        try:
            conn, peer = server.accept()
            assert peer[0] == HOST
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)
                conn.shutdown(socket.SHUT_WR)
        except BaseException as exc:  # noqa: BLE001 - checked below
            errors.append(exc)

    t = threading.Thread(target=echo, daemon=True)
    t.start()
    k = ns.socket()
    k.settimeout(10)
    k.connect((STACK, 7))

    def send() -> None:
        k.sendall(payload)
        k.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    got = _recv_all(k)
    sender.join(10)
    t.join(10)
    k.close()
    assert not errors, errors
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()

    # 2. pytcp connects to a kernel listening socket.
    ls = ns.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((HOST, 8000))
    ls.listen(4)
    ls.settimeout(10)
    c = bg.socket()
    c.settimeout(10)
    c.connect((HOST, 8000))
    kconn, kpeer = ls.accept()
    assert kpeer[0] == STACK
    c.sendall(b"hello kernel")
    kconn.settimeout(10)
    assert kconn.recv(100) == b"hello kernel"
    kconn.sendall(b"hello pytcp")
    assert c.recv(100) == b"hello pytcp"
    kconn.close()
    assert c.recv(100) == b""
    c.close()
    ls.close()
    server.close()

    # 3. The capture is well-formed with valid checksums.
    if shutil.which("tshark"):
        bg.pcap.flush()  # type: ignore[union-attr]
        bad = subprocess.run(
            ["tshark", "-r", str(pcap_path), "-o", "tcp.check_checksum:TRUE", "-o",
             "ip.check_checksum:TRUE", "-Y", "_ws.malformed || _ws.expert.severity >= error",
             "-T", "fields", "-e", "frame.number"],
            capture_output=True, text=True, timeout=60, check=True).stdout
        assert bad.strip() == ""
