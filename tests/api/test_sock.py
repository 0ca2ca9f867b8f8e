"""Blocking sockets over two background-thread runtimes joined by an in-memory link."""

from __future__ import annotations

import hashlib
import random
import socket
import threading
import time
from pathlib import Path

import pytest

from pytcp.api.pair import ADDR_A, ADDR_B
from pytcp.api.sock import BackgroundRuntime, Socket


def _recv_all(s: Socket, limit: int = 1 << 24) -> bytes:
    out = bytearray()
    while len(out) < limit:
        data = s.recv(65536)
        if not data:
            break
        out += data
    return bytes(out)


def test_echo_through_blocking_sockets(hosts: tuple[BackgroundRuntime, BackgroundRuntime]) -> None:
    a, b = hosts
    payload = random.Random(4).randbytes(300_000)
    server = b.socket()
    server.settimeout(10)
    server.listen(7, 16)
    assert server.getsockname() == (ADDR_B, 7)
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            conn, peer = server.accept()
            assert peer[0] == ADDR_A
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)
                conn.shutdown(socket.SHUT_WR)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    with Socket.create(runtime=a) as c:
        c.settimeout(10)
        c.connect((ADDR_B, 7))
        assert c.getpeername() == (ADDR_B, 7)
        assert c.getsockname()[0] == ADDR_A
        def send_all_then_fin() -> None:
            c.sendall(payload)
            c.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send_all_then_fin, daemon=True)
        sender.start()
        got = _recv_all(c)
        sender.join(10)
    t.join(10)
    assert not errors, errors
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    server.close()


def test_recv_timeout_then_data_still_arrives(hosts: tuple[BackgroundRuntime, BackgroundRuntime]) -> None:
    a, b = hosts
    server = b.socket()
    server.listen(8, 4)
    c = a.socket()
    c.connect((ADDR_B, 8))
    server.settimeout(5)
    conn, _ = server.accept()
    c.settimeout(0.2)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        c.recv(10)
    assert 0.15 <= time.monotonic() - t0 < 2.0
    assert issubclass(socket.timeout, TimeoutError)
    conn.sendall(b"late data")
    c.settimeout(5)
    assert c.recv(100) == b"late data"  # nothing lost by the timed-out recv
    c.setblocking(False)
    with pytest.raises(BlockingIOError):
        c.recv(10)
    conn.close()
    c.settimeout(5)
    assert c.recv(10) == b""  # the peer's FIN
    c.close()
    server.close()


def test_accept_timeout_and_refused_connect(hosts: tuple[BackgroundRuntime, BackgroundRuntime]) -> None:
    a, b = hosts
    server = b.socket()
    server.settimeout(0.1)
    server.listen(9, 4)
    with pytest.raises(TimeoutError):
        server.accept()
    c = a.socket()
    c.settimeout(5)
    with pytest.raises(ConnectionRefusedError):
        c.connect((ADDR_B, 10))
    with pytest.raises(OSError):
        c.recv(1)  # not connected
    server.close()


def test_peer_abort_is_connection_reset(hosts: tuple[BackgroundRuntime, BackgroundRuntime]) -> None:
    a, b = hosts
    server = b.socket()
    server.settimeout(5)
    server.listen(11, 4)
    c = a.socket()
    c.settimeout(5)
    c.connect((ADDR_B, 11))
    conn, _ = server.accept()
    # Closing with unread data resets the connection (RFC 9293 3.10.4, Linux behaviour).
    c.sendall(b"unread")
    time.sleep(0.1)
    conn.close()
    with pytest.raises(ConnectionResetError):
        c.recv(10)
    c.close()
    server.close()


def test_closing_a_listener_resets_unaccepted_connections(
        hosts: tuple[BackgroundRuntime, BackgroundRuntime]) -> None:
    a, b = hosts
    server = b.socket()
    server.listen(12, 4)
    c = a.socket()
    c.settimeout(5)
    c.connect((ADDR_B, 12))  # established, waiting in the accept queue
    time.sleep(0.05)
    server.close()
    with pytest.raises(ConnectionResetError):
        c.recv(10)
    c.close()
    d = a.socket()
    d.settimeout(5)
    with pytest.raises(ConnectionRefusedError):
        d.connect((ADDR_B, 12))


