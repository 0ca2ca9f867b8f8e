"""The blocking Socket's error queue: SO_ZEROCOPY/MSG_ZEROCOPY completions and SO_TIMESTAMPING
TX timestamps read with recvmsg(MSG_ERRQUEUE), over two runtimes on an in-memory link."""

from __future__ import annotations

import errno
import random
import struct
import threading
import time

import pytest

from pytcp.api import errqueue as eq
from pytcp.api.pair import ADDR_B
from pytcp.api.sock import BackgroundRuntime, Socket


def _sink(server: Socket, got: list[bytes]) -> threading.Thread:
    def run() -> None:
        conn, _ = server.accept()
        with conn:
            buf = bytearray()
            while data := conn.recv(65536):
                buf += data
            got.append(bytes(buf))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _wait_entry(s: Socket, bufsize: int = 0, anc: int = 256
                ) -> tuple[bytes, list[tuple[int, int, bytes]], int]:
    for _ in range(200):  # bounded: 2 s
        try:
            data, ancdata, flags, _addr = s.recvmsg(bufsize, anc, eq.MSG_ERRQUEUE)
            return data, ancdata, flags
        except BlockingIOError:
            time.sleep(0.01)
    raise AssertionError("no error-queue notification within 2 s")


def _ee(ancdata: list[tuple[int, int, bytes]]) -> tuple[int, ...]:
    level, typ, raw = ancdata[-1]
    assert (level, typ) == (eq.SOL_IP, eq.IP_RECVERR) and len(raw) == 32
    return struct.unpack("=IBBBBII", raw[:16])


def test_zerocopy_completion_and_timestamps(
        hosts: tuple[BackgroundRuntime, BackgroundRuntime]) -> None:
    a, b = hosts
    server = b.socket()
    server.settimeout(10)
    server.listen(9, 4)
    got: list[bytes] = []
    t = _sink(server, got)
    c = Socket.create(runtime=a)
    c.settimeout(10)
    with pytest.raises(OSError) as bad:
        c.setsockopt(eq.SOL_SOCKET, eq.SO_ZEROCOPY, 2)
    assert bad.value.errno == errno.EINVAL
    c.setsockopt(eq.SOL_SOCKET, eq.SO_ZEROCOPY, 1)
    assert c.getsockopt(eq.SOL_SOCKET, eq.SO_ZEROCOPY) == 1
    c.connect((ADDR_B, 9))
    with pytest.raises(BlockingIOError):
        c.recvmsg(0, 256, eq.MSG_ERRQUEUE)  # empty: EAGAIN, blocking or not
    payload = random.Random(5).randbytes(50_000)
    assert c.send(payload, eq.MSG_ZEROCOPY) == len(payload)
    data, anc, flags = _wait_entry(c)
    assert (data, flags) == (b"", eq.MSG_ERRQUEUE)
    assert len(anc) == 1
    assert _ee(anc) == (0, eq.SO_EE_ORIGIN_ZEROCOPY, 0, eq.SO_EE_CODE_ZEROCOPY_COPIED, 0, 0, 0)
    # TX timestamps of the next send's last byte: SCHED, SND, then ACK.
    flags_ts = (eq.SOF_TIMESTAMPING_TX_SCHED | eq.SOF_TIMESTAMPING_TX_SOFTWARE
                | eq.SOF_TIMESTAMPING_TX_ACK | eq.SOF_TIMESTAMPING_SOFTWARE
                | eq.SOF_TIMESTAMPING_OPT_ID)
    c.setsockopt(eq.SOL_SOCKET, eq.SO_TIMESTAMPING, flags_ts)
    before = time.time()
    c.send(b"z" * 3000)
    kinds = []
    for _ in range(3):
        data, anc, flags = _wait_entry(c, bufsize=10)
        assert flags == eq.MSG_ERRQUEUE | eq.MSG_TRUNC and data == b"z" * 10
        (lvl, typ, ts), _rec = anc
        assert (lvl, typ) == (eq.SOL_SOCKET, eq.SCM_TIMESTAMPING)
        sec, nsec = struct.unpack("=qq", ts[:16])
        assert before - 0.5 <= sec + nsec / 1e9 <= time.time() + 0.5
        e = _ee(anc)
        assert (e[0], e[1], e[6]) == (errno.ENOMSG, eq.SO_EE_ORIGIN_TIMESTAMPING, 2999)
        kinds.append(e[5])
    assert kinds == [eq.SCM_TSTAMP_SCHED, eq.SCM_TSTAMP_SND, eq.SCM_TSTAMP_ACK]
    # A control buffer too small for the message: MSG_CTRUNC.
    c.send(b"y")
    _data, anc, flags = _wait_entry(c, anc=8)
    assert anc == [] and flags & 0x8
    c.close()
    t.join(10)
    assert got == [payload + b"z" * 3000 + b"y"]