def test_socket_options_and_info(hosts: tuple[BackgroundRuntime, BackgroundRuntime]) -> None:
    a, b = hosts
    server = b.socket()
    server.settimeout(5)
    server.listen(13, 4)
    c = a.socket()
    c.settimeout(5)
    c.connect((ADDR_B, 13))
    conn, _ = server.accept()
    assert c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    assert c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    c.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    assert c.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    with pytest.raises(OSError):
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    c.set_retries(retries2=5)
    assert c.getsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT) == 0  # engine default kept
    c.sendall(b"12345")
    assert conn.recv(5) == b"12345"
    info = c.info()
    assert str(info.state) == "ESTABLISHED"
    assert info.bytes_out == 5
    conn.close()
    c.close()
    server.close()


def test_syn_retries_bound_the_connect_to_a_silent_host(
        hosts: tuple[BackgroundRuntime, BackgroundRuntime]) -> None:
    a, _b = hosts
    c = a.socket()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)  # one SYN retransmission
    assert c.getsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT) == 1
    c.settimeout(20)
    t0 = time.monotonic()
    # 10.0.0.99 does not exist: host B drops the SYNs (not for us), nobody answers.
    with pytest.raises(TimeoutError):
        c.connect(("10.0.0.99", 80))
    elapsed = time.monotonic() - t0
    # SYN at 0, retransmission at RTO=1 s, give up after the backed-off 2 s: about 3 s,
    # far from the settimeout bound and from the default 6 retries (127 s).
    assert 2.5 <= elapsed < 6.0, elapsed
    c.close()


def test_ip_tos_on_connection_and_inherited_from_listener(
        hosts: tuple[BackgroundRuntime, BackgroundRuntime]) -> None:
    """MUST-48: IP_TOS sets the TOS byte of a connection's segments; a listener's value is
    inherited by the connections it accepts (as on Linux)."""
    a, b = hosts
    server = b.socket()
    server.settimeout(5)
    server.listen(14, 4)
    server.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x10)
    c = a.socket()
    c.settimeout(5)
    c.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x28)
    c.connect((ADDR_B, 14))
    conn, _ = server.accept()
    assert c.getsockopt(socket.IPPROTO_IP, socket.IP_TOS) == 0x28
    assert conn.getsockopt(socket.IPPROTO_IP, socket.IP_TOS) == 0x10
    c.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0xB8)
    assert c.getsockopt(socket.IPPROTO_IP, socket.IP_TOS) == 0xB8
    with pytest.raises(OSError):
        c.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 256)
    c.sendall(b"tos")
    assert conn.recv(3) == b"tos"
    conn.close()
    c.close()
    server.close()


def test_tcp_cork_and_msg_more(hosts: tuple[BackgroundRuntime, BackgroundRuntime]) -> None:
    a, b = hosts
    server = b.socket()
    server.settimeout(10)
    server.listen(7007, 4)
    client = a.socket()
    client.settimeout(10)
    client.connect((ADDR_B, 7007))
    conn, _ = server.accept()
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 1
    client.send(b"head:", socket.MSG_MORE)
    client.sendall(b"body")
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)  # releases the held tail
    assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 0
    got = b""
    while len(got) < 9:
        got += conn.recv(100)
    assert got == b"head:body"
    with pytest.raises(OSError):
        client.send(b"x", socket.MSG_OOB)
    conn.close()
    client.close()
    server.close()


def test_sendfile_sends_the_file_from_an_offset(
        hosts: tuple[BackgroundRuntime, BackgroundRuntime], tmp_path: Path) -> None:
    a, b = hosts
    content = random.Random(9).randbytes(200_000)
    path = tmp_path / "f.bin"
    path.write_bytes(content)
    server = b.socket()
    server.settimeout(10)
    server.listen(7008, 4)
    client = a.socket()
    client.settimeout(10)
    client.connect((ADDR_B, 7008))
    conn, _ = server.accept()
    conn.settimeout(10)
    with open(path, "rb") as f:
        assert client.sendfile(f, offset=1000, count=150_000) == 150_000
        assert f.tell() == 151_000
        assert client.sendfile(f, offset=f.tell()) == 49_000  # to EOF
        assert f.tell() == 200_000
        with pytest.raises(ValueError):
            client.sendfile(f, count=0)
    client.shutdown(socket.SHUT_WR)
    got = _recv_all(conn)
    assert hashlib.sha256(got).digest() == hashlib.sha256(content[1000:]).digest()
    with open(path) as text, pytest.raises(ValueError):
        client.sendfile(text)
    conn.close()
    client.close()
    server.close()


def test_tcp_quickack_reports_and_sets_pingpong_mode(
        hosts: tuple[BackgroundRuntime, BackgroundRuntime]) -> None:
    a, b = hosts
    server = b.socket()
    server.settimeout(10)
    server.listen(7011, 4)
    client = a.socket()
    client.settimeout(10)
    qa = getattr(socket, "TCP_QUICKACK", 12)
    assert client.getsockopt(socket.IPPROTO_TCP, qa) == 1  # (Linux: not interactive yet)
    client.connect((ADDR_B, 7011))
    conn, _ = server.accept()
    client.setsockopt(socket.IPPROTO_TCP, qa, 0)  # pingpong mode: ACKs wait for a reply
    assert client.getsockopt(socket.IPPROTO_TCP, qa) == 0
    client.setsockopt(socket.IPPROTO_TCP, qa, 1)
    assert client.getsockopt(socket.IPPROTO_TCP, qa) == 1
    conn.sendall(b"ping")
    assert client.recv(4) == b"ping"
    conn.close()
    client.close()
    server.close()


def test_tcp_md5sig_signed_connection_and_key_mismatch(
        hosts: tuple[BackgroundRuntime, BackgroundRuntime]) -> None:
    """RFC 2385 through the socket API: TCP_MD5SIG with Linux's struct tcp_md5sig on the
    listener, set_md5_key on the client; data flows, every segment signed (the connection
    knows its key); a client with another key never connects (the server counts
    MD5_FAILURE) and one without any key neither (MD5_NOT_FOUND)."""
    from pytcp.drops import DropReason
    from pytcp.tcp.md5 import TCP_MD5SIG, build_tcp_md5sig

    a, b = hosts
    server = b.socket()
    server.settimeout(5)
    server.listen(15, 4)
    server.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, build_tcp_md5sig(ADDR_A, b"s3cret"))
    c = a.socket()
    c.settimeout(5)
    c.set_md5_key(ADDR_B, b"s3cret")
    c.connect((ADDR_B, 15))
    conn, _ = server.accept()
    c.sendall(b"signed")
    assert conn.recv(6) == b"signed"
    handle = conn._writer.get_extra_info("pytcp_handle")  # type: ignore[union-attr]
    assert handle.md5_key == b"s3cret" and handle.conn.snd_mss == 1440
    with pytest.raises(OSError):
        c.set_md5_key(ADDR_B, b"late")  # connected: Linux would take it, pytcp refuses
    with pytest.raises(OSError):
        c.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, b"short")
    bad = a.socket()
    bad.set_md5_key(ADDR_B, b"wrong")
    bad.settimeout(1.5)
    with pytest.raises(OSError):
        bad.connect((ADDR_B, 15))
    assert b.stack.drops[DropReason.MD5_FAILURE] >= 1
    plain = a.socket()
    plain.settimeout(1.5)
    with pytest.raises(OSError):
        plain.connect((ADDR_B, 15))
    assert b.stack.drops[DropReason.MD5_NOT_FOUND] >= 1
    conn.close()
    c.close()
    server.close()
